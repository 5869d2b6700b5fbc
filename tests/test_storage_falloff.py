"""Cache falloff: found in built bandwidth curves and judged against the drive's own start and its spec sheet
(in milliseconds), and the sustained write for real on a loop device."""

from __future__ import annotations

import os

import pytest

from qualify.checks.storage_falloff import SHARE, SustainedWrite, check_storage_falloff, judge_drive
from qualify.findings import Findings
from qualify.profile import StorageSettings
from qualify.report.page import check_charts
from qualify.storage.falloff import Second, find_falloff
from qualify.store import read_samples
from storage_loop import loop_devices, run_storage_check

MB = 1_000_000


def curve(mb_s: list[float]) -> list[Second]:
    written, seconds = 0, []
    for t, rate in enumerate(mb_s, start=1):
        written += int(rate * MB)
        seconds.append(Second(float(t), rate * MB, written))
    return seconds


def test_qlc_drive_falls_off_after_its_cache():
    # 1 GB/s for 10 s (10 GB of SLC cache), then 80 MB/s
    falloff = find_falloff(curve([1000] * 10 + [80] * 20), share=0.5)
    assert falloff.initial_bytes_s == 1000 * MB
    assert falloff.at_s == 10 and falloff.written_before_bytes == 10_000 * MB
    assert falloff.after_bytes_s == 80 * MB


def test_short_dips_are_not_a_falloff():
    falloff = find_falloff(curve([900, 950, 1000, 300, 950, 300, 300, 980, 990, 1000]), share=0.5)
    assert falloff.at_s is None and falloff.overall_bytes_s == pytest.approx(767 * MB)


def test_too_short_to_tell():
    assert find_falloff(curve([1000, 1000, 1000]), share=0.5) is None


def judged(mb_s: list[float], spec: float | None = None, **settings) -> Findings:
    findings = Findings("storage_falloff")
    judge_drive(SustainedWrite("S5GXNX0T", spec, tuple(curve(mb_s)), None), StorageSettings(**settings), findings)
    return findings


def outcome(findings: Findings, name: str = SHARE) -> tuple:
    [m] = [m for m in findings.measurements if m.name == name]
    return m.value, m.outcome


def test_qlc_drive_falling_to_a_tenth_of_its_start_fails_with_the_defaults():
    findings = judged([1000] * 10 + [80] * 20)
    assert outcome(findings) == (0.08, "failed")
    assert findings.problems == [
        "S5GXNX0T: sustained share of the start bandwidth 0.08 (80 of 1,000 MB/s) (minimum 0.5) — the drive cannot "
        "keep its write rate once its cache is full (QLC, DRAM-less or consumer drives): a Ceph backfill or rebuild "
        "runs at the low rate"]
    assert outcome(findings, "cache_falloff_seconds") == (10, "info")
    assert outcome(findings, "cache_falloff_written_bytes") == (10_000 * MB, "info")


def test_a_drive_that_holds_its_rate_passes():
    findings = judged([900, 950, 1000, 300, 950, 300, 300, 980, 990, 1000])
    assert outcome(findings)[1] == "passed" and findings.problems == []
    assert "cache_falloff_seconds" not in {m.name for m in findings.measurements}


def test_spec_sheet_and_sustained_minimum_are_judged_when_given():
    findings = judged([1000] * 10 + [600] * 20, spec=3000, min_sustained_mb_s=700)
    assert outcome(findings) == (0.6, "passed")
    assert outcome(findings, "sustained_write_start_bytes_per_second") == (1000 * MB, "failed")
    assert outcome(findings, "sustained_write_steady_bytes_per_second") == (600 * MB, "failed")
    assert "(33% of the spec sheet's 3,000 MB/s; 70% required)" in findings.problems[0]


def test_a_run_too_short_to_tell_is_unknown_not_passed():
    findings = judged([1000, 1000, 1000])
    assert outcome(findings) == (None, "unknown") and not findings.problems
    assert "only 3 seconds of sustained write: too short to find a falloff" in findings.not_qualified_parts[0]["reason"]


def run_check(tmp_path, drives: list[dict], **settings):
    return run_storage_check(check_storage_falloff, tmp_path, **settings, drives=drives)


def test_sustained_write_on_a_loop_drive_logs_every_second(tmp_path):
    with loop_devices(tmp_path) as loops:
        serial = f"QLAB-t{os.getpid()}-sustained"
        loops.make(serial, size_mib=128, fill=False)
        # a loop device over a file in this machine's page cache: its rate wanders, so only a figure is asked for
        findings, run_dir = run_check(tmp_path, [{"serial": serial, "allow_destroy": True}],
                                      sustained_duration="8s", min_sustained_mb_s=0.001, falloff_share=0.01)
    assert findings.problems == [], findings.problems
    measured = {m.name: m for m in findings.measurements}
    assert measured["sustained_write_start_bytes_per_second"].value > 0
    assert measured[SHARE].outcome == "passed" and measured[SHARE].subject == serial
    samples = read_samples(run_dir, "storage_falloff")
    assert len(samples) >= 6 and samples[-1]["written_gib"] > samples[0]["written_gib"]
    assert any(r.startswith(f"{serial}: sustained bandwidth") for r in findings.reasons)
    charts = check_charts(run_dir, {"name": "storage_falloff",
                                    "measurements": [m.as_record() for m in findings.measurements]})
    assert [chart.title for chart in charts] == [f"Drive {serial}: sustained write"]


def test_no_writable_drive_is_skipped(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="no drive under checks.storage.drives allows destroying"):
        run_check(tmp_path, [{"serial": "QLAB-whatever"}])
