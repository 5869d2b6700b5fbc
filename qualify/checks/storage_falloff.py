"""Sustained write: where each writable drive's cache runs full and its bandwidth falls off.

Why: consumer, QLC and DRAM-less drives write at 1 GB/s into their cache, then fall to USB speeds;
a Ceph OSD rebuilding or backfilling writes for hours. Writes sequentially (1 MiB, QD32) for
checks.storage.sustained_duration (default: the run's duration) with bandwidth logged every second,
then reports when and after how many GiB the bandwidth dropped below falloff_share of the start.
Runs only on drives the guard allows to be written.
"""

from __future__ import annotations

import pytest

from qualify.findings import Findings
from qualify.node import Node
from qualify.profile import Profile
from qualify.storage import checked_for_writing
from qualify.storage.falloff import Second, find_falloff
from qualify.storage.jobs import sustained_write_job
from qualify.storage.runner import Progress, fio_capabilities, kernel_events, run_fio
from qualify.store import RunStore

DEFAULT_DURATION_S = 600.0
MB = 1_000_000
GIB = 1 << 30


@pytest.mark.destructive
@pytest.mark.long
def check_storage_falloff(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.storage
    writable = [(i, d) for i, d in enumerate(settings.drives) if d.allow_destroy]
    if not writable:
        findings.skip("no drive under checks.storage.drives allows destroying its data (allow_destroy: true)")
    duration = settings.sustained_duration or profile.duration or DEFAULT_DURATION_S
    capabilities = fio_capabilities(node, settings.ioengine)
    job = sustained_write_job()
    samples = run_store.samples("storage_falloff")
    results: dict[str, dict] = {}
    findings.metric("drives", results)
    findings.metric("falloff_share", settings.falloff_share)
    for index, drive in writable:
        label = drive.serial or drive.wwn or ""
        device = checked_for_writing(node, drive, f"checks.storage.drives[{index}]")
        seconds: list[Second] = []

        def record(progress: Progress) -> None:
            seconds.append(Second(progress.t_s, progress.write_bytes_s, progress.written_bytes))
            samples.append({"drive": label, "t": progress.t_s, "write_mb_s": progress.write_bytes_s / MB,
                            "written_gib": progress.written_bytes / GIB})

        outcome = run_fio(node, job.argv(device.path, duration, settings.ioengine, capabilities.dsync), duration, record)
        if outcome.report_text:
            run_store.save_raw(f"fio-{label}-sustained_write.json", outcome.report_text)
        if outcome.failed:
            events = kernel_events(node, device.name)
            findings.problem(f"{label} sustained write: {outcome.failed}"
                             + (f"; kernel: {' | '.join(events)}" if events else ""))
        results[label] = _judge(label, seconds, settings.falloff_share, settings.min_sustained_mb_s, findings)


def _judge(label: str, seconds: list[Second], share: float, min_mb_s: float | None, findings: Findings) -> dict:
    falloff = find_falloff(seconds, share)
    if falloff is None:
        findings.note(f"{label}: only {len(seconds)} seconds of sustained write: too short to find a falloff")
        return {"seconds": len(seconds)}
    initial, overall = falloff.initial_bytes_s / MB, falloff.overall_bytes_s / MB
    result = {"initial_mb_s": round(initial, 1), "overall_mb_s": round(overall, 1), "seconds": len(seconds)}
    if falloff.at_s is None:
        findings.note(f"{label}: no cache falloff in {seconds[-1].t_s:.0f} s: bandwidth stayed above "
                      f"{share:.0%} of the initial {initial:,.0f} MB/s (average {overall:,.0f} MB/s)")
        steady = overall
    else:
        steady = (falloff.after_bytes_s or 0) / MB
        result.update(falloff_s=falloff.at_s, falloff_gib=round((falloff.written_before_bytes or 0) / GIB, 2),
                      after_mb_s=round(steady, 1))
        findings.note(f"{label}: cache falloff after {falloff.at_s:.0f} s and {result['falloff_gib']:,} GiB written: "
                      f"from {initial:,.0f} MB/s to {steady:,.0f} MB/s ({steady / initial:.0%} of the initial)")
    if min_mb_s is not None:
        sentence = f"{label}: sustained bandwidth {steady:,.0f} MB/s (at least {min_mb_s:,.0f} MB/s expected)"
        (findings.problem if steady < min_mb_s else findings.note)(sentence)
    return result
