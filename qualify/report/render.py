"""Entry points: report.html of a run (through pytest-html, see replay.py) and reports/index.html."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from qualify.errors import QualifyError
from qualify.report.templates import render_template
from qualify.store import is_run_dir, list_runs, read_records, reports_dir
from qualify.verdict import build_verdict

REPLAY_TIMEOUT_S = 600


def render_run(run_dir: Path, index: bool = True) -> Path:
    """Write <run_dir>/report.html (and verdict.json, and the index); return the report's path."""
    run_dir = run_dir.resolve()
    write_verdict(run_dir)  # raises UsageError for a directory that is not a run
    report = run_dir / "report.html"
    # A pytest session of its own (a child process): pytest-html renders one session per process.
    argv = [sys.executable, "-m", "pytest", "-c", str(Path(__file__).with_name("replay.ini")),
            "--rootdir", str(run_dir), "--replay-run", str(run_dir),
            "--html", str(report), "--self-contained-html", "-q", "--no-header", "-p", "no:cacheprovider"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S, env=env, cwd=run_dir)
    if not report.is_file():
        raise QualifyError(f"rendering {report} failed: {(proc.stdout + proc.stderr).strip()[-2000:]}")
    if index:
        render_index(run_dir.parent.parent)
    return report


def write_verdict(run_dir: Path) -> dict[str, Any]:
    """Judge a run from its records and write its verdict.json."""
    verdict = build_verdict(read_records(run_dir))
    (run_dir / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str) + "\n")
    return verdict


def render_index(base: Path | None = None) -> Path:
    """reports/index.html: every run of every node, newest first, with its verdict."""
    base = base or reports_dir()
    rows = []
    for run_dir in list_runs(base):
        verdict_file = run_dir / "verdict.json"
        try:
            verdict = json.loads(verdict_file.read_text()) if verdict_file.is_file() else \
                build_verdict(read_records(run_dir))
        except (OSError, ValueError):
            continue
        rows.append({
            "node": run_dir.parent.name, "run_id": run_dir.name, "verdict": verdict.get("verdict"),
            "started": verdict.get("started"), "finished": verdict.get("finished"),
            "labels": verdict.get("labels") or {},
            "checks": {c["name"]: c["outcome"] for c in verdict.get("checks", [])},
            "report": f"{run_dir.parent.name}/{run_dir.name}/report.html"
            if (run_dir / "report.html").is_file() else None,
        })
    path = base / "index.html"
    base.mkdir(parents=True, exist_ok=True)
    path.write_text(render_template("index.html.j2", runs=rows))
    return path


def find_run_dir(path: Path) -> Path:
    """A run directory, or a node directory meaning its newest run."""
    if is_run_dir(path):
        return path
    runs = sorted((p for p in path.glob("*") if is_run_dir(p)), reverse=True) if path.is_dir() else []
    if runs:
        return runs[0]
    return path  # read_records explains what is wrong with it
