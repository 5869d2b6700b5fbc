"""Second-hand SSD acceptance: the judge on every corpus drive (NVMe, SATA, SAS), what cannot be read is unknown,
known firmware cliffs, PCIe links from the lspci corpus, and the lab's drives through the stand-in smartctl."""

from __future__ import annotations

import dataclasses
import os

import pytest

from corpus import corpus_path
from qualify.checks.ssd_health import (
    DriveEvidence,
    check_ssd_health,
    judge,
    judge_health,
    judge_pcie_link,
)
from qualify.findings import Findings
from qualify.lab.drive import WORN_NODE, bin_dir, prepare_lab_drive, set_drive_case
from qualify.parsers.lspci import parse_lspci_vv
from qualify.parsers.smartctl import (
    DriveHealth,
    parse_smartctl_json,
    parse_smartctl_text,
)
from qualify.profile import KnownDriveIssue, SsdHealthSettings, StorageDrive
from qualify.storage.figures import DriveJudgement
from qualify.storage.known_issues import KnownIssues, builtin_issues
from storage_loop import loop_devices, run_drive_check

ANY_DRIVE = StorageDrive(wwn="5002538e00000000")
# corpus file -> the buyer's line
CORPUS_VERDICTS = {
    'nvme-intel-optane-mempek1w032ga-nvme-lt-1.2-spare-thresh-0-smartctl73-json.json': 'accept',
    'nvme-smart-block-swiss-apostrophe-separators-TEXT-excerpt.txt':
        "unknown: the drive's own SMART assessment passed could not be checked",
    'nvme-smartctl66-A-space-thousands-separators-debian-TEXT-excerpt.txt':
        "unknown: the drive's own SMART assessment passed could not be checked",
    'nvme-smart-section-3-temp-sensors-4804-error-log-entries-TEXT-excerpt.txt': 'accept',
    'sas-hdd-hgst-4tb-smartctl73-corrected-errors-json.json': 'accept',
    'sas-hdd-seagate-smartctl66-A-factory-hours-powered-up-TEXT-excerpt.txt':
        "unknown: the drive's own SMART assessment passed, uncorrected read/write/verify errors could not be checked",
    'sas-hdd-seagate-smartctl74-4-background-selftests-reserved-code-json.json': 'accept',
    'sata-hdd-seagate-st3200820as-ata7-no-rotation-rate-100216h-smartctl73-json.json': 'accept',
    'sata-ssd-sandisk-sd8sn8u256g-smartctl70-a-old-columns-selftest-TEXT-excerpt.txt':
        'unknown: percentage used could not be checked',
    'sata-ssd-sandisk-ultra2-smartctl-brief-format-dashes-thresh-TEXT-excerpt.txt':
        'unknown: percentage used could not be checked',
    'usb-sat-sandisk-pssd-smartctl74-a-d-sat-json.json': 'unknown: percentage used, temperature could not be checked',
    "spi-hdd-hp-mas3735nc-parallel-scsi-smartctl74-no-power-on-time-json.json": "accept",
    "sata-hdd-seagate-st3000vx000-smartctl-brief-format-TEXT-excerpt.txt": "accept",
    "nvme-goodram-irdm-pro-2tb-smartctl75-json-compact-16pct-used-64C.json": "accept",
    "nvme-sabrent-rocket4-smartctl74-a-json.json": "accept",
    "nvme-samsung970evo-media-errors-smartctl70-x-j.json":
        "reject: media and data-integrity errors 7 (limit ≤ 0)",
    "sata-ssd-wd-red-sa500-4tb-smartctl73-all-json.json": "accept",
    "nvme-samsung-pm9a1-worn-100pct-critical-warning-0x04-TEXT-excerpt.txt": "reject: critical warning 4 (limit ≤ 0)",
    "sata-hdd-wd3200bevt-failing-reallocated-pending-selftests-failed-smartctl73-json-excerpt.json":
        "reject: the drive's own SMART assessment passed no (minimum 1)",
    "sata-hdd-samsung-hd204ui-extended-selftest-log-smartctl72-x-json-excerpt.json": "accept",
    "sas-hdd-seagate-st4000nm0043-grown-defects-56-json.json": "reject: grown defect list 56 (limit ≤ 0)",
    "sas-hdd-seagate-st4000nm0043-grown-defects-7-smartctl66-TEXT-excerpt.txt":
        "reject: grown defect list 7 (limit ≤ 0)",
    "sas-hdd-hitachi-h109060sesun600g-smartctl73-json.json": "accept",
    "sas-hdd-seagate-st1200mm0088-smartctl67-json-format-0-1.json": "accept",
    "sas-hdd-toshiba-mg08sca16tey-megaraid-smartctl71-json.json": "accept",
    "sas-hdd-wuh721414-smartctl65-x-TEXT-excerpt.txt": "accept",
    "sas-ssd-samsung-mzilt960-smartctl73-selftest-json.json": "accept",
}


def corpus_health(name: str) -> DriveHealth:
    text = corpus_path("smartctl", name).read_text()
    return parse_smartctl_text(text) if name.endswith(".txt") else parse_smartctl_json(text)


def judged(health: DriveHealth, drive: StorageDrive = ANY_DRIVE, settings: SsdHealthSettings | None = None,
           issues: tuple = ()) -> DriveJudgement:
    out = DriveJudgement("drive")
    judge_health(health, drive, settings or SsdHealthSettings(), out, issues)
    return out


def outcomes(out: DriveJudgement) -> dict[str, str]:
    return {f.name: f.outcome for f in out.figures}


# Not a drive's SMART: smartctl's own error, and a fragment the parser tests wrap (tests/test_parse_smartctl.py)
NOT_A_DRIVE = {"smartctl75-nonexistent-device-unable-to-detect-type-exit1.json",
               "sas-hdd-wd-hc550-scsi-environmental-reports-temperature-fragment.json-excerpt"}


def test_every_smartctl_corpus_file_has_a_verdict():
    assert {p.name for p in corpus_path("smartctl").iterdir()} - NOT_A_DRIVE == set(CORPUS_VERDICTS)


@pytest.mark.parametrize("name", sorted(CORPUS_VERDICTS))
def test_corpus_drive_verdicts(name):
    assert judged(corpus_health(name)).line == CORPUS_VERDICTS[name]


def test_failing_sata_drive_names_every_fault():
    out = judged(corpus_health(
        "sata-hdd-wd3200bevt-failing-reallocated-pending-selftests-failed-smartctl73-json-excerpt.json"))
    assert {k: v for k, v in outcomes(out).items() if v == "failed"} == {
        "smart_assessment_passed": "failed", "media_errors_total": "failed", "reallocated_sectors_total": "failed",
        "pending_sectors_total": "failed", "failed_self_tests_total": "failed"}
    assert outcomes(out)["offline_uncorrectable_total"] == "passed"
    tests = next(f for f in out.figures if f.name == "failed_self_tests_total")
    assert tests.value == 3 and "Extended offline at 16,400 h: Completed: read failure" in tests.detail


def test_sas_drive_with_grown_defects_and_its_sas_figures():
    out = judged(corpus_health("sas-hdd-seagate-st4000nm0043-grown-defects-56-json.json"))
    assert outcomes(out) == {"smart_assessment_passed": "passed", "media_errors_total": "passed",
                             "grown_defects_total": "failed", "power_on_hours": "info",
                             "temperature_celsius": "passed", "failed_self_tests_total": "passed",
                             "data_written_terabytes": "info"}  # the error counter log's write row


def test_a_figure_the_drive_should_report_is_unknown_not_passed_over():
    health = dataclasses.replace(corpus_health("sas-hdd-hitachi-h109060sesun600g-smartctl73-json.json"),
                                 grown_defects=None, smart_passed=None)
    out = judged(health)
    assert outcomes(out)["grown_defects_total"] == outcomes(out)["smart_assessment_passed"] == "unknown"
    assert out.line == "unknown: the drive's own SMART assessment passed, grown defect list could not be checked"
    findings = Findings("ssd_health")
    out.record(findings, "ssd_verdict")
    assert [p["reason"] for p in findings.not_qualified_parts] == [
        "drive: the drive's own SMART assessment passed could not be read (minimum 1: not judged)",
        "drive: grown defect list could not be read (limit ≤ 0: not judged)"]
    assert findings.measurements[0].name == "ssd_verdict" and findings.measurements[0].value == out.line


def test_ssd_without_wear_figure_is_unknown_but_a_spinning_disk_has_none_to_give():
    ssd = dataclasses.replace(corpus_health("sata-ssd-wd-red-sa500-4tb-smartctl73-all-json.json"),
                              percentage_used=None)
    assert outcomes(judged(ssd))["percentage_used_percent"] == "unknown"
    hdd = corpus_health("sata-hdd-samsung-hd204ui-extended-selftest-log-smartctl72-x-json-excerpt.json")
    assert "percentage_used_percent" not in outcomes(judged(hdd))


def test_seller_claim_and_endurance_name_the_numbers():
    out = judged(corpus_health("nvme-samsung970evo-media-errors-smartctl70-x-j.json"),
                 StorageDrive(serial="S466NX0M776250H", seller_power_on_hours=3000, rated_endurance_tbw=300))
    hours = next(f for f in out.figures if f.name == "power_on_hours")
    assert (hours.value, hours.high, hours.outcome, hours.detail) == (12798, 3300.0, "failed", "(1.5 years)")
    assert hours.because == "the seller claimed 3,000 h (+10% accepted)"
    endurance = next(f for f in out.figures if f.name == "rated_endurance_used_percent")
    assert (endurance.value, endurance.outcome, endurance.detail) == (11.2, "passed",
                                                                      "(33.6 TB of the rated 300 TBW)")


def test_seller_claim_on_a_drive_without_power_on_hours_is_unknown_not_passed_over():
    """Real SCSI outputs without 'Accumulated power on time': the seller's claim cannot be checked, and says so."""
    drive = ANY_DRIVE.model_copy(update={"seller_power_on_hours": 3000, "rated_endurance_tbw": 300})
    for name in ("spi-hdd-hp-mas3735nc-parallel-scsi-smartctl74-no-power-on-time-json.json",
                 "sas-hdd-toshiba-mg08sca16tey-megaraid-smartctl71-json.json"):
        out = judged(corpus_health(name), drive)
        hours = next(f for f in out.figures if f.name == "power_on_hours")
        assert (hours.value, hours.outcome) == (None, "unknown"), name
        assert "the seller claimed 3,000 h (+10% accepted) was not checked" in hours.detail
        assert "sg_logs --page=0x15" in hours.detail
        endurance = next(f for f in out.figures if f.name == "rated_endurance_used_percent")
        # data written comes from the error counter log's write row ("gigabytes_processed"), so endurance is judged
        assert endurance.outcome == "passed" and "TB of the rated 300 TBW" in endurance.detail, endurance.detail
        assert out.line.startswith("unknown: ") and "power-on hours" in out.line, out.line
    # without a claim or a limit there is nothing to check: no figure
    bare = judged(corpus_health("sas-hdd-toshiba-mg08sca16tey-megaraid-smartctl71-json.json"))
    assert "power_on_hours" not in outcomes(bare) and "rated_endurance_used_percent" not in outcomes(bare)


def test_serial_of_another_drive_rejects():
    out = judged(corpus_health("nvme-goodram-irdm-pro-2tb-smartctl75-json-compact-16pct-used-64C.json"),
                 StorageDrive(serial="S000WRONG"))
    assert out.line.startswith("reject: SMART serial matches the profile no")


HPE = KnownDriveIssue(id="hpe-sas-ssd-32768h", model=r"\bVO0960JFDGU\b", firmware="^HPD[1-7]$", cliff_hours=32768,
                      summary="fails at 32,768 h", advice="update to HPD8", source="HPE a00092491en_us")


@pytest.mark.parametrize("hours, line, warned", [
    (20000, "accept", True),  # matches, far from the cliff: named with the advice
    (30000, "reject: power-on hours vs the 32,768 h cliff of hpe-sas-ssd-32768h 30,000 h (limit ≤ 29,491 h)",
     False),  # within 10 % of the cliff
])
def test_known_power_on_hour_cliff(hours, line, warned):
    # synthetic: the Samsung SAS SSD's figures under the model and firmware of an affected HPE drive
    health = dataclasses.replace(corpus_health("sas-ssd-samsung-mzilt960-smartctl73-selftest-json.json"),
                                 model="HP VO0960JFDGU", firmware="HPD5", power_on_hours=hours)
    out = judged(health, issues=(HPE,))
    assert out.line == line
    assert bool(out.warnings) == warned and all("update to HPD8" in w for w in out.warnings)
    assert judged(dataclasses.replace(health, firmware="HPD8"), issues=(HPE,)).line == "accept"


def test_the_data_file_has_a_date_and_every_entry_a_source():
    known = builtin_issues()
    assert known.date and len(known.issues) >= 6
    assert all(issue.source and issue.advice for issue in known.issues)


def test_profile_adds_known_issues():
    settings = SsdHealthSettings(known_issues=[HPE.model_dump()])
    health = dataclasses.replace(corpus_health("sas-ssd-samsung-mzilt960-smartctl73-selftest-json.json"),
                                 model="HP VO0960JFDGU", firmware="HPD5", power_on_hours=32000)
    ev = DriveEvidence(label="X", drive=ANY_DRIVE, device="/dev/sdx", is_loop=False, health=health)
    assert judge([ev], settings, KnownIssues("2025-01-01", ()))[0].line.startswith("reject: power-on hours vs")


def test_a_pcie_drive_whose_link_cannot_be_read_is_unknown_not_passed_over():
    health = corpus_health("nvme-intel-optane-mempek1w032ga-nvme-lt-1.2-spare-thresh-0-smartctl73-json.json")
    ev = DriveEvidence(label="X", drive=ANY_DRIVE, device="/dev/nvme0n1", is_loop=False, health=health,
                       pci_address="0000:01:00.0")
    [out] = judge([ev], SsdHealthSettings(), KnownIssues("2025-01-01", ()))
    link = next(f for f in out.figures if f.name == "pcie_link_readable")
    assert link.outcome == "unknown" and "0000:01:00.0" in link.detail
    assert out.line == "unknown: PCIe link could not be checked"


LINKS = {  # lspci corpus file -> (outcome, the width/speed figures)
    "nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt": ("failed", (2.5, 8.0), (1, 4)),
    "nvme-samsung-sm961-x4-gen3-ok-tabbed.txt": ("passed", (8.0, 8.0), (4, 4)),
    "nvme-pm983-x4-gen3-old-lspci-format.txt": ("passed", (8.0, 8.0), (4, 4)),
}


@pytest.mark.parametrize("name", sorted(LINKS))
def test_pcie_link_from_the_lspci_corpus(name):
    speed, width = judge_pcie_link(parse_lspci_vv(corpus_path("lspci", name).read_text())[0], StorageDrive(serial="x"))
    outcome, speeds, widths = LINKS[name]
    assert (speed.outcome, (speed.value, speed.low), (width.value, width.low)) == (outcome, speeds, widths)


def test_gen4_drive_on_a_gen3_link_fails_against_its_spec():
    device = parse_lspci_vv(corpus_path("lspci", "nvme-pm983-x4-gen3-old-lspci-format.txt").read_text())[0]
    speed, width = judge_pcie_link(device, StorageDrive(serial="x", spec={"pcie_gts": 16, "pcie_width": 4}))
    assert (speed.outcome, speed.low, speed.detail, width.outcome) == ("failed", 16, "(vs the drive's spec)", "passed")


# ---------------------------------------------------------------- the lab's drives, through the stand-in tools


@pytest.fixture
def lab_like_drives(tmp_path, monkeypatch):
    """Loop drives prepared as the lab prepares its nodes' (healthy, WORN_NODE's), stand-ins first on PATH."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    with loop_devices(tmp_path) as loops:
        entries, dirs = [], []
        for node in ("lab-pve1", WORN_NODE):
            loops.make(None, fill=False, name=f"{node}/u2.img")
            backing = loops.attached[-1][1]
            entries.append(prepare_lab_drive(node, backing))
            dirs.append(backing.parent)
        # the local node runs commands with this process's PATH; a lab node gets it from its sshd (SetEnv)
        monkeypatch.setenv("PATH", f"{bin_dir(dirs[0])}:{os.environ['PATH']}")
        yield entries, dirs


def run_check(drives: list[dict], tmp_path) -> Findings:
    return run_drive_check(check_ssd_health, tmp_path, drives)


def test_lab_drives_healthy_accepted_worn_rejected(lab_like_drives, tmp_path):
    (healthy, _), _ = lab_like_drives
    findings = run_check([healthy], tmp_path)
    assert findings.metrics["verdicts"] == {healthy["serial"]: "accept"}
    assert not findings.problems
    assert f"{healthy['serial']}: power-on hours 4,127 h (0.5 years) (limit ≤ 5,500 h)" in findings.reasons


def test_lab_worn_drive_rejected_with_every_reason(lab_like_drives, tmp_path, monkeypatch):
    (_, worn), dirs = lab_like_drives
    monkeypatch.setenv("PATH", f"{bin_dir(dirs[1])}:{os.environ['PATH']}")
    findings = run_check([worn], tmp_path)
    serial = worn["serial"]
    assert findings.metrics["verdicts"][serial].startswith("reject: the drive's own SMART assessment passed no")
    failed = {m.name for m in findings.measurements if m.outcome == "failed"}
    assert {"smart_assessment_passed", "percentage_used_percent", "available_spare_percent", "media_errors_total",
            "power_on_hours", "failed_self_tests_total"} <= failed


def test_lab_sas_drive_with_grown_defects_rejected(lab_like_drives, tmp_path):
    (healthy, _), dirs = lab_like_drives
    set_drive_case(dirs[0], "sas-grown-defects")
    findings = run_check([healthy], tmp_path)
    assert findings.metrics["verdicts"][healthy["serial"]] == "reject: grown defect list 56 (limit ≤ 0)"


def test_loop_drive_without_smart_is_skipped_with_the_reason(tmp_path):
    with loop_devices(tmp_path) as loops:
        serial = f"QLAB-t{os.getpid()}-nosmart"
        loops.make(serial, fill=False)
        with pytest.raises(pytest.skip.Exception, match="no drive has SMART data or a PCIe link"):
            run_check([{"serial": serial}], tmp_path)


def test_error_log_entries_say_their_status_so_harmless_host_errors_read_as_such():
    out = judged(corpus_health("nvme-sabrent-rocket4-smartctl74-a-json.json"))
    entries = next(f for f in out.figures if f.name == "error_log_entries_total")
    assert entries.value == 4871 and entries.detail == "(of those read: 1 Invalid Field in Command)"
