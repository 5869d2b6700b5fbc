"""Sustained write: where each writable drive's cache runs full and its bandwidth falls off.

Why: consumer, QLC and DRAM-less drives write at 1 GB/s into their cache, then fall to USB speeds;
a Ceph OSD rebuilding or backfilling writes for hours. Writes sequentially (1 MiB, QD32) for
checks.storage.sustained_duration (default: the run's duration) with bandwidth logged every second,
then reports when and after how many GiB the bandwidth dropped below falloff_share of the start.
Runs only on drives the guard allows to be written.

Judged against the drive itself, so it can fail with the defaults: the bandwidth it sustains (the
median after the falloff, else the average) must stay at or above `falloff_share` (default 0.5) of its
own start (`sustained_write_share_of_start_ratio`, subject the drive). A drive that falls to a tenth of
its start (QLC after its SLC cache) fails; one that holds its rate passes. Without a falloff the
sustained figure is the median of the run's second half. With a spec sheet
(`spec.seq_write_mb_s`) the start must reach `min_share_of_spec` of it; with `min_sustained_mb_s` the
sustained bandwidth must reach it. A run too short to tell (fewer than 6 seconds) is unknown, not passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

import pytest

from qualify.findings import Findings
from qualify.node import Node
from qualify.profile import Profile, StorageSettings
from qualify.storage import checked_for_writing
from qualify.storage.falloff import Second, find_falloff
from qualify.storage.jobs import sustained_write_job
from qualify.storage.runner import Progress, fio_capabilities, kernel_events, run_fio
from qualify.store import JsonLines, RunStore

DEFAULT_DURATION_S = 600.0
MB = 1_000_000
GIB = 1 << 30
SHARE = "sustained_write_share_of_start_ratio"


@dataclass(frozen=True)
class SustainedWrite:
    """One drive's sustained write: its seconds as fio reported them."""

    drive: str                      # serial or WWN, the measurements' subject
    spec_write_mb_s: float | None   # the spec sheet's sequential write
    seconds: tuple[Second, ...]
    failure: str | None             # fio failed: why, with the kernel's lines about the device


@dataclass(frozen=True)
class FalloffEvidence:
    writes: tuple[SustainedWrite, ...]


@pytest.mark.destructive
@pytest.mark.long
def check_storage_falloff(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.storage
    if not any(d.allow_destroy for d in settings.drives):
        findings.skip("no drive under checks.storage.drives allows destroying its data (allow_destroy: true)",
                      how="set allow_destroy: true for a drive under checks.storage.drives (its data will be "
                          "destroyed)")
    judge(collect(node, settings, profile.duration or DEFAULT_DURATION_S, run_store), settings, findings)


def collect(node: Node, settings: StorageSettings, run_duration: float, run_store: RunStore) -> FalloffEvidence:
    duration = settings.sustained_duration or run_duration
    capabilities = fio_capabilities(node, settings.ioengine)
    job = sustained_write_job()
    samples = run_store.samples("storage_falloff")
    writes = []
    for index, drive in enumerate(settings.drives):
        if not drive.allow_destroy:
            continue
        label = drive.serial or drive.wwn or ""
        device = checked_for_writing(node, drive, f"checks.storage.drives[{index}]")
        seconds: list[Second] = []
        outcome = run_fio(node, job.argv(device.path, duration, settings.ioengine, capabilities.dsync), duration,
                          _recorder(label, seconds, samples))
        if outcome.report_text:
            run_store.save_raw(f"fio-{label}-sustained_write.json", outcome.report_text)
        failure = None
        if outcome.failed:
            events = kernel_events(node, device.name)
            failure = outcome.failed + (f"; kernel: {' | '.join(events)}" if events else "")
        writes.append(SustainedWrite(label, drive.spec.seq_write_mb_s, tuple(seconds), failure))
    return FalloffEvidence(tuple(writes))


def _recorder(label: str, seconds: list[Second], samples: JsonLines) -> Callable[[Progress], None]:
    def record(progress: Progress) -> None:
        seconds.append(Second(progress.t_s, progress.write_bytes_s, progress.written_bytes))
        samples.append({"drive": label, "t": progress.t_s, "write_mb_s": progress.write_bytes_s / MB,
                        "written_gib": progress.written_bytes / GIB})
    return record


def judge(evidence: FalloffEvidence, settings: StorageSettings, findings: Findings) -> None:
    for write in evidence.writes:
        judge_drive(write, settings, findings)


def judge_drive(write: SustainedWrite, settings: StorageSettings, findings: Findings) -> None:
    label, share = write.drive, settings.falloff_share
    if write.failure:
        findings.problem(f"{label} sustained write: {write.failure}", name="sustained_write", subject=label)
    falloff = find_falloff(list(write.seconds), share)
    if falloff is None:
        findings.measure(SHARE, None, low=share, subject=label, text="sustained share of the start bandwidth",
                         detail=f"only {len(write.seconds)} seconds of sustained write: too short to find a falloff")
        return
    initial = falloff.initial_bytes_s
    spec = write.spec_write_mb_s
    findings.measure("sustained_write_start_bytes_per_second", initial, unit="B/s", subject=label,
                     low=spec * MB * settings.min_share_of_spec if spec else None, text="start bandwidth",
                     detail=f"({initial / (spec * MB):.0%} of the spec sheet's {spec:,.0f} MB/s; "
                            f"{settings.min_share_of_spec:.0%} required)" if spec else "",
                     because="the drive does not reach its rated sequential write even into its cache")
    if falloff.at_s is None:  # the late rate, not the average: a drive that sagged to 60 % sustains 60 %
        steady = median(s.bytes_s for s in write.seconds[len(write.seconds) // 2:])
        how = f"no cache falloff in {write.seconds[-1].t_s:.0f} s; median of its second half"
    else:
        steady = falloff.after_bytes_s or 0.0
        written = falloff.written_before_bytes or 0
        findings.measure("cache_falloff_seconds", falloff.at_s, unit="s", subject=label, text="cache falloff after",
                         detail=f"and {written / GIB:,.2f} GiB written")
        findings.measure("cache_falloff_written_bytes", written, unit="B", subject=label,
                         text="written before the cache falloff")
        how = f"median after the falloff at {falloff.at_s:.0f} s"
    findings.measure("sustained_write_steady_bytes_per_second", steady, unit="B/s", subject=label,
                     low=settings.min_sustained_mb_s * MB if settings.min_sustained_mb_s else None,
                     text="sustained bandwidth", detail=f"({how})", because="the profile's min_sustained_mb_s")
    findings.measure(SHARE, steady / initial if initial else None, low=share, subject=label,
                     text="sustained share of the start bandwidth",
                     detail=f"({steady / MB:,.0f} of {initial / MB:,.0f} MB/s)",
                     because="the drive cannot keep its write rate once its cache is full (QLC, DRAM-less or "
                             "consumer drives): a Ceph backfill or rebuild runs at the low rate")
