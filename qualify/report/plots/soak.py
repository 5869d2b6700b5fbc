"""Soak chart from the stored records: the heartbeat's gaps over time against the freeze threshold, load
phases and every watch event (freeze, reboot, kernel message) marked where it happened — zoom to the
minute a node froze; below it the soak's own telemetry (temperatures, clocks, power) on the same time axis."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from qualify.report.charts import Chart, Limit, Marker, time_chart
from qualify.report.plots.thermal import soak_charts
from qualify.store import read_records, read_samples
from qualify.telemetry import load_check_telemetry


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def charts(run_dir: Path, check: dict[str, Any]) -> list[Chart]:
    beats = read_samples(run_dir, "heartbeat")
    if not beats:
        return []
    records = read_records(run_dir)
    started = next((r for r in records if r["kind"] == "run_started"), {})
    watch = (started.get("profile") or {}).get("watch") or {}
    chart = time_chart("Soak: heartbeat gaps and events", [_epoch(b["t"]) for b in beats],
                       {"heartbeat gap": [b.get("gap_s") for b in beats]}, "s", y_label="seconds since previous beat")
    if watch.get("heartbeat_interval") and watch.get("missed_heartbeats"):
        chart.limits.append(Limit(watch["heartbeat_interval"] * watch["missed_heartbeats"], "freeze threshold"))
    phases = [Marker(_epoch(p["t"]), f"{p['phase']} phase") for p in read_samples(run_dir, "soak_phases")
              if "t" in p and "phase" in p]
    telemetry = load_check_telemetry(run_dir, "soak")  # temperatures, clocks, power beside the watch
    found = [chart, *(soak_charts(telemetry, None, None, title="Soak") if len(telemetry.t) > 1 else [])]
    for each in found:
        each.markers += phases
    return found
