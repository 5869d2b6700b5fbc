"""Self-tests run by qualify: the pure judge on recorded evidence (passed, failed, cannot run, fields that moved),
and the run itself through the lab's stand-in smartctl/nvme on loop drives (NVMe pass and fail, SAS)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from corpus import corpus_path
from qualify.checks.selftest import (
    SelftestEvidence,
    SelfTestRun,
    check_selftest,
    deltas,
    judge,
    new_entry,
)
from qualify.findings import Findings
from qualify.lab.drive import WORN_NODE, bin_dir, prepare_lab_drive, set_drive_case
from qualify.parsers.smartctl import parse_smartctl_json
from storage_loop import loop_devices, run_drive_check

HEALTHY = parse_smartctl_json(
    corpus_path("smartctl", "nvme-goodram-irdm-pro-2tb-smartctl75-json-compact-16pct-used-64C.json").read_text())
SAS = parse_smartctl_json(corpus_path("smartctl", "sas-ssd-samsung-mzilt960-smartctl73-selftest-json.json").read_text())


def evidence(**kw) -> SelftestEvidence:
    return SelftestEvidence(**{"label": "S1", "device": "/dev/nvme0n1", "protocol": "NVMe", "before": HEALTHY,
                               "after": HEALTHY, **kw})


def test_passed_short_test_and_unchanged_fields_accept():
    out = judge(evidence(runs=[SelfTestRun("short", True, "completed without error", 95.0)]))
    assert out.line == "accept"
    assert [f.name for f in out.figures][:2] == ["short_self_test_passed", "critical_warning_new_bits"]


def test_failed_test_rejects_with_its_result():
    out = judge(evidence(runs=[SelfTestRun("short", False, "failed in a segment (failing LBA 1234)", 40.0)]))
    assert out.line == "reject: short self-test passed no (minimum 1)"
    assert "(failed in a segment (failing LBA 1234), 40 s)" == out.figures[0].detail


def test_a_test_the_drive_cannot_run_is_said_with_why():
    out = judge(evidence(cannot_run="the controller does not support Device Self-test (id-ctrl OACS bit 4 is clear)"))
    assert out.line == "unknown: self-test could not be checked"
    assert "OACS bit 4" in out.figures[0].detail


def test_unfinished_test_is_unknown():
    out = judge(evidence(runs=[SelfTestRun("extended", None, "still running after 9000 s: aborted", 9000.0)]))
    assert out.line == "unknown: extended self-test passed could not be checked"


def test_critical_fields_that_grew_during_the_tests_fail():
    # synthetic "after": the Goodram's real figures with one media error and one warning bit more
    after = dataclasses.replace(HEALTHY, media_errors=1, critical_warning=0x04, error_log_entries=1040)
    figures = {f.name: f for f in deltas(HEALTHY, after)}
    assert figures["critical_warning_new_bits"].outcome == "failed"
    assert figures["media_errors_increase"].outcome == "failed"
    assert figures["error_log_entries_increase"].outcome == "warning"  # benign invalid-field entries land there too
    assert figures["available_spare_drop_percent"].outcome == "passed"


def test_sas_fields_before_vs_after():
    after = dataclasses.replace(SAS, grown_defects=3)
    figures = {f.name: f.outcome for f in deltas(SAS, after)}
    assert figures == {"media_errors_increase": "passed", "pending_sectors_increase": "passed",
                       "grown_defects_increase": "failed"}


@pytest.mark.parametrize("before, now, new", [
    ([], [], None), ([], ["a"], "a"), (["a"], ["a"], None), (["a"], ["b", "a"], "b"),
    (["a"] * 20, ["b"] + ["a"] * 19, "b"),  # a full log drops its oldest entry
])
def test_new_log_entry(before, now, new):
    assert new_entry(before, now) == new


# ---------------------------------------------------------------- run through the stand-in tools


@pytest.fixture
def lab_drive(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    with loop_devices(tmp_path) as loops:
        def make(node: str) -> tuple[dict, os.PathLike]:
            loops.make(None, fill=False, name=f"{node}/u2.img")
            backing = loops.attached[-1][1]
            entry = prepare_lab_drive(node, backing)
            monkeypatch.setenv("PATH", f"{bin_dir(backing.parent)}:{os.environ['PATH']}")
            return entry, backing.parent
        yield make


def run_check(drive: dict, tmp_path, budget: str = "5s") -> Findings:
    return run_drive_check(check_selftest, tmp_path, [drive], selftest={"poll_interval": "0.5s", "budget": budget})


def test_healthy_nvme_drive_passes_its_short_test(lab_drive, tmp_path):
    drive, _ = lab_drive("lab-pve1")
    findings = run_check(drive, tmp_path)
    assert findings.metrics["verdicts"] == {drive["serial"]: "accept"}, findings.reasons
    assert any("extended self-test not run: the drive needs ~1 min" in r for r in findings.reasons)
    [untested] = findings.not_qualified_parts  # the test left out is listed, with how to run it
    assert untested["reason"].startswith(f"{drive['serial']}: extended self-test not run: the drive needs ~1 min")
    assert untested["how"].startswith("raise selftest.budget to at least ")
    assert "nvme device-self-test" in untested["how"]
    progress = (tmp_path / "reports").rglob("selftest.jsonl")
    assert next(progress).read_text().count('"test":"short"') >= 1


def test_worn_drive_fails_its_short_and_extended_tests(lab_drive, tmp_path):
    drive, _ = lab_drive(WORN_NODE)
    findings = run_check(drive, tmp_path, budget="10m")
    assert findings.metrics["verdicts"][drive["serial"]] == "reject: short self-test passed no (minimum 1)"
    assert {m.name for m in findings.measurements if m.outcome == "failed"} == {
        "short_self_test_passed", "extended_self_test_passed"}


def test_sas_drive_runs_its_test_through_smartctl(lab_drive, tmp_path):
    drive, node_dir = lab_drive("lab-pve1")
    set_drive_case(node_dir, "sas-grown-defects")
    findings = run_check(drive, tmp_path)
    assert findings.metrics["verdicts"] == {drive["serial"]: "accept"}, findings.reasons
    assert any("extended self-test not run: the drive states no time for it" in r for r in findings.reasons)
    [untested] = findings.not_qualified_parts
    assert untested["how"].startswith("run it by hand and read its result: smartctl -t long /dev/")
