"""Entry points: report.html of a run (page.py) and reports/index.html."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from qualify.names import check_node_name
from qualify.report.templates import render_template
from qualify.store import REPORTS_MARK, is_reports_root, is_run_dir, list_runs, read_records, reports_dir
from qualify.verdict import build_verdict, write_verdict


def render_run(run_dir: Path, index: bool = True) -> Path:
    """Write <run_dir>/report.html (and verdict.json, and the index); return the report's path."""
    from qualify.report.page import render_report_html

    run_dir = run_dir.resolve()
    verdict = judge_run(run_dir)  # raises UsageError for a directory that is not a run
    report = run_dir / "report.html"
    tmp = report.with_suffix(".html.tmp")
    tmp.write_text(render_report_html(run_dir, verdict))
    tmp.replace(report)  # a reader (the owner refreshing a live report) never sees half a page
    if index:
        _render_index_of(run_dir)
    return report


def _render_index_of(run_dir: Path) -> None:
    """The index of the reports folder holding `run_dir`, when it is one (never next to a copied run).

    The index is a convenience page: a failure to write it is a warning, never the run's outcome."""
    base = run_dir.parent.parent
    if not is_reports_root(base):
        print(f"qualify: note: no index written: {base} is not a reports folder "
              f"(no {REPORTS_MARK}, not QUALIFY_REPORTS)", file=sys.stderr)
        return
    try:
        render_index(base)
    except Exception as exc:  # whatever a stored run holds, the run's verdict stands
        print(f"qualify: warning: {base / 'index.html'} not written: {type(exc).__name__}: {exc}", file=sys.stderr)


def judge_run(run_dir: Path) -> dict[str, Any]:
    """Judge a run from its records and write its verdict.json."""
    verdict = build_verdict(read_records(run_dir))
    write_verdict(run_dir, verdict)
    return verdict


def render_index(base: Path | None = None) -> Path:
    """reports/index.html: every run of every node, newest first, with its verdict."""
    base = base or reports_dir()
    rows = []
    for run_dir in list_runs(base):
        try:
            rows.append(_index_row(run_dir))
        except Exception as exc:  # one corrupt stored run must not hide every other run
            print(f"qualify: warning: index: skipped {run_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
    path = base / "index.html"
    base.mkdir(parents=True, exist_ok=True)
    path.write_text(render_template("index.html.j2", runs=rows))
    return path


def _index_row(run_dir: Path) -> dict[str, Any]:
    """One run's row; ValueError for a stored run whose fields have the wrong shape."""
    check_node_name(run_dir.parent.name)  # the row links to <node>/<run>/report.html: a name, never a URL scheme
    verdict_file = run_dir / "verdict.json"
    verdict = json.loads(verdict_file.read_text()) if verdict_file.is_file() else build_verdict(read_records(run_dir))
    labels, checks = verdict.get("labels") or {}, verdict.get("checks") or []
    if not isinstance(labels, dict) or not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        raise ValueError("its labels are not a mapping or its checks not a list of checks")
    return {
        "node": run_dir.parent.name, "run_id": run_dir.name, "verdict": verdict.get("verdict"),
        "started": verdict.get("started"), "finished": verdict.get("finished"),
        "labels": {str(k): str(v) for k, v in labels.items()},
        "checks": {str(c.get("name")): str(c.get("outcome")) for c in checks},
        "report": f"{run_dir.parent.name}/{run_dir.name}/report.html" if (run_dir / "report.html").is_file() else None,
    }


def find_run_dir(path: Path) -> Path:
    """A run directory, or a node directory meaning its newest run."""
    if is_run_dir(path):
        return path
    runs = sorted((p for p in path.glob("*") if is_run_dir(p)), reverse=True) if path.is_dir() else []
    if runs:
        return runs[0]
    return path  # read_records explains what is wrong with it
