"""Nights side by side: `reports/<node>/trend.html`, one row per run of the node, oldest first.

Per run: verdict, freezes, unexpected reboots, kernel events (and how many of them fail the run), and
every numeric measurement of its checks, one column each (check, name, subject), marked with its
outcome; above the table, each measurement as a chart across the runs (one line per subject, its limit
drawn) and the events per night. Built from the stored records only, so killed and unfinished nights show
too; it reads the measurements only, so it knows no check's keys.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from qualify.errors import UsageError
from qualify.report.charts import Chart, Limit, joined_chart
from qualify.report.measurements import Figure, Key, keys_of, run_figures, title
from qualify.report.page import figure_context
from qualify.report.templates import render_template
from qualify.store import is_run_dir, read_records
from qualify.verdict import build_verdict

TREND_FILE = "trend.html"


@dataclass(frozen=True)
class Night:
    run_id: str
    verdict: str
    started: float  # unix time of the run's first record
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
    first, last = (datetime.fromisoformat(r["t"]) for r in (records[0], records[-1]))
    return Night(
        run_id=run_dir.name, verdict=verdict["verdict"], started=first.timestamp(),
        hours=f"{(last - first).total_seconds() / 3600:.2f}",
        freezes=sum(1 for e in events if e.get("event") == "freeze"),
        reboots=sum(1 for e in events if e.get("event") == "reboot"),
        kernel_events=len(kernel), failing_kernel_events=sum(1 for e in kernel if e.get("fails_run")),
        kinds=dict(Counter(e.get("event", "?") for e in kernel)), figures=run_figures(verdict),
        report=f"{run_dir.name}/report.html" if (run_dir / "report.html").is_file() else None)


def trend_charts(nights: list[Night], keys: list[Key]) -> list[Chart]:
    """The events per night, then one chart per measurement (check and name), a line per subject."""
    x = [n.started for n in nights]
    events = joined_chart("Events per night", {
        "freezes": (x, [n.freezes for n in nights]), "reboots": (x, [n.reboots for n in nights]),
        "kernel events failing the run": (x, [n.failing_kernel_events for n in nights])}, "events",
        x_label="run started (UTC)")
    grouped: dict[tuple[str, str], list[Key]] = {}
    for key in keys:
        grouped.setdefault(key[:2], []).append(key)
    charts = [events]
    for (check, name), subjects in grouped.items():
        lines, unit, limits = {}, "", {}
        for key in subjects:
            measured = [(n.started, n.figures[key]) for n in nights if key in n.figures and n.figures[key].numeric]
            unit = unit or measured[-1][1].unit
            lines[key[2] or name] = ([t for t, _ in measured], [f.value for _, f in measured])
            newest = measured[-1][1]  # the limit the newest night was judged by
            limits.update({bound: value for bound, value in (("low", newest.low), ("high", newest.high))
                           if value is not None})
        chart = joined_chart(title((check, name, ""), unit), lines, unit, x_label="run started (UTC)")
        chart.limits += [Limit(value, f"{'minimum' if bound == 'low' else 'limit'} {value:g} {unit}".rstrip())
                         for bound, value in limits.items()]
        charts.append(chart)
    return charts


def render_trend(node_dir: Path) -> Path:
    """Write <node_dir>/trend.html from every run of the node; returns its path."""
    runs = sorted(p for p in node_dir.glob("*") if is_run_dir(p)) if node_dir.is_dir() else []
    if not runs:
        raise UsageError(f"{node_dir} holds no runs (expected reports/<node>/<run-id>/run.jsonl)")
    path = node_dir / TREND_FILE
    nights = [night(r) for r in runs]
    units = {key: figure.unit for n in nights for key, figure in n.figures.items()}
    keys = keys_of((n.figures for n in nights), numeric_only=True)
    columns = [(title(key, units[key]), key) for key in keys]
    html = render_template("trend.html.j2", node=node_dir.name, nights=nights, columns=columns,
                           **figure_context(trend_charts(nights, keys)))
    path.write_text(html)
    return path
