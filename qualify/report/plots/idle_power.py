"""Idle window plots: package power (RAPL, the check's own telemetry stream) and the share of time in each
C-state, over the window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from qualify.checks.idle_power import NAME, STREAM
from qualify.store import read_samples
from qualify.telemetry import load_check_telemetry


def figures(run_dir: Path, check: dict[str, Any]) -> list[Figure]:
    samples = read_samples(run_dir, STREAM)
    if len(samples) < 2:
        return []
    fig = Figure(figsize=(11, 6))
    power_ax, state_ax = fig.subplots(2, 1)
    fig.suptitle("Idle window: package power and C-state residency")
    _power(run_dir, check, power_ax)
    _residency(samples, state_ax)
    return [fig]


def _power(run_dir: Path, check: dict[str, Any], ax) -> None:
    telemetry = load_check_telemetry(run_dir, NAME)
    zones = telemetry.package_power()
    if zones:
        ax.plot(telemetry.t, telemetry.combined(zones, "sum"), label="package power")
    average = check.get("metrics", {}).get("idle_package_power_watts")
    if average is not None:
        ax.axhline(average, linestyle="--", color="grey", label=f"idle average {average:.1f} W")
    ax.set_ylabel("W")
    ax.set_xlabel("seconds into the telemetry")
    ax.legend(loc="upper right", fontsize="small")


def _residency(samples: list[dict[str, Any]], ax) -> None:
    """Share of CPU time per state between consecutive samples, stacked."""
    t = np.array([s["t"] for s in samples])
    names = list(dict.fromkeys(name for s in samples for name in s["time_us"]))
    cpus = max(s["cpus"] for s in samples) or 1
    dt = np.diff(t) * 1e6 * cpus
    shares = [np.diff([s["time_us"].get(name, 0) for s in samples]) / np.where(dt > 0, dt, np.nan) for name in names]
    ax.stackplot(t[1:], *[np.clip(np.nan_to_num(share), 0, 1) for share in shares], labels=names, step="pre")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of CPU time")
    ax.set_xlabel("seconds into the idle window")
    ax.legend(loc="upper right", fontsize="small", ncol=len(names))
