"""nvme-cli JSON: `nvme smart-log -o json` and `nvme id-ctrl -o json` (nvme-cli 1.x and 2.x).

Key spellings differ across versions (and one 1.x build writes "critical_warrning"); temperatures
are in Kelvin, as the NVMe log holds them. Text fields of id-ctrl are space-padded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from qualify.errors import ParseError

KELVIN = 273


@dataclass(frozen=True)
class NvmeSmartLog:
    critical_warning: int
    temperature_c: int
    available_spare: int
    available_spare_threshold: int
    percentage_used: int
    data_units_written: int  # thousands of 512-byte blocks
    power_on_hours: int
    unsafe_shutdowns: int
    media_errors: int
    error_log_entries: int
    warning_temperature_minutes: int
    critical_temperature_minutes: int


@dataclass(frozen=True)
class NvmeController:
    model: str
    serial: str
    firmware: str
    warning_temperature_c: int | None  # wctemp; None when the controller reports 0 (not set)
    critical_temperature_c: int | None  # cctemp
    capacity_bytes: int | None  # tnvmcap


# field -> accepted keys, newest spelling first
_SMART_KEYS = {
    "critical_warning": ("critical_warning", "critical_warrning"),
    "temperature": ("temperature",),
    "available_spare": ("avail_spare", "available_spare"),
    "available_spare_threshold": ("spare_thresh", "available_spare_threshold"),
    "percentage_used": ("percent_used", "percentage_used"),
    "data_units_written": ("data_units_written",),
    "power_on_hours": ("power_on_hours",),
    "unsafe_shutdowns": ("unsafe_shutdowns",),
    "media_errors": ("media_errors",),
    "error_log_entries": ("num_err_log_entries",),
    "warning_temperature_minutes": ("warning_temp_time",),
    "critical_temperature_minutes": ("critical_comp_time",),
}


def parse_nvme_smart_log(text: str, source: str = "nvme smart-log -o json") -> NvmeSmartLog:
    data = _object(text, source)
    values: dict[str, int] = {}
    for field, keys in _SMART_KEYS.items():
        key = next((k for k in keys if k in data), None)
        if key is None:
            raise ParseError(source, f"no '{keys[0]}' key; expected the output of nvme smart-log -o json")
        values[field] = _integer(data[key], key, source)
    temperature = values.pop("temperature")
    return NvmeSmartLog(temperature_c=_celsius(temperature), **values)


def parse_nvme_id_ctrl(text: str, source: str = "nvme id-ctrl -o json") -> NvmeController:
    data = _object(text, source)
    if not all(key in data for key in ("mn", "sn", "fr")):
        raise ParseError(source, "no 'mn'/'sn'/'fr' keys; expected the output of nvme id-ctrl -o json")
    warning, critical = (_integer(data.get(key, 0), key, source) for key in ("wctemp", "cctemp"))
    capacity = data.get("tnvmcap")
    return NvmeController(model=str(data["mn"]).strip(), serial=str(data["sn"]).strip(),
                          firmware=str(data["fr"]).strip(),
                          warning_temperature_c=_celsius(warning) if warning else None,
                          critical_temperature_c=_celsius(critical) if critical else None,
                          capacity_bytes=_integer(capacity, "tnvmcap", source) if capacity else None)


def _object(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"not JSON ({exc.msg}); output starts with {text.strip()[:60]!r}") from None
    if not isinstance(data, dict):
        raise ParseError(source, f"expected a JSON object, got {type(data).__name__}")
    return data


def _integer(value: Any, key: str, source: str) -> int:
    # nvme-cli 2.x prints 128-bit counters (data units, tnvmcap) as strings
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParseError(source, f"'{key}': {value!r} is not a number") from None


def _celsius(kelvin: int) -> int:
    return kelvin - KELVIN
