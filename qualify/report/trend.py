"""Nights side by side: `reports/<node>/trend.html`, one row per run of the node, oldest first.

Per run: verdict, freezes, unexpected reboots, kernel events (and how many of them fail the run), and
every numeric measurement of its checks, one column each (check, name, subject), coloured by its
outcome: the soak's and thermal check's figures of a nightly run, whatever else ran. Built from the
stored records only, so killed and unfinished nights show too; it knows no check's keys.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from qualify.errors import UsageError
from qualify.report.measurements import Figure, Key, keys_of, run_figures, title
from qualify.store import is_run_dir, read_records
from qualify.verdict import build_verdict

TREND_FILE = "trend.html"

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>qualify: {{ node }} night by night</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.pass{background:#c8f0c8}.fail{background:#f6c4c4}.incomplete{background:#f6e7b4}.bad,.failed{color:#b00;font-weight:bold}
.warning,.unknown{color:#a60}</style></head><body>
<h1>{{ node }}: {{ nights|length }} run(s), oldest first</h1>
<table><tr><th>run</th><th>verdict</th><th>hours</th><th>freezes</th><th>reboots</th><th>kernel events</th>
<th>of them failing</th><th>kinds</th>{% for name, _ in columns %}<th>{{ name }}</th>{% endfor %}</tr>
{% for n in nights %}<tr><td>{% if n.report %}<a href="{{ n.report }}">{{ n.run_id }}</a>{% else %}{{ n.run_id }}{% endif %}</td>
<td class="{{ n.verdict }}">{{ n.verdict }}</td><td>{{ n.hours }}</td>
<td class="{{ 'bad' if n.freezes else '' }}">{{ n.freezes }}</td><td class="{{ 'bad' if n.reboots else '' }}">{{ n.reboots }}</td>
<td>{{ n.kernel_events }}</td><td class="{{ 'bad' if n.failing_kernel_events else '' }}">{{ n.failing_kernel_events }}</td>
<td>{% for kind, count in n.kinds.items() %}{{ kind }} {{ count }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
{% for _, key in columns %}{% set f = n.figures.get(key) %}<td class="{{ f.outcome if f else '' }}"
 title="{{ f.sentence if f else '' }}">{{ f.text if f else "—" }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p>Freezes and reboots come from the heartbeat watch; kernel events from the node's kernel log during the run;
the other columns are the checks' own measurements.</p>
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
    figures: dict[Key, Figure]
    report: str | None


def night(run_dir: Path) -> Night:
    records = read_records(run_dir)
    verdict = build_verdict(records)
    events = verdict["events"]
    kernel = [e for e in events if e.get("source") == "kernel"]
    return Night(
        run_id=run_dir.name, verdict=verdict["verdict"], hours=_hours(records),
        freezes=sum(1 for e in events if e.get("event") == "freeze"),
        reboots=sum(1 for e in events if e.get("event") == "reboot"),
        kernel_events=len(kernel), failing_kernel_events=sum(1 for e in kernel if e.get("fails_run")),
        kinds=dict(Counter(e.get("event", "?") for e in kernel)), figures=run_figures(verdict),
        report=f"{run_dir.name}/report.html" if (run_dir / "report.html").is_file() else None)


def render_trend(node_dir: Path) -> Path:
    """Write <node_dir>/trend.html from every run of the node; returns its path."""
    runs = sorted(p for p in node_dir.glob("*") if is_run_dir(p)) if node_dir.is_dir() else []
    if not runs:
        raise UsageError(f"{node_dir} holds no runs (expected reports/<node>/<run-id>/run.jsonl)")
    path = node_dir / TREND_FILE
    nights = [night(r) for r in runs]
    units = {key: figure.unit for n in nights for key, figure in n.figures.items()}
    columns = [(title(key, units[key]), key) for key in keys_of((n.figures for n in nights), numeric_only=True)]
    path.write_text(_TEMPLATE.render(node=node_dir.name, nights=nights, columns=columns))
    return path


def _hours(records: list[dict[str, Any]]) -> str:
    first, last = (datetime.fromisoformat(r["t"]) for r in (records[0], records[-1]))
    return f"{(last - first).total_seconds() / 3600:.2f}"
