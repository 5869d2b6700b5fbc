"""smartctl's view of a drive's health, for NVMe, ATA (SATA) and SCSI (SAS) drives.

JSON (`smartctl -x -j`, pretty or compact; smartctl 6.7's json_format_version [0, 1] through 7.5) and
text output (`smartctl -x`, for smartctl 6.x without JSON, or saved reports). Key shapes differ across
versions: SAS identity is `vendor`/`product`/`revision` up to 7.1 and `scsi_vendor`/`scsi_product`/
`scsi_revision`/`scsi_model_name` from 7.2 on; the ATA self-test log sits under
`ata_smart_self_test_log.standard` (`-a`) or `.extended` (`-x`, the GP log), both are read.

NVMe reports health directly; ATA drives report vendor attributes, read here by their standard names
(wear from Media_Wearout_Indicator / Wear_Leveling_Count / SSD_Life_Left / Percent_Lifetime_Remain,
whose normalized value counts down from 100); SAS drives report a grown defect list, an error counter
log and, for SSDs, a percentage-used endurance indicator. Every field a drive does not report is None.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

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
class SelfTest:
    """One entry of a drive's self-test log (newest first in DriveHealth.self_tests)."""

    kind: str  # "Short offline", "Extended", "Background short", ...
    result: str  # "Completed without error", "Completed: read failure", ...
    passed: bool | None  # False: the test found a fault; None: aborted, interrupted or still running
    power_on_hours: int | None
    failing_lba: int | None = None


@dataclass(frozen=True)
class DriveHealth:
    protocol: str  # "NVMe", "ATA", "SCSI"
    model: str | None
    serial: str | None
    firmware: str | None
    smart_passed: bool | None  # the drive's own overall verdict
    critical_warning: int | None = None  # NVMe bit field, see CRITICAL_WARNING_BITS
    percentage_used: int | None = None  # share of rated life used (NVMe may exceed 100)
    available_spare: int | None = None  # percent
    available_spare_threshold: int | None = None
    media_errors: int | None = None  # NVMe media errors; ATA 187 Reported_Uncorrect; SCSI total uncorrected
    reallocated_sectors: int | None = None  # ATA 5
    pending_sectors: int | None = None  # ATA 197 Current_Pending_Sector; SCSI pending defects
    offline_uncorrectable: int | None = None  # ATA 198
    grown_defects: int | None = None  # SCSI grown defect list
    error_log_entries: int | None = None
    # NVMe error-log entries smartctl read, by status ("Invalid Field in Command": the host asked for something
    # the drive lacks, harmless; type 2 "Unrecovered Read Error" ...: the medium). None: no log in the output.
    error_log_statuses: tuple[tuple[str, int], ...] | None = None  # (status string, entries), most first
    error_log_media_entries: int | None = None  # entries whose status code type is 2 (media, data integrity)
    unsafe_shutdowns: int | None = None
    power_on_hours: int | None = None
    data_written_bytes: int | None = None
    temperature_c: int | None = None
    warning_temperature_minutes: int | None = None
    critical_temperature_minutes: int | None = None
    capacity_bytes: int | None = None
    solid_state: bool | None = None  # False for a spinning disk (no wear indicator to expect)
    self_tests: tuple[SelfTest, ...] = ()
    self_test_running: bool = False
    self_test_remaining_percent: int | None = None
    short_test_minutes: float | None = None  # the drive's own expected self-test durations
    extended_test_minutes: float | None = None

    def warning_reasons(self) -> list[str]:
        value = self.critical_warning or 0
        return [text for bit, text in CRITICAL_WARNING_BITS.items() if value & (1 << bit)]

    @property
    def failed_self_tests(self) -> list[SelfTest]:
        return [test for test in self.self_tests if test.passed is False]


def parse_smartctl_json(text: str, source: str = "smartctl -j") -> DriveHealth:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"not JSON ({exc.msg}); output starts with {text.strip()[:60]!r}") from None
    # Some tools store smartctl's JSON without its "smartctl" section; "device" still says what it is.
    if not isinstance(data, dict) or not ("smartctl" in data or "device" in data):
        raise ParseError(source, "JSON without a 'smartctl' or 'device' section; expected the output of smartctl -x -j")
    status = (data.get("smartctl") or {}).get("exit_status", 0)
    if status & _COULD_NOT_READ:
        messages = "; ".join(m.get("string", "") for m in data["smartctl"].get("messages") or []) or "no message"
        raise ParseError(source, f"smartctl could not read the device (exit status {status}): {messages}")
    protocol = (data.get("device") or {}).get("protocol", "")
    if "nvme_smart_health_information_log" in data:
        protocol, fields = "NVMe", _nvme(data)
    elif protocol == "SCSI" or any(key.startswith("scsi_") for key in data):
        protocol, fields = "SCSI", _scsi(data)
    else:
        protocol, fields = "ATA", _ata(data)
    rotation = data.get("rotation_rate")
    return DriveHealth(
        protocol=protocol, model=_model(data), serial=_text(data.get("serial_number")), firmware=_firmware(data),
        smart_passed=(data.get("smart_status") or {}).get("passed"),
        power_on_hours=(data.get("power_on_time") or {}).get("hours"),
        temperature_c=_temperature(data),
        capacity_bytes=(data.get("user_capacity") or {}).get("bytes") or data.get("nvme_total_capacity"),
        solid_state=True if protocol == "NVMe" else (rotation == 0 if isinstance(rotation, int) else None),
        **fields)


def _temperature(data: dict) -> int | None:
    """smartctl's current temperature; SAS drives that report it only in the environmental-reporting log page
    (WD Ultrastar SAS, smartctl 7.4+) have no `temperature` section, or one that says 0."""
    current = (data.get("temperature") or {}).get("current")
    reports = data.get("scsi_environmental_reports") or {}
    reported = next((r["current"] for k, r in sorted(reports.items())
                     if k.startswith("temperature_") and isinstance(r, dict) and r.get("current")), None)
    return reported if reported is not None and not current else current


def _model(data: dict) -> str | None:
    for key in ("model_name", "scsi_model_name"):
        if _text(data.get(key)):
            return _text(data[key])
    parts = [_text(data.get(f"{prefix}{key}")) for prefix in ("", "scsi_") for key in ("vendor", "product")]
    return " ".join(p for p in parts if p) or None


def _firmware(data: dict) -> str | None:
    return next((_text(data[k]) for k in ("firmware_version", "scsi_revision", "revision") if _text(data.get(k))),
                None)


NVME_MEDIA_STATUS_TYPE = 2  # NVMe status code type "Media and Data Integrity Errors"


def _nvme_error_log(log: object) -> dict[str, Any]:
    """The statuses of the error-log entries smartctl read (it reads 16 of up to 256 by default)."""
    if not isinstance(log, dict) or not isinstance(log.get("table"), list):
        return {}
    statuses = [e.get("status_field") for e in log["table"] if isinstance(e, dict)]
    fields = [f for f in statuses if isinstance(f, dict)]
    words = Counter(str(f.get("string") or f"status {f.get('value')}") for f in fields)
    return {"error_log_statuses": tuple(words.most_common()),
            "error_log_media_entries": sum(f.get("status_code_type") == NVME_MEDIA_STATUS_TYPE for f in fields)}


def _nvme(data: dict) -> dict[str, Any]:
    log = data["nvme_smart_health_information_log"]
    written = log.get("data_units_written")
    tests = data.get("nvme_self_test_log") or {}
    operation = (tests.get("current_self_test_operation") or {}).get("value", 0)
    return {"critical_warning": log.get("critical_warning"), "percentage_used": log.get("percentage_used"),
                "available_spare": log.get("available_spare"),
                "available_spare_threshold": log.get("available_spare_threshold"),
                "media_errors": log.get("media_errors"),
                "error_log_entries": log.get("num_err_log_entries"), "unsafe_shutdowns": log.get("unsafe_shutdowns"),
                "data_written_bytes": written * NVME_DATA_UNIT_BYTES if written is not None else None,
                "warning_temperature_minutes": log.get("warning_temp_time"),
                "critical_temperature_minutes": log.get("critical_comp_time"),
                "self_tests": tuple(_nvme_entry(e) for e in tests.get("table") or []),
                **_nvme_error_log(data.get("nvme_error_information_log")),
                "self_test_running": bool(operation),
                "self_test_remaining_percent": 100 - tests["current_self_test_completion_percent"]
                if operation and "current_self_test_completion_percent" in tests else None}


# NVMe self-test result codes (base spec, Figure "Self-test Result Data Structure"): 5-7 found a fault.
NVME_FAILED_RESULTS = {5, 6, 7}


def _nvme_entry(entry: dict) -> SelfTest:
    result = entry.get("self_test_result") or {}
    value = result.get("value")
    return SelfTest(kind=(entry.get("self_test_code") or {}).get("string", "self-test"),
                    result=result.get("string", f"result {value}"),
                    passed=True if value == 0 else (False if value in NVME_FAILED_RESULTS else None),
                    power_on_hours=entry.get("power_on_hours"), failing_lba=entry.get("lba"))


_WEAR_ATTRIBUTES = ("Media_Wearout_Indicator", "Wear_Leveling_Count", "SSD_Life_Left", "Percent_Lifetime_Remain")
# SanDisk/WD firmware names it Perc_Avail_Resrvd_Space (normalized 100 counting down, threshold 4-5).
_SPARE_ATTRIBUTES = ("Available_Reservd_Space", "Available_Reserved_Space", "Perc_Avail_Resrvd_Space")


def _ata(data: dict) -> dict[str, Any]:
    attributes = {a["name"]: a for a in (data.get("ata_smart_attributes") or {}).get("table", [])}

    def raw(*names: str) -> int | None:
        found = [attributes[n]["raw"]["value"] for n in names if n in attributes]
        return sum(found) if found else None

    wear = next((attributes[n] for n in _WEAR_ATTRIBUTES if n in attributes), None)
    spare = next((attributes[n] for n in _SPARE_ATTRIBUTES if n in attributes), None)
    errors = data.get("ata_smart_error_log") or {}
    logged = (errors.get("extended") or errors.get("summary") or {}).get("count")
    smart_data = data.get("ata_smart_data") or {}
    status = (smart_data.get("self_test") or {}).get("status") or {}
    polling = (smart_data.get("self_test") or {}).get("polling_minutes") or {}
    return {"percentage_used": 100 - wear["value"] if wear else None,
                "available_spare": spare["value"] if spare else None,
                "available_spare_threshold": spare["thresh"] if spare and "thresh" in spare else None,
                "media_errors": raw("Reported_Uncorrect"), "reallocated_sectors": raw("Reallocated_Sector_Ct"),
                "pending_sectors": raw("Current_Pending_Sector"), "offline_uncorrectable": raw("Offline_Uncorrectable"),
                "error_log_entries": logged, "unsafe_shutdowns": raw("Unexpect_Power_Loss_Ct", "Unexpected_Power_Loss"),
                "data_written_bytes": _ata_written(data), "self_tests": _ata_self_tests(data),
                "self_test_running": status.get("value", 0) >> 4 == ATA_IN_PROGRESS,
                "self_test_remaining_percent": status.get("remaining_percent"),
                "short_test_minutes": polling.get("short"), "extended_test_minutes": polling.get("extended")}


def _ata_written(data: dict) -> int | None:
    # Only the device statistics (-x) count in known units; attribute 241's units differ per vendor.
    for page in (data.get("ata_device_statistics") or {}).get("pages", []):
        for entry in page.get("table", []):
            if entry.get("name") == "Logical Sectors Written" and "value" in entry:
                return entry["value"] * data.get("logical_block_size", 512)
    return None


# ATA self-test execution status, high nibble (ACS): 0 done, 1-2 aborted/interrupted, 3-8 failures, 15 running.
ATA_IN_PROGRESS = 15
_ATA_NOT_A_RESULT = {1, 2, ATA_IN_PROGRESS}


def _ata_self_tests(data: dict) -> tuple[SelfTest, ...]:
    """Both logs: -x reads the extended (GP) log, -a the standard one; a drive may fill either or both."""
    log = data.get("ata_smart_self_test_log") or {}
    extended = [_ata_entry(e) for e in (log.get("extended") or {}).get("table", [])]
    standard = [_ata_entry(e) for e in (log.get("standard") or {}).get("table", [])]
    return tuple(extended + [test for test in standard if test not in extended])  # a test may be in both


def _ata_entry(entry: dict) -> SelfTest:
    status = entry.get("status") or {}
    code = status.get("value", 0) >> 4
    return SelfTest(kind=(entry.get("type") or {}).get("string", "self-test"),
                    result=status.get("string", f"status {status.get('value')}"),
                    passed=status.get("passed", None if code in _ATA_NOT_A_RESULT else code == 0),
                    power_on_hours=entry.get("lifetime_hours"), failing_lba=entry.get("lba"))


# SCSI self-test results (SPC, self-test results log page): 3-7 are failures, 1-2 aborted, 15 in progress.
SCSI_FAILED_RESULTS = {3, 4, 5, 6, 7}
SCSI_IN_PROGRESS = 15


def _scsi(data: dict) -> dict[str, Any]:
    counters = data.get("scsi_error_counter_log") or {}
    uncorrected = [c["total_uncorrected_errors"] for c in counters.values()
                   if isinstance(c, dict) and "total_uncorrected_errors" in c]
    entries = sorted(((int(k.rsplit("_", 1)[1]), v) for k, v in data.items()
                      if re.fullmatch(r"scsi_self_test_\d+", k) and isinstance(v, dict)), key=lambda kv: kv[0])
    tests = tuple(_scsi_entry(entry) for _, entry in entries
                  if (entry.get("result") or {}).get("value") != SCSI_IN_PROGRESS)
    running = any((entry.get("result") or {}).get("value") == SCSI_IN_PROGRESS or entry.get("self_test_in_progress")
                  for _, entry in entries)
    # "Percentage used endurance indicator" is keyed with smartctl's scsi_ prefix; accept it without.
    used = data.get("scsi_percentage_used_endurance_indicator", data.get("percentage_used_endurance_indicator"))
    extended = data.get("scsi_extended_self_test_seconds")
    return {"percentage_used": used, "media_errors": sum(uncorrected) if uncorrected else None,
                "data_written_bytes": _scsi_written(counters),
                "grown_defects": data.get("scsi_grown_defect_list"),
                "pending_sectors": (data.get("scsi_pending_defects") or {}).get("count"),
                "self_tests": tests, "self_test_running": running,
                "extended_test_minutes": extended / 60 if extended else None}


def _scsi_written(counters: dict) -> int | None:
    """Bytes written from the error counter log's write row: smartctl prints "gigabytes_processed" as a string of
    10^9 bytes with three decimals ("1467.278")."""
    write = counters.get("write")
    try:
        return round(float(write["gigabytes_processed"]) * 1e9) if isinstance(write, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def _scsi_entry(entry: dict) -> SelfTest:
    value = (entry.get("result") or {}).get("value")
    return SelfTest(kind=(entry.get("code") or {}).get("string", "self-test"),
                    result=(entry.get("result") or {}).get("string", f"result {value}"),
                    passed=True if value == 0 else (False if value in SCSI_FAILED_RESULTS else None),
                    power_on_hours=(entry.get("power_on_time") or {}).get("hours"),
                    failing_lba=(entry.get("lba_first_failure") or {}).get("value"))


def _text(value: object) -> str | None:
    return " ".join(value.split()) or None if isinstance(value, str) else None


# ---------------------------------------------------------------- text output (smartctl -x, any protocol)

_TEXT_LINE = re.compile(r"^\s*([A-Za-z][\w .()/,'-]*?):\s+(.+?)\s*$")
# Thousands separators of the locales smartctl prints with: , . ' ’ space, no-break and narrow no-break space.
_GROUP = "[,.'\u2019 \u00a0\u202f]"
_NUMBER = re.compile(rf"^(0x[0-9a-fA-F]+|[1-9]\d{{0,2}}(?:{_GROUP}\d{{3}})+(?!\d)|\d+)")


def read_number(text: str) -> int | None:
    """The integer a smartctl text field starts with: "1,234,567 [632 GB]", "21’873", "0x04", "41 Celsius"."""
    found = _NUMBER.match(text.strip())
    if not found:
        return None
    return int(found[1], 16) if found[1].startswith("0x") else int(re.sub(_GROUP, "", found[1]))


_SELF_TEST_ROW = re.compile(
    r"^#\s*\d+\s+(?P<kind>(?:Short|Extended|Conveyance|Selective|Background|Foreground|Default)[\w -]*?)\s{2,}"
    r"(?P<result>\S.*?)\s{2,}(?P<rest>.*)$")
_ATA_ATTRIBUTE_ROW = re.compile(r"^\s*(\d{1,3})\s+([A-Za-z][\w/-]+)\s+(\S+)\s+(\d{3})\s+(\d{3})\s+(\S+)\s+(.*)$")


def parse_smartctl_text(text: str, source: str = "smartctl -x") -> DriveHealth:
    """`smartctl -a`/`-x` text of an NVMe, ATA or SCSI drive (or an excerpt of it)."""
    fields = {m[1].strip(): m[2] for line in text.splitlines() if (m := _TEXT_LINE.match(line))}
    if "Critical Warning" in fields or "Percentage Used" in fields:
        return _nvme_text(fields)
    if "Transport protocol" in fields or "Elements in grown defect list" in fields or "SMART Health Status" in fields:
        return _scsi_text(text, fields)
    if "Device Model" in fields or "ATTRIBUTE_NAME" in text:
        return _ata_text(text, fields)
    raise ParseError(source, f"no NVMe 'SMART/Health Information' block, no SCSI health section and no ATA "
                             f"attribute table (starts with {text.strip()[:60]!r}); expected smartctl -x text output")


def _number(fields: dict[str, str], key: str) -> int | None:
    return read_number(fields[key]) if key in fields else None


def _nvme_text(fields: dict[str, str]) -> DriveHealth:
    written = _number(fields, "Data Units Written")
    result = fields.get("SMART overall-health self-assessment test result")
    return DriveHealth(
        protocol="NVMe", model=fields.get("Model Number"), serial=fields.get("Serial Number"),
        firmware=fields.get("Firmware Version"), smart_passed=result == "PASSED" if result else None,
        critical_warning=_number(fields, "Critical Warning"), percentage_used=_number(fields, "Percentage Used"),
        available_spare=_number(fields, "Available Spare"),
        available_spare_threshold=_number(fields, "Available Spare Threshold"),
        media_errors=_number(fields, "Media and Data Integrity Errors"),
        error_log_entries=_number(fields, "Error Information Log Entries"),
        unsafe_shutdowns=_number(fields, "Unsafe Shutdowns"), power_on_hours=_number(fields, "Power On Hours"),
        data_written_bytes=written * NVME_DATA_UNIT_BYTES if written is not None else None,
        temperature_c=_number(fields, "Temperature"),
        warning_temperature_minutes=_number(fields, "Warning  Comp. Temperature Time"),
        critical_temperature_minutes=_number(fields, "Critical Comp. Temperature Time"),
        capacity_bytes=_number(fields, "Total NVM Capacity"), solid_state=True)


def _scsi_text(text: str, fields: dict[str, str]) -> DriveHealth:
    status = fields.get("SMART Health Status")
    # Seagate/Hitachi SAS drives report power-on time only in their factory log page ("= 1668.58").
    hours = re.search(r"Accumulated power on time, hours:minutes\s+(\d+):|number of hours powered up = (\d+)", text)
    uncorrected = [int(m[1]) for m in re.finditer(r"^(?:read|write|verify):.*\s(\d+)\s*$", text, re.MULTILINE)]
    used = re.search(r"Percentage used endurance indicator:\s*(\d+)%", text)
    vendor, product = fields.get("Vendor"), fields.get("Product")
    rotation = fields.get("Rotation Rate", "")
    return DriveHealth(
        protocol="SCSI", model=" ".join(p for p in (vendor, product) if p) or None,
        serial=fields.get("Serial number"), firmware=fields.get("Revision"),
        smart_passed=status == "OK" if status else None,
        percentage_used=int(used[1]) if used else None,
        media_errors=sum(uncorrected) if uncorrected else None,
        grown_defects=_number(fields, "Elements in grown defect list"),
        power_on_hours=int(hours[1] or hours[2]) if hours else None,
        temperature_c=_number(fields, "Current Drive Temperature"),
        capacity_bytes=_number(fields, "User Capacity"),
        solid_state="Solid State" in rotation if rotation else None,
        self_tests=_text_self_tests(text))


def _ata_text(text: str, fields: dict[str, str]) -> DriveHealth:
    attributes: dict[str, tuple[int, int | None, int | None]] = {}  # name -> (normalized, threshold, raw)
    raw_column = None
    for line in text.splitlines():
        if "ATTRIBUTE_NAME" in line:
            # brief (-x) header: ID# NAME FLAGS VALUE WORST THRESH FAIL RAW_VALUE;
            # old (-a): ID# NAME FLAG VALUE WORST THRESH TYPE UPDATED WHEN_FAILED RAW_VALUE
            raw_column = line.split().index("RAW_VALUE")
        elif raw_column and (row := _ATA_ATTRIBUTE_ROW.match(line)):
            columns = line.split()
            # Raw values carry no locale separators, only composites ("36 (Min/Max 13/42)", "9798 1066 9798",
            # "16402h+23m+45.123s"): the leading integer is the figure.
            leading = re.match(r"\d+", columns[raw_column]) if len(columns) > raw_column else None
            attributes[row[2]] = (int(row[4]), int(row[6]) if row[6].isdigit() else None,  # "---": no threshold
                                  int(leading[0]) if leading else None)

    def raw(*names: str) -> int | None:
        return next((attributes[n][2] for n in names if n in attributes), None)

    wear = next((attributes[n][0] for n in _WEAR_ATTRIBUTES if n in attributes), None)
    spare = next((attributes[n] for n in _SPARE_ATTRIBUTES if n in attributes), None)
    result = fields.get("SMART overall-health self-assessment test result")
    polling = {kind: re.search(rf"{kind} self-test routine\s*recommended polling time:\s*\(\s*(\d+)\)", text)
               for kind in ("Short", "Extended")}
    rotation = fields.get("Rotation Rate", "")
    return DriveHealth(
        protocol="ATA", model=fields.get("Device Model"), serial=fields.get("Serial Number"),
        firmware=fields.get("Firmware Version"), smart_passed=result == "PASSED" if result else None,
        percentage_used=100 - wear if wear is not None else None,
        available_spare=spare[0] if spare else None, available_spare_threshold=spare[1] if spare else None,
        media_errors=raw("Reported_Uncorrect"), reallocated_sectors=raw("Reallocated_Sector_Ct"),
        pending_sectors=raw("Current_Pending_Sector"), offline_uncorrectable=raw("Offline_Uncorrectable"),
        error_log_entries=_ata_text_error_count(text),
        unsafe_shutdowns=raw("Unexpect_Power_Loss_Ct", "Unexpected_Power_Loss"),
        power_on_hours=raw("Power_On_Hours", "Power_On_Hours_and_Msec"),
        temperature_c=_number(fields, "Current Temperature") if "Current Temperature" in fields
        else raw("Temperature_Celsius", "Airflow_Temperature_Cel"),
        capacity_bytes=_number(fields, "User Capacity"),
        solid_state="Solid State" in rotation if rotation else None, self_tests=_text_self_tests(text),
        short_test_minutes=float(polling["Short"][1]) if polling["Short"] else None,
        extended_test_minutes=float(polling["Extended"][1]) if polling["Extended"] else None)


def _ata_text_error_count(text: str) -> int | None:
    """The ATA error log's count: "ATA Error Count: 84 (...)" (-a), "Device Error Count: 84" (-x), or 0 when the
    log section says "No Errors Logged"; None when the output has no error-log section (`-A`, `--format brief`)."""
    counted = re.search(r"^(?:ATA|Device) Error Count:\s*(\d+)", text, re.MULTILINE)
    if counted:
        return int(counted[1])
    return 0 if re.search(r"Error Log Version:.*\n\s*No Errors Logged", text) else None


def _text_self_tests(text: str) -> tuple[SelfTest, ...]:
    """Rows of the text self-test log: `# 1  Short offline  Completed: read failure  90%  16402  494591083`."""
    tests = []
    for line in text.splitlines():
        row = _SELF_TEST_ROW.match(line.strip())
        if not row:
            continue
        result = row["result"].strip()
        numbers = [read_number(part) for part in row["rest"].split() if re.fullmatch(r"\d+", part)]
        lowered = result.lower()
        passed = None if "abort" in lowered or "interrupt" in lowered or "progress" in lowered else (
            "fail" not in lowered and "error" not in lowered.replace("without error", ""))
        tests.append(SelfTest(kind=row["kind"].strip(), result=result, passed=passed,
                              power_on_hours=numbers[-2] if len(numbers) >= 2 else (numbers[0] if numbers else None),
                              failing_lba=numbers[-1] if len(numbers) >= 2 else None))
    return tuple(tests)
