"""Idle window charts: package power (RAPL, the check's own telemetry stream) against the idle limit, and
the share of time in each C-state between samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from qualify.checks.idle_power import NAME, STREAM
from qualify.report.charts import Chart, Limit, time_chart
from qualify.report.plots.thermal import wall_clock
from qualify.store import read_samples
from qualify.telemetry import load_check_telemetry


def charts(run_dir: Path, check: dict[str, Any]) -> list[Chart]:
    found = []
    telemetry = load_check_telemetry(run_dir, NAME)
    zones = telemetry.package_power()
    if zones and len(telemetry.t) > 1:
        power = time_chart("Idle window: package power", wall_clock(telemetry),
                           {"package power": telemetry.combined(zones, "sum")}, "W")
        limit = next((m.get("high") for m in check.get("measurements") or []
                      if m.get("name") == "idle_package_power_watts"), None)
        if limit is not None:
            power.limits.append(Limit(float(limit), f"limit {limit:g} W"))
        found.append(power)
    samples = read_samples(run_dir, STREAM)
    if len(samples) > 1:
        found.append(_residency(samples))
    return found


def _residency(samples: list[dict[str, Any]]) -> Chart:
    """Share of CPU time per C-state between consecutive samples."""
    t = np.array([s["t"] for s in samples], dtype=float)
    names = list(dict.fromkeys(name for s in samples for name in s["time_us"]))
    cpus = max(s["cpus"] for s in samples) or 1
    dt = np.diff(t) * 1e6 * cpus
    shares = {name: 100 * np.clip(np.diff([s["time_us"].get(name, 0) for s in samples]) /
                                  np.where(dt > 0, dt, np.nan), 0, 1) for name in names}
    return time_chart("Idle window: C-state residency", t[1:], shares, "%", time_axis=bool(t[0] > 1e9),
                      y_label="% of CPU time")
