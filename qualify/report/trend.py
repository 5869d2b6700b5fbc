"""Nights side by side: `reports/<node>/trend.html`, one row per run of the node, oldest first.

Per run: verdict, freezes, unexpected reboots, kernel events (and how many of them fail the run),
hottest package temperature and throttle events (the thermal check's numbers when it ran, else the
run's telemetry). Built from the stored records only, so killed and unfinished nights show too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from qualify.errors import UsageError
from qualify.store import is_run_dir, read_records
from qualify.telemetry import load_telemetry
from qualify.verdict import build_verdict

TREND_FILE = "trend.html"

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>qualify: {{ node }} night by night</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.pass{background:#c8f0c8}.fail{background:#f6c4c4}.incomplete{background:#f6e7b4}.bad{color:#b00;font-weight:bold}
</style></head><body>
<h1>{{ node }}: {{ nights|length }} run(s), oldest first</h1>
<table><tr><th>run</th><th>verdict</th><th>hours</th><th>freezes</th><th>reboots</th><th>kernel events</th>
<th>of them failing</th><th>max package °C</th><th>throttle events</th><th>kinds</th></tr>
{% for n in nights %}<tr><td>{% if n.report %}<a href="{{ n.report }}">{{ n.run_id }}</a>{% else %}{{ n.run_id }}{% endif %}</td>
<td class="{{ n.verdict }}">{{ n.verdict }}</td><td>{{ n.hours }}</td>
<td class="{{ 'bad' if n.freezes else '' }}">{{ n.freezes }}</td><td class="{{ 'bad' if n.reboots else '' }}">{{ n.reboots }}</td>
<td>{{ n.kernel_events }}</td><td class="{{ 'bad' if n.failing_kernel_events else '' }}">{{ n.failing_kernel_events }}</td>
<td>{{ n.max_temp_c if n.max_temp_c is not none else "—" }}</td><td>{{ n.throttle_events if n.throttle_events is not none else "—" }}</td>
<td>{% for kind, count in n.kinds.items() %}{{ kind }} {{ count }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
{% endfor %}</table>
<p>Freezes and reboots come from the heartbeat watch; kernel events from the node's kernel log during the run.</p>
</body></html>
""")


@dataclass(frozen=True)
class Night:
    run_id: str
    verdict: str
    hours: str
    freezes: int
    reboots: int
    kernel_events: int
    failing_kernel_events: int
    kinds: dict[str, int]
    max_temp_c: float | None
    throttle_events: int | None
    report: str | None


def night(run_dir: Path) -> Night:
    records = read_records(run_dir)
    verdict = build_verdict(records)
    events = verdict["events"]
    kernel = [e for e in events if e.get("source") == "kernel"]
    metrics = [c.get("metrics", {}) for c in verdict["checks"]]
    max_temp = _first_metric(metrics, "max_package_temp_c")
    throttles = _first_metric(metrics, "throttle_events")
    if max_temp is None or throttles is None:
        telemetry = load_telemetry(run_dir)
        if len(telemetry.t):
            hottest = telemetry.combined(telemetry.package_temps(), "max")
            if max_temp is None and not np.isnan(hottest).all():
                max_temp = round(float(np.nanmax(hottest)), 1)
            throttles = int(telemetry.throttle_events().sum()) if throttles is None else throttles
    return Night(
        run_id=run_dir.name, verdict=verdict["verdict"], hours=_hours(records),
        freezes=sum(1 for e in events if e.get("event") == "freeze"),
        reboots=sum(1 for e in events if e.get("event") == "reboot"),
        kernel_events=len(kernel), failing_kernel_events=sum(1 for e in kernel if e.get("fails_run")),
        kinds=dict(Counter(e.get("event", "?") for e in kernel)), max_temp_c=max_temp, throttle_events=throttles,
        report=f"{run_dir.name}/report.html" if (run_dir / "report.html").is_file() else None)


def render_trend(node_dir: Path) -> Path:
    """Write <node_dir>/trend.html from every run of the node; returns its path."""
    runs = sorted(p for p in node_dir.glob("*") if is_run_dir(p)) if node_dir.is_dir() else []
    if not runs:
        raise UsageError(f"{node_dir} holds no runs (expected reports/<node>/<run-id>/run.jsonl)")
    path = node_dir / TREND_FILE
    path.write_text(_TEMPLATE.render(node=node_dir.name, nights=[night(r) for r in runs]))
    return path


def _first_metric(metrics: list[dict[str, Any]], key: str) -> Any:
    return next((m[key] for m in metrics if m.get(key) is not None), None)


def _hours(records: list[dict[str, Any]]) -> str:
    first, last = (datetime.fromisoformat(r["t"].replace("Z", "+00:00")) for r in (records[0], records[-1]))
    return f"{(last - first).total_seconds() / 3600:.2f}"
