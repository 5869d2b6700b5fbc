"""report.html of a run: verdict and cause first, value against limit, interactive charts, details below.

Built from the run's records alone (verdict.build_verdict), so a finished, killed or running run
renders the same way; a run without `run_finished` says "running — last record HH:MM:SS". Plot
modules (qualify/report/plots/<check>.py) return `Chart`s and `Table`s through `charts(run_dir, check)`;
every string reaches the page through Jinja2's autoescape, chart data through escaped JSON.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from qualify.findings import format_value, limit_text
from qualify.report.charts import Chart, Marker, Table, charts_json, library
from qualify.report.templates import render_template

OUTCOME_ORDER = {"failed": 0, "unknown": 1, "warning": 2, "passed": 3, "info": 4}
KEY_MEASUREMENTS = 4


@dataclass
class Card:
    name: str
    outcome: str
    headline: str
    key: list[dict[str, Any]]
    measurements: list[dict[str, Any]]
    reasons: list[str]
    problems: list[str]
    figures: list[int] = field(default_factory=list)    # indexes into the page's figure list
    started: str | None = None
    finished: str | None = None
    traceback: str | None = None


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def measurement_row(m: dict[str, Any]) -> dict[str, Any]:
    """A measurement as the page shows it: value with unit, the limit, the outcome in words, a meter."""
    value, unit, low, high = m.get("value"), m.get("unit", ""), m.get("low"), m.get("high")
    row = {"name": m.get("name", ""), "subject": m.get("subject") or "", "value": format_value(value, unit),
           "limit": (f"expected {'yes' if (low or 0) >= 1 else 'no'}" if isinstance(value, bool) and
                     (low is not None or high is not None) else limit_text(low, high, unit)),
           "outcome": m.get("outcome", "info"),
           "sentence": m.get("sentence", ""), "because": m.get("because") or "", "meter": None}
    # a problem or warning with no figure of its own (a freeze, a raised alarm flag): the sentence is the row
    if value is None and not unit and low is None and high is None and row["outcome"] in ("failed", "warning"):
        row.update(name=m.get("sentence", ""), value="")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (low is not None or high is not None):
        top = max(abs(x) for x in (value, low, high) if x is not None) * 1.15 or 1.0
        row["meter"] = {"fill": round(max(0.0, min(100.0, 100 * value / top)), 1),
                        "marks": [round(100 * limit / top, 1) for limit in (low, high) if limit is not None]}
    return row


def _card(check: dict[str, Any]) -> Card:
    rows = [measurement_row(m) for m in check.get("measurements") or []]
    ordered = sorted(rows, key=lambda r: OUTCOME_ORDER.get(r["outcome"], 5))
    key = [r for r in ordered if r["outcome"] != "info" or r["value"] != "unknown"][:KEY_MEASUREMENTS]
    problems = list(check.get("problems") or [])
    reasons = list(check.get("reasons") or [])
    headline = (problems or [r["sentence"] for r in ordered if r["outcome"] == "unknown"] or reasons or [""])[0]
    return Card(check["name"], check["outcome"], headline, key, ordered, reasons, problems,
                started=check.get("started"), finished=check.get("finished"), traceback=check.get("traceback"))


def check_charts(run_dir: Path, check: dict[str, Any]) -> list[Chart | Table]:
    """The charts (and tables) of a check from its plot module (none when it has no module)."""
    base = check["name"].split("[", 1)[0]
    try:
        module = importlib.import_module(f"qualify.report.plots.{base}")
    except ModuleNotFoundError as exc:
        if exc.name == f"qualify.report.plots.{base}":
            return []
        raise
    make = getattr(module, "charts", None)
    return list(make(run_dir, check)) if make else []


def event_markers(verdict: dict[str, Any]) -> list[Marker]:
    markers = []
    for event in verdict.get("events") or []:
        at = _epoch(event.get("t"))
        if at is not None and event.get("severity") in ("warning", "error", "critical"):
            markers.append(Marker(at, f"{event.get('severity')}: {event.get('message', '')}", event.get("severity")))
    for check in verdict.get("checks") or []:
        at = _epoch(check.get("started"))
        if at is not None:
            markers.append(Marker(at, f"{check['name']} starts", "info"))
    return markers


def _raw_files(run_dir: Path) -> list[str]:
    found = []
    for folder in ("raw", "samples"):
        if (run_dir / folder).is_dir():
            found += sorted(f"{folder}/{p.name}" for p in (run_dir / folder).iterdir() if p.is_file())
    return found


def render_report_html(run_dir: Path, verdict: dict[str, Any], plot_errors: list[str] | None = None) -> str:
    figures: list[Chart | Table] = []
    cards = []
    markers = event_markers(verdict)
    errors = plot_errors if plot_errors is not None else []
    for check in verdict.get("checks") or []:
        card = _card(check)
        try:
            made = check_charts(run_dir, check)
        except Exception as exc:  # noqa: BLE001 — a broken plot must not cost the report
            errors.append(f"{check['name']}: plots not drawn ({type(exc).__name__}: {exc})")
            made = []
        for item in made:
            if isinstance(item, Chart) and item.time_axis and item.x:
                lo, hi = item.x[0], item.x[-1]
                item.markers += [m for m in markers if lo <= m.x <= hi]
            card.figures.append(len(figures))
            figures.append(item)
        cards.append(card)
    failing = [c for c in cards if c.outcome in ("failed", "error")]
    last = verdict.get("last_record") or ""
    return render_template(
        "report.html.j2", v=verdict, cards=cards, failing=failing, drives=buyer_lines(verdict),
        **figure_context(figures), raw_files=_raw_files(run_dir), plot_errors=errors,
        running=verdict.get("finished") is None, last_record_time=last[11:19] if len(last) >= 19 else last,
    )


def figure_context(figures: Sequence[Chart | Table]) -> dict[str, Any]:
    """What the templates' `figures` macro and chart scripts need: each figure with its chart's index in the
    page's chart data (tables have none), the data, and uPlot and charts.js to inline."""
    shown: list[dict[str, Any]] = []
    charts: list[Chart] = []
    for item in figures:
        if isinstance(item, Chart):
            shown.append({"chart": item, "index": len(charts)})
            charts.append(item)
        else:
            shown.append({"table": item})
    script, style = library()
    return {"figures": shown, "chart_data": charts_json(charts) if charts else "", "uplot_js": script,
            "uplot_css": style, "charts_js": _static("charts.js")}


def buyer_lines(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """verdict.json's `drives` (one line a buyer acts on per judged drive), read defensively: a field of the
    wrong shape is left out, never a failed page."""
    rows, drives = [], verdict.get("drives")
    for drive in drives if isinstance(drives, list) else []:
        if not isinstance(drive, dict):
            continue
        outcome = drive.get("verdict") if drive.get("verdict") in ("accept", "reject", "unknown") else "unknown"
        checks = drive["checks"] if isinstance(drive.get("checks"), dict) else {}
        rows.append({"subject": str(drive.get("subject") or "?"), "model": str(drive.get("model") or ""),
                     "verdict": outcome, "line": str(drive.get("line") or outcome),
                     "checks": {str(k): str(v) for k, v in checks.items()}})
    return rows


def _static(name: str) -> str:
    from importlib.resources import files

    return files("qualify.report").joinpath("static", name).read_text()
