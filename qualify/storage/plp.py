"""Power-loss protection, measured: 4 KiB writes at queue depth 1 on the same drive, plain and sync.

A drive with power-loss protection acknowledges a write once it sits in capacitor-backed cache, so
O_DSYNC (or an fsync after every write) costs it almost nothing; a drive without it must reach
flash before each acknowledgement: consumer NVMe does ~80k plain 4 KiB QD1 writes a second and
1-2k synced ones. Ceph's WAL syncs every write, so a sync figure that is a small share of the plain
one means the drive is not fit for Ceph, whatever its spec sheet. Both jobs are fio write jobs:
run_fio holds the device and asks the guard again under the hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.node import Node
from qualify.parsers.fio import FioResult
from qualify.profile import PowerLossProtectionSettings, StorageDrive, StorageSettings
from qualify.storage import (
    WriteRefused,
    checked_for_writing,
    resolve_drive,
)
from qualify.storage.allowed import why_not_written
from qualify.storage.figures import DriveJudgement, Figure
from qualify.storage.jobs import FioJobSpec
from qualify.storage.runner import FioCapabilities, Progress, run_fio
from qualify.store import RunStore

STREAM = "power_loss_protection"
JOB = ("--rw=write", "--bs=4k", "--iodepth=1", "--numjobs=1")
NOT_FIT = "no effective power-loss protection: not fit for Ceph (its WAL waits for every sync write)"


def plp_jobs(settings: PowerLossProtectionSettings) -> tuple[FioJobSpec, FioJobSpec]:
    """The plain and the sync job: the same 4 KiB sequential writes at depth 1, O_DIRECT both."""
    sync = ("--sync=dsync",) if settings.sync == "dsync" else ("--fsync=1",)
    what = "O_DSYNC" if settings.sync == "dsync" else "fsync after each"
    return (FioJobSpec("plp_plain", "4 KiB write QD1 (O_DIRECT)", True, JOB),
            FioJobSpec("plp_sync", f"4 KiB write QD1 (O_DIRECT + {what})", True, (*JOB, *sync)))


@dataclass
class PlpEvidence:
    label: str
    device: str
    sync: str  # "dsync" / "fsync"
    plain_iops: float | None = None
    sync_iops: float | None = None
    plain_p99_us: float | None = None
    sync_p99_us: float | None = None
    not_run: str | None = None  # not allowed, refused by the guard, or fio failed


def collect(node: Node, drive: StorageDrive, key: str, settings: PowerLossProtectionSettings,
            storage: StorageSettings, capabilities: FioCapabilities, run_store: RunStore) -> PlpEvidence:
    label = drive.serial or drive.wwn or ""
    device = resolve_drive(node, drive)
    ev = PlpEvidence(label, device.path, settings.sync)
    ev.not_run = why_not_written(node, drive, device, key)
    if ev.not_run:
        return ev
    samples = run_store.samples(STREAM)
    for job in plp_jobs(settings):
        try:
            target = checked_for_writing(node, drive, key)  # right before each job, as the fio matrix
        except WriteRefused as refused:
            ev.not_run = str(refused)
            return ev
        argv = job.argv(target.path, settings.job_runtime, storage.ioengine, capabilities.dsync)

        def sample(p: Progress, name: str = job.name) -> None:
            samples.append({"drive": label, "job": name, "t": p.t_s, "write_iops": p.write_iops})

        outcome = run_fio(node, argv, settings.job_runtime, sample)
        if outcome.report_text:
            run_store.save_raw(f"fio-{label}-{job.name}.json", outcome.report_text)
        if outcome.failed or outcome.result is None:
            ev.not_run = f"{job.title}: {outcome.failed}"
            return ev
        iops, p99 = _write_figures(outcome.result)
        if job.name == "plp_plain":
            ev.plain_iops, ev.plain_p99_us = iops, p99
        else:
            ev.sync_iops, ev.sync_p99_us = iops, p99
    return ev


def _write_figures(result: FioResult) -> tuple[float, float | None]:
    write = result.jobs[0].write
    latency = write.completion_latency
    p99 = latency.percentile(99.0) if latency else None
    return write.iops, None if p99 is None else p99 / 1000


def judge(ev: PlpEvidence, settings: PowerLossProtectionSettings) -> DriveJudgement:
    out = DriveJudgement(ev.label)
    out.notes.append(ev.device)
    if ev.not_run:
        out.figures.append(Figure("sync_write_share_ratio", None, low=settings.min_sync_share,
                                  text="sync writes as a share of plain writes",
                                  detail=f"(not measured: {ev.not_run})"))
        return out
    plain, sync = ev.plain_iops or 0.0, ev.sync_iops or 0.0
    share = sync / plain if plain > 0 else None
    how = "O_DSYNC" if ev.sync == "dsync" else "fsync"
    out.figures.append(Figure("sync_write_share_ratio", None if share is None else round(share, 3),
                              low=settings.min_sync_share, text=f"4 KiB QD1 writes with {how} as a share of without",
                              detail=f"({sync:,.0f} vs {plain:,.0f} IOPS)", because=NOT_FIT))
    out.figures.append(Figure("plain_write_iops", round(plain), unit="IOPS", text="4 KiB QD1 writes without sync",
                              detail=_latency(ev.plain_p99_us)))
    out.figures.append(Figure("sync_write_iops", round(sync), unit="IOPS", text=f"4 KiB QD1 writes with {how}",
                              detail=_latency(ev.sync_p99_us)))
    return out


def _latency(p99_us: float | None) -> str:
    return "" if p99_us is None else f"(p99 latency {p99_us:,.0f} µs)"
