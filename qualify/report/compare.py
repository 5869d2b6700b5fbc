"""Side-by-side report of several runs (coolers, lid open/closed, before/after a repair): `qualify compare RUN...`.

One self-contained HTML: a table with every measurement of the runs (one row per check, measurement and
subject, one column per run named by its labels, each cell coloured by its outcome), the failed and
warning sentences of each run, and package temperature, all-core clock and package power of every run
overlaid on one time axis (aligned at each run's first sample). Built from the stored records, so any
run compares, finished or not; it reads the measurements only, so it knows no check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
from matplotlib.figure import Figure

from qualify.errors import UsageError
from qualify.report.measurements import Figure as Measured
from qualify.report.measurements import Key, keys_of, run_figures, title
from qualify.report.plots import png_base64
from qualify.report.plots.thermal import BUCKETS
from qualify.store import read_records
from qualify.telemetry import Telemetry, load_check_telemetry
from qualify.telemetry.series import envelope
from qualify.verdict import build_verdict

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>qualify: comparison</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.failed,.fail{color:#b00}.passed,.pass{color:#070}.warning,.unknown,.incomplete{color:#a60}</style></head><body>
<h1>Comparison of {{ runs|length }} runs</h1>
<table><tr><th>run</th>{% for run in runs %}<th>{{ run.name }}</th>{% endfor %}</tr>
<tr><td>node</td>{% for run in runs %}<td>{{ run.node }}</td>{% endfor %}</tr>
<tr><td>run id</td>{% for run in runs %}<td>{{ run.run_id }}</td>{% endfor %}</tr>
<tr><td>verdict</td>{% for run in runs %}<td class="{{ run.verdict }}">{{ run.verdict }}</td>{% endfor %}</tr>
{% for check in checks %}<tr><td>{{ check }} (check)</td>{% for run in runs %}
<td class="{{ run.outcomes.get(check, '') }}">{{ run.outcomes.get(check, "—") }}</td>{% endfor %}</tr>{% endfor %}
{% for name, key in rows %}<tr><td>{{ name }}</td>{% for run in runs %}{% set f = run.figures.get(key) %}
<td class="{{ f.outcome if f else '' }}" title="{{ f.sentence if f else '' }}">{{ f.text if f else "—" }}</td>
{% endfor %}</tr>{% endfor %}
</table>
{% for run in runs %}{% if run.reasons %}<h3>{{ run.name }}</h3><ul>
{% for reason in run.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>{% endif %}{% endfor %}
<h2>Curves (aligned at each run's start)</h2>
<img alt="comparison" src="data:image/png;base64,{{ image }}">
</body></html>
""")


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


def compare_figure(runs: list[ComparedRun]) -> Figure:
    fig = Figure(figsize=(11, 9))
    axes = fig.subplots(3, 1, sharex=True)
    panels = (("package temperature (°C)", lambda tm: tm.combined(tm.package_temps(), "max")),
              ("all-core clock (MHz)", lambda tm: tm.combined(tm.names("freq"), "mean")),
              ("package power (W)", lambda tm: tm.combined(tm.package_power(), "sum")))
    for ax, (label, series) in zip(axes, panels):
        for run in runs:
            values = series(run.telemetry)
            if len(values) and not np.isnan(values).all():  # all NaN: the run has no such sensor
                centres, low, mean, high = envelope(run.telemetry.t / 60.0, values, BUCKETS)
                line, = ax.plot(centres, mean, label=run.name, linewidth=1.3)
                ax.fill_between(centres, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("minutes from the run's first sample")
    fig.suptitle("Telemetry comparison")
    return fig


def write_comparison(run_dirs: list[Path], output: Path) -> Path:
    if not run_dirs:
        raise UsageError("compare needs at least one run directory: make compare RUNS=\"reports/pve2/<run-id> ...\"")
    runs = [load_run(Path(d)) for d in run_dirs]
    checks = list(dict.fromkeys(check for run in runs for check in run.outcomes))
    units = {key: figure.unit for run in runs for key, figure in run.figures.items()}
    rows = [(title(key, units[key]), key) for key in keys_of(run.figures for run in runs)]
    html = _TEMPLATE.render(runs=runs, checks=checks, rows=rows, image=png_base64(compare_figure(runs)))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    return output

