"""`wipefs --no-act --json DEVICE` (util-linux >= 2.29): the signatures libblkid finds on a device."""

from __future__ import annotations

import json
from dataclasses import dataclass

from qualify.errors import ParseError

# libblkid's partition-table probers; every other signature is a filesystem, RAID, LVM, crypto,
# Ceph or ZFS member, swap ...
PARTITION_TABLE_TYPES = frozenset({"dos", "gpt", "PMBR", "bsd", "sun", "sgi", "mac", "atari", "aix", "solaris",
                                   "unixware", "minix", "ultrix"})


@dataclass(frozen=True)
class Signature:
    type: str  # "ext4", "LVM2_member", "linux_raid_member", "crypto_LUKS", "zfs_member", "gpt", ...
    offset: int  # bytes from the start of the device
    label: str | None

    @property
    def is_partition_table(self) -> bool:
        return self.type in PARTITION_TABLE_TYPES


def parse_wipefs_json(text: str, source: str = "wipefs --json") -> list[Signature]:
    # wipefs prints nothing at all (not an empty list) for a device without signatures.
    if not text.strip():
        return []
    try:
        entries = json.loads(text)["signatures"]
        return [Signature(type=e["type"], offset=int(e["offset"], 0), label=e.get("label")) for e in entries]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ParseError(source, f"expected {{\"signatures\": [...]}} ({exc}); output starts with "
                                 f"{text.strip()[:60]!r}") from None
