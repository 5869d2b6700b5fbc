"""Storage performance: the fio matrix on every drive named in the profile, and whether it is fit for Ceph.

Why: used enterprise U.2 drives behind adapter chains, and consumer drives that cannot do what
Ceph's BlueStore WAL asks (4 KiB O_DSYNC writes at depth 1: hundreds of IOPS without power-loss
protection, tens of thousands with it). Read jobs run on any named drive; write jobs only where the
guard (qualify/storage/guard.py) allows them, asked again right before each job. SMART is read
before and after the writes: media errors or critical warnings that grow during the run fail it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.fio import Direction, FioResult
from qualify.parsers.smartctl import DriveHealth
from qualify.profile import Profile, StorageDrive, StorageSettings
from qualify.storage import BlockDevice, WriteRefused, checked_for_writing, device_use, refusals, resolve_drive
from qualify.storage.health import read_health
from qualify.storage.jobs import PERCENTILES, FioJobSpec, matrix_job
from qualify.storage.named import named_drives
from qualify.storage.runner import FioCapabilities, Progress, fio_capabilities, kernel_events, run_fio
from qualify.store import RunStore

MB = 1_000_000
GIB = 1 << 30
SLOWEST_SURFACE_BYTES_S = 20 * MB  # a whole-device job slower than this counts as hung
# The spec-sheet figure each job is held against: (DriveSpec field, "bandwidth" in MB/s or "iops")
SPEC_FIGURES = {"seq_read": ("seq_read_mb_s", "bandwidth"), "seq_write": ("seq_write_mb_s", "bandwidth"),
                "rand_read": ("rand_read_iops", "iops"), "rand_write": ("rand_write_iops", "iops")}
WRITE_JOBS = ("seq_write", "rand_write", "sync_write", "write_verify")  # their latency is the write direction's


@dataclass(frozen=True)
class JobRun:
    job: FioJobSpec
    result: FioResult | None        # fio's report (partial when it failed)
    failure: str | None             # why the job gave no figures: fio failed (with the kernel's lines), or refused
    seconds: tuple[Progress, ...]   # fio's per-second status reports


@dataclass(frozen=True)
class DriveRuns:
    drive: StorageDrive
    key: str                        # checks.storage.drives[N]
    device: BlockDevice
    writes_refused: tuple[str, ...]  # the guard's refusals before the first write job
    runs: tuple[JobRun, ...]
    health_before: DriveHealth | None  # SMART around the write jobs (None: not written, or no SMART)
    health_after: DriveHealth | None
    wrote: bool

    @property
    def label(self) -> str:
        return self.drive.serial or self.drive.wwn or ""


@dataclass(frozen=True)
class StorageEvidence:
    fio_version: str
    dsync: bool
    drives: tuple[DriveRuns, ...]


@pytest.mark.destructive
def check_storage(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.storage
    named_drives(settings, findings,
                 how="the node showed no drive with a serial or WWN; name drives under checks.storage.drives")
    judge(collect(node, settings, run_store), settings, findings)


def collect(node: Node, settings: StorageSettings, run_store: RunStore) -> StorageEvidence:
    capabilities = fio_capabilities(node, settings.ioengine)
    drives = tuple(_drive_matrix(node, settings, index, drive, capabilities, run_store)
                   for index, drive in enumerate(settings.drives))
    return StorageEvidence(capabilities.version, capabilities.dsync, drives)


def _drive_matrix(node: Node, settings: StorageSettings, index: int, drive: StorageDrive,
                  capabilities: FioCapabilities, run_store: RunStore) -> DriveRuns:
    key = f"checks.storage.drives[{index}]"
    label = drive.serial or drive.wwn or ""
    device = resolve_drive(node, drive)
    jobs = [matrix_job(name, settings) for name in settings.jobs]
    wanted = drive.allow_destroy and any(job.writes for job in jobs)
    refused = tuple(str(r) for r in refusals(drive, device_use(node, device), key)) if wanted else ()
    may_write = wanted and not refused
    before = read_health(node, device) if may_write else None
    runs: list[JobRun] = []
    for job in jobs:
        if job.writes and not may_write:
            continue
        seconds: list[Progress] = []
        try:
            target = checked_for_writing(node, drive, key) if job.writes else device
            run = _run_job(node, job, target, settings, capabilities, label, run_store, seconds.append)
        except WriteRefused as refusal:  # the device came into use since the last job, or as fio took it
            later = [other.name for other in jobs[jobs.index(job) + 1:] if other.writes]
            runs.append(JobRun(job, None, f"not run: {refusal}"
                               + (f" (nor the write jobs after it: {', '.join(later)})" if later else ""), ()))
            may_write = False
            continue
        runs.append(run)
        if run.failure:
            break  # the drive failed or disappeared: later jobs would only repeat it
    after = read_health(node, device) if before is not None else None
    return DriveRuns(drive, key, device, refused, tuple(runs), before, after, wrote=bool(wanted and not refused))


def _run_job(node: Node, job: FioJobSpec, target: BlockDevice, settings: StorageSettings,
             capabilities: FioCapabilities, label: str, run_store: RunStore,
             on_second: Callable[[Progress], None]) -> JobRun:
    samples = run_store.samples("storage")
    seconds: list[Progress] = []

    def record(progress: Progress) -> None:
        on_second(progress)
        seconds.append(progress)
        samples.append({"drive": label, "job": job.name, "t": progress.t_s,
                        "read_mb_s": progress.read_bytes_s / MB, "write_mb_s": progress.write_bytes_s / MB,
                        "read_iops": progress.read_iops, "write_iops": progress.write_iops})

    argv = job.argv(target.path, settings.job_runtime, settings.ioengine, capabilities.dsync)
    outcome = run_fio(node, argv, _time_allowed(job, target, settings), record)
    if outcome.report_text:
        run_store.save_raw(f"fio-{label}-{job.name}.json", outcome.report_text)
    failure = None
    if outcome.failed:
        events = kernel_events(node, target.name)
        failure = (outcome.failed + (f"; kernel: {' | '.join(events)}" if events else "")
                   + ("; partial results kept" if outcome.result else ""))
    return JobRun(job, outcome.result, failure, tuple(seconds))


def _time_allowed(job: FioJobSpec, target: BlockDevice, settings: StorageSettings) -> float:
    """How long the job may take before it counts as hung: whole-device jobs at a slow hard-disk pace."""
    if not job.whole_device:
        return settings.job_runtime
    passes = 2 if job.writes else 1  # write_verify writes, then reads everything back
    return passes * (target.size_bytes or 0) / SLOWEST_SURFACE_BYTES_S + settings.job_runtime


# -- the judge: pure, on the evidence above

def judge(evidence: StorageEvidence, settings: StorageSettings, findings: Findings) -> None:
    findings.metric("fio", evidence.fio_version)
    if not evidence.dsync:
        findings.note(f"{evidence.fio_version} has no --sync=dsync: sync writes use O_SYNC (stricter than Ceph's "
                      f"O_DSYNC)")
    # per drive and job: iops, mb_s, latency_us, fit_for_ceph — context for the plots, not judged from here
    findings.metric("drives", {runs.label: judge_drive(runs, settings, findings) for runs in evidence.drives})


def judge_drive(runs: DriveRuns, settings: StorageSettings, findings: Findings) -> dict:
    label, drive = runs.label, runs.drive
    findings.note(f"{label}: {runs.device.path}" + (f" ({runs.device.model})" if runs.device.model else ""))
    if any(matrix_job(name, settings).writes for name in settings.jobs) and not drive.allow_destroy:
        findings.note(f"{label}: write jobs skipped: the profile does not allow destroying this drive's data "
                      f"(set {runs.key}.allow_destroy: true); read jobs only")
        findings.not_qualified(f"writes not tested on {drive.identity}: the profile does not allow destroying its data",
                               f"set allow_destroy: true for {drive.identity} under checks.storage.drives "
                               f"(its data will be destroyed)")
    if runs.writes_refused:
        findings.problem(f"{label}: write jobs not run: " + "; ".join(runs.writes_refused), name="write_jobs",
                         subject=label)
    measured: dict[str, Any] = {"device": runs.device.path}
    for run in runs.runs:
        if run.failure or run.result is None:
            findings.problem(f"{label} {run.job.title}: {run.failure or 'no report'}", name=f"fio_{run.job.name}",
                             subject=label)
            continue
        measured[run.job.name] = _judge_job(run, run.result, drive, settings, label, findings)
    if runs.wrote:
        _health_during_writes(runs.health_before, runs.health_after, label, findings)
    return measured


def _judge_job(run: JobRun, result: FioResult, drive: StorageDrive, settings: StorageSettings, label: str,
               findings: Findings) -> dict:
    job = run.job
    read, write = _direction(result, "read"), _direction(result, "write")
    latency = _percentiles_us(write if job.name in WRITE_JOBS else read)
    iops, bandwidth = read.iops + write.iops, read.bandwidth_bytes_s + write.bandwidth_bytes_s
    spec_field, spec_kind = SPEC_FIGURES.get(job.name, (None, None))
    spec = getattr(drive.spec, spec_field) if spec_field else None
    share = settings.min_share_of_spec

    def against_spec(kind: str, value: float, scale: float, unit: str) -> tuple[float | None, str]:
        if spec is None or spec_kind != kind:
            return None, ""
        return spec * scale * share, (f"({value / (spec * scale):.0%} of the spec sheet's {spec:,.0f} {unit}; "
                                      f"{share:.0%} required)")

    sync = job.name == "sync_write"
    low, detail = against_spec("iops", iops, 1, "IOPS")
    if sync:
        low, detail = settings.ceph_min_sync_write_iops, "(4 KiB sync writes at QD1: what Ceph's WAL asks)"
    ceph = "not fit for Ceph: drives without power-loss protection manage hundreds"
    checked = [findings.measure(f"fio_{job.name}_iops", round(iops), unit="IOPS", low=low, subject=label,
                                text=f"{job.title} IOPS", detail=detail,
                                because=ceph if sync else "below the spec sheet")]
    low, detail = against_spec("bandwidth", bandwidth, MB, "MB/s")
    checked.append(findings.measure(f"fio_{job.name}_bandwidth_bytes_per_second", bandwidth, unit="B/s", low=low,
                                    subject=label, text=f"{job.title} bandwidth", detail=detail,
                                    because="below the spec sheet"))
    limits: dict[str, float] = {name: limit for name, limit in settings.sync_write_latency_us.items()} if sync else {}
    for name in (PERCENTILES if sync else ("p99",)):
        limit = limits.get(name)
        checked.append(findings.measure(f"fio_{job.name}_latency_{name.replace('.', '_')}_microseconds",
                                        latency.get(name), unit="µs", high=limit, subject=label,
                                        text=f"{job.title} {name} completion latency",
                                        because="the profile's sync-write latency limit"))
    figures = {"iops": round(iops), "mb_s": round(bandwidth / MB, 1), "latency_us": latency}
    if sync:
        figures["fit_for_ceph"] = all(m.outcome not in ("failed", "unknown") for m in checked)
        if figures["fit_for_ceph"]:
            findings.note(f"{label}: fit for Ceph: 4 KiB sync writes at QD1 reach {round(iops):,} IOPS")
    if job.whole_device and run.seconds:
        figures.update(_slowest_second(job, run.seconds, label, findings))
    return figures


def _direction(result: FioResult, name: str) -> Direction:
    """A job's direction summed over fio's job entries (one with group_reporting)."""
    parts = [getattr(job, name) for job in result.jobs]
    if len(parts) == 1:
        return parts[0]
    return Direction(io_bytes=sum(p.io_bytes for p in parts), bandwidth_bytes_s=sum(p.bandwidth_bytes_s for p in parts),
                     iops=sum(p.iops for p in parts), runtime_ms=max(p.runtime_ms for p in parts),
                     total_ios=sum(p.total_ios for p in parts), completion_latency=None)


def _percentiles_us(direction: Direction) -> dict[str, float]:
    latency = direction.completion_latency
    if latency is None:
        return {}
    found = {name: latency.percentile(share) for name, share in PERCENTILES.items()}
    return {name: round(ns / 1000, 1) for name, ns in found.items() if ns is not None}


def _slowest_second(job: FioJobSpec, seconds: tuple[Progress, ...], label: str, findings: Findings) -> dict:
    """Where on the surface the drive was slowest (a worn or remapped region shows as a dip)."""
    slowest = min(seconds, key=lambda s: s.read_bytes_s + s.write_bytes_s)
    rate, at = slowest.read_bytes_s + slowest.write_bytes_s, (slowest.read_bytes + slowest.written_bytes) / GIB
    median_rate = sorted(s.read_bytes_s + s.write_bytes_s for s in seconds)[len(seconds) // 2]
    findings.measure(f"fio_{job.name}_slowest_second_bytes_per_second", rate, unit="B/s", subject=label,
                     text=f"{job.title}: slowest second",
                     detail=f"around {at:,.1f} GiB done (median {median_rate / MB:,.0f} MB/s)")
    return {"slowest_mb_s": round(rate / MB, 1), "slowest_at_gib": round(at, 2),
            "median_mb_s": round(median_rate / MB, 1)}


def _health_during_writes(before: DriveHealth | None, after: DriveHealth | None, label: str,
                          findings: Findings) -> None:
    if before is None or after is None:
        findings.note(f"{label}: no SMART (loop device): media-error growth during the writes not checked")
        return
    findings.measure("media_errors_during_writes", (after.media_errors or 0) - (before.media_errors or 0), high=0,
                     subject=label, text="media errors grown during the write jobs",
                     detail=f"({before.media_errors} -> {after.media_errors})",
                     because="the drive is failing under writes")
    new_bits = (after.critical_warning or 0) & ~(before.critical_warning or 0)
    if new_bits:
        findings.problem(f"{label}: critical warning 0x{new_bits:02x} appeared during the write jobs",
                         name="critical_warning_during_writes", subject=label)
