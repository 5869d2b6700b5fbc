"""The mesh view: every direction of every link, from the latest run of each node.

Each node's run records its own tests (samples/network_tests.jsonl, one row per direction and
test). A mesh run (`qualify run "pve1 pve2 pve3"`) leaves one run per node; the mesh combines the
newest run of each node under the reports folder, so any node's report shows the whole cluster
(as far as it had been measured when the report was rendered; `qualify report` renders it again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from qualify.store import read_samples

TESTS_STREAM = "network_tests"  # one row per direction and test, written by the network check
INTERVALS_STREAM = "network_intervals"  # iperf3's per-second figures of each of those


@dataclass(frozen=True)
class MeshCell:
    """Data flowing source -> target: the worst of the tests that measured it."""

    source: str
    target: str
    bits_per_second: float
    share: float | None  # of the expected rate; None when no rate was expected
    passed: bool
    rows: tuple[dict[str, Any], ...]  # every test of this direction, each with its "run"


def mesh_rows(reports_base: Path) -> list[dict[str, Any]]:
    """The test rows of the newest run of each node that tested its network, each with "run": node/run-id."""
    rows = []
    for node_dir in sorted(p for p in reports_base.iterdir() if p.is_dir()) if reports_base.is_dir() else []:
        for run_dir in sorted((p for p in node_dir.iterdir() if p.is_dir()), reverse=True):
            found = read_samples(run_dir, TESTS_STREAM)
            if found:
                rows += [{**row, "run": f"{node_dir.name}/{run_dir.name}"} for row in found]
                break
    return rows


def mesh_cells(rows: list[dict[str, Any]]) -> dict[tuple[str, str], MeshCell]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["source"], row["target"]), []).append(row)
    cells = {}
    for (source, target), group in grouped.items():
        worst = min(group, key=lambda row: (row["share"] if row["share"] is not None else 1e9, row["bits_per_second"]))
        cells[(source, target)] = MeshCell(source, target, worst["bits_per_second"], worst["share"],
                                           all(row["passed"] for row in group), tuple(group))
    return cells


def wall_seconds(spans: Iterable[tuple[str, str]]) -> float:
    """From the first start to the last end of (started, finished) UTC stamps; 0 without any."""
    stamps = [(datetime.fromisoformat(start), datetime.fromisoformat(end)) for start, end in spans]
    if not stamps:
        return 0.0
    return (max(end for _, end in stamps) - min(start for start, _ in stamps)).total_seconds()


def mesh_rounds(rows: list[dict[str, Any]]) -> dict[int, list[tuple[str, str]]]:
    """The mesh's rounds as tested: round -> the pairs (name order) its rows measured."""
    rounds: dict[int, set[tuple[str, str]]] = {}
    for row in rows:
        if row.get("round") is not None:
            pair = sorted((row["source"], row["target"]))
            rounds.setdefault(row["round"], set()).add((pair[0], pair[1]))
    return {number: sorted(pairs) for number, pairs in sorted(rounds.items())}
