"""The storage check: its judge on recorded fio reports (tests/corpus/fio), and the check with real fio on real
loop devices: the matrix, the guard, bad input."""

from __future__ import annotations

import os
import stat

import pytest

from corpus import corpus_path
from qualify.checks.storage import DriveRuns, JobRun, check_storage, judge_drive
from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import LocalNode
from qualify.parsers.fio import parse_fio_json
from qualify.profile import Profile, StorageDrive, StorageJob, StorageSettings
from qualify.report.page import check_charts
from qualify.storage import BlockDevice
from qualify.storage.jobs import matrix_job
from qualify.storage.runner import kernel_events
from qualify.store import read_samples
from storage_loop import MKFS_EXT4, checksum, loop_devices, run_storage_check, sh

QUICK = {"job_runtime": "2s", "queue_depth": 8, "random_jobs": 2, "ceph_min_sync_write_iops": 1,
         "sync_write_latency_us": {}}


# -- the judge on recorded fio reports, in milliseconds

SATA_QD1 = "fio-3.1-randwrite-4k-qd1-sata-ssd-raid-ctrl.json"  # 7,429 IOPS, p99 5.08 ms
DEVICE = BlockDevice(name="sdb", path="/dev/sdb", serial="S3Z9NB0K", wwn=None, model="Samsung SSD 860",
                     size_bytes=500 << 30, backing_file=None)


def recorded(job: StorageJob, corpus_file: str, drive: StorageDrive | None = None, **settings) -> Findings:
    config = StorageSettings(**settings)
    result = parse_fio_json(corpus_path("fio", corpus_file).read_text())
    runs = DriveRuns(drive or StorageDrive(serial="S3Z9NB0K"), "checks.storage.drives[0]", DEVICE, (),
                     (JobRun(matrix_job(job, config), result, None, ()),), None, None, wrote=False)
    findings = Findings("storage")
    findings.metric("drives", {"S3Z9NB0K": judge_drive(runs, config, findings)})
    return findings


def measured(findings: Findings) -> dict:
    return {m.name: m for m in findings.measurements}


def test_sync_writes_of_a_sata_ssd_are_fit_for_ceph_by_iops_but_not_by_latency():
    findings = recorded("sync_write", SATA_QD1)
    figures = measured(findings)
    assert (figures["fio_sync_write_iops"].value, figures["fio_sync_write_iops"].outcome) == (7429, "passed")
    p99 = figures["fio_sync_write_latency_p99_microseconds"]
    assert (p99.value, p99.high, p99.outcome, p99.subject) == (5079.0, 2000.0, "failed", "S3Z9NB0K")
    assert findings.problems == [p99.sentence]
    assert p99.sentence.startswith("S3Z9NB0K: 4 KiB sync write QD1 (O_DIRECT + O_DSYNC, as Ceph's WAL) p99 "
                                   "completion latency 5,079 µs (limit ≤ 2,000 µs)")
    assert findings.metrics["drives"]["S3Z9NB0K"]["sync_write"]["fit_for_ceph"] is False


def test_too_few_sync_write_iops_is_not_fit_for_ceph():
    findings = recorded("sync_write", SATA_QD1, ceph_min_sync_write_iops=10_000, sync_write_latency_us={})
    assert findings.problems == [
        "S3Z9NB0K: 4 KiB sync write QD1 (O_DIRECT + O_DSYNC, as Ceph's WAL) IOPS 7,429 IOPS (4 KiB sync writes at "
        "QD1: what Ceph's WAL asks) (minimum 10,000 IOPS) — not fit for Ceph: drives without power-loss protection "
        "manage hundreds"]


def test_a_job_below_the_spec_sheet_names_both_figures():
    findings = recorded("rand_write", SATA_QD1, StorageDrive(serial="S3Z9NB0K", spec={"rand_write_iops": 90_000}))
    iops = measured(findings)["fio_rand_write_iops"]
    assert iops.outcome == "failed" and iops.low == pytest.approx(63_000)
    assert "(8% of the spec sheet's 90,000 IOPS; 70% required)" in iops.sentence
    bandwidth = measured(findings)["fio_rand_write_bandwidth_bytes_per_second"]
    assert (bandwidth.outcome, bandwidth.unit) == ("info", "B/s") and "30.4 MB/s" in bandwidth.sentence


def test_a_failed_job_fails_the_drive_naming_fios_reason():
    config = StorageSettings()
    runs = DriveRuns(StorageDrive(serial="S3Z9NB0K"), "checks.storage.drives[0]", DEVICE, (),
                     (JobRun(matrix_job("seq_read", config), None, "fio exited with status 137", ()),), None, None,
                     wrote=False)
    findings = Findings("storage")
    judge_drive(runs, config, findings)
    assert findings.problems == ["S3Z9NB0K sequential read 1 MiB QD32: fio exited with status 137"]


# -- the check with real fio on loop devices

@pytest.fixture
def loops(tmp_path):
    with loop_devices(tmp_path) as made:
        yield made


def run_check(tmp_path, drives: list[dict], **settings):
    return run_storage_check(check_storage, tmp_path, **{**QUICK, **settings, "drives": drives})


def test_full_matrix_on_an_allowed_loop_drive(loops, tmp_path):
    serial = f"QLAB-t{os.getpid()}-matrix"
    loops.make(serial, size_mib=128, fill=False)
    findings, run_dir = run_check(tmp_path, [{"serial": serial, "allow_destroy": True}])
    assert findings.problems == []
    measured = findings.metrics["drives"][serial]
    assert set(measured) == {"device", "seq_read", "seq_write", "rand_read", "rand_write", "mixed", "sync_write"}
    assert all(measured[job]["iops"] > 0 for job in measured if job != "device")
    assert measured["sync_write"]["fit_for_ceph"] is True
    assert set(measured["sync_write"]["latency_us"]) == {"p50", "p99", "p99.9", "p99.99"}
    samples = read_samples(run_dir, "storage")
    assert {s["job"] for s in samples} == set(measured) - {"device"}  # per-second points of every job
    assert (run_dir / "raw" / f"fio-{serial}-sync_write.json").is_file()
    assert any("fit for Ceph: 4 KiB sync writes at QD1 reach" in r for r in findings.reasons)
    charts = check_charts(run_dir, {"name": "storage", "metrics": findings.metrics})
    assert [chart.title for chart in charts] == [f"Drive {serial}: fio jobs over time",
                                              f"Drive {serial}: latency percentiles per job"]


def test_slow_sync_writes_are_not_fit_for_ceph(loops, tmp_path):
    serial = f"QLAB-t{os.getpid()}-ceph"
    loops.make(serial, size_mib=64, fill=False)
    findings, _ = run_check(tmp_path, [{"serial": serial, "allow_destroy": True}], jobs=["sync_write"],
                            ceph_min_sync_write_iops=10_000_000, sync_write_latency_us={"p50": 0.001})
    iops = findings.metrics["drives"][serial]["sync_write"]["iops"]
    assert findings.problems[0].startswith(f"{serial}: 4 KiB sync write QD1 (O_DIRECT + O_DSYNC, as Ceph's WAL) IOPS "
                                           f"{iops:,} IOPS")
    assert findings.problems[0].endswith("(minimum 10,000,000 IOPS) — not fit for Ceph: drives without power-loss "
                                         "protection manage hundreds")
    assert " p50 completion latency " in findings.problems[1]
    assert findings.problems[1].endswith(" µs (limit ≤ 0.001 µs) — the profile's sync-write latency limit")
    assert findings.metrics["drives"][serial]["sync_write"]["fit_for_ceph"] is False


def test_spec_sheet_share_names_both_figures(loops, tmp_path):
    serial = f"QLAB-t{os.getpid()}-spec"
    loops.make(serial, size_mib=64, fill=False)
    findings, _ = run_check(tmp_path, [{"serial": serial, "spec": {"seq_read_mb_s": 1e9}}], jobs=["seq_read"])
    assert len(findings.problems) == 1
    assert "of the spec sheet's 1,000,000,000 MB/s; 70% required) (minimum 700 TB/s)" in findings.problems[0]


def test_not_allowed_runs_only_read_jobs_and_leaves_the_data(loops, tmp_path):
    serial = f"QLAB-t{os.getpid()}-readonly"
    device = loops.make(serial, size_mib=64)
    before = checksum(device)
    findings, _ = run_check(tmp_path, [{"serial": serial}])
    assert findings.problems == []
    assert set(findings.metrics["drives"][serial]) == {"device", "seq_read", "rand_read"}
    assert any("write jobs skipped: the profile does not allow destroying" in r for r in findings.reasons)
    assert checksum(device) == before


def test_mounted_allowed_drive_fails_without_writing(loops, tmp_path):
    serial = f"QLAB-t{os.getpid()}-mounted"
    device = loops.make(serial, size_mib=64)
    sh(*MKFS_EXT4, device)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    sh("mount", "-o", "ro", device, str(mountpoint))  # read-only: ext4 itself writes nothing either
    try:
        before = checksum(device)
        findings, _ = run_check(tmp_path, [{"serial": serial, "allow_destroy": True, "wipe": True}],
                                jobs=["seq_write", "sync_write"])
        assert len(findings.problems) == 1 and "[mounted]" in findings.problems[0]
        assert checksum(device) == before
    finally:
        sh("umount", str(mountpoint))


def fake_fio(tmp_path, monkeypatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fio = bin_dir / "fio"
    fio.write_text("#!/bin/sh\n" + script)
    fio.chmod(fio.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_fio_too_old_names_the_version(loops, tmp_path, monkeypatch):
    serial = f"QLAB-t{os.getpid()}-oldfio"
    loops.make(serial, fill=False)
    fake_fio(tmp_path, monkeypatch, 'echo fio-2.2.10\n')
    with pytest.raises(QualifyError, match="fio-2.2.10 is too old: qualify needs fio 3.0 or newer"):
        run_check(tmp_path, [{"serial": serial}])


def test_fio_without_the_engine_names_it_and_the_alternative(loops, tmp_path, monkeypatch):
    serial = f"QLAB-t{os.getpid()}-engine"
    loops.make(serial, fill=False)
    fake_fio(tmp_path, monkeypatch, '[ "$1" = --version ] && echo fio-3.12 && exit 0\n'
                                    'printf "Available IO engines:\\n\\tlibaio\\n\\tpsync\\n"\n')
    with pytest.raises(QualifyError, match="fio-3.12 has no 'io_uring' I/O engine .io_uring came with fio 3.13.; "
                                           "set checks.storage.ioengine to one it has .libaio."):
        run_check(tmp_path, [{"serial": serial}])


def test_fio_killed_mid_job_fails_and_keeps_partial_results(loops, tmp_path, monkeypatch):
    serial = f"QLAB-t{os.getpid()}-killed"
    loops.make(serial, size_mib=64, fill=False)
    real = sh("sh", "-c", "command -v fio").stdout.strip()
    # the real fio, killed (SIGKILL, by its own pid) 2.5 s into a 10 s job
    fake_fio(tmp_path, monkeypatch, f'case "$1" in --version|--enghelp|--cmdhelp*) exec {real} "$@";; esac\n'
                                    f'{real} "$@" & pid=$!; sleep 2.5; kill -9 $pid; wait $pid\n')
    findings, run_dir = run_check(tmp_path, [{"serial": serial}], jobs=["seq_read", "rand_read"], job_runtime="10s")
    assert len(findings.problems) == 1
    assert f"{serial} sequential read 1 MiB QD8: fio exited with status 137" in findings.problems[0]
    assert findings.problems[0].endswith("partial results kept")
    assert (run_dir / "raw" / f"fio-{serial}-seq_read.json").is_file()
    assert read_samples(run_dir, "storage")  # the seconds before the kill
    assert "rand_read" not in findings.metrics["drives"][serial]  # stopped at the failed job


def test_no_drives_skips_with_the_reason(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="no drive is named under checks.storage.drives"):
        run_check(tmp_path, [])


def test_hung_fio_is_stopped_and_named(loops, tmp_path, monkeypatch):
    """A drive that stops answering leaves fio hanging: the job is stopped, the check fails, nothing is left."""
    from qualify.storage import runner

    serial = f"QLAB-t{os.getpid()}-hung"
    loops.make(serial, fill=False)
    real = sh("sh", "-c", "command -v fio").stdout.strip()
    pidfile = tmp_path / "hung.pid"
    fake_fio(tmp_path, monkeypatch, f'case "$1" in --version|--enghelp|--cmdhelp*) exec {real} "$@";; esac\n'
                                    f'echo $$ > {pidfile}; exec sleep 600\n')
    monkeypatch.setattr(runner, "GRACE_S", 1.0)
    findings, _ = run_check(tmp_path, [{"serial": serial}], jobs=["seq_read"], job_runtime="1s")
    assert findings.problems == [f"{serial} sequential read 1 MiB QD8: fio did not finish in time and was stopped "
                                 "(the drive may have stopped answering)"]
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def test_kernel_events_of_a_drive_that_dropped_off_the_bus():
    log = corpus_path("kernel-log", "nvme-admin-timeout-reset-controller-removed.txt")
    node = LocalNode("testnode", Profile.model_validate({"host": "localhost", "paths": {"kernel_log": str(log)}}))
    events = kernel_events(node, "nvme2n1")
    assert len(events) == 5 and "nvme nvme2: I/O 0 QID 0 timeout, reset controller" in events[0]
    assert events[-1].endswith("nvme2n1: detected capacity change from 800166076416 to 0")


def test_seconds_of_a_multi_job_group_are_wall_seconds(loops, tmp_path):
    serial = f"QLAB-t{os.getpid()}-clones"
    loops.make(serial, size_mib=64, fill=False)
    findings, run_dir = run_check(tmp_path, [{"serial": serial}], jobs=["rand_read"], job_runtime="3s", random_jobs=4)
    assert findings.problems == []
    seconds = [sample["t"] for sample in read_samples(run_dir, "storage")]
    assert 2.5 <= seconds[-1] <= 3.5, seconds  # fio sums the 4 clones' runtimes: 12 s if taken as it is


def test_full_surface_read_and_write_verify_cover_every_lba(loops, tmp_path):
    serial = f"QLAB-t{os.getpid()}-surface"
    loops.make(serial, size_mib=64, fill=False)
    findings, run_dir = run_check(tmp_path, [{"serial": serial, "allow_destroy": True}],
                                  jobs=["surface_read", "write_verify"])
    assert findings.problems == []
    measured = findings.metrics["drives"][serial]
    assert measured["surface_read"]["slowest_mb_s"] > 0 and measured["write_verify"]["slowest_mb_s"] > 0
    for job in ("surface_read", "write_verify"):
        report = parse_fio_json((run_dir / "raw" / f"fio-{serial}-{job}.json").read_text()).jobs[0]
        assert report.read.io_bytes + report.write.io_bytes >= 64 << 20  # every byte of the device
    assert any(r.startswith(f"{serial}: full-surface read (every LBA): slowest second ") for r in findings.reasons)


def test_a_drive_that_comes_into_use_just_before_fio_is_a_named_failure_not_a_traceback(loops, tmp_path, monkeypatch):
    """The guard asks again as fio takes the device (run_fio holds it): a refusal there fails the job, naming
    the device and the rule, and the read jobs still run."""
    from qualify.checks import storage

    serial = f"QLAB-t{os.getpid()}-late"
    device = loops.make(serial, size_mib=64)
    sh(*MKFS_EXT4, device)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    # the check's own look before the job saw the drive unused; it is mounted by the time fio takes it
    monkeypatch.setattr(storage, "checked_for_writing", lambda node, drive, key: storage.resolve_drive(node, drive))
    monkeypatch.setattr(storage, "refusals", lambda *args: [])
    sh("mount", "-o", "ro", device, str(mountpoint))
    try:
        before = checksum(device)
        findings, _ = run_check(tmp_path, [{"serial": serial, "allow_destroy": True}],
                                jobs=["seq_write", "seq_read", "sync_write"])
        assert checksum(device) == before
    finally:
        sh("umount", str(mountpoint))
    [problem] = findings.problems
    assert problem.startswith(f"{serial} sequential write 1 MiB QD8: not run: refusing to write to {device} ")
    assert "[mounted]" in problem and "to allow it:" in problem
    assert problem.endswith("(nor the write jobs after it: sync_write)")
    failed = [m for m in findings.measurements if m.outcome == "failed"]
    assert [(m.name, m.subject) for m in failed] == [("fio_seq_write", serial)]
    assert "seq_read" in findings.metrics["drives"][serial]
