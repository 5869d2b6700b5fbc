"""`ip -j -d link show` (iproute2 JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from qualify.errors import ParseError


@dataclass(frozen=True)
class Link:
    name: str
    mac: str | None
    mtu: int | None
    state: str | None
    kind: str | None  # veth, bridge, bond...; None for a plain physical NIC


def parse_ip_link(text: str) -> list[Link]:
    try:
        links = json.loads(text)
        if not isinstance(links, list):
            raise TypeError("not a list")
    except (json.JSONDecodeError, TypeError) as exc:
        raise ParseError("ip -j link output", f"expected a JSON list of links ({exc})") from None
    return [
        Link(name=link.get("ifname", ""), mac=link.get("address"), mtu=link.get("mtu"),
             state=link.get("operstate"), kind=(link.get("linkinfo") or {}).get("info_kind"))
        for link in links
    ]
