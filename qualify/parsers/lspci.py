"""`lspci -vv` (or -vvv, with or without -D/-nn/-x): each device's PCIe link, error status and AER bits.

Formats handled: the newer one with "(ok)"/"(downgraded)"/"(strange)" markers after LnkSta's speed and
width and its flags wrapped onto the next line, the older one without markers ("LnkSta: Speed 8GT/s, Width x4,
TrErr- ..."), tab- or space-indented, PCI domains of 4 or more hex digits (Intel VMD puts its devices in
domain 10000 and up: "10000:e1:00.0"). The markers are not trusted: pciutils omits them for root and downstream
ports, and old versions never print them, so "downgraded" is decided from the numbers. A port whose link is
down (an empty slot: "Width x0", or "DLActive-" where the port reports it) has no link to be downgraded.
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
    slot: str  # as lspci prints it: "04:00.0", or "0000:04:00.0" with -D, "10000:e1:00.0" behind VMD
    description: str  # "Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD ..."
    # None when the device has no PCIe capability, lspci could not read it (not root:
    # "<access denied>") or printed the speed as unknown.
    link_capability: PciLink | None
    link_status: PciLink | None
    # LnkCtl's ASPM state as lspci words it: "Disabled", "L1 Enabled", "L0s L1 Enabled"; None without LnkCtl.
    # Not compared: two reads of one device are the same device whatever the OS set ASPM to.
    aspm: str | None = field(default=None, compare=False)
    # LnkSta's DLActive, only where LnkCap says the port reports it (LLActRep+); endpoints and many ports
    # print "DLActive-" with a working link, so None there.
    data_link_active: bool | None = None
    # DevSta error bits that are set, named as lspci prints them: "CorrErr", "UncorrErr" (newer: "NonFatalErr"),
    # "FatalErr", "UnsuppReq" (newer: "UnsupReq"). Sticky until cleared: errors since boot or the last clear.
    device_status_errors: tuple[str, ...] = ()
    # AER status bits that are set (UESta: "DLP", "CmpltTO", "MalfTLP", ...; CESta: "RxErr", "BadTLP",
    # "BadDLLP", "Rollover", "Timeout", ...); None without an AER capability in the output.
    aer_uncorrectable: tuple[str, ...] | None = None
    aer_correctable: tuple[str, ...] | None = None

    @property
    def link_up(self) -> bool:
        """A trained link: width above x0, and not "DLActive-" on a port that reports it."""
        return self.link_status is not None and self.link_status.width > 0 and self.data_link_active is not False

    @property
    def downgraded(self) -> bool:
        """The link runs slower or narrower than this device could (bad adapter, cable, riser or slot).

        Only this end's capability is known here; the other end may cap the link legitimately (a gen-3
        drive in a gen-2 slot) — qualify.parsers.pci_sysfs compares both ends.
        """
        if self.link_capability is None or self.link_status is None or not self.link_up:
            return False
        return (self.link_status.speed_gts < self.link_capability.speed_gts
                or self.link_status.width < self.link_capability.width)


_DEVICE_HEADER = re.compile(r"^((?:[0-9a-fA-F]{4,}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(.*?)\s*$")
# A register line: "\t\tLnkSta:\tSpeed ...", "        DevSta: CorrErr- ..."; other lines continue the one before.
_FIELD = re.compile(r"^\s+([A-Za-z][\w/ #.-]*?):(?:\s+|$)(.*)$")
_KEPT = ("LnkCap", "LnkSta", "LnkCtl", "DevSta", "UESta", "CESta")
# The speed may be "unknown" on odd links (and for speeds newer than the pciutils); pciutils before 3.0 wrote "Gb/s".
_LINK = re.compile(r"Speed\s+(?:([\d.]+)|unknown)(?:GT/s|Gb/s)?(?:\s*\(\w+\))?,\s*Width\s+x(\d+)")
_ASPM_CONTROL = re.compile(r"^ASPM ([\w ]+?);")
_FLAG = re.compile(r"(?<![\w(])([A-Za-z][\w.]*)([+-])(?=\s|$|,)")
_DEVSTA_ERRORS = ("CorrErr", "UncorrErr", "NonFatalErr", "FatalErr", "UnsuppReq", "UnsupReq")


def parse_lspci_vv(text: str, source: str = "lspci -vv") -> list[PciDevice]:
    """Every device block in order; lines before the first device header (prompt, noise) are ignored."""
    devices: list[PciDevice] = []
    header: tuple[str, str] | None = None
    fields: dict[str, str] = {}
    current: str | None = None

    def finish() -> None:
        if header is not None:
            devices.append(_device(header, fields, source))

    for line in text.splitlines():
        if m := _DEVICE_HEADER.match(line):
            finish()
            header, fields, current = (m[1], m[2]), {}, None
        elif header is None:
            continue
        elif m := _FIELD.match(line):
            current = m[1] if m[1] in _KEPT else None
            if current is not None:
                if current in fields:
                    raise ParseError(source, f"device {header[0]} has two '{current}:' lines; expected one per device")
                fields[current] = m[2]
        elif current is not None and line.strip():
            fields[current] += " " + line.strip()  # newer pciutils wrap LnkSta's flags and UESta onto more lines
    finish()
    if not devices and text.strip():
        raise ParseError(source, f"no device line like '04:00.0 Non-Volatile memory controller: ...' "
                                 f"(starts with {text.strip()[:60]!r}); expected the output of `lspci -vv`")
    return devices


def _device(header: tuple[str, str], fields: dict[str, str], source: str) -> PciDevice:
    capability, status = _link(fields.get("LnkCap")), _link(fields.get("LnkSta"))
    cap_flags, sta_flags = _flags(fields.get("LnkCap", "")), _flags(fields.get("LnkSta", ""))
    active = sta_flags.get("DLActive") if cap_flags.get("LLActRep") else None
    aspm = m[1] if (m := _ASPM_CONTROL.match(fields.get("LnkCtl", ""))) else None
    devsta = _flags(fields.get("DevSta", ""))
    return PciDevice(
        slot=header[0], description=header[1], link_capability=capability, link_status=status, aspm=aspm,
        data_link_active=active,
        device_status_errors=tuple(name for name in _DEVSTA_ERRORS if devsta.get(name)),
        aer_uncorrectable=_set_bits(fields.get("UESta")), aer_correctable=_set_bits(fields.get("CESta")))


def _link(text: str | None) -> PciLink | None:
    if text is None or (m := _LINK.search(text)) is None or m[1] is None:
        return None
    return PciLink(speed_gts=float(m[1]), width=int(m[2]))


def _flags(text: str) -> dict[str, bool]:
    return {m[1]: m[2] == "+" for m in _FLAG.finditer(text)}


def _set_bits(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(name for name, on in _flags(text).items() if on)
