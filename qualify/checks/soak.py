"""Soak: the node alternates idle and all-CPU load phases for hours while the freeze watch runs.

Why: the seed's engineering-sample board froze about 12 h after boot, mostly idle (deep C-states),
not under load. The watch (qualify/watch, started for every run) records freezes, reboots and kernel
events; this check paces the phases, shows progress and judges what the watch saw during the soak.
Runs only when asked for (`qualify soak NODE`, make soak, or CHECKS=soak): it takes hours.

Judged only on its own window: watch events from its start on, its telemetry in
samples/telemetry-soak.jsonl. Every freeze and reboot fails it with the watch's sentence (the time of
the last heartbeat); measurements: kernel_faults_total (events of the profile's failing severities,
limit 0), freezes_total, reboots_total, kernel_events_total, duration_seconds.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest

from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node
from qualify.profile import Profile
from qualify.store import RunStore, read_records, utc_now
from qualify.telemetry import TelemetryStream, start_telemetry, stream_for
from qualify.tools.stress_ng import StressJob, spawn_stress
from qualify.watch.progress import SoakProgress

NAME = "soak"
PHASES = ("idle", "load")
_ASKED_FOR = re.compile(r"(?<!not )\bsoak\b")  # CHECKS=soak / "microcode or soak", not "not soak"


@pytest.mark.long
def check_soak(node: Node, profile: Profile, findings: Findings, run_store: RunStore,
               request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    if not _ASKED_FOR.search(request.config.getoption("keyword") or ""):
        findings.skip("the soak runs only when asked for: `qualify soak NODE` (make soak), or CHECKS=soak",
                      how="it takes hours: run `qualify soak NODE` (make soak NODE=...) when the node can be spared")
    settings = profile.checks.soak
    duration = profile.duration or settings.duration
    if not profile.watch.enabled:
        findings.note("warning: the freeze watch is off in this profile (watch.enabled: false): "
                      "freezes and reboots are not detected during this soak")
    node.require("stress-ng")
    started_utc, started = utc_now(), time.monotonic()
    telemetry = _start_telemetry(node, profile, run_store, findings)
    progress = SoakProgress(node.name, run_store.run_dir, duration, settings.progress_interval)
    phases = 0
    try:
        with capsys.disabled(), progress:  # progress goes to the operator's terminal, not pytest's capture
            while (left := duration - (time.monotonic() - started)) > 0:
                kind = PHASES[phases % 2]
                length = min(left, settings.idle_phase if kind == "idle" else settings.load_phase)
                run_store.samples("soak_phases").append({"t": utc_now(), "phase": kind, "index": phases,
                                                         "planned_s": round(length, 1)})
                _run_phase(node, kind, length, progress)
                phases += 1
    finally:
        summary = telemetry.stop() if telemetry else None
    elapsed = time.monotonic() - started
    findings.measure("duration_seconds", round(elapsed), unit="s", text="soak length")
    findings.metric("phases", phases)
    judge(findings, node.name, [r for r in read_records(run_store.run_dir)
                                if r["kind"] == "event" and r["t"] >= started_utc], elapsed, phases)
    for sentence in summary.sentences(profile.telemetry.interval) if summary else []:
        findings.note(sentence)


def _start_telemetry(node: Node, profile: Profile, run_store: RunStore, findings: Findings) -> TelemetryStream | None:
    """Temperatures, clocks and throttling beside the watch; the soak goes on without them."""
    try:
        return start_telemetry(node, run_store, profile.telemetry, stream_for(NAME))
    except QualifyError as exc:
        findings.note(f"no telemetry during the soak: {exc}")
        return None


def _run_phase(node: Node, kind: str, length_s: float, progress: SoakProgress) -> None:
    ends = time.monotonic() + length_s
    load = (spawn_stress(node, StressJob("cpu", length_s, metrics=False, quiet=True))
            if kind == "load" else None)
    try:
        while (now := time.monotonic()) < ends:
            progress.update(kind)
            time.sleep(min(1.0, ends - now))
    finally:
        if load:
            load.stop()


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def judge(findings: Findings, name: str, events: list[dict[str, Any]], elapsed: float, phases: int) -> None:
    """What the watch saw during the soak's window: every freeze, reboot and failing kernel event fails it."""
    span = f"the {_human(elapsed)} soak ({phases} idle/load phases)"
    freezes = [e for e in events if e.get("event") == "freeze"]
    reboots = [e for e in events if e.get("event") == "reboot"]
    kernel = [e for e in events if e.get("source") == "kernel"]
    failing = [e for e in kernel if e.get("fails_run")]
    findings.metric("freezes", len(freezes))
    findings.metric("reboots", len(reboots))
    findings.metric("kernel_events", dict(Counter(e["event"] for e in kernel)))
    for event in freezes + reboots:  # each with its time: the watch's own sentence leads
        findings.problem(event["message"], name=event["event"])
    findings.measure("freezes_total", len(freezes), text=f"freezes during {span}")
    findings.measure("reboots_total", len(reboots), text=f"unexpected reboots during {span}")
    kinds = Counter(e["event"] for e in failing)
    findings.measure("kernel_faults_total", len(failing), high=0, text=f"kernel faults during {span}",
                     detail=(f"({', '.join(f'{n} {k}' for k, n in kinds.items())}; first: {failing[0]['message']})"
                             if failing else ""),
                     because="the kernel reported errors of a failing severity (profile watch.kernel_log.fail_on)")
    findings.measure("kernel_events_total", len(kernel), text=f"kernel events during {span}")
    if not freezes and not reboots:
        findings.note(f"{name} neither froze nor rebooted during {span}")
