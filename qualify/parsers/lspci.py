"""`lspci -vv` (or -vvv, with or without -D/-nn/-x): each device's PCIe link capability and status.

Formats handled: the newer one with "(ok)"/"(downgraded)"/"(strange)" markers after LnkSta's speed and
width, the older one without markers ("LnkSta: Speed 8GT/s, Width x4, TrErr- ..."), tab- or
space-indented. The markers are not trusted: pciutils omits them for root and downstream ports, and
old versions never print them, so "downgraded" is decided from the numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qualify.errors import ParseError


@dataclass(frozen=True)
class PciLink:
    speed_gts: float  # 2.5, 5, 8, 16, 32, 64 GT/s (PCIe gen 1..6)
    width: int  # lanes


@dataclass(frozen=True)
class PciDevice:
    slot: str  # as lspci prints it: "04:00.0", or "0000:04:00.0" with -D
    description: str  # "Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD ..."
    # None when the device has no PCIe capability, lspci could not read it (not root:
    # "<access denied>") or printed the speed as unknown.
    link_capability: PciLink | None
    link_status: PciLink | None
    # LnkCtl's ASPM state as lspci words it: "Disabled", "L1 Enabled", "L0s L1 Enabled"; None without LnkCtl.
    # Not compared: two reads of one device are the same device whatever the OS set ASPM to.
    aspm: str | None = field(default=None, compare=False)

    @property
    def downgraded(self) -> bool:
        """The link runs slower or narrower than both ends could (bad adapter, cable, riser or slot)."""
        if self.link_capability is None or self.link_status is None:
            return False
        return (self.link_status.speed_gts < self.link_capability.speed_gts
                or self.link_status.width < self.link_capability.width)


_DEVICE_HEADER = re.compile(r"^((?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(.*?)\s*$")
# LnkCap:/LnkSta: only (not LnkCap2:/LnkSta2:); the speed may be "unknown" on odd links.
_LINK_LINE = re.compile(
    r"^\s+(LnkCap|LnkSta):\s.*?Speed\s+(?:([\d.]+)|unknown)(?:GT/s)?(?:\s*\(\w+\))?,\s*"
    r"Width\s+x(\d+)")
_ASPM_CONTROL = re.compile(r"^\s+LnkCtl:\s+ASPM ([\w ]+?);")


def parse_lspci_vv(text: str, source: str = "lspci -vv") -> list[PciDevice]:
    """Every device block in order; lines before the first device header (prompt, noise) are ignored."""
    devices: list[PciDevice] = []
    header: tuple[str, str] | None = None
    links: dict[str, PciLink | None] = {}
    aspm: str | None = None

    def finish() -> None:
        if header is not None:
            devices.append(PciDevice(slot=header[0], description=header[1], link_capability=links.get("LnkCap"),
                                     link_status=links.get("LnkSta"), aspm=aspm))

    for line in text.splitlines():
        if m := _DEVICE_HEADER.match(line):
            finish()
            header, links, aspm = (m[1], m[2]), {}, None
        elif header is not None and (m := _ASPM_CONTROL.match(line)):
            aspm = m[1]
        elif header is not None and (m := _LINK_LINE.match(line)):
            if m[1] in links:
                raise ParseError(source, f"device {header[0]} has two '{m[1]}:' lines; expected one per device")
            links[m[1]] = PciLink(speed_gts=float(m[2]), width=int(m[3])) if m[2] else None
    finish()
    if not devices and text.strip():
        raise ParseError(source, f"no device line like '04:00.0 Non-Volatile memory controller: ...' "
                                 f"(starts with {text.strip()[:60]!r}); expected the output of `lspci -vv`")
    return devices
