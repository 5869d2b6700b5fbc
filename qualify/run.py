"""The lifecycle of one qualification run, apart from pytest (qualify/plugin.py only adapts pytest to it).

start   — profile (with plug-in overlays), DURATION and labels; the run directory.
begin   — `run_started`, the connection, the inventory, the freeze watch.
record  — one check's result (outcome, reasons, measurements, not-qualified parts) as it ends.
finish  — `run_finished`; the verdict judged in memory from the records and written to verdict.json;
          the report rendered best-effort: rendering can never change the verdict or the exit code.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qualify import __version__
from qualify.cluster.history import shifts
from qualify.cluster.view import node_verdicts
from qualify.discovery import complete_profile
from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.inventory import collect_inventory
from qualify.node import Node, connect
from qualify.options import duration_option, parse_labels
from qualify.overlays import resolve_profile
from qualify.profile import LoadedProfile, Profile
from qualify.store import RunStore, read_records, reports_dir
from qualify.terminal import say
from qualify.verdict import build_verdict, write_verdict
from qualify.watch import Watcher, start_watch


@dataclass
class Run:
    loaded: LoadedProfile
    store: RunStore
    labels: dict[str, str]
    node: Node | None = None
    connect_error: QualifyError | None = None
    interrupted: str | None = None
    watcher: Watcher | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    _live: LiveReport | None = None
    peers: tuple[str, ...] = ()  # the other nodes of a mesh run (and --peers): where discovered links go

    @property
    def profile(self) -> Profile:
        return self.loaded.profile

    @property
    def name(self) -> str:
        return self.loaded.node

    @classmethod
    def start(cls, node: str, profile_path: str | None, duration: str | None, labels: list[str],
              reports: str | None, overlays: Sequence[str] = (), peers: Sequence[str] = ()) -> Run:
        loaded = resolve_profile(node, profile_path, announce=True, extra=[Path(p) for p in overlays])
        if duration:
            seconds = duration_option(duration)
            loaded = loaded.model_copy(update={"profile": loaded.profile.model_copy(update={"duration": seconds})})
        all_labels = {**loaded.profile.labels, **parse_labels(labels)}
        base = Path(reports) if reports else reports_dir()
        return cls(loaded, RunStore.create(node, base), all_labels, peers=tuple(p for p in peers if p))

    def begin(self, argv: list[str]) -> None:
        self.store.append(
            "run_started", node=self.name, run_id=self.store.run_id, host=self.profile.host,
            labels=self.labels, profile_sources=list(self.loaded.sources),
            profile=self.profile.model_dump(mode="json"), argv=argv, version=__version__,
        )
        say(f"{self.name}: run {self.store.run_dir}")
        try:
            self.node = connect(self.name, self.profile)
        except QualifyError as exc:
            self.connect_error = exc
            self.store.append("event", severity="error", source="node", message=str(exc))
            say(f"error: {exc}")
            return
        self._discover()
        self.store.append("inventory", inventory=collect_inventory(self.node))
        self.watcher = start_watch(self.node, self.profile.watch, self.store)  # freezes, reboots, kernel log
        self._live = LiveReport(self.store.run_dir, self.profile.report.refresh)

    def _discover(self) -> None:
        """Drives and links the profile does not name, found on the node (qualify/discovery); checks see the result."""
        assert self.node is not None
        try:
            completion = complete_profile(self.node, self.profile, self.peers)
        except QualifyError as exc:  # the checks still run on what the profile names
            self.store.append("event", severity="warning", source="discovery", message=str(exc))
            return
        self.loaded = self.loaded.model_copy(update={"profile": completion.profile})
        self.store.append("discovery", notes=completion.notes, drives=[
            d.model_dump(mode="json", exclude_defaults=True) for d in completion.profile.checks.storage.drives],
            links=[link.model_dump(mode="json") for link in completion.profile.checks.network.links])
        for note in completion.notes:
            say(f"{self.name}: {note}")

    def event(self, severity: str, source: str, message: str) -> None:
        self.store.append("event", severity=severity, source=source, message=message)
        say(f"error: {message}")

    def check_started(self, name: str) -> None:
        self.store.append("check_started", name=name)

    def record(self, name: str, outcome: str, findings: Findings | None, message: str = "",
               trace: str | None = None, duration_s: float = 0.0) -> None:
        reasons = list(findings.reasons) if findings else []
        if message and message not in reasons and outcome != "failed":
            reasons.append(message)
        self.store.append(
            "check_result", name=name, outcome=outcome, reasons=reasons,
            problems=list(findings.problems) if findings else [],
            metrics=findings.metrics if findings else {},
            measurements=[m.as_record() for m in findings.measurements] if findings else [],
            not_qualified=list(findings.not_qualified_parts) if findings else [],
            duration_s=round(duration_s, 3), **({"traceback": trace} if trace else {}),
        )
        headline = (findings.problems if findings and findings.problems else reasons) or [""]
        first = headline[0]
        say(f"{self.name}: {name} {outcome}{': ' + first if first else ''}")

    def finish(self, pytest_exit: int) -> int:
        """Close the run, judge it, write verdict.json, render the report (best-effort); the exit code."""
        try:
            self._compare_with_history()
        except (OSError, ValueError, TypeError, KeyError) as exc:  # history is an extra: never costs the run
            self.store.append("event", severity="warning", source="history",
                              message=f"history not compared: {type(exc).__name__}: {exc}")
        if self._live:
            self._live.stop()
        self.store.append("run_finished", interrupted=self.interrupted, pytest_exit=int(pytest_exit))
        if self.watcher:
            self.watcher.stop()
        if self.node:
            self.node.close()
        self.store.close()
        run_dir = self.store.run_dir
        self.verdict = build_verdict(read_records(run_dir))
        write_verdict(run_dir, self.verdict)
        shown = _render(run_dir)
        say(f"{self.name}: verdict {self.verdict['verdict']} — {shown}")
        return int(self.verdict["exit_code"])


    def _compare_with_history(self) -> None:
        """Measurements outside the node's own noise band become events (failing ones when the profile asks)."""
        settings = self.profile.history
        current = build_verdict(read_records(self.store.run_dir))
        earlier = [v for v in node_verdicts(self.store.run_dir.parent) if v.get("run_id") != self.store.run_id]
        found, notes = shifts(current, earlier, settings.sigmas, settings.min_band, settings.min_runs,
                              settings.last_runs)
        for note in notes:
            self.store.append("event", severity="info", source="history", message=note)
        for shift in found:
            fails = bool(shift.worse) and settings.fail_on_regression
            self.store.append("event", severity="error" if fails else "warning", source="history",
                              change="regression" if shift.worse else "shift", message=shift.sentence,
                              fails_run=fails)


class LiveReport:
    """Re-renders report.html every `refresh` seconds while the run goes on ("running — last record ...")."""

    def __init__(self, run_dir: Path, refresh: float):
        self._run_dir, self._refresh = run_dir, refresh
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-report", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from qualify.report import render_run

        while not self._stop.wait(self._refresh):
            try:
                render_run(self._run_dir, index=False)
            except Exception as exc:  # noqa: BLE001 — a live page is a convenience, never the run's outcome
                say(f"qualify: warning: live report not rendered: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _render(run_dir: Path) -> str:
    from qualify.report import render_run  # late: the report pulls in its rendering machinery

    try:
        return f"report: {render_run(run_dir)}"
    except QualifyError as exc:
        return f"report not rendered: {exc}"
    except Exception as exc:  # noqa: BLE001 — a report bug must not change the verdict
        return f"report not rendered (internal error {type(exc).__name__}: {exc}); verdict.json is complete"
