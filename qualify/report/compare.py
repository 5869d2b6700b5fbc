"""Side-by-side report of several runs (coolers, lid open/closed, before/after a repair): `qualify compare RUN...`.

One self-contained HTML page in the report's look: package temperature, all-core clock and package power
of every run overlaid on one time axis (aligned at each run's first sample; zoom, pan, hover), the failed
and warning sentences of each run, and a table with every measurement of the runs (one row per check,
measurement and subject, one column per run named by its labels, each cell marked with its outcome).
Built from the stored records, so any run compares, finished or not; it reads the measurements only, so
it knows no check.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qualify.errors import UsageError
from qualify.report.charts import Chart, Numbers, joined_chart
from qualify.report.measurements import Figure as Measured
from qualify.report.measurements import Key, keys_of, run_figures, title
from qualify.report.page import figure_context
from qualify.report.templates import render_template
from qualify.store import read_records
from qualify.telemetry import Telemetry, load_check_telemetry
from qualify.verdict import build_verdict

# What is overlaid: (chart title, unit, how the run's telemetry gives one series)
PANELS: tuple[tuple[str, str, Callable[[Telemetry], np.ndarray]], ...] = (
    ("package temperature", "°C", lambda tm: tm.combined(tm.package_temps(), "max")),
    ("all-core clock", "MHz", lambda tm: tm.combined(tm.names("freq"), "mean")),
    ("package power", "W", lambda tm: tm.combined(tm.package_power(), "sum")),
)


@dataclass
class ComparedRun:
    name: str
    node: str
    run_id: str
    verdict: str
    outcomes: dict[str, str]  # check -> outcome
    figures: dict[Key, Measured]
    telemetry: Telemetry

    @property
    def reasons(self) -> list[str]:
        """What failed or needs attention, as the checks said it."""
        return [f.sentence for f in self.figures.values() if f.outcome in ("failed", "warning", "unknown")]


def load_run(run_dir: Path) -> ComparedRun:
    verdict = build_verdict(read_records(run_dir))
    figures = run_figures(verdict)
    telemetry = load_check_telemetry(run_dir, "thermal")  # the thermal check's own stream (older runs: the shared one)
    if not figures and len(telemetry.t) == 0:
        raise UsageError(f"{run_dir} has no measurements and no telemetry to compare (did any check run?)")
    labels = verdict.get("labels") or {}
    node = verdict.get("node") or run_dir.parent.name
    name = ", ".join(f"{k}={v}" for k, v in labels.items()) or f"{node} {run_dir.name}"
    return ComparedRun(name=name, node=node, run_id=run_dir.name, verdict=verdict["verdict"],
                       outcomes={c["name"]: c["outcome"] for c in verdict["checks"]}, figures=figures,
                       telemetry=telemetry)


def compare_charts(runs: list[ComparedRun]) -> list[Chart]:
    """Each panel with one line per run (its min–max band when long), from each run's first sample."""
    charts = []
    longest = max((float(run.telemetry.t[-1]) for run in runs if len(run.telemetry.t)), default=0.0)
    per, scale = (60.0, "minutes") if longest > 600 else (1.0, "seconds")
    for panel, unit, series in PANELS:
        lines: dict[str, tuple[Numbers, Numbers]] = {}
        for run in runs:
            values = series(run.telemetry)
            if len(values) and not np.isnan(values).all():  # all NaN: the run has no such sensor
                lines[_unique(run.name, lines)] = (run.telemetry.t / per, values)
        if lines:
            chart = joined_chart(f"Compared: {panel}", lines, unit, time_axis=False,
                                 x_label=f"{scale} from the run's first sample", y_label=unit)
            for line in chart.series:
                line.points = False
            charts.append(chart)
    return charts


def _unique(name: str, taken: Collection[str]) -> str:
    """Two runs with the same labels still get a line each."""
    label, n = name, 2
    while label in taken:
        label, n = f"{name} ({n})", n + 1
    return label


def write_comparison(run_dirs: list[Path], output: Path) -> Path:
    if not run_dirs:
        raise UsageError("compare needs at least one run directory: make compare RUNS=\"reports/pve2/<run-id> ...\"")
    runs = [load_run(Path(d)) for d in run_dirs]
    checks = list(dict.fromkeys(check for run in runs for check in run.outcomes))
    units = {key: figure.unit for run in runs for key, figure in run.figures.items()}
    rows = [(title(key, units[key]), key) for key in keys_of(run.figures for run in runs)]
    html = render_template("compare.html.j2", runs=runs, checks=checks, rows=rows,
                           **figure_context(compare_charts(runs)))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    return output
