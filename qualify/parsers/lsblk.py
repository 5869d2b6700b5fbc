"""`lsblk -J -d -b -o NAME,PATH,MODEL,SERIAL,REV,SIZE,TYPE,TRAN,WWN` (util-linux JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from qualify.errors import ParseError

LSBLK_COLUMNS = "NAME,PATH,MODEL,SERIAL,REV,SIZE,TYPE,TRAN,WWN"


@dataclass(frozen=True)
class BlockDevice:
    name: str
    path: str
    model: str | None
    serial: str | None
    firmware: str | None
    size_bytes: int | None
    type: str
    transport: str | None
    wwn: str | None


def parse_lsblk(text: str) -> list[BlockDevice]:
    try:
        devices = json.loads(text)["blockdevices"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ParseError("lsblk -J output", f"expected a JSON object with 'blockdevices' ({exc})") from None
    return [
        BlockDevice(
            name=d.get("name", ""), path=d.get("path") or f"/dev/{d.get('name', '')}",
            model=_clean(d.get("model")), serial=_clean(d.get("serial")), firmware=_clean(d.get("rev")),
            size_bytes=int(d["size"]) if d.get("size") is not None else None,
            type=d.get("type", ""), transport=d.get("tran"), wwn=_clean(d.get("wwn")),
        )
        for d in devices
    ]


def _clean(value: str | None) -> str | None:
    # lsblk pads some fields (older versions) and uses null for "not reported"
    return value.strip() or None if isinstance(value, str) else value
