"""Soak plot from the stored records: the heartbeat's gaps over time against the freeze threshold,
load phases shaded, and every watch event (freeze, reboot, kernel message) marked where it happened."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from qualify.store import read_records, read_samples

_EVENT_COLOURS = {"critical": "#c0392b", "error": "#e67e22", "warning": "#f1c40f", "info": "#7f8c8d"}


def _time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["t"].replace("Z", "+00:00"))


def figures(run_dir: Path, check: dict[str, Any]) -> list[Figure]:
    beats = read_samples(run_dir, "heartbeat")
    if not beats:
        return []
    records = read_records(run_dir)
    started = next((r for r in records if r["kind"] == "run_started"), {})
    watch = started.get("profile", {}).get("watch", {})
    fig = Figure(figsize=(11, 3.6))
    ax = fig.subplots()
    ax.plot([_time(b) for b in beats], [b["gap_s"] for b in beats], marker=".", markersize=2, linewidth=0.8,
            label="heartbeat gap")
    if watch:
        ax.axhline(watch["heartbeat_interval"] * watch["missed_heartbeats"], color="#c0392b", linestyle=":",
                   linewidth=1, label="freeze threshold")
    phases = read_samples(run_dir, "soak_phases")
    for phase, after in zip(phases, phases[1:] + [None]):
        if phase["phase"] == "load":
            end = _time(after) if after else _time(beats[-1])
            ax.axvspan(_time(phase), end, color="#3498db", alpha=0.12, linewidth=0)
    events = [r for r in records if r["kind"] == "event" and r.get("source") in ("heartbeat", "kernel")]
    for event in events:
        ax.axvline(_time(event), color=_EVENT_COLOURS.get(event["severity"], "#7f8c8d"), linewidth=1.2)
        ax.annotate(event.get("event", ""), (_time(event), ax.get_ylim()[1]), rotation=90, fontsize=7,
                    va="top", ha="right")
    ax.set_ylabel("seconds since previous beat")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    freezes = sum(1 for e in events if e.get("event") == "freeze")
    reboots = sum(1 for e in events if e.get("event") == "reboot")
    fig.suptitle(f"Heartbeat and events (load phases shaded): {freezes} freeze(s), {reboots} reboot(s), "
                 f"{sum(1 for e in events if e['source'] == 'kernel')} kernel event(s)")
    return [fig]
