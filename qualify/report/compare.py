"""Side-by-side report of several thermal soaks (coolers, lid open/closed): `qualify compare RUN...`.

One self-contained HTML: package temperature, all-core clock and package power of every run
overlaid on one time axis (aligned at each run's first sample), and a table per run by its labels
with the thermal check's own numbers (from the stored records, so any finished run compares).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from matplotlib.figure import Figure

from qualify.errors import UsageError
from qualify.report.plots import png_base64
from qualify.report.plots.thermal import BUCKETS
from qualify.store import read_records
from qualify.telemetry import Telemetry, load_telemetry
from qualify.telemetry.series import envelope

COLUMNS = (("max_package_temp_c", "max package °C"), ("steady_package_temp_c", "steady °C"),
           ("time_to_throttle_s", "time to throttle s"), ("throttled_share", "throttled share"),
           ("sustained_clock_mhz", "sustained clock MHz"), ("perf_drift_percent", "perf drift %"),
           ("avg_package_power_w", "avg package W"), ("ambient_c", "ambient °C"))

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>qualify: thermal comparison</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.failed{color:#b00}.passed{color:#070}</style></head><body>
<h1>Thermal comparison of {{ runs|length }} runs</h1>
<table><tr><th>run</th><th>node</th><th>run id</th><th>outcome</th>
{% for _, title in columns %}<th>{{ title }}</th>{% endfor %}</tr>
{% for run in runs %}<tr><td>{{ run.name }}</td><td>{{ run.node }}</td><td>{{ run.run_id }}</td>
<td class="{{ run.outcome }}">{{ run.outcome }}</td>
{% for key, _ in columns %}<td>{{ run.cell(key) }}</td>{% endfor %}</tr>{% endfor %}
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
    outcome: str
    metrics: dict[str, Any]
    reasons: list[str]
    telemetry: Telemetry

    def cell(self, key: str) -> str:
        value = self.metrics.get(key)
        if value is None:
            return "—"
        if key == "throttled_share":
            return f"{value:.1%}"
        return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def load_run(run_dir: Path) -> ComparedRun:
    records = read_records(run_dir)
    started = next((r for r in records if r["kind"] == "run_started"), {})
    labels = started.get("labels") or {}
    result = next((r for r in reversed(records) if r["kind"] == "check_result" and r.get("name") == "thermal"), None)
    telemetry = load_telemetry(run_dir)
    if result is None and len(telemetry.t) == 0:
        raise UsageError(f"{run_dir} has no thermal check and no telemetry to compare "
                         f"(run it with CHECKS=thermal)")
    name = ", ".join(f"{k}={v}" for k, v in labels.items()) or f"{started.get('node', run_dir.parent.name)} " \
                                                                f"{run_dir.name}"
    return ComparedRun(name=name, node=started.get("node", run_dir.parent.name), run_id=run_dir.name,
                       outcome=(result or {}).get("outcome", "not finished"), metrics=(result or {}).get("metrics", {}),
                       reasons=(result or {}).get("reasons", []), telemetry=telemetry)


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
    fig.suptitle("Thermal comparison")
    return fig


def write_comparison(run_dirs: list[Path], output: Path) -> Path:
    if not run_dirs:
        raise UsageError("compare needs at least one run directory: make compare RUNS=\"reports/pve2/<run-id> ...\"")
    runs = [load_run(Path(d)) for d in run_dirs]
    html = _TEMPLATE.render(runs=runs, columns=COLUMNS, image=png_base64(compare_figure(runs)))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    return output
