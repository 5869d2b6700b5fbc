"""smartctl's view of a drive's health: `smartctl -a -j` / `-x -j` (pretty or compact JSON, smartctl
7.0+; NVMe and ATA) and the NVMe "SMART/Health Information" block of its text output.

NVMe reports health directly; ATA drives report vendor attributes, read here by their standard
names (wear from Media_Wearout_Indicator / Wear_Leveling_Count / SSD_Life_Left / Percent_Lifetime_Remain,
whose normalized value counts down from 100). Every field a drive does not report is None.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from qualify.errors import ParseError

NVME_DATA_UNIT_BYTES = 512_000  # NVMe "data units" are thousands of 512-byte blocks

# Critical-warning bits of the NVMe SMART/Health log (NVMe base spec, Figure "SMART / Health Information").
CRITICAL_WARNING_BITS = {
    0: "available spare below its threshold",
    1: "temperature above or below a threshold",
    2: "NVM subsystem reliability degraded (media errors or wear)",
    3: "media placed in read-only mode",
    4: "volatile memory backup device failed (power-loss protection)",
    5: "persistent memory region read-only or unreliable",
}

# smartctl's exit-status bits that mean it could not read the device at all.
_COULD_NOT_READ = 0b011


@dataclass(frozen=True)
class DriveHealth:
    protocol: str  # "NVMe", "ATA", "SCSI"
    model: str | None
    serial: str | None
    firmware: str | None
    smart_passed: bool | None  # the drive's own overall verdict
    critical_warning: int | None  # NVMe bit field, see CRITICAL_WARNING_BITS
    percentage_used: int | None  # share of rated life used (NVMe may exceed 100)
    available_spare: int | None  # percent
    available_spare_threshold: int | None
    media_errors: int | None  # NVMe media and data-integrity errors; ATA uncorrectable sectors
    reallocated_sectors: int | None  # ATA only
    error_log_entries: int | None
    unsafe_shutdowns: int | None
    power_on_hours: int | None
    data_written_bytes: int | None
    temperature_c: int | None
    warning_temperature_minutes: int | None
    critical_temperature_minutes: int | None
    self_test_result: str | None  # latest self-test: "Completed without error", ...
    self_test_passed: bool | None

    def warning_reasons(self) -> list[str]:
        value = self.critical_warning or 0
        return [text for bit, text in CRITICAL_WARNING_BITS.items() if value & (1 << bit)]


def parse_smartctl_json(text: str, source: str = "smartctl -j") -> DriveHealth:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"not JSON ({exc.msg}); output starts with {text.strip()[:60]!r}") from None
    if not isinstance(data, dict) or "smartctl" not in data:
        raise ParseError(source, "JSON without a 'smartctl' section; expected the output of smartctl -a -j")
    status = data["smartctl"].get("exit_status", 0)
    if status & _COULD_NOT_READ:
        messages = "; ".join(m.get("string", "") for m in data["smartctl"].get("messages") or []) or "no message"
        raise ParseError(source, f"smartctl could not read the device (exit status {status}): {messages}")
    protocol = (data.get("device") or {}).get("protocol", "")
    health = _nvme(data) if "nvme_smart_health_information_log" in data else _ata(data)
    tests = _self_test(data)
    return DriveHealth(
        protocol=protocol, model=_text(data.get("model_name")), serial=_text(data.get("serial_number")),
        firmware=_text(data.get("firmware_version")), smart_passed=(data.get("smart_status") or {}).get("passed"),
        power_on_hours=(data.get("power_on_time") or {}).get("hours"),
        temperature_c=(data.get("temperature") or {}).get("current"),
        self_test_result=tests[0], self_test_passed=tests[1], **health)


def _nvme(data: dict) -> dict:
    log = data["nvme_smart_health_information_log"]
    written = log.get("data_units_written")
    return dict(critical_warning=log.get("critical_warning"), percentage_used=log.get("percentage_used"),
                available_spare=log.get("available_spare"),
                available_spare_threshold=log.get("available_spare_threshold"),
                media_errors=log.get("media_errors"), reallocated_sectors=None,
                error_log_entries=log.get("num_err_log_entries"), unsafe_shutdowns=log.get("unsafe_shutdowns"),
                data_written_bytes=written * NVME_DATA_UNIT_BYTES if written is not None else None,
                warning_temperature_minutes=log.get("warning_temp_time"),
                critical_temperature_minutes=log.get("critical_comp_time"))


_WEAR_ATTRIBUTES = ("Media_Wearout_Indicator", "Wear_Leveling_Count", "SSD_Life_Left", "Percent_Lifetime_Remain")
_SPARE_ATTRIBUTES = ("Available_Reservd_Space", "Available_Reserved_Space")


def _ata(data: dict) -> dict:
    attributes = {a["name"]: a for a in (data.get("ata_smart_attributes") or {}).get("table", [])}

    def raw(*names: str) -> int | None:
        found = [attributes[n]["raw"]["value"] for n in names if n in attributes]
        return sum(found) if found else None

    wear = next((attributes[n] for n in _WEAR_ATTRIBUTES if n in attributes), None)
    spare = next((attributes[n] for n in _SPARE_ATTRIBUTES if n in attributes), None)
    errors = (data.get("ata_smart_error_log") or {})
    logged = (errors.get("extended") or errors.get("summary") or {}).get("count")
    return dict(critical_warning=None, percentage_used=100 - wear["value"] if wear else None,
                available_spare=spare["value"] if spare else None,
                available_spare_threshold=spare["thresh"] if spare and "thresh" in spare else None,
                media_errors=raw("Reported_Uncorrect", "Offline_Uncorrectable"),
                reallocated_sectors=raw("Reallocated_Sector_Ct"), error_log_entries=logged,
                unsafe_shutdowns=raw("Unexpect_Power_Loss_Ct", "Unexpected_Power_Loss"),
                data_written_bytes=_ata_written(data), warning_temperature_minutes=None,
                critical_temperature_minutes=None)


def _ata_written(data: dict) -> int | None:
    # Only the device statistics (-x) count in known units; attribute 241's units differ per vendor.
    for page in (data.get("ata_device_statistics") or {}).get("pages", []):
        for entry in page.get("table", []):
            if entry.get("name") == "Logical Sectors Written" and "value" in entry:
                return entry["value"] * data.get("logical_block_size", 512)
    return None


def _self_test(data: dict) -> tuple[str | None, bool | None]:
    log = data.get("nvme_self_test_log") or (data.get("ata_smart_self_test_log") or {}).get("standard") or {}
    table = log.get("table") or []
    if not table:
        return None, None
    result = table[0].get("self_test_result") or table[0].get("status") or {}
    passed = result.get("passed", result.get("value") == 0 if "value" in result else None)
    return result.get("string"), passed


def _text(value: object) -> str | None:
    return " ".join(value.split()) or None if isinstance(value, str) else None


# ---------------------------------------------------------------- text output (NVMe health block)

_TEXT_LINE = re.compile(r"^([A-Za-z][\w .()/-]*?):\s+(.+?)\s*$")
_NUMBER = re.compile(r"^(0x[0-9a-fA-F]+|[\d,]+)")


def parse_smartctl_text(text: str, source: str = "smartctl -a") -> DriveHealth:
    """The NVMe health of `smartctl -a` text output (or an excerpt with just its health block)."""
    fields = {m[1].strip(): m[2] for line in text.splitlines() if (m := _TEXT_LINE.match(line))}
    if "Critical Warning" not in fields and "Percentage Used" not in fields:
        raise ParseError(source, f"no NVMe 'SMART/Health Information' block (starts with {text.strip()[:60]!r}); "
                                 "expected smartctl -a text output of an NVMe drive")

    def number(key: str) -> int | None:
        found = _NUMBER.match(fields.get(key, ""))
        return int(found[1].replace(",", ""), 0) if found else None

    written = number("Data Units Written")
    result = fields.get("SMART overall-health self-assessment test result")
    return DriveHealth(
        protocol="NVMe", model=fields.get("Model Number"), serial=fields.get("Serial Number"),
        firmware=fields.get("Firmware Version"), smart_passed=result == "PASSED" if result else None,
        critical_warning=number("Critical Warning"), percentage_used=number("Percentage Used"),
        available_spare=number("Available Spare"), available_spare_threshold=number("Available Spare Threshold"),
        media_errors=number("Media and Data Integrity Errors"), reallocated_sectors=None,
        error_log_entries=number("Error Information Log Entries"), unsafe_shutdowns=number("Unsafe Shutdowns"),
        power_on_hours=number("Power On Hours"),
        data_written_bytes=written * NVME_DATA_UNIT_BYTES if written is not None else None,
        temperature_c=number("Temperature"), warning_temperature_minutes=number("Warning  Comp. Temperature Time"),
        critical_temperature_minutes=number("Critical Comp. Temperature Time"),
        self_test_result=None, self_test_passed=None)
