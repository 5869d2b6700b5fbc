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


@dataclass(frozen=True)
class Address:
    address: str
    prefixlen: int
    family: str  # inet, inet6
    scope: str | None  # global, link, host


@dataclass(frozen=True)
class Interface:
    """One interface of `ip -j -d addr show`: the link and its addresses."""

    link: Link
    addresses: tuple[Address, ...]


def parse_ip_addr(text: str) -> list[Interface]:
    links = {link.name: link for link in parse_ip_link(text)}
    interfaces = []
    for entry in json.loads(text):
        addresses = tuple(Address(a["local"], int(a["prefixlen"]), a.get("family", ""), a.get("scope"))
                          for a in entry.get("addr_info") or [] if a.get("local") and a.get("prefixlen") is not None)
        interfaces.append(Interface(links[entry.get("ifname", "")], addresses))
    return interfaces
