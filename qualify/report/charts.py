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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from typing import Any

import numpy as np

MAX_POINTS = 1500
Numbers = Sequence[float | None] | np.ndarray  # a series' values: None/NaN where nothing was read


@dataclass
class Series:
    label: str
    values: Sequence[float | None]
    unit: str = ""
    low: Sequence[float | None] | None = None     # envelope (min per bucket)
    high: Sequence[float | None] | None = None    # envelope (max per bucket)
    dashed: bool = False
    axis: str = "y"                           # "y" (left) or "y2" (right, another unit)
    span_gaps: bool = False                   # joined series: a None is another series' point, not a gap
    points: bool = False                      # draw every point (few points, each one a measurement)


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
    x: Sequence[float]
    series: list[Series]
    time_axis: bool = True
    x_label: str = ""
    y_label: str = ""
    y2_label: str = ""
    markers: list[Marker] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    caption: str = ""
    categories: list[str] = field(default_factory=list)  # x is 0, 1, 2...: these are its labels
    log_y: bool = False

    def as_data(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass
class Cell:
    text: str
    outcome: str = ""                         # passed / failed / ...: a class, beside the text (never alone)
    shade: float | None = None                # 0..1: a heat-map background (the text says the figure)


@dataclass
class Table:
    """A figure that is a table (a mesh heat map, a matrix): drawn as HTML, every cell text."""

    title: str
    header: list[str]
    rows: list[list[Cell]]
    row_header: bool = False                  # the first cell of each row names the row
    caption: str = ""


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


def envelope(x: Numbers, columns: Mapping[str, Numbers], max_points: int = MAX_POINTS
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


def time_chart(title: str, x: Numbers, columns: Mapping[str, Numbers], unit: str,
               max_points: int = MAX_POINTS, **kwargs: Any) -> Chart:
    """A chart of several series of one unit over time, enveloped when long."""
    xs, enveloped = envelope(x, columns, max_points)
    series = [Series(name, mean, unit, low, high) for name, (mean, low, high) in enveloped.items()]
    return Chart(title, xs, series, y_label=kwargs.pop("y_label", unit), **kwargs)


def joined_chart(title: str, lines: Mapping[str, tuple[Numbers, Numbers]], unit: str,
                 max_points: int = MAX_POINTS, **kwargs: Any) -> Chart:
    """A chart of series measured at their own x (fio jobs, iperf3 directions) on one shared x axis."""
    xs = sorted({float(x) for x_values, _ in lines.values() for x in x_values if x is not None})
    where = {x: i for i, x in enumerate(xs)}
    columns = {}
    for label, (x_values, y_values) in lines.items():
        column = [math.nan] * len(xs)
        for x, y in zip(x_values, y_values, strict=True):
            if x is not None:
                column[where[float(x)]] = math.nan if y is None else float(y)
        columns[label] = column
    chart = time_chart(title, xs, columns, unit, max_points, **kwargs)
    for series in chart.series:
        series.span_gaps = True
        series.points = len(xs) <= 120
    return chart


def library() -> tuple[str, str]:
    """uPlot's JavaScript and CSS, to inline in a page."""
    static = files("qualify.report").joinpath("static")
    return static.joinpath("uPlot.iife.min.js").read_text(), static.joinpath("uPlot.min.css").read_text()


def charts_json(charts: Sequence[Chart]) -> str:
    """The charts as JSON safe inside <script type="application/json">: no '</' or '<!--' can close it."""
    text = json.dumps([c.as_data() for c in charts], separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def band_series(label: str, unit: str, x: Numbers, mean: Numbers, low: Numbers, high: Numbers,
                max_points: int = MAX_POINTS) -> tuple[list[float], Series]:
    """One series with a band between two others (e.g. the all-core mean between the coolest and hottest core),
    bucketed when long: the band keeps the lowest low and the highest high of each bucket."""
    xs, columns = envelope(x, {"mean": mean, "low": low, "high": high}, max_points)
    m, lo, hi = columns["mean"][0], columns["low"][1] or columns["low"][0], columns["high"][2] or columns["high"][0]
    return xs, Series(label, m, unit, lo, hi)
