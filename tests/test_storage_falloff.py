"""Cache falloff: found in synthetic bandwidth curves, and the sustained write for real on a loop device."""

from __future__ import annotations

import os

import pytest
from storage_loop import loop_devices, run_storage_check

from qualify.checks.storage_falloff import check_storage_falloff
from qualify.report.plots import check_images
from qualify.storage.falloff import Second, find_falloff
from qualify.store import read_samples

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


def run_check(tmp_path, drives: list[dict], **settings):
    return run_storage_check(check_storage_falloff, tmp_path, **settings, drives=drives)


def test_sustained_write_on_a_loop_drive_logs_every_second(tmp_path):
    with loop_devices(tmp_path) as loops:
        serial = f"QLAB-t{os.getpid()}-sustained"
        loops.make(serial, size_mib=128, fill=False)
        findings, run_dir = run_check(tmp_path, [{"serial": serial, "allow_destroy": True}],
                                      sustained_duration="8s", min_sustained_mb_s=0.001)
    assert findings.problems == [], findings.problems
    result = findings.metrics["drives"][serial]
    assert result["seconds"] >= 6 and result["initial_mb_s"] > 0
    samples = read_samples(run_dir, "storage_falloff")
    assert len(samples) == result["seconds"] and samples[-1]["written_gib"] > samples[0]["written_gib"]
    assert any(r.startswith(f"{serial}: sustained bandwidth") for r in findings.reasons)
    images = check_images(run_dir, {"name": "storage_falloff", "metrics": findings.metrics})
    assert [title for title, _ in images] == [f"Drive {serial}: sustained write"]


def test_no_writable_drive_is_skipped(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="no drive under checks.storage.drives allows destroying"):
        run_check(tmp_path, [{"serial": "QLAB-whatever"}])
