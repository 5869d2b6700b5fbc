"""Text output of `ethtool -i IFACE` (driver/firmware), plain `ethtool IFACE` (link settings),
`ethtool -S IFACE` (NIC counters) and `ethtool -m IFACE` (SFP module EEPROM and diagnostics).

ethtool has no JSON for these on the versions Proxmox ships (6.1 rejects `--json` for them).
Indentation is tabs or spaces, outputs may be cut short: every field a missing line would give is None (or empty).
"""

from __future__ import annotations

import math
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


# ---------------------------------------------------------------- ethtool -S

@dataclass(frozen=True)
class NicStatistics:
    counters: dict[str, int]  # driver-specific names: rx_crc_errors, rx_missed_errors, rx_queue_0_drops...


_STATISTICS_HEADER = re.compile(r"^\s*NIC statistics:\s*$")
# Names are the driver's own and may hold dots, brackets or spaces ("port.rx_bytes", "[0]: rx_bytes"):
# the value is the integer after the last colon.
_COUNTER_LINE = re.compile(r"^\s+(\S.*?):\s*(-?\d+)\s*$")


def parse_ethtool_statistics(text: str, source: str = "ethtool -S") -> NicStatistics:
    """The counters of `ethtool -S IFACE`; lines before the header (e.g. `ethtool -i` output) are ignored."""
    counters: dict[str, int] = {}
    in_block = False
    for line in text.splitlines():
        if _STATISTICS_HEADER.match(line):
            if in_block:
                raise ParseError(source, "two 'NIC statistics:' blocks; expected the output for one interface")
            in_block = True
        elif in_block and (m := _COUNTER_LINE.match(line)):
            counters[m[1]] = int(m[2])
        elif in_block and line.strip() and not line[0].isspace():
            break  # the next tool's output in the same capture
    if not in_block:
        raise ParseError(source, "no 'NIC statistics:' line; expected the output of `ethtool -S IFACE` "
                                 "(or the driver does not support statistics)")
    return NicStatistics(counters)


# ---------------------------------------------------------------- ethtool -m (module EEPROM and DOM)

QUANTITIES = ("bias_ma", "tx_power_mw", "rx_power_mw", "temperature_c", "voltage_v")


@dataclass(frozen=True)
class Thresholds:
    high_alarm: float | None
    low_alarm: float | None
    high_warning: float | None
    low_warning: float | None

    @property
    def consistent(self) -> bool:
        """low alarm <= low warning <= high warning <= high alarm (garbage EEPROMs break this)."""
        ordered = [v for v in (self.low_alarm, self.low_warning, self.high_warning, self.high_alarm) if v is not None]
        return len(ordered) >= 2 and ordered == sorted(ordered) and ordered[0] < ordered[-1]


@dataclass(frozen=True)
class ModuleInfo:
    identifier: str | None  # "0x03 (SFP)"
    vendor: str | None
    part_number: str | None
    serial: str | None
    revision: str | None
    transceiver_types: tuple[str, ...]  # "10G Ethernet: 10G Base-SR", ...
    wavelength_nm: float | None
    diagnostics: bool | None  # "Optical diagnostics support"; None when the line is absent
    readings: dict[str, tuple[float, ...]]  # QUANTITIES -> one value per lane (one for SFP, four for QSFP)
    thresholds: dict[str, Thresholds]  # QUANTITIES -> the module's own alarm/warning limits
    flags_on: tuple[str, ...]  # alarm/warning flags the module raises, as ethtool names them
    # QSFP (SFF-8636 byte 93): "Power override" on and "Power set" on hold the module in low-power mode, where
    # its lasers are off and every lane reads 0 mW; None when ethtool prints neither line (SFP, CMIS)
    low_power_mode: bool | None = None


_LANE = r"(?:\s*\((?:Channel|Chan|Lane) (\d+)\))?"
_READINGS = {
    "bias_ma": re.compile(rf"^Laser (?:tx )?bias current{_LANE}$", re.I),
    "tx_power_mw": re.compile(rf"^(?:Laser output power|Transmit avg optical power){_LANE}$", re.I),
    "rx_power_mw": re.compile(rf"^(?:Receiver signal average optical power|Rcvr signal avg optical power|"
                              rf"Receiver signal OMA){_LANE}$", re.I),
    "temperature_c": re.compile(r"^Module temperature$", re.I),
    "voltage_v": re.compile(r"^Module voltage$", re.I),
}
_LIMIT_NAMES = {"laser bias current": "bias_ma", "laser tx bias current": "bias_ma",
                "laser output power": "tx_power_mw", "laser tx power": "tx_power_mw",
                "laser rx power": "rx_power_mw", "module temperature": "temperature_c",
                "module voltage": "voltage_v"}
_THRESHOLD = re.compile(r"^(.+?) (high|low) (alarm|warning) threshold$", re.I)
_FLAG = re.compile(r"^(.+?) (high|low) (alarm|warning)(?:\s*\(.*\))?$", re.I)
_UNITS = {"bias_ma": "mA", "tx_power_mw": "mW", "rx_power_mw": "mW", "temperature_c": "degrees C", "voltage_v": "V"}
_MODULE_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")


def parse_ethtool_module(text: str, source: str = "ethtool -m") -> ModuleInfo:
    """`ethtool -m IFACE` as decoded text (SFP/SFP+ and QSFP lanes); modules without DOM have no readings."""
    fields: dict[str, str] = {}
    types: list[str] = []
    readings: dict[str, dict[int, float]] = {}
    limits: dict[str, dict[str, float]] = {}
    flags_on: list[str] = []
    for line in text.splitlines():
        m = _MODULE_LINE.match(line)
        if not m:
            continue
        key, value = m[1], m[2]
        if key == "Transceiver type":
            types.append(value)
        elif t := _THRESHOLD.match(key):
            quantity = _LIMIT_NAMES.get(t[1].lower())
            if quantity:
                limits.setdefault(quantity, {})[f"{t[2].lower()}_{t[3].lower()}"] = _number(value, quantity, source)
        elif _FLAG.match(key) and value.lower() in ("on", "off"):
            if value.lower() == "on":
                flags_on.append(key)
        elif quantity := next((q for q, rx in _READINGS.items() if rx.match(key)), None):
            lane = _READINGS[quantity].match(key).groups()  # type: ignore[union-attr]
            number = int(lane[0]) if lane and lane[0] else 0
            readings.setdefault(quantity, {})[number] = _number(value, quantity, source)
        else:
            fields.setdefault(key, value)
    if "Identifier" not in fields:
        raise ParseError(source, "no 'Identifier' line; expected the output of `ethtool -m IFACE` "
                                 "(a module the NIC cannot read gives an error instead)")
    diagnostics = fields.get("Optical diagnostics support")
    wavelength = re.match(r"([\d.]+)\s*nm", fields.get("Laser wavelength", ""))
    return ModuleInfo(
        identifier=fields["Identifier"], vendor=fields.get("Vendor name") or None,
        part_number=fields.get("Vendor PN") or None, serial=fields.get("Vendor SN") or None,
        revision=fields.get("Vendor rev") or None, transceiver_types=tuple(types),
        wavelength_nm=float(wavelength[1]) if wavelength else None,
        diagnostics=None if diagnostics is None else _yes_no(diagnostics, "Optical diagnostics support", source),
        readings={q: tuple(v for _, v in sorted(lanes.items())) for q, lanes in readings.items()},
        thresholds={q: Thresholds(v.get("high_alarm"), v.get("low_alarm"), v.get("high_warning"), v.get("low_warning"))
                    for q, v in limits.items()},
        flags_on=tuple(flags_on), low_power_mode=_low_power_mode(fields, source))


def _low_power_mode(fields: dict[str, str], source: str) -> bool | None:
    if "Power set" not in fields or "Power override" not in fields:
        return None
    return _yes_no(fields["Power set"], "Power set", source) and _yes_no(fields["Power override"], "Power override",
                                                                         source)


def _number(value: str, quantity: str, source: str) -> float:
    """The value in the quantity's unit: "0.6367 mW / -1.96 dBm" -> 0.6367; "39.18 degrees C / ..." -> 39.18."""
    unit = _UNITS[quantity]
    if m := re.match(rf"(-?[\d.]+)\s*{re.escape(unit)}\b", value):
        return float(m[1])
    raise ParseError(source, f"'{value}': expected a value in {unit}")


def milliwatt_to_dbm(milliwatt: float) -> float:
    """Optical power in dBm; -inf for no light at all (as ethtool prints it)."""
    return 10 * math.log10(milliwatt) if milliwatt > 0 else -math.inf
