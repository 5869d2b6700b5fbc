"""nvme-cli JSON (nvme-cli 1.x and 2.x): `nvme smart-log`, `nvme id-ctrl`, `nvme id-ns`, `nvme list` and
`nvme self-test-log`, all with `-o json`.

Key spellings differ across versions (and one 1.x build writes "critical_warrning"); temperatures
are in Kelvin, as the NVMe log holds them. Text fields of id-ctrl are space-padded; nvme-cli 2.x
prints 128-bit counters (tnvmcap, data units) as strings.
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
    capacity_bytes: int | None  # tnvmcap (0 = not reported, as a single-namespace drive may)
    unallocated_bytes: int | None = None  # unvmcap: capacity no namespace uses
    volatile_write_cache: bool | None = None  # vwc bit 0: the drive has a volatile write cache
    firmware_slots: int | None = None  # frmw bits 3:1
    firmware_slot1_read_only: bool | None = None  # frmw bit 0
    self_test_supported: bool | None = None  # oacs bit 4 (Device Self-test command)
    extended_test_minutes: int | None = None  # edstt: the drive's extended self-test time


@dataclass(frozen=True)
class LbaFormat:
    index: int
    data_bytes: int  # 2 ** lbads
    metadata_bytes: int
    relative_performance: int  # 0 best .. 3 degraded


RELATIVE_PERFORMANCE = ("Best", "Better", "Good", "Degraded")


@dataclass(frozen=True)
class NvmeNamespace:
    size_blocks: int  # nsze
    capacity_blocks: int  # ncap
    formats: tuple[LbaFormat, ...]
    in_use: int  # flbas: the index of the LBA format in use

    @property
    def format_in_use(self) -> LbaFormat:
        return self.formats[self.in_use]

    @property
    def best_format(self) -> LbaFormat:
        """The fastest format without metadata (what a Ceph OSD wants), the largest block on a tie."""
        plain = [f for f in self.formats if f.metadata_bytes == 0] or list(self.formats)
        return min(plain, key=lambda f: (f.relative_performance, -f.data_bytes))

    @property
    def size_bytes(self) -> int:
        return self.size_blocks * self.format_in_use.data_bytes


@dataclass(frozen=True)
class NvmeListEntry:
    device_path: str
    serial: str
    model: str
    firmware: str
    namespace: int | None  # nvme-cli 2.x only
    physical_size_bytes: int | None  # None when nvme-cli printed garbage (a negative, overflowed size)
    sector_size: int


@dataclass(frozen=True)
class NvmeSelfTestLog:
    running: int  # current operation: 0 none, 1 short, 2 extended
    completion_percent: int | None  # of the running test
    results: tuple[NvmeSelfTestResult, ...]  # newest first, unused entries dropped


@dataclass(frozen=True)
class NvmeSelfTestResult:
    code: int  # 1 short, 2 extended
    result: int  # 0 passed, 1-4/8/9 aborted, 5-7 failed
    segment: int
    power_on_hours: int | None
    failing_lba: int | None


SELF_TEST_RESULTS = {0: "completed without error", 1: "aborted by a Device Self-test command",
                     2: "aborted by a controller reset", 3: "aborted by a namespace removal",
                     4: "aborted by a Format NVM command", 5: "fatal or unknown error",
                     6: "failed, segment unknown", 7: "failed in a segment", 8: "aborted, unknown reason",
                     9: "aborted by a sanitize operation"}
SELF_TEST_CODES = {1: "short", 2: "extended", 0xE: "vendor specific"}
_UNUSED_ENTRY = 0xF


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
        values[field] = _critical_warning(data[key], source) if field == "critical_warning" \
            else _integer(data[key], key, source)
    temperature = values.pop("temperature")
    return NvmeSmartLog(temperature_c=_celsius(temperature), **values)


# `nvme smart-log -H -o json` (nvme-cli 1.12+) decodes critical_warning into an object of its bits.
_WARNING_BIT_KEYS = ("available_spare", "temp_threshold", "reliability_degraded", "ro", "vmbu_failed", "pmr_ro")


def _critical_warning(value: Any, source: str) -> int:
    if not isinstance(value, dict):
        return _integer(value, "critical_warning", source)
    if "value" in value:
        return _integer(value["value"], "critical_warning.value", source)
    return sum(1 << bit for bit, key in enumerate(_WARNING_BIT_KEYS) if _integer(value.get(key, 0), key, source))


def parse_nvme_id_ctrl(text: str, source: str = "nvme id-ctrl -o json") -> NvmeController:
    data = _object(text, source)
    if not all(key in data for key in ("mn", "sn", "fr")):
        raise ParseError(source, "no 'mn'/'sn'/'fr' keys; expected the output of nvme id-ctrl -o json")
    warning, critical = (_integer(data.get(key, 0), key, source) for key in ("wctemp", "cctemp"))
    capacity, unallocated = data.get("tnvmcap"), data.get("unvmcap")

    def bits(key: str) -> int | None:
        return _integer(data[key], key, source) if key in data else None

    vwc, frmw, oacs, edstt = bits("vwc"), bits("frmw"), bits("oacs"), bits("edstt")
    return NvmeController(model=str(data["mn"]).strip(), serial=str(data["sn"]).strip(),
                          firmware=str(data["fr"]).strip(),
                          warning_temperature_c=_celsius(warning) if warning else None,
                          critical_temperature_c=_celsius(critical) if critical else None,
                          capacity_bytes=_integer(capacity, "tnvmcap", source) if capacity else None,
                          unallocated_bytes=_integer(unallocated, "unvmcap", source) if unallocated is not None
                          else None,
                          volatile_write_cache=bool(vwc & 1) if vwc is not None else None,
                          firmware_slots=(frmw >> 1) & 0x7 if frmw is not None else None,
                          firmware_slot1_read_only=bool(frmw & 1) if frmw is not None else None,
                          self_test_supported=bool(oacs & 0x10) if oacs is not None else None,
                          extended_test_minutes=edstt or None)


def parse_nvme_id_ns(text: str, source: str = "nvme id-ns -o json") -> NvmeNamespace:
    data = _object(text, source)
    if not all(key in data for key in ("nsze", "flbas", "lbafs")):
        raise ParseError(source, "no 'nsze'/'flbas'/'lbafs' keys; expected the output of nvme id-ns -o json")
    formats = tuple(LbaFormat(index=i, data_bytes=1 << _integer(f["ds"], "ds", source),
                              metadata_bytes=_integer(f.get("ms", 0), "ms", source),
                              relative_performance=_integer(f.get("rp", 0), "rp", source))
                    for i, f in enumerate(data["lbafs"]))
    flbas = _integer(data["flbas"], "flbas", source)
    in_use = (flbas & 0xF) | ((flbas >> 5) & 0x3) << 4  # bits 3:0 and, from NVMe 2.0, bits 6:5
    if in_use >= len(formats):
        raise ParseError(source, f"flbas {flbas} names LBA format {in_use}, but only {len(formats)} are listed")
    return NvmeNamespace(size_blocks=_integer(data["nsze"], "nsze", source),
                         capacity_blocks=_integer(data.get("ncap", data["nsze"]), "ncap", source),
                         formats=formats, in_use=in_use)


def parse_nvme_list(text: str, source: str = "nvme list -o json") -> list[NvmeListEntry]:
    """`nvme list -o json`; also the subsystem tree of `nvme list -v -o json` (Devices -> Controllers ->
    Namespaces), one entry per namespace of each controller."""
    data = _object(text, source)
    if not isinstance(data.get("Devices"), list):
        raise ParseError(source, "no 'Devices' list; expected the output of nvme list -o json")
    entries = []
    for device in data["Devices"]:
        if "DevicePath" in device:
            entries.append(_list_entry(device, device["DevicePath"], device, device.get("NameSpace"), source))
            continue
        controllers = device.get("Controllers")
        if not isinstance(controllers, list):
            raise ParseError(source, "a device with neither 'DevicePath' nor 'Controllers'; "
                                     "expected the output of nvme list -o json")
        for controller in controllers:
            for ns in controller.get("Namespaces") or []:
                entries.append(_list_entry(controller, f"/dev/{ns.get('NameSpace', '')}", ns, ns.get("NSID"),
                                           source))
    return entries


def _list_entry(identity: dict, path: str, ns: dict, namespace: Any, source: str) -> NvmeListEntry:
    size = _integer(ns.get("PhysicalSize", 0), "PhysicalSize", source)
    return NvmeListEntry(
        device_path=path, serial=str(identity.get("SerialNumber", "")).strip(),
        model=str(identity.get("ModelNumber", "")).strip(), firmware=str(identity.get("Firmware", "")).strip(),
        namespace=namespace if isinstance(namespace, int) else None,
        # nvme-cli 2.x on some builds (AlmaLinux 9.1) prints sizes past 2 GiB as a negative 32-bit int
        physical_size_bytes=size if size >= 0 else None,
        sector_size=_integer(ns.get("SectorSize", 0), "SectorSize", source))


def parse_nvme_self_test_log(text: str, source: str = "nvme self-test-log -o json") -> NvmeSelfTestLog:
    data = _object(text, source)
    key = "Current Device Self-Test Operation"
    if key not in data:
        raise ParseError(source, f"no {key!r} key; expected the output of nvme self-test-log -o json")
    running = _integer(data[key], key, source)
    results = []
    for entry in data.get("List of Valid Reports") or []:
        result = _integer(entry.get("Self test result", _UNUSED_ENTRY), "Self test result", source)
        if result == _UNUSED_ENTRY:
            continue
        results.append(NvmeSelfTestResult(
            code=_integer(entry.get("Self test code", 0), "Self test code", source), result=result,
            segment=_integer(entry.get("Segment number", 0), "Segment number", source),
            power_on_hours=entry.get("Power on hours"), failing_lba=entry.get("Failing LBA")))
    completion = data.get("Current Device Self-Test Completion")
    return NvmeSelfTestLog(running=running, completion_percent=completion if running else None,
                           results=tuple(results))


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
