"""Text output of `ethtool -i IFACE` (driver/firmware) and plain `ethtool IFACE` (link settings).

ethtool has no JSON for these on the versions Proxmox ships. Indentation is tabs or spaces,
outputs may be cut short: every field a missing line would give is None (or empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import ParseError


@dataclass(frozen=True)
class DriverInfo:
    driver: str
    version: str | None
    firmware_version: str | None
    expansion_rom_version: str | None  # None when ethtool prints it empty
    bus_info: str | None  # PCI address such as 0000:06:00.1
    supports: dict[str, bool]  # "statistics", "test", "eeprom-access", "register-dump", "priv-flags"


_DRIVER_KEYS = ("driver", "version", "firmware-version", "expansion-rom-version", "bus-info")
_DRIVER_LINE = re.compile(rf"^({'|'.join(_DRIVER_KEYS)}|supports-[a-z-]+):[ \t]*(.*?)\s*$")


def parse_ethtool_driver_info(text: str, source: str = "ethtool -i") -> DriverInfo:
    """The `ethtool -i` block; other lines around it (e.g. `ethtool -S` in the same capture) are ignored."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if m := _DRIVER_LINE.match(line):
            if m[1] in fields:
                raise ParseError(source, f"'{m[1]}:' appears twice; expected the output for one interface")
            fields[m[1]] = m[2]
    if "driver" not in fields:
        raise ParseError(source, "no 'driver:' line; expected the output of `ethtool -i IFACE`")
    driver, version, firmware, rom, bus = (fields.get(key) or None for key in _DRIVER_KEYS)
    supports = {key.removeprefix("supports-"): _yes_no(value, key, source)
                for key, value in fields.items() if key.startswith("supports-")}
    return DriverInfo(driver=fields["driver"], version=version, firmware_version=firmware,
                      expansion_rom_version=rom, bus_info=bus, supports=supports)


@dataclass(frozen=True)
class LinkSettings:
    interface: str
    supported_ports: list[str]  # "TP", "FIBRE", ...
    supported_link_modes: list[str]  # "10000baseSR/Full", ...
    advertised_link_modes: list[str]
    link_partner_advertised_link_modes: list[str]
    supports_auto_negotiation: bool | None
    advertised_auto_negotiation: bool | None
    speed_mbps: int | None  # None for "Unknown!" (no link, or a module the NIC cannot drive)
    duplex: str | None  # "Full" or "Half"; None for "Unknown! (255)"
    auto_negotiation: bool | None
    port: str | None  # "FIBRE", "Twisted Pair", "Direct Attach Copper", "Other", ...
    link_detected: bool | None


_SETTINGS_FOR = re.compile(r"^Settings for (\S+):\s*$")
# "<indent>Key words: value"; a line without this shape continues the previous key's value.
_KEY_LINE = re.compile(r"^\s+([A-Za-z][\w /()-]*?):(?:\s+(.*?))?\s*$")
_SPEED = re.compile(r"(\d+)\s*Mb/s")


def parse_ethtool_link(text: str, source: str = "ethtool") -> LinkSettings:
    """Link settings from plain `ethtool IFACE` output."""
    interface, values = _settings_block(text, source)

    def words(key: str) -> list[str]:
        joined = " ".join(values.get(key, []))
        return [] if joined == "Not reported" else joined.split()

    def single(key: str) -> str | None:
        return " ".join(values[key]) if key in values else None

    def flag(key: str) -> bool | None:
        value = single(key)
        return None if value is None else _yes_no(value, key, source)

    duplex = single("Duplex")
    return LinkSettings(
        interface=interface,
        supported_ports=[word for word in words("Supported ports") if word not in ("[", "]")],
        supported_link_modes=words("Supported link modes"),
        advertised_link_modes=words("Advertised link modes"),
        link_partner_advertised_link_modes=words("Link partner advertised link modes"),
        supports_auto_negotiation=flag("Supports auto-negotiation"),
        advertised_auto_negotiation=flag("Advertised auto-negotiation"),
        speed_mbps=_speed(single("Speed"), source),
        duplex=duplex if duplex in ("Full", "Half") else None,
        auto_negotiation=flag("Auto-negotiation"),
        port=single("Port"),
        link_detected=flag("Link detected"),
    )


def _settings_block(text: str, source: str) -> tuple[str, dict[str, list[str]]]:
    """Interface name and each key's value lines (first line plus continuation lines)."""
    interface = None
    values: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if m := _SETTINGS_FOR.match(line):
            if interface is not None:
                raise ParseError(source, f"settings of {interface} and {m[1]}; expected one interface")
            interface = m[1]
        elif interface is None:
            continue  # e.g. "netlink error" noise before the header
        elif m := _KEY_LINE.match(line):
            current = values.setdefault(m[1], [])
            if m[2]:
                current.append(m[2])
        elif line.strip() and current is not None:
            current.append(line.strip())
    if interface is None:
        raise ParseError(source, "no 'Settings for IFACE:' line; expected the output of `ethtool IFACE`")
    return interface, values


def _speed(value: str | None, source: str) -> int | None:
    if value is None or value.startswith("Unknown"):
        return None
    if m := _SPEED.fullmatch(value):
        return int(m[1])
    raise ParseError(source, f"'Speed: {value}', expected a speed like 10000Mb/s or Unknown!")


_BOOLEANS = {"yes": True, "on": True, "no": False, "off": False}


def _yes_no(value: str, key: str, source: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ParseError(source, f"'{key}: {value}', expected yes/no or on/off") from None
