"""Full-surface integrity of every drive allowed to be destroyed, after a fast fake-capacity probe.

Why: a second-hand or too-cheap drive can claim more than it stores (the controller wraps high offsets
onto low ones, or drops the writes), and a used one can hold worn stretches that return wrong data or
crawl. f3 writes and reads back the whole claimed capacity; its users show that fake drives pass a
quick probe, so the probe only comes first (seconds: unique blocks at exponentially spaced offsets,
written then read back, naming the real capacity when blocks alias) and the surface pass follows:
every block (or `share` of them, spread over the surface) written with its offset and the run's
nonce, read back with O_DIRECT, failing at the first mismatch with its offset and what the block held
instead. Throughput over the surface is stored as samples as they arrive and plotted; stretches below
a share of the median are slow zones. Destructive: only drives with allow_destroy, every write behind
the guard and the device hold (qualify/storage/integrity.py).
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from qualify.findings import Findings, format_value
from qualify.node import Node
from qualify.profile import DriveIntegritySettings, Profile, StorageDrive
from qualify.storage import (
    WriteRefused,
    checked_for_writing,
    resolve_drive,
)
from qualify.storage.allowed import why_not_written
from qualify.storage.figures import DriveJudgement, Figure
from qualify.storage.integrity import (
    HOLDS,
    Capacity,
    Geometry,
    ProbeBlock,
    Rate,
    SurfaceOutcome,
    binary_size,
    capacity_from_probe,
    probe_offsets,
    run_probe,
    run_surface,
    slow_zones,
    surface_regions,
)
from qualify.storage.named import named_drives
from qualify.store import RunStore

STREAM = "drive_integrity"  # throughput samples over the surface
VERDICT = "integrity_verdict"


class Terminal(Protocol):
    def disabled(self) -> AbstractContextManager[None]: ...


@dataclass
class IntegrityEvidence:
    label: str
    device: str
    claimed: int
    not_run: str | None = None  # why nothing was written (not allowed, refused by the guard)
    probe: list[ProbeBlock] | None = None
    probe_failed: str | None = None
    surface: SurfaceOutcome | None = None
    regions: list[tuple[int, int]] = field(default_factory=list)  # of the surface pass: [start, end)
    surface_skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def tested_bytes(self) -> int:
        return sum(end - start for start, end in self.regions)

    def below(self, offset: int) -> int:
        """Bytes of the tested stretches below `offset` (known good when the pass stopped there)."""
        return sum(max(0, min(end, offset) - start) for start, end in self.regions)


@pytest.mark.destructive
def check_drive_integrity(node: Node, profile: Profile, findings: Findings, run_store: RunStore,
                          capsys: pytest.CaptureFixture[str]) -> None:
    drives = named_drives(profile.checks.storage, findings,
                          how="name the drives under checks.storage.drives, with allow_destroy: true for those to test")
    settings = profile.checks.drive_integrity
    if not (settings.probe or settings.surface):
        findings.skip("drive_integrity.probe and drive_integrity.surface are both off in the profile")
    judged = []
    for index, drive in enumerate(drives):
        evidence = collect(node, drive, f"checks.storage.drives[{index}]", settings, run_store,
                           _progress(node.name, drive, settings, capsys))
        judged.append(judge(evidence, settings))
    findings.metric("verdicts", {j.subject: j.line for j in judged})
    findings.metric("slow_zone_share", settings.slow_zone_share)  # the plot draws the slow-zone line
    for judgement in judged:
        judgement.record(findings, VERDICT)


# ---------------------------------------------------------------- collect (I/O)

def collect(node: Node, drive: StorageDrive, key: str, settings: DriveIntegritySettings, run_store: RunStore,
            progress: Callable[[Rate], None]) -> IntegrityEvidence:
    label = drive.serial or drive.wwn or ""
    device = resolve_drive(node, drive)
    ev = IntegrityEvidence(label=label, device=device.path, claimed=device.size_bytes or 0)
    ev.not_run = why_not_written(node, drive, device, key)
    if ev.not_run:
        return ev
    geometry = Geometry(nonce=secrets.randbits(63), block=settings.block_size, chunk=settings.chunk_mib << 20,
                        threads=settings.threads, interval_s=settings.sample_interval)
    try:
        if settings.probe:
            target = checked_for_writing(node, drive, key)  # asked again right before the write, as the fio matrix
            offsets = probe_offsets(ev.claimed, geometry.block, settings.probe_per_octave)
            ev.probe, text, ev.probe_failed = run_probe(node, target.path, geometry, offsets)
            run_store.save_raw(f"integrity-probe-{label}.txt", text)
            if ev.probe_failed or capacity_from_probe(ev.claimed, ev.probe).fake:
                ev.surface_skipped = "the probe failed" if ev.probe_failed else "the probe already rejected the drive"
                return ev
        if not settings.surface:
            ev.surface_skipped = "drive_integrity.surface is off in the profile"
            return ev
        regions = surface_regions(ev.claimed, settings.share, geometry.block, geometry.chunk, settings.zones)
        ev.regions = regions
        if settings.share < 1:
            ev.notes.append(f"surface pass over {settings.share:.0%} of the drive in {len(regions)} stretches "
                            f"(drive_integrity.share)")
        target = checked_for_writing(node, drive, key)
        samples = run_store.samples(STREAM)

        def record(rate: Rate) -> None:
            samples.append({"t": time.time(), "drive": label, "phase": rate.phase, "t_s": rate.t_s,
                            "from": rate.start, "to": rate.end, "bytes_per_second": rate.bytes_per_s,
                            "done": rate.done, "total": rate.total})
            progress(rate)

        ev.surface = run_surface(node, target.path, geometry, regions, record)
    except WriteRefused as refused:  # the drive came into use since the last look
        ev.not_run = str(refused)
    return ev


def _progress(node_name: str, drive: StorageDrive, settings: DriveIntegritySettings,
              terminal: Terminal) -> Callable[[Rate], None]:
    """Progress with ETA on the operator's terminal, every progress_interval (both passes counted)."""
    label = drive.serial or drive.wwn
    shown = [0.0]

    def show(rate: Rate) -> None:
        if time.monotonic() - shown[0] < settings.progress_interval and rate.done < rate.total:
            return
        shown[0] = time.monotonic()
        left = rate.total - rate.done + (rate.total if rate.phase == "write" else 0)
        eta = left / rate.bytes_per_s if rate.bytes_per_s > 0 else float("inf")
        line = (f"{node_name}: drive_integrity {label}: {rate.phase} pass {rate.done / max(1, rate.total):.0%} "
                f"({binary_size(rate.done)} of {binary_size(rate.total)}) at {format_value(rate.bytes_per_s, 'B/s')}"
                f", about {_hms(eta)} left" + (" (then the read-back)" if rate.phase == "write" else ""))
        with terminal.disabled():
            print(line, file=sys.stderr, flush=True)

    return show


def _hms(seconds: float) -> str:
    if seconds == float("inf"):
        return "an unknown time"
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# ---------------------------------------------------------------- judge (pure)

def judge(ev: IntegrityEvidence, settings: DriveIntegritySettings) -> DriveJudgement:
    out = DriveJudgement(ev.label)
    out.notes.append(ev.device)
    out.notes.extend(ev.notes)
    if ev.not_run:
        out.figures.append(Figure("integrity_tested", None, low=1, text="full-surface integrity",
                                  detail=f"not run: {ev.not_run}"))
        return out
    if ev.probe is not None or ev.probe_failed:
        out.figures.append(_capacity_figure(ev))
    if ev.surface_skipped:
        out.notes.append(f"surface pass not run: {ev.surface_skipped}")
    if ev.surface is not None:
        out.figures.extend(_surface_figures(ev, ev.surface, settings))
    return out


def _capacity_figure(ev: IntegrityEvidence) -> Figure:
    if ev.probe_failed or not ev.probe:
        return Figure("real_capacity_bytes", None, unit="B", low=ev.claimed, text="real capacity",
                      detail=f"(fake-capacity probe: {ev.probe_failed or 'no block was probed'})")
    capacity: Capacity = capacity_from_probe(ev.claimed, ev.probe)
    if not capacity.fake:
        return Figure("real_capacity_bytes", capacity.real_bytes, unit="B", low=ev.claimed, text="real capacity",
                      detail=f"(fake-capacity probe: {capacity.sentence()})")
    return Figure("real_capacity_bytes", capacity.real_bytes, unit="B", low=ev.claimed,
                  text=f"{capacity.claims}, {capacity.holds}", detail=f"({capacity.why()})",
                  because="a drive that claims more than it holds loses what is written beyond that")


def _surface_figures(ev: IntegrityEvidence, surface: SurfaceOutcome, settings: DriveIntegritySettings) -> list[Figure]:
    if surface.failed:
        return [Figure("verified_bytes", None, unit="B", low=ev.tested_bytes, text="blocks read back as written",
                       detail=f"(surface pass: {surface.failed})")]
    figures = [_verified(ev, surface)]
    for phase, (median, zones) in slow_zones(surface.rates, settings.slow_zone_share, settings.sample_interval).items():
        figures.append(Figure(f"{phase}_median_bytes_per_second", round(median), unit="B/s",
                              text=f"median {phase} speed over the surface"))
        for zone in zones:
            figures.append(Figure(f"slow_{phase}_zone_bytes_per_second", round(zone.bytes_per_s), unit="B/s",
                                  low=round(zone.threshold), warn=not settings.slow_zones_fail,
                                  text=f"{phase} speed from {binary_size(zone.start)} to {binary_size(zone.end)}",
                                  detail=f"({zone.bytes_per_s / zone.median:.0%} of the median)",
                                  because="a slow stretch of a used drive is often worn or remapped flash"))
    return figures


def _verified(ev: IntegrityEvidence, surface: SurfaceOutcome) -> Figure:
    text = "blocks read back as written"
    if surface.io_error:
        error = surface.io_error
        return Figure("verified_bytes", ev.below(error.offset), unit="B", low=ev.tested_bytes, text=text,
                      detail=f"(I/O error while {'writing' if error.phase == 'write' else 'reading'} at offset "
                             f"{error.offset:,} = {binary_size(error.offset)}: errno {error.errno} {error.message})",
                      because="the drive cannot store or return every block it claims")
    if surface.mismatch:
        bad = surface.mismatch
        holds = HOLDS[bad.kind].format(held=f"offset {bad.held or 0:,} = {binary_size(bad.held or 0)}")
        return Figure("verified_bytes", ev.below(bad.offset), unit="B", low=ev.tested_bytes, text=text,
                      detail=f"(first mismatch at offset {bad.offset:,} = {binary_size(bad.offset)}: it holds {holds})",
                      because="a block did not read back as written")
    return Figure("verified_bytes", surface.done.get("read", (0, 0.0))[0], unit="B", low=ev.tested_bytes, text=text)
