"""Storage performance: the fio matrix on every drive named in the profile, and whether it is fit for Ceph.

Why: used enterprise U.2 drives behind adapter chains, and consumer drives that cannot do what
Ceph's BlueStore WAL asks (4 KiB O_DSYNC writes at depth 1: hundreds of IOPS without power-loss
protection, tens of thousands with it). Read jobs run on any named drive; write jobs only where the
guard (qualify/storage/guard.py) allows them, asked again right before each job. SMART is read
before and after the writes: media errors or critical warnings that grow during the run fail it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.fio import Direction, FioResult
from qualify.parsers.smartctl import DriveHealth
from qualify.profile import Profile, StorageDrive, StorageSettings
from qualify.storage import BlockDevice, WriteRefused, checked_for_writing, device_use, refusals, resolve_drive
from qualify.storage.health import read_health
from qualify.storage.jobs import PERCENTILES, FioJobSpec, matrix_job
from qualify.storage.runner import FioCapabilities, Progress, fio_capabilities, kernel_events, run_fio
from qualify.store import RunStore

MB = 1_000_000
GIB = 1 << 30
SLOWEST_SURFACE_BYTES_S = 20 * MB  # a whole-device job slower than this counts as hung
# Which spec-sheet figure each job is held against: (DriveSpec field, unit, measured value from a direction)
SPEC_FIGURES = {"seq_read": ("seq_read_mb_s", "MB/s"), "seq_write": ("seq_write_mb_s", "MB/s"),
                "rand_read": ("rand_read_iops", "IOPS"), "rand_write": ("rand_write_iops", "IOPS")}


@pytest.mark.destructive
def check_storage(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.storage
    if not settings.drives:
        findings.skip("no drive is named under checks.storage.drives in the profile (by serial or wwn)",
                      how="the node showed no drive with a serial or WWN; name drives under checks.storage.drives")
    capabilities = fio_capabilities(node, settings.ioengine)
    findings.metric("fio", capabilities.version)
    if not capabilities.dsync:
        findings.note(f"{capabilities.version} has no --sync=dsync: sync writes use O_SYNC (stricter than Ceph's O_DSYNC)")
    results: dict[str, dict] = {}
    findings.metric("drives", results)
    for index, drive in enumerate(settings.drives):
        results[_label(drive)] = _drive_matrix(node, settings, index, drive, capabilities, findings, run_store)


def _label(drive: StorageDrive) -> str:
    return drive.serial or drive.wwn or ""


def _drive_matrix(node: Node, settings: StorageSettings, index: int, drive: StorageDrive,
                  capabilities: FioCapabilities, findings: Findings, run_store: RunStore) -> dict:
    key = f"checks.storage.drives[{index}]"
    label = _label(drive)
    device = resolve_drive(node, drive)
    findings.note(f"{label}: {device.path}" + (f" ({device.model})" if device.model else ""))
    jobs = [matrix_job(name, settings) for name in settings.jobs]
    may_write = _may_write(node, drive, key, any(job.writes for job in jobs), findings)
    before = read_health(node, device) if may_write else None
    measured: dict[str, dict] = {"device": device.path}
    writes_refused = not may_write
    for job in jobs:
        if job.writes and writes_refused:
            continue
        try:
            target = checked_for_writing(node, drive, key) if job.writes else device
        except WriteRefused as refused:  # the device came into use since the last job
            findings.problem(f"{label} {job.title}: not run: {refused}")
            writes_refused = True
            continue
        seconds: list[Progress] = []
        result = _run_job(node, job, target, settings, capabilities, label, findings, run_store, seconds.append)
        if result is None:
            break  # the drive failed or disappeared: later jobs would only repeat it
        measured[job.name] = _judge_job(job, result, drive, settings, label, findings)
        if job.whole_device:
            measured[job.name].update(_slowest_second(job, seconds, label, findings))
    if may_write:
        _health_during_writes(before, read_health(node, device), label, findings)
    return measured


def _may_write(node: Node, drive: StorageDrive, key: str, wanted: bool, findings: Findings) -> bool:
    if not wanted:
        return False
    if not drive.allow_destroy:
        findings.note(f"{_label(drive)}: write jobs skipped: the profile does not allow destroying this drive's "
                      f"data (set {key}.allow_destroy: true); read jobs only")
        findings.not_qualified(f"writes not tested on {drive.identity}: the profile does not allow destroying its data",
                               f"set allow_destroy: true for {drive.identity} under checks.storage.drives "
                               f"(its data will be destroyed)")
        return False
    found = refusals(drive, device_use(node, resolve_drive(node, drive)), key)
    if found:
        findings.problem(f"{_label(drive)}: write jobs not run: " + "; ".join(str(r) for r in found))
        return False
    return True


def _run_job(node: Node, job: FioJobSpec, target: BlockDevice, settings: StorageSettings,
             capabilities: FioCapabilities, label: str, findings: Findings, run_store: RunStore,
             on_second: Callable[[Progress], None]) -> FioResult | None:
    samples = run_store.samples("storage")

    def record(progress: Progress) -> None:
        on_second(progress)
        samples.append({"drive": label, "job": job.name, "t": progress.t_s,
                        "read_mb_s": progress.read_bytes_s / MB, "write_mb_s": progress.write_bytes_s / MB,
                        "read_iops": progress.read_iops, "write_iops": progress.write_iops})

    argv = job.argv(target.path, settings.job_runtime, settings.ioengine, capabilities.dsync)
    outcome = run_fio(node, argv, _time_allowed(job, target, settings), record)
    if outcome.report_text:
        run_store.save_raw(f"fio-{label}-{job.name}.json", outcome.report_text)
    if outcome.failed:
        events = kernel_events(node, target.name)
        findings.problem(f"{label} {job.title}: {outcome.failed}"
                         + (f"; kernel: {' | '.join(events)}" if events else "")
                         + ("; partial results kept" if outcome.result else ""))
        return None
    return outcome.result


def _time_allowed(job: FioJobSpec, target: BlockDevice, settings: StorageSettings) -> float:
    """How long the job may take before it counts as hung: whole-device jobs at a slow hard-disk pace."""
    if not job.whole_device:
        return settings.job_runtime
    passes = 2 if job.writes else 1  # write_verify writes, then reads everything back
    return passes * (target.size_bytes or 0) / SLOWEST_SURFACE_BYTES_S + settings.job_runtime


def _slowest_second(job: FioJobSpec, seconds: list[Progress], label: str, findings: Findings) -> dict:
    """Where on the surface the drive was slowest (a worn or remapped region shows as a dip)."""
    if not seconds:
        return {}
    slowest = min(seconds, key=lambda s: s.read_bytes_s + s.write_bytes_s)
    rate, at = (slowest.read_bytes_s + slowest.write_bytes_s) / MB, (slowest.read_bytes + slowest.written_bytes) / GIB
    median_rate = sorted(s.read_bytes_s + s.write_bytes_s for s in seconds)[len(seconds) // 2] / MB
    findings.note(f"{label} {job.title}: slowest second {rate:,.0f} MB/s around {at:,.1f} GiB done "
                  f"(median {median_rate:,.0f} MB/s)")
    return {"slowest_mb_s": round(rate, 1), "slowest_at_gib": round(at, 2), "median_mb_s": round(median_rate, 1)}


def _judge_job(job: FioJobSpec, result: FioResult, drive: StorageDrive, settings: StorageSettings, label: str,
               findings: Findings) -> dict:
    read, write = _direction(result, "read"), _direction(result, "write")
    main = write if job.name in ("seq_write", "rand_write", "sync_write", "write_verify") else read
    figures = {"iops": round(read.iops + write.iops), "mb_s": round((read.bandwidth_bytes_s + write.bandwidth_bytes_s) / MB, 1),
               "latency_us": _percentiles_us(main)}
    findings.note(f"{label} {job.title}: {figures['iops']:,} IOPS, {figures['mb_s']:,} MB/s"
                  + (f", p99 {figures['latency_us']['p99']:,} µs" if "p99" in figures["latency_us"] else ""))
    if job.name in SPEC_FIGURES:
        _against_spec(job, figures, drive, settings, label, findings)
    if job.name == "sync_write":
        figures["fit_for_ceph"] = _ceph_fitness(figures, settings, label, findings)
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
    return {name: round(latency.percentile(share) / 1000, 1) for name, share in PERCENTILES.items()
            if latency.percentile(share) is not None}


def _against_spec(job: FioJobSpec, figures: dict, drive: StorageDrive, settings: StorageSettings, label: str,
                  findings: Findings) -> None:
    field, unit = SPEC_FIGURES[job.name]
    spec = getattr(drive.spec, field)
    if spec is None:
        return
    value = figures["mb_s"] if unit == "MB/s" else figures["iops"]
    needed = spec * settings.min_share_of_spec
    sentence = (f"{label} {job.title}: {value:,.0f} {unit} is {value / spec:.0%} of the spec sheet's "
                f"{spec:,.0f} {unit} (at least {settings.min_share_of_spec:.0%} = {needed:,.0f} {unit} expected)")
    if value < needed:
        findings.problem(sentence)
    else:
        findings.note(sentence)


def _ceph_fitness(figures: dict, settings: StorageSettings, label: str, findings: Findings) -> bool:
    iops, minimum = figures["iops"], settings.ceph_min_sync_write_iops
    fit = iops >= minimum
    if fit:
        findings.note(f"{label}: fit for Ceph: 4 KiB sync writes at QD1 reach {iops:,} IOPS (at least {minimum:,.0f} needed)")
    else:
        findings.problem(f"{label}: not fit for Ceph: 4 KiB sync writes at QD1 reach only {iops:,} IOPS, "
                         f"below {minimum:,.0f} (drives without power-loss protection manage hundreds)")
    for name, limit in settings.sync_write_latency_us.items():
        value = figures["latency_us"].get(name)
        if value is not None and value > limit:
            fit = False
            findings.problem(f"{label}: sync-write {name} latency {value:,} µs exceeds the limit of {limit:,.0f} µs")
    return fit


def _health_during_writes(before: DriveHealth | None, after: DriveHealth | None, label: str,
                          findings: Findings) -> None:
    if before is None or after is None:
        findings.note(f"{label}: no SMART (loop device): media-error growth during the writes not checked")
        return
    grown = (after.media_errors or 0) - (before.media_errors or 0)
    if grown > 0:
        findings.problem(f"{label}: media errors grew by {grown} during the write jobs "
                         f"({before.media_errors} -> {after.media_errors})")
    new_bits = (after.critical_warning or 0) & ~(before.critical_warning or 0)
    if new_bits:
        findings.problem(f"{label}: critical warning 0x{new_bits:02x} appeared during the write jobs")
    if grown <= 0 and not new_bits:
        findings.note(f"{label}: SMART unchanged by the writes (media errors {after.media_errors}, "
                      f"critical warning 0x{after.critical_warning or 0:02x})")
