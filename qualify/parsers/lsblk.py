"""`lsblk -J -d -b -o NAME,PATH,MODEL,SERIAL,REV,SIZE,TYPE,TRAN,WWN` (util-linux JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
        return [
            BlockDevice(
                name=d.get("name", ""), path=d.get("path") or f"/dev/{d.get('name', '')}",
                model=_clean(d.get("model")), serial=_clean(d.get("serial")), firmware=_clean(d.get("rev")),
                size_bytes=_size(d.get("size")), type=d.get("type", ""), transport=_clean(d.get("tran")),
                wwn=_clean(d.get("wwn")),
            )
            for d in json.loads(text)["blockdevices"]
        ]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ParseError("lsblk -J output", f"expected a JSON object with 'blockdevices' ({exc!r})") from None


def _size(value: object) -> int | None:
    """SIZE with -b: a number (util-linux >= 2.33) or a string of digits (older ones). Without -b lsblk prints
    "1.8T" (rounded, 1024-based): no byte count to judge a capacity on, so None rather than a guess."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _clean(value: str | None) -> str | None:
    # lsblk pads some fields (older versions) and uses null for "not reported"
    return value.strip() or None if isinstance(value, str) else value


@dataclass(frozen=True)
class BlockNode:
    """One device of `lsblk -J -O -b` with what is stacked on it (partitions, LVM, dm-crypt, md)."""

    name: str
    path: str
    type: str
    model: str | None
    serial: str | None
    wwn: str | None
    firmware: str | None
    size_bytes: int | None
    transport: str | None
    fstype: str | None
    mountpoints: tuple[str, ...]
    children: tuple[BlockNode, ...]

    def walk(self) -> Iterator[BlockNode]:
        """This device and everything stacked on it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def parse_lsblk_tree(text: str) -> list[BlockNode]:
    """`lsblk -J -O -b` (or any column set with NAME and TYPE): the device trees, top-level devices first.

    util-linux 2.37+ prints `mountpoints` (a list, [null] when unmounted), older ones `mountpoint`."""
    try:
        devices = json.loads(text)["blockdevices"]
        return [_node(d) for d in devices]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ParseError("lsblk -J -O output", f"expected a JSON object with 'blockdevices' ({exc!r})") from None


def _node(d: dict) -> BlockNode:
    mounts = d.get("mountpoints") if "mountpoints" in d else [d.get("mountpoint")]
    return BlockNode(
        name=d["name"], path=d.get("path") or f"/dev/{d['name']}", type=d.get("type") or "",
        model=_clean(d.get("model")), serial=_clean(d.get("serial")), wwn=_clean(d.get("wwn")),
        firmware=_clean(d.get("rev")), size_bytes=_size(d.get("size")),
        transport=_clean(d.get("tran")), fstype=_clean(d.get("fstype")),
        mountpoints=tuple(m for m in (mounts or []) if m), children=tuple(_node(c) for c in d.get("children") or []))
