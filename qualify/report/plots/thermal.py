"""Thermal soak plots, drawn from the check's own stored telemetry (its window only): one shared time axis
with package and per-core temperature (min/max envelope), clocks against the CPU's nominal clock,
package power and utilisation, throttle events marked and the load phase shaded. Long runs are bucketed to min/mean/max envelopes so peaks survive and a 72 h run
stays a small image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from qualify.telemetry import Telemetry, load_check_telemetry
from qualify.telemetry.series import envelope

BUCKETS = 1500   # points per line: more than a plot's pixel width


def figures(run_dir: Path, check: dict[str, Any]) -> list[Figure]:
    telemetry = load_check_telemetry(run_dir, "thermal")
    if len(telemetry.t) < 2:
        return []
    metrics = check.get("metrics", {})
    return [soak_figure(telemetry, metrics.get("load_start_s"), metrics.get("load_end_s"),
                        nominal_mhz=metrics.get("nominal_clock_mhz"))]


def soak_figure(telemetry: Telemetry, load_start: float | None, load_end: float | None,
                title: str = "Thermal soak", nominal_mhz: float | None = None) -> Figure:
    minutes = telemetry.t / 60.0
    fig = Figure(figsize=(11, 9))
    temp_ax, clock_ax, power_ax, util_ax = fig.subplots(4, 1, sharex=True,
                                                        gridspec_kw={"height_ratios": [3, 2, 2, 1.3]})
    _band(temp_ax, minutes, telemetry.combined(telemetry.core_temps(), "min"),
          telemetry.combined(telemetry.core_temps(), "max"), "cores (min–max)")
    _line(temp_ax, minutes, telemetry.combined(telemetry.package_temps(), "max"), "package", "tab:red")
    for name in telemetry.names("temp"):
        if name not in telemetry.package_temps() and name not in telemetry.core_temps():
            _line(temp_ax, minutes, telemetry.values[name], name.removeprefix("temp:"), None, width=0.8)
    temp_ax.set_ylabel("°C")
    _band(clock_ax, minutes, telemetry.combined(telemetry.names("freq"), "min"),
          telemetry.combined(telemetry.names("freq"), "max"), "CPUs (min–max)")
    _line(clock_ax, minutes, telemetry.combined(telemetry.names("freq"), "mean"), "all-core mean", "tab:blue")
    if nominal_mhz:
        clock_ax.axhline(nominal_mhz, color="tab:blue", linestyle=":", linewidth=1, label=f"nominal {nominal_mhz:.0f}")
    clock_ax.set_ylabel("MHz")
    for name in telemetry.package_power():
        _line(power_ax, minutes, telemetry.values[name], name.split(":", 1)[1], "tab:orange")
    power_ax.set_ylabel("W")
    if "util:cpu" in telemetry.values:
        _line(util_ax, minutes, telemetry.values["util:cpu"], "CPU busy", "tab:green")
    util_ax.set_ylabel("% busy")
    util_ax.set_xlabel("minutes from the first sample")

    events = telemetry.throttle_events()
    throttled = minutes[events > 0]
    for ax in (temp_ax, clock_ax, power_ax, util_ax):
        if load_start is not None and load_end is not None:
            ax.axvspan(load_start / 60, load_end / 60, color="0.93", zorder=0)
        for start, seconds in telemetry.gaps:
            ax.axvspan(start / 60, (start + seconds) / 60, color="tab:purple", alpha=0.15, zorder=0)
        ax.grid(alpha=0.3)
        if ax.lines or ax.collections:
            ax.legend(loc="upper right", fontsize=7, ncol=3)
    if throttled.size:
        # one tick per throttled sample along the top of the temperature plot
        temp_ax.plot(throttled, np.full(throttled.shape, np.nanmax(temp_ax.get_ylim())), "|", color="black",
                     markersize=8, label=f"throttling ({int(events.sum())} events)")
        temp_ax.legend(loc="upper right", fontsize=7, ncol=3)
    fig.suptitle(f"{title}: temperatures, clocks, package power and load (grey: load phase, "
                 f"ticks: throttling, purple: telemetry gaps)")
    return fig


def _line(ax: Axes, x: np.ndarray, y: np.ndarray, label: str, color: str | None, width: float = 1.4) -> None:
    if np.isnan(y).all():
        return
    centres, low, mean, high = envelope(x, y, BUCKETS)
    line, = ax.plot(centres, mean, label=label, color=color, linewidth=width)
    if len(centres) < len(x):  # bucketed: show the peaks the mean hides
        ax.fill_between(centres, low, high, color=line.get_color(), alpha=0.25, linewidth=0)


def _band(ax: Axes, x: np.ndarray, low: np.ndarray, high: np.ndarray, label: str) -> None:
    if np.isnan(high).all():
        return
    centres, lowest, _, _ = envelope(x, low, BUCKETS)
    centres_high, _, _, highest = envelope(x, high, BUCKETS)
    if len(centres) == len(centres_high):
        ax.fill_between(centres, lowest, highest, color="0.6", alpha=0.35, linewidth=0, label=label)
