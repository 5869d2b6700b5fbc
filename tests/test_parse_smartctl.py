"""smartctl: every corpus file (NVMe pretty/compact JSON, smartctl 7.0-7.5, SATA attributes, worn-drive text)."""

from __future__ import annotations

import json

import pytest
from corpus import corpus_path

from qualify.errors import ParseError
from qualify.parsers.smartctl import NVME_DATA_UNIT_BYTES, parse_smartctl_json, parse_smartctl_text

# name -> the fields a check decides on
EXPECTED = {
    "nvme-goodram-irdm-pro-2tb-smartctl75-json-compact-16pct-used-64C.json": dict(
        protocol="NVMe", model="IRP-SSDPR-P44S-2K0-80", serial="G3B024483", firmware="EIFM80.0", critical_warning=0,
        percentage_used=16, available_spare=100, available_spare_threshold=5, media_errors=0, error_log_entries=1033,
        unsafe_shutdowns=41, power_on_hours=5174, data_written_bytes=170291482 * NVME_DATA_UNIT_BYTES,
        temperature_c=64, self_test_result="Completed without error", self_test_passed=True),
    "nvme-sabrent-rocket4-smartctl74-a-json.json": dict(
        protocol="NVMe", serial="6D1107091C9583054511", percentage_used=4, error_log_entries=4871, media_errors=0,
        unsafe_shutdowns=39, power_on_hours=8733, temperature_c=48, self_test_result=None),
    "nvme-samsung970evo-media-errors-smartctl70-x-j.json": dict(
        protocol="NVMe", model="Samsung SSD 970 EVO 500GB", media_errors=7, error_log_entries=62, available_spare=99,
        available_spare_threshold=10, power_on_hours=12798, data_written_bytes=65602088 * NVME_DATA_UNIT_BYTES,
        warning_temperature_minutes=0, critical_temperature_minutes=0),
    "sata-ssd-wd-red-sa500-4tb-smartctl73-all-json.json": dict(
        protocol="ATA", model="WDC WDS400T1R0A-68A4W0", critical_warning=None, percentage_used=0,
        available_spare=100, available_spare_threshold=4, media_errors=0, reallocated_sectors=0,
        error_log_entries=0, power_on_hours=8244, temperature_c=27, data_written_bytes=None, smart_passed=True),
    "nvme-samsung-pm9a1-worn-100pct-critical-warning-0x04-TEXT-excerpt.txt": dict(
        protocol="NVMe", critical_warning=0x04, percentage_used=100, available_spare=100,
        available_spare_threshold=10, temperature_c=28, media_errors=None),
}
FILES = sorted(path.name for path in corpus_path("smartctl").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    text = corpus_path("smartctl", name).read_text()
    health = parse_smartctl_text(text) if name.endswith(".txt") else parse_smartctl_json(text)
    assert {key: getattr(health, key) for key in EXPECTED[name]} == EXPECTED[name]


def test_worn_drive_names_the_warning_bit():
    text = corpus_path("smartctl", "nvme-samsung-pm9a1-worn-100pct-critical-warning-0x04-TEXT-excerpt.txt").read_text()
    assert parse_smartctl_text(text).warning_reasons() == ["NVM subsystem reliability degraded (media errors or wear)"]


FULL_TEXT = """smartctl 7.3 2022-02-28 r5338 [x86_64-linux-6.8.12-4-pve] (local build)
=== START OF INFORMATION SECTION ===
Model Number:                       SAMSUNG MZQL23T8HCLS-00A07
Serial Number:                      S64HNE0T123456
Firmware Version:                   GDC5602Q
SMART overall-health self-assessment test result: PASSED

SMART/Health Information (NVMe Log 0x02)
Critical Warning:                   0x00
Temperature:                        41 Celsius
Available Spare:                    100%
Available Spare Threshold:          10%
Percentage Used:                    2%
Data Units Written:                 1,234,567 [632 GB]
Power On Hours:                     21,873
Unsafe Shutdowns:                   17
Media and Data Integrity Errors:    0
Error Information Log Entries:      0
Warning  Comp. Temperature Time:    0
Critical Comp. Temperature Time:    0
"""


def test_full_text_output_with_thousands_separators():
    health = parse_smartctl_text(FULL_TEXT)
    assert (health.model, health.serial, health.power_on_hours, health.smart_passed) == \
        ("SAMSUNG MZQL23T8HCLS-00A07", "S64HNE0T123456", 21873, True)
    assert health.data_written_bytes == 1234567 * NVME_DATA_UNIT_BYTES and health.media_errors == 0


def test_device_smartctl_could_not_open_names_its_message():
    text = json.dumps({"smartctl": {"exit_status": 2, "messages": [
        {"string": "Smartctl open device: /dev/nvme9 failed: No such device", "severity": "error"}]}})
    with pytest.raises(ParseError, match="could not read the device.*No such device"):
        parse_smartctl_json(text)


@pytest.mark.parametrize("text", ["smartctl: command not found", '{"json_format_version": [1, 0]}', ""])
def test_garbage_names_smartctl(text):
    with pytest.raises(ParseError, match="smartctl"):
        parse_smartctl_json(text)


def test_text_without_health_block():
    with pytest.raises(ParseError, match="SMART/Health Information"):
        parse_smartctl_text("=== START OF INFORMATION SECTION ===\nModel Family: WD Red\n")
