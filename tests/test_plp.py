"""power_loss_protection: the judge on the published behaviour, and the two fio jobs on a real loop drive.

The figures in the judge tests are the published ones the issue quotes (consumer NVMe ~80k 4 KiB QD1
IOPS without fsync, 1-2k with it; drives with power-loss protection about equal), not tool outputs.
"""

from __future__ import annotations

import os

import pytest

from qualify.checks.power_loss_protection import check_power_loss_protection
from qualify.findings import Findings
from qualify.profile import PowerLossProtectionSettings
from qualify.storage.plp import PlpEvidence, judge, plp_jobs
from qualify.store import RunStore, read_samples
from storage_loop import local_node, loop_devices

SETTINGS = PowerLossProtectionSettings()


def test_a_consumer_drive_without_plp_is_not_fit_for_ceph_with_both_numbers():
    judgement = judge(PlpEvidence("S1", "/dev/nvme0n1", "dsync", plain_iops=80_000, sync_iops=1_500,
                                  plain_p99_us=20, sync_p99_us=900), SETTINGS)
    assert judgement.line == "reject: 4 KiB QD1 writes with O_DSYNC as a share of without 0.019 (minimum 0.25)"
    share = judgement.figures[0]
    assert share.name == "sync_write_share_ratio" and share.detail == "(1,500 vs 80,000 IOPS)"
    assert "not fit for Ceph" in share.because
    assert [(f.name, f.value, f.unit) for f in judgement.figures[1:]] == \
        [("plain_write_iops", 80_000, "IOPS"), ("sync_write_iops", 1_500, "IOPS")]
    assert judgement.figures[2].detail == "(p99 latency 900 µs)"


def test_a_drive_with_plp_keeps_its_sync_writes():
    judgement = judge(PlpEvidence("S2", "/dev/nvme1n1", "fsync", plain_iops=42_000, sync_iops=39_000), SETTINGS)
    assert judgement.line == "accept"
    assert judgement.figures[0].what == "4 KiB QD1 writes with fsync as a share of without"


def test_not_measured_is_unknown():
    judgement = judge(PlpEvidence("S3", "/dev/sda", "dsync", not_run="fio exited with status 1"), SETTINGS)
    assert judgement.line == "unknown: sync writes as a share of plain writes could not be checked"


def test_the_jobs_differ_only_in_the_sync():
    plain, sync = plp_jobs(SETTINGS)
    assert sync.options[:len(plain.options)] == plain.options and sync.options[len(plain.options):] == ("--sync=dsync",)
    assert "--fsync=1" in plp_jobs(PowerLossProtectionSettings(sync="fsync"))[1].options
    argv = sync.argv("/dev/x", 10, "io_uring")
    assert {"--bs=4k", "--iodepth=1", "--direct=1", "--time_based", "--runtime=10s"} <= set(argv)


@pytest.fixture
def loops(tmp_path):
    with loop_devices(tmp_path) as made:
        yield made


def test_both_jobs_run_on_a_loop_drive_with_units_and_limits(loops, tmp_path):
    serial = f"QLAB-p{os.getpid()}"
    loops.make(serial, size_mib=32, fill=False)
    node = local_node(drives=[{"serial": serial, "allow_destroy": True}], ioengine="libaio")
    profile = node.profile.model_copy(update={"checks": node.profile.checks.model_copy(update={
        "power_loss_protection": PowerLossProtectionSettings(job_runtime=1)})})
    store = RunStore.create("testnode", tmp_path / "reports")
    findings = Findings("power_loss_protection")
    try:
        check_power_loss_protection(node, profile, findings, store)
    finally:
        store.close()
    rows = {m.name: m for m in findings.measurements if m.subject == serial}
    assert rows["plain_write_iops"].unit == rows["sync_write_iops"].unit == "IOPS"
    assert rows["plain_write_iops"].value > 0 and rows["sync_write_iops"].value > 0
    share = rows["sync_write_share_ratio"]
    assert share.low == 0.25 and share.outcome in ("passed", "failed")
    assert abs(share.value - rows["sync_write_iops"].value / rows["plain_write_iops"].value) < 0.01
    verdict = findings.metrics["verdicts"][serial]
    assert verdict == "accept" if share.outcome == "passed" else verdict.startswith("reject: 4 KiB QD1 writes with")
    assert {s["job"] for s in read_samples(store.run_dir, "power_loss_protection")} <= {"plp_plain", "plp_sync"}
    assert (store.run_dir / f"raw/fio-{serial}-plp_sync.json").is_file()
