"""smartctl: every corpus file (NVMe pretty/compact JSON, smartctl 6.7-7.5, SATA attributes and both self-test
logs, SAS/SCSI in every key shape, text output of NVMe, SAS and ATA drives), numbers with locale separators."""

from __future__ import annotations

import json

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.parsers.smartctl import (
    NVME_DATA_UNIT_BYTES,
    SelfTest,
    parse_smartctl_json,
    parse_smartctl_text,
    read_number,
)

# name -> the fields a check decides on
EXPECTED = {
    "nvme-goodram-irdm-pro-2tb-smartctl75-json-compact-16pct-used-64C.json": dict(
        protocol="NVMe", model="IRP-SSDPR-P44S-2K0-80", serial="G3B024483", firmware="EIFM80.0", critical_warning=0,
        percentage_used=16, available_spare=100, available_spare_threshold=5, media_errors=0, error_log_entries=1033,
        unsafe_shutdowns=41, power_on_hours=5174, data_written_bytes=170291482 * NVME_DATA_UNIT_BYTES,
        temperature_c=64, self_tests=(SelfTest("Extended", "Completed without error", True, 5171),),
        error_log_statuses=(("Invalid Field in Command", 1),), error_log_media_entries=0),
    "nvme-sabrent-rocket4-smartctl74-a-json.json": dict(
        protocol="NVMe", serial="6D1107091C9583054511", percentage_used=4, error_log_entries=4871, media_errors=0,
        unsafe_shutdowns=39, power_on_hours=8733, temperature_c=48, self_tests=(),
        # 4871 entries counted, one in the log smartctl read: an unsupported admin command, not the medium
        error_log_statuses=(("Invalid Field in Command", 1),), error_log_media_entries=0),
    "nvme-samsung970evo-media-errors-smartctl70-x-j.json": dict(
        protocol="NVMe", model="Samsung SSD 970 EVO 500GB", media_errors=7, error_log_entries=62, available_spare=99,
        available_spare_threshold=10, power_on_hours=12798, data_written_bytes=65602088 * NVME_DATA_UNIT_BYTES,
        warning_temperature_minutes=0, critical_temperature_minutes=0,
        error_log_statuses=None, error_log_media_entries=None),  # -x of 7.0 printed no error log: unknown
    "sata-ssd-wd-red-sa500-4tb-smartctl73-all-json.json": dict(
        protocol="ATA", model="WDC WDS400T1R0A-68A4W0", critical_warning=None, percentage_used=0,
        available_spare=100, available_spare_threshold=4, media_errors=0, reallocated_sectors=0,
        error_log_entries=0, power_on_hours=8244, temperature_c=27, data_written_bytes=None, smart_passed=True,
        solid_state=True),
    "sata-hdd-wd3200bevt-failing-reallocated-pending-selftests-failed-smartctl73-json-excerpt.json": dict(
        protocol="ATA", model="WDC WD3200BEVT-60ZCT0", firmware="12.01A12", smart_passed=False,
        reallocated_sectors=535, pending_sectors=1, offline_uncorrectable=0, media_errors=84, power_on_hours=16402,
        error_log_entries=84, solid_state=False, short_test_minutes=2, extended_test_minutes=127,
        self_tests=(SelfTest("Short offline", "Completed: read failure", False, 16402, 494591083),
                    SelfTest("Extended offline", "Completed: read failure", False, 16400, 494591083),
                    SelfTest("Short offline", "Completed: read failure", False, 16400, 494591083))),
    "sata-hdd-samsung-hd204ui-extended-selftest-log-smartctl72-x-json-excerpt.json": dict(
        protocol="ATA", smart_passed=True, reallocated_sectors=0, pending_sectors=0, offline_uncorrectable=0,
        media_errors=None, power_on_hours=3830, extended_test_minutes=338,
        self_tests=(SelfTest("Extended offline", "Completed without error", True, 3624),
                    SelfTest("Short offline", "Completed without error", True, 33),
                    SelfTest("Short offline", "Completed without error", True, 1))),
    "sas-hdd-seagate-st4000nm0043-grown-defects-56-json.json": dict(
        protocol="SCSI", model="SEAGATE ST4000NM0043", firmware="MS03", serial="Z1Z5DWJK0000XXXXXXXX",
        grown_defects=56, media_errors=0, power_on_hours=43549, temperature_c=34, smart_passed=True,
        solid_state=False, percentage_used=None, self_tests=()),
    "sas-hdd-hitachi-h109060sesun600g-smartctl73-json.json": dict(
        protocol="SCSI", model="HITACHI H109060SESUN600G", firmware="A31A", grown_defects=0, media_errors=0,
        power_on_hours=22364, temperature_c=26, capacity_bytes=600127266816),
    "sas-hdd-toshiba-mg08sca16tey-megaraid-smartctl71-json.json": dict(
        protocol="SCSI", model="TOSHIBA MG08SCA16TEY", firmware="EJ08", grown_defects=0, media_errors=0,
        power_on_hours=None, temperature_c=31,
        data_written_bytes=73_889_776_000_000),  # error counter log, write: "gigabytes_processed": "73889.776"
    "sas-hdd-seagate-st1200mm0088-smartctl67-json-format-0-1.json": dict(
        protocol="SCSI", model="SEAGATE ST1200MM0088", firmware="N004", grown_defects=0, media_errors=0,
        power_on_hours=5675),
    "sas-ssd-samsung-mzilt960-smartctl73-selftest-json.json": dict(
        protocol="SCSI", model="SAMSUNG MZILT960HBHQ/007", firmware="GXA0", serial="S5G1NC0W102239",
        percentage_used=0, grown_defects=0, pending_sectors=0, media_errors=0, power_on_hours=3862,
        solid_state=True, extended_test_minutes=60.0,
        self_tests=(SelfTest("Background short", "Completed", True, 5),)),
    "sas-hdd-wuh721414-smartctl65-x-TEXT-excerpt.txt": dict(
        protocol="SCSI", model="Vendor WUH721414AL4204", serial="9JJBD71T", firmware="C110", smart_passed=True,
        grown_defects=0, media_errors=0, power_on_hours=1233, temperature_c=32, capacity_bytes=14000519643136,
        self_tests=()),
    "sas-hdd-seagate-st4000nm0043-grown-defects-7-smartctl66-TEXT-excerpt.txt": dict(
        protocol="SCSI", model="SEAGATE ST4000NM0043", grown_defects=7, smart_passed=True, temperature_c=27,
        media_errors=None),
    "nvme-samsung-pm9a1-worn-100pct-critical-warning-0x04-TEXT-excerpt.txt": dict(
        protocol="NVMe", critical_warning=0x04, percentage_used=100, available_spare=100,
        available_spare_threshold=10, temperature_c=28, media_errors=None),
    # --- field-truth audit (issue 10): real outputs of other projects' fixtures, issues and forums
    "usb-sat-sandisk-pssd-smartctl74-a-d-sat-json.json": dict(  # was: spare None (Perc_Avail_Resrvd_Space unread)
        protocol="ATA", model="SanDisk pSSD", firmware="3", solid_state=True, available_spare=100,
        available_spare_threshold=5, percentage_used=None, reallocated_sectors=0, media_errors=0,
        unsafe_shutdowns=114, power_on_hours=11, temperature_c=None, error_log_entries=0, self_tests=()),
    "sata-hdd-seagate-st3200820as-ata7-no-rotation-rate-100216h-smartctl73-json.json": dict(
        protocol="ATA", model="ST3200820AS", solid_state=None, power_on_hours=100216, reallocated_sectors=0,
        pending_sectors=0, offline_uncorrectable=0, temperature_c=35, error_log_entries=0),
    "nvme-intel-optane-mempek1w032ga-nvme-lt-1.2-spare-thresh-0-smartctl73-json.json": dict(
        protocol="NVMe", model="INTEL MEMPEK1W032GA", percentage_used=1, available_spare=100,
        available_spare_threshold=0, unsafe_shutdowns=173, power_on_hours=41159, temperature_c=31,
        warning_temperature_minutes=None, critical_temperature_minutes=None, capacity_bytes=29260513280,
        data_written_bytes=4744607 * NVME_DATA_UNIT_BYTES),
    "spi-hdd-hp-mas3735nc-parallel-scsi-smartctl74-no-power-on-time-json.json": dict(
        protocol="SCSI", model="HP 73.4G MAS3735NC", firmware="HPC3", grown_defects=0, media_errors=0,
        power_on_hours=None, temperature_c=28, solid_state=False),
    "sas-hdd-seagate-smartctl74-4-background-selftests-reserved-code-json.json": dict(
        protocol="SCSI", model="SEAGATE ST0000000", firmware="RSL5", grown_defects=0, media_errors=0,
        power_on_hours=34222, temperature_c=24, extended_test_minutes=1340.0,
        self_tests=(SelfTest("Background long", "Completed", True, 90),
                    SelfTest("Background long", "Completed", True, 66),
                    SelfTest("Reserved(7)", "Completed", True, 5), SelfTest("Background short", "Completed", True, 2))),
    "sas-hdd-hgst-4tb-smartctl73-corrected-errors-json.json": dict(  # 647,736 corrected read errors: not uncorrected
        protocol="SCSI", media_errors=0, grown_defects=0, power_on_hours=1641, temperature_c=34),
    "sas-hdd-seagate-smartctl66-A-factory-hours-powered-up-TEXT-excerpt.txt": dict(  # was: power-on hours None
        protocol="SCSI", grown_defects=0, power_on_hours=1668, temperature_c=34, smart_passed=None),
    "sata-ssd-sandisk-sd8sn8u256g-smartctl70-a-old-columns-selftest-TEXT-excerpt.txt": dict(
        # was: spare, error-log count and unsafe shutdowns None in text
        protocol="ATA", model="SanDisk SD8SN8U256G1122", solid_state=True, available_spare=100,
        available_spare_threshold=4, error_log_entries=0, unsafe_shutdowns=43, power_on_hours=5424, temperature_c=36,
        reallocated_sectors=0, capacity_bytes=256060514304, extended_test_minutes=10.0,
        self_tests=(SelfTest("Extended offline", "Completed without error", True, 5418),)),
    "sata-ssd-sandisk-ultra2-smartctl-brief-format-dashes-thresh-TEXT-excerpt.txt": dict(
        protocol="ATA", model="SanDisk Ultra II 240GB", available_spare=100, available_spare_threshold=4,
        error_log_entries=None, power_on_hours=14491, temperature_c=36, capacity_bytes=240057409536),
    "sata-hdd-seagate-st3000vx000-smartctl-brief-format-TEXT-excerpt.txt": dict(
        protocol="ATA", model="ST3000VX000-1ES166", solid_state=False, reallocated_sectors=0, pending_sectors=0,
        offline_uncorrectable=0, power_on_hours=19717, temperature_c=36, capacity_bytes=3000592982016),
    # smartctl 6.6 -A with a locale grouping digits by spaces ("907 832 [464 GB]"): the whole number is read
    "nvme-smartctl66-A-space-thousands-separators-debian-TEXT-excerpt.txt": dict(
        protocol="NVMe", critical_warning=0, temperature_c=28, available_spare=100, available_spare_threshold=10,
        percentage_used=0, media_errors=0, error_log_entries=0, unsafe_shutdowns=3, power_on_hours=403,
        data_written_bytes=907832 * NVME_DATA_UNIT_BYTES, error_log_statuses=None),
    "nvme-smart-block-swiss-apostrophe-separators-TEXT-excerpt.txt": dict(  # real de_CH "’" grouping
        protocol="NVMe", power_on_hours=9025, data_written_bytes=28604965 * NVME_DATA_UNIT_BYTES, percentage_used=3,
        temperature_c=43, smart_passed=None),
    "nvme-smart-section-3-temp-sensors-4804-error-log-entries-TEXT-excerpt.txt": dict(
        protocol="NVMe", smart_passed=True, error_log_entries=4804, unsafe_shutdowns=3682, power_on_hours=6726,
        temperature_c=30, data_written_bytes=64768925 * NVME_DATA_UNIT_BYTES),
}
# outputs of a device smartctl could not read: the ParseError names smartctl's own message
ERRORS = {"smartctl75-nonexistent-device-unable-to-detect-type-exit1.json":
          "exit status 1.*Unable to detect device type"}
# fragments a test below completes
FRAGMENTS = {"sas-hdd-wd-hc550-scsi-environmental-reports-temperature-fragment.json-excerpt"}
FILES = sorted(path.name for path in corpus_path("smartctl").iterdir() if path.name not in FRAGMENTS)


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED) | set(ERRORS)
    assert FRAGMENTS <= {path.name for path in corpus_path("smartctl").iterdir()}


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    text = corpus_path("smartctl", name).read_text()
    parse = parse_smartctl_text if name.endswith(".txt") else parse_smartctl_json
    if name in ERRORS:
        with pytest.raises(ParseError, match=ERRORS[name]):
            parse(text)
        return
    health = parse(text)
    assert {key: getattr(health, key) for key in EXPECTED[name]} == EXPECTED[name]


def test_sas_temperature_only_in_the_environmental_reports():
    # fragment real (scrutiny issue #788, WD Ultrastar DC HC550 SAS, smartctl --xall --json); the surrounding keys
    # are synthetic: such drives have no `temperature` section, or one with current 0
    fragment = corpus_path("smartctl", "sas-hdd-wd-hc550-scsi-environmental-reports-temperature-fragment.json-excerpt")
    base = '{"device": {"protocol": "SCSI"}, "scsi_grown_defect_list": 0, %s%s}'
    assert parse_smartctl_json(base % ("", fragment.read_text())).temperature_c == 38
    assert parse_smartctl_json(base % ('"temperature": {"current": 0, "drive_trip": 0},',
                                       fragment.read_text())).temperature_c == 38


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


@pytest.mark.parametrize("text, number", [
    ("1,234,567 [632 GB]", 1234567), ("21’873", 21873), ("21'873", 21873), ("21 873", 21873),
    ("21 873", 21873), ("21 873", 21873), ("1.234.567", 1234567), ("41 Celsius", 41), ("0x04", 4),
    ("7", 7), ("100%", 100), ("0.077", 0), ("unknown", None),
])
def test_numbers_with_locale_thousands_separators(text, number):
    assert read_number(text) == number


def test_nvme_text_in_a_swiss_and_a_french_locale():
    # synthetic: FULL_TEXT above with the separators smartctl prints under de_CH ("’") and fr_FR (narrow nbsp)
    for separator in ("’", " "):
        health = parse_smartctl_text(FULL_TEXT.replace("1,234,567", f"1{separator}234{separator}567")
                                     .replace("21,873", f"21{separator}873"))
        assert (health.power_on_hours, health.data_written_bytes) == (21873, 1234567 * NVME_DATA_UNIT_BYTES)


ATA_TEXT = """=== START OF INFORMATION SECTION ===
Device Model:     WDC WD3200BEVT-60ZCT0
Serial Number:    WD-WXE708D44602
Firmware Version: 12.01A12
User Capacity:    320.072.933.376 bytes [320 GB]
Rotation Rate:    5400 rpm
SMART overall-health self-assessment test result: FAILED!
Short self-test routine
recommended polling time:        (   2) minutes.
Extended self-test routine
recommended polling time:        ( 127) minutes.
ID# ATTRIBUTE_NAME          FLAGS    VALUE WORST THRESH FAIL RAW_VALUE
  5 Reallocated_Sector_Ct   PO--CK   133   133   140    NOW  535
  9 Power_On_Hours          -O--CK   078   078   000    -    16402
197 Current_Pending_Sector  -O--CK   200   200   000    -    1
198 Offline_Uncorrectable   ----CK   100   253   000    -    0
SMART Error Log Version: 1
ATA Error Count: 84 (device log contains only the most recent five errors)
SMART Extended Self-test Log Version: 1 (1 sectors)
Num  Test_Description    Status                  Remaining  LifeTime(hours)  LBA_of_first_error
# 1  Short offline       Completed: read failure       90%     16402         494591083
# 2  Extended offline    Completed: read failure       90%     16400         494591083
# 3  Short offline       Completed without error       00%     16000         -
"""


def test_ata_text_attributes_and_every_self_test():
    # synthetic: smartctl -x text layout (as in the OCP autoval fixture) filled with the failing WD3200's figures,
    # its capacity with "." separators as smartctl prints under de_DE
    health = parse_smartctl_text(ATA_TEXT)
    assert (health.protocol, health.smart_passed, health.reallocated_sectors, health.pending_sectors,
            health.offline_uncorrectable, health.power_on_hours, health.capacity_bytes, health.solid_state) == \
        ("ATA", False, 535, 1, 0, 16402, 320072933376, False)
    assert (health.short_test_minutes, health.extended_test_minutes) == (2, 127)
    assert health.error_log_entries == 84
    assert [(t.kind, t.passed, t.power_on_hours, t.failing_lba) for t in health.self_tests] == [
        ("Short offline", False, 16402, 494591083), ("Extended offline", False, 16400, 494591083),
        ("Short offline", True, 16000, None)]


def test_sas_text_self_test_log_rows():
    # rows as quoted in dak180/FreeNAS-Report issue #9 (smartctl 7.2 -l selftest of a SAS drive), second row synthetic
    text = ("SMART Health Status: OK\nElements in grown defect list: 0\n"
            "# 1  Background short  Completed                   -    7195                 - [-   -    -]\n"
            "# 2  Background long   Failed in segment -->       4    7027          12345678 [0x3 0x11 0x0]\n")
    tests = parse_smartctl_text(text).self_tests
    assert [(t.kind, t.result, t.passed, t.power_on_hours) for t in tests] == [
        ("Background short", "Completed", True, 7195), ("Background long", "Failed in segment -->", False, 7027)]
    assert tests[1].failing_lba == 12345678
