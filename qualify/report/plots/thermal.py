"""Thermal soak charts, drawn from the check's own stored telemetry (its window only), on one time axis:
package temperature with the cores' band, the all-core clock against the CPU's nominal clock, package
power and utilisation with throttle events. Long runs are bucketed into min/mean/max envelopes, so a
72 h run stays a small page and keeps its peaks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from qualify.report.charts import Chart, Limit, Marker, Series, band_series, time_chart
from qualify.telemetry import Telemetry, load_check_telemetry

BUCKETS = 1500  # points per series: more than a chart's pixel width


def charts(run_dir: Path, check: dict[str, Any]) -> list[Chart]:
    telemetry = load_check_telemetry(run_dir, check["name"].split("[", 1)[0])
    if len(telemetry.t) < 2:
        return []
    metrics = check.get("metrics", {})
    limit = next((m.get("high") for m in check.get("measurements") or []
                  if m.get("name") == "max_package_temperature_celsius"), None)
    return soak_charts(telemetry, metrics.get("load_start_s"), metrics.get("load_end_s"),
                       metrics.get("nominal_clock_mhz"), limit)


def wall_clock(telemetry: Telemetry) -> np.ndarray:
    """The telemetry's axis as controller (unix) time, so events and other checks line up."""
    return telemetry.t + telemetry.epoch + telemetry.clock_offset


def soak_charts(telemetry: Telemetry, load_start: float | None, load_end: float | None,
                nominal_mhz: float | None = None, temp_limit: float | None = None, title: str = "Thermal soak"
                ) -> list[Chart]:
    x = wall_clock(telemetry)
    markers = []
    if load_start is not None and load_end is not None:
        base = telemetry.epoch + telemetry.clock_offset
        markers = [Marker(base + load_start, "load starts"), Marker(base + load_end, "load ends")]
    events = telemetry.throttle_events()
    if events.any():
        first = int(np.flatnonzero(events > 0)[0])
        markers.append(Marker(float(x[first]), f"first throttle ({int(events.sum())} events in all)", "warning"))
    found = []

    cores = telemetry.core_temps()
    package = telemetry.combined(telemetry.package_temps(), "max")
    others = {n.removeprefix("temp:"): telemetry.values[n] for n in telemetry.names("temp")
              if n not in telemetry.package_temps() and n not in cores and not np.isnan(telemetry.values[n]).all()}
    temps = time_chart(f"{title}: temperatures", x, {"package": package, **others}, "°C", markers=list(markers))
    if cores:
        _, band = band_series("cores (mean, min–max band)", "°C", x, telemetry.combined(cores, "mean"),
                              telemetry.combined(cores, "min"), telemetry.combined(cores, "max"))
        temps.series.append(band)
    if temp_limit:
        temps.limits.append(Limit(float(temp_limit), f"limit {temp_limit:g} °C"))
    if not np.isnan(package).all():
        found.append(temps)

    freqs = telemetry.names("freq")
    if freqs:
        xs, band = band_series("all-core mean (min–max band)", "MHz", x, telemetry.combined(freqs, "mean"),
                               telemetry.combined(freqs, "min"), telemetry.combined(freqs, "max"))
        clocks = Chart(f"{title}: clocks", xs, [band], markers=list(markers), y_label="MHz")
        if nominal_mhz:
            clocks.limits.append(Limit(float(nominal_mhz), f"nominal {nominal_mhz:.0f} MHz"))
        found.append(clocks)

    power = {n.split(":", 1)[1]: telemetry.values[n] for n in telemetry.package_power()}
    if power:
        found.append(time_chart(f"{title}: package power", x, power, "W", markers=list(markers)))

    load = {}
    if "util:cpu" in telemetry.values:
        load["CPU busy"] = telemetry.values["util:cpu"]
    if load or events.any():
        chart = time_chart(f"{title}: utilisation and throttling", x, load or {"CPU busy": np.full(len(x), np.nan)},
                           "%", markers=list(markers))
        if events.any():
            xs, columns = _sum_buckets(x, events, len(chart.x))
            if len(xs) == len(chart.x):
                chart.series.append(Series("throttle events", columns, "events", axis="y2"))
                chart.y2_label = "throttle events"
        found.append(chart)
    for chart in found:
        if telemetry.gaps:
            chart.caption = f"{len(telemetry.gaps)} telemetry gap(s): " + ", ".join(
                f"{seconds:.0f} s at +{start:.0f} s" for start, seconds in telemetry.gaps[:5])
    return found


def _sum_buckets(x: np.ndarray, values: np.ndarray, buckets: int) -> tuple[list[float], list[float]]:
    """Event counts summed per bucket (a count must not be averaged away)."""
    if len(x) == buckets:
        return x.tolist(), values.tolist()
    edges = np.linspace(x[0], x[-1], buckets + 1)
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, buckets - 1)
    sums = np.bincount(index, weights=np.nan_to_num(values), minlength=buckets)
    keep = np.bincount(index, minlength=buckets) > 0
    return ((edges[:-1] + edges[1:]) / 2)[keep].tolist(), sums[keep].tolist()
