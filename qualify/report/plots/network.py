"""Network charts from the stored samples: iperf3's per-second throughput of each direction against
the expected rate, and the mesh (every direction of every link, from the newest run of each node)
as a heat map and a table with the failing cells named — both HTML tables, every cell in words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qualify.network.mesh import INTERVALS_STREAM, TESTS_STREAM, MeshCell, mesh_cells, mesh_rows
from qualify.network.units import format_rate
from qualify.report.charts import Cell, Chart, Limit, Table, joined_chart
from qualify.store import read_samples

PASS_SHARE = 0.5  # the heat map's scale: white at half the expected rate or less, full colour at the rate


def charts(run_dir: Path, check: dict[str, Any]) -> list[Chart | Table]:
    tests = read_samples(run_dir, TESTS_STREAM)
    if not tests:
        return []
    found: list[Chart | Table] = list(interval_charts(read_samples(run_dir, INTERVALS_STREAM), tests))
    rows = mesh_rows(run_dir.parents[1])
    cells = mesh_cells(rows)
    if cells:
        found += [heat_map(cells), mesh_table(rows)]
    return found


def interval_charts(intervals: list[dict[str, Any]], tests: list[dict[str, Any]]) -> list[Chart]:
    """One chart per test kind (forward, reverse, bidirectional): each direction's Gbit/s per second."""
    out = []
    for kind in dict.fromkeys(row["test"] for row in tests):
        directions = [row for row in tests if row["test"] == kind]
        lines = {}
        for test in directions:
            points = [p for p in intervals if p["test"] == kind and p["source"] == test["source"]
                      and p["target"] == test["target"]]
            lines[f"{test['source']} → {test['target']}"] = ([p["t_s"] for p in points],
                                                            [p["bits_per_second"] / 1e9 for p in points])
        chart = joined_chart(f"iperf3 throughput per second: {kind}", lines, "Gbit/s", time_axis=False,
                             x_label="seconds into the test")
        chart.limits += [Limit(test["expected_bps"] / 1e9, f"expected {format_rate(test['expected_bps'])}"
                               + (f" ({test['source']} → {test['target']})" if len(directions) > 1 else ""))
                         for test in directions if test.get("expected_bps")]
        out.append(chart)
    return out


def heat_map(cells: dict[tuple[str, str], MeshCell]) -> Table:
    nodes = sorted({node for pair in cells for node in pair})
    rows = []
    for source in nodes:
        row = [Cell(source)]
        for target in nodes:
            cell = cells.get((source, target))
            if cell is None:
                row.append(Cell("—"))
                continue
            share = f" · {cell.share:.0%}" if cell.share is not None else ""
            shade = None if cell.share is None else max(0.0, min(1.0, (cell.share - PASS_SHARE) / (1 - PASS_SHARE)))
            row.append(Cell(f"{format_rate(cell.bits_per_second)}{share} · {'pass' if cell.passed else 'FAIL'}",
                            "passed" if cell.passed else "failed", shade))
        rows.append(row)
    failing = [f"{c.source}→{c.target}" for c in cells.values() if not c.passed]
    return Table("Mesh throughput — " + (f"failing: {', '.join(failing)}" if failing else "every direction passes"),
                 ["from \\ to", *nodes], rows, row_header=True,
                 caption="the worst test of each direction, as a share of its expected rate")


def mesh_table(rows: list[dict[str, Any]]) -> Table:
    body = []
    for row in sorted(rows, key=lambda r: (r["source"], r["target"], r["test"])):
        outcome = "passed" if row["passed"] else "failed"
        body.append([Cell(row["source"]), Cell(row["target"]), Cell(row["test"]),
                     Cell(format_rate(row["bits_per_second"])),
                     Cell(format_rate(row["expected_bps"]) if row.get("expected_bps") else "—"),
                     Cell(f"{row['share']:.0%}" if row.get("share") is not None else "—"),
                     Cell(str(row["retransmits"]) if row.get("retransmits") is not None else "—"),
                     Cell("pass" if row["passed"] else "FAIL", outcome), Cell(row["run"])])
    return Table("Mesh: every direction tested, newest run of each node",
                 ["from", "to", "test", "measured", "expected", "share", "retransmits", "result", "run"], body)
