"""Interactive charts as data: what a plot module returns and the page draws with uPlot.

A `Chart` is one x axis (seconds; unix time when `time_axis`) with series on it; a series may carry a
min/max envelope drawn as a band. Long runs are bucketed (`envelope`) into at most `MAX_POINTS`
min/mean/max points per series, so a 72-hour soak stays a small page and keeps its peaks. Events
(freeze, reboot, kernel faults, phase changes) and limits are drawn on the same axes.

Why uPlot: a 50 KB MIT library with no dependencies, built for long time series (zoom by drag,
hover values, millions of points), shipped inside the package (qualify/report/static) and inlined
into every page, so a report opens offline and makes no request. Plotly's bundle is 3.5 MB per page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from typing import Any

import numpy as np

MAX_POINTS = 1500


@dataclass
class Series:
    label: str
    values: list[float | None]
    unit: str = ""
    low: list[float | None] | None = None     # envelope (min per bucket)
    high: list[float | None] | None = None    # envelope (max per bucket)
    dashed: bool = False
    axis: str = "y"                           # "y" (left) or "y2" (right, another unit)


@dataclass
class Marker:
    x: float
    text: str
    severity: str = "info"                    # info / warning / error / critical


@dataclass
class Limit:
    value: float
    text: str
    axis: str = "y"


@dataclass
class Chart:
    title: str
    x: list[float]
    series: list[Series]
    time_axis: bool = True
    x_label: str = ""
    y_label: str = ""
    y2_label: str = ""
    markers: list[Marker] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    caption: str = ""

    def as_data(self) -> dict[str, Any]:
        return _clean(asdict(self))


def _clean(value: Any) -> Any:
    """NaN/inf -> None, numpy -> Python, so the JSON is valid everywhere."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else round(number, 6)
    if isinstance(value, np.integer):
        return int(value)
    return value


def envelope(x: Sequence[float], columns: dict[str, Sequence[float]], max_points: int = MAX_POINTS
             ) -> tuple[list[float], dict[str, tuple[list, list | None, list | None]]]:
    """Bucket long series: (x, {name: (mean, min, max)}); short ones come back as they are (min/max None)."""
    xs = np.asarray(x, dtype=float)
    if xs.size <= max_points:
        return xs.tolist(), {name: (np.asarray(v, dtype=float).tolist(), None, None) for name, v in columns.items()}
    edges = np.linspace(xs[0], xs[-1], max_points + 1)
    index = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, max_points - 1)
    counts = np.bincount(index, minlength=max_points)
    keep = counts > 0
    centres = ((edges[:-1] + edges[1:]) / 2)[keep]
    out = {}
    for name, values in columns.items():
        v = np.asarray(values, dtype=float)
        valid = ~np.isnan(v)
        sums = np.bincount(index[valid], weights=v[valid], minlength=max_points)
        n = np.bincount(index[valid], minlength=max_points)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, sums / np.maximum(n, 1), np.nan)
        lo = np.full(max_points, np.inf)
        hi = np.full(max_points, -np.inf)
        np.minimum.at(lo, index[valid], v[valid])
        np.maximum.at(hi, index[valid], v[valid])
        lo[np.isinf(lo)] = np.nan
        hi[np.isinf(hi)] = np.nan
        out[name] = (mean[keep].tolist(), lo[keep].tolist(), hi[keep].tolist())
    return centres.tolist(), out


def time_chart(title: str, x: Sequence[float], columns: dict[str, Sequence[float]], unit: str,
               max_points: int = MAX_POINTS, **kwargs: Any) -> Chart:
    """A chart of several series of one unit over time, enveloped when long."""
    xs, enveloped = envelope(x, columns, max_points)
    series = [Series(name, mean, unit, low, high) for name, (mean, low, high) in enveloped.items()]
    return Chart(title, xs, series, y_label=kwargs.pop("y_label", unit), **kwargs)


def library() -> tuple[str, str]:
    """uPlot's JavaScript and CSS, to inline in a page."""
    static = files("qualify.report").joinpath("static")
    return static.joinpath("uPlot.iife.min.js").read_text(), static.joinpath("uPlot.min.css").read_text()


def charts_json(charts: Sequence[Chart]) -> str:
    """The charts as JSON safe inside <script type="application/json">: no '</' or '<!--' can close it."""
    text = json.dumps([c.as_data() for c in charts], separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def band_series(label: str, unit: str, x: Sequence[float], mean: Sequence[float], low: Sequence[float],
                high: Sequence[float], max_points: int = MAX_POINTS) -> tuple[list[float], Series]:
    """One series with a band between two others (e.g. the all-core mean between the coolest and hottest core),
    bucketed when long: the band keeps the lowest low and the highest high of each bucket."""
    xs, columns = envelope(x, {"mean": mean, "low": low, "high": high}, max_points)
    m, lo, hi = columns["mean"][0], columns["low"][1] or columns["low"][0], columns["high"][2] or columns["high"][0]
    return xs, Series(label, m, unit, lo, hi)
