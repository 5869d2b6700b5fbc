"""`qualify cluster NODE...`: reports/cluster.json and reports/cluster.html from the nodes' newest runs.

Reads only stored runs (verdict.json, or the records when a run has none yet); `--run` in the CLI
runs the nodes first. Configuration differences and performance outliers between the siblings
(siblings.py), and each node against its own history (history.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qualify.cluster import history, siblings
from qualify.errors import UsageError
from qualify.store import is_run_dir, read_records
from qualify.verdict import build_verdict


@dataclass(frozen=True)
class ClusterOptions:
    tolerance: float = 0.10
    golden: str | None = None


def node_verdicts(node_dir: Path) -> list[dict[str, Any]]:
    """Every readable run of a node, oldest first (a damaged run is left out, not fatal)."""
    verdicts = []
    for run_dir in sorted(p for p in node_dir.glob("*") if is_run_dir(p)):
        verdict_file = run_dir / "verdict.json"
        try:
            verdict = json.loads(verdict_file.read_text()) if verdict_file.is_file() else \
                build_verdict(read_records(run_dir))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(verdict, dict):
            verdict["run_dir"] = str(run_dir)
            verdicts.append(verdict)
    return verdicts


def build_cluster(reports: Path, nodes: list[str], settings: ClusterOptions) -> dict[str, Any]:
    if len(nodes) < 2:
        raise UsageError("qualify cluster compares nodes: name at least two (make cluster NODES=\"pve1 pve2 pve3\")")
    if settings.golden is not None and settings.golden not in nodes:
        raise UsageError(f"--golden {settings.golden}: not one of the nodes compared ({', '.join(nodes)})")
    newest: dict[str, dict[str, Any]] = {}
    histories: dict[str, list[dict[str, Any]]] = {}
    missing = []
    for node in nodes:
        runs = node_verdicts(reports / node)
        if not runs:
            missing.append(node)
            continue
        newest[node] = runs[-1]
        histories[node] = runs[:-1]
    if missing:
        raise UsageError(f"no stored run of {', '.join(missing)} under {reports}: qualify them first "
                         f"(make qualify NODE=\"{' '.join(nodes)}\", or qualify cluster --run ...)")
    per_node_history = {}
    for node, verdict in newest.items():
        found, notes = history.shifts(verdict, histories[node])
        per_node_history[node] = {"shifts": history.as_data(found), "notes": notes}
    diffs = siblings.differences(newest)
    outs = siblings.outliers(newest, settings.tolerance, settings.golden)
    return {
        "nodes": nodes,
        "runs": {n: {"run_id": v.get("run_id"), "verdict": v.get("verdict"), "run_dir": v.get("run_dir")}
                 for n, v in newest.items()},
        "tolerance": settings.tolerance,
        "golden": settings.golden,
        "differences": siblings.as_data(diffs),
        "outliers": siblings.as_data(outs),
        "history": per_node_history,
    }


def write_cluster(reports: Path, nodes: list[str], settings: ClusterOptions) -> tuple[Path, Path]:
    from qualify.report.templates import render_template

    data = build_cluster(reports, nodes, settings)
    json_path, html_path = reports / "cluster.json", reports / "cluster.html"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    html_path.write_text(render_template("cluster.html.j2", cluster=data))
    return json_path, html_path
