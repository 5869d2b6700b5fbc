"""`dmidecode -t memory` (SMBIOS type 17, Memory Device): the DIMM slots, populated or not.

    Handle 0x0040, DMI type 17, 92 bytes
    Memory Device
            Size: 32 GB                        <- "No Module Installed" for an empty slot; "16384 MB" in old versions
            Locator: DIMM 0
            Bank Locator: P0 CHANNEL A
            Type: DDR4
            Speed: 3200 MT/s                   <- "2400 MHz" before dmidecode 3.3
            Manufacturer: Samsung
            Part Number: M378A4G43AB2-CWE
            Configured Memory Speed: 3200 MT/s <- "Configured Clock Speed" in old versions
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import ParseError

_SIZE = re.compile(r"^(\d+)\s*(bytes|kB|KB|MB|GB|TB)$")
_SIZE_MIB = {"bytes": 1 / 2**20, "kB": 1 / 1024, "KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024**2}
_SPEED = re.compile(r"^(\d+)\s*(?:MT/s|MHz)")
# Placeholders BIOSes write for "none": Supermicro's "--" (serial, asset tag), AMI's "To Be Filled By O.E.M."
_EMPTY_VALUES = {"", "Unknown", "Not Specified", "NO DIMM", "None", "[Empty]", "--", "To Be Filled By O.E.M.",
                 "Not Provided"}


@dataclass(frozen=True)
class Dimm:
    locator: str
    bank_locator: str | None
    size_mib: int | None             # None: the slot is empty
    type: str | None                 # DDR4, DDR5, ...
    speed_mts: int | None            # the module's rated speed
    configured_speed_mts: int | None  # what the board runs it at
    manufacturer: str | None
    part_number: str | None
    serial: str | None

    @property
    def populated(self) -> bool:
        return self.size_mib is not None


def parse_dmidecode_memory(text: str, source: str = "dmidecode -t memory") -> list[Dimm]:
    """Every Memory Device block (empty slots included); ParseError when the text has none."""
    dimms = []
    for block in re.split(r"\n(?=Handle 0x)", text):
        lines = block.splitlines()
        if not any(line.strip() == "Memory Device" for line in lines[:3]):
            continue
        fields = {}
        for line in lines:
            key, sep, value = line.strip().partition(":")
            if sep and key not in fields:
                fields[key] = value.strip()
        dimms.append(_dimm(fields, source))
    if not dimms:
        if "No SMBIOS nor DMI entry point found" in text or "/dev/mem" in text:
            raise ParseError(source, "the machine exposes no SMBIOS tables (a VM, or dmidecode not run as root)")
        raise ParseError(source, "no 'Memory Device' block (expected the output of `dmidecode -t memory`)")
    return dimms


def _dimm(fields: dict[str, str], source: str) -> Dimm:
    size = fields.get("Size", "")
    match = _SIZE.match(size)
    if not match and not size.startswith("No Module Installed") and size not in _EMPTY_VALUES:
        raise ParseError(source, f"Memory Device {fields.get('Locator', '?')}: Size is {size!r}, "
                                 f"expected e.g. '16 GB' or 'No Module Installed'")
    return Dimm(
        locator=fields.get("Locator", "?"),
        bank_locator=_text(fields.get("Bank Locator")),
        size_mib=round(int(match[1]) * _SIZE_MIB[match[2]]) if match and int(match[1]) else None,
        type=_text(fields.get("Type")),
        speed_mts=_speed(fields.get("Speed")),
        configured_speed_mts=_speed(fields.get("Configured Memory Speed") or fields.get("Configured Clock Speed")),
        manufacturer=_text(fields.get("Manufacturer")),
        part_number=_text(fields.get("Part Number")),
        serial=_text(fields.get("Serial Number")),
    )


def _text(value: str | None) -> str | None:
    return None if value is None or value.strip() in _EMPTY_VALUES else value.strip()


def _speed(value: str | None) -> int | None:
    match = _SPEED.match(value or "")
    return int(match[1]) if match else None


def parse_memory_error_correction(text: str) -> list[str]:
    """`Error Correction Type` of every Physical Memory Array (type 16): "None", "Single-bit ECC", "Multi-bit ECC"..."""
    types = []
    for block in re.split(r"\n(?=Handle 0x)", text):
        lines = [line.strip() for line in block.splitlines()]
        if "Physical Memory Array" in lines[:3]:
            types += [line.partition(":")[2].strip() for line in lines if line.startswith("Error Correction Type:")]
    return types
