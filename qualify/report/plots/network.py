"""Network plots from the stored samples: iperf3's per-second throughput of each direction against
the expected rate, and the mesh (every direction of every link, from the newest run of each node)
as a heat map and a table with the failing cells named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from qualify.network.mesh import INTERVALS_STREAM, TESTS_STREAM, MeshCell, mesh_cells, mesh_rows
from qualify.network.units import format_rate
from qualify.store import read_samples

# red below the pass line, green at and above the expected rate
_SHARE_COLOURS = LinearSegmentedColormap.from_list("share", ["#c0392b", "#f1c40f", "#27ae60"])


def figures(run_dir: Path, check: dict[str, Any]) -> list[Figure]:
    tests = read_samples(run_dir, TESTS_STREAM)
    if not tests:
        return []
    found = [intervals_figure(read_samples(run_dir, INTERVALS_STREAM), tests)]
    rows = mesh_rows(run_dir.parents[1])
    cells = mesh_cells(rows)
    if cells:
        found += [heat_map(cells), mesh_table(rows)]
    return found


def intervals_figure(intervals: list[dict[str, Any]], tests: list[dict[str, Any]]) -> Figure:
    kinds = list(dict.fromkeys(row["test"] for row in tests))
    fig = Figure(figsize=(11, 2.8 * len(kinds)))
    axes = np.atleast_1d(fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0])
    for ax, kind in zip(axes, kinds):
        for test in (row for row in tests if row["test"] == kind):
            points = [p for p in intervals if p["test"] == kind and p["source"] == test["source"]
                      and p["target"] == test["target"]]
            line, = ax.plot([p["t_s"] for p in points], [p["bits_per_second"] / 1e9 for p in points],
                            marker=".", label=f"{test['source']} → {test['target']}")
            if test.get("expected_bps"):
                ax.axhline(test["expected_bps"] / 1e9, color=line.get_color(), linestyle=":", linewidth=1)
        ax.set_title(kind, loc="left", fontsize=10)
        ax.set_ylabel("Gbit/s")
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right", fontsize=8)
    axes[-1].set_xlabel("seconds into the test (dotted: expected rate)")
    fig.suptitle("iperf3 throughput per second, each direction")
    return fig


def heat_map(cells: dict[tuple[str, str], MeshCell]) -> Figure:
    nodes = sorted({node for pair in cells for node in pair})
    shares = np.full((len(nodes), len(nodes)), np.nan)
    fig = Figure(figsize=(2.2 + 1.6 * len(nodes), 1.6 + 1.3 * len(nodes)))
    ax = fig.subplots()
    for (source, target), cell in cells.items():
        i, j = nodes.index(source), nodes.index(target)
        shares[i, j] = min(cell.share, 1.0) if cell.share is not None else np.nan
        mark = "" if cell.passed else "\nFAIL"
        share = f"\n{cell.share:.0%}" if cell.share is not None else ""
        ax.text(j, i, f"{format_rate(cell.bits_per_second)}{share}{mark}", ha="center", va="center", fontsize=9,
                fontweight="normal" if cell.passed else "bold")
    image = ax.imshow(shares, cmap=_SHARE_COLOURS, vmin=0.5, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the expected rate (worst test)")
    ax.set_xticks(range(len(nodes)), nodes)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    failing = [f"{c.source}→{c.target}" for c in cells.values() if not c.passed]
    fig.suptitle("Mesh throughput — " + (f"failing: {', '.join(failing)}" if failing else "every direction passes"))
    return fig


def mesh_table(rows: list[dict[str, Any]]) -> Figure:
    header = ["from", "to", "test", "measured", "expected", "share", "retransmits", "result", "run"]
    body = [[row["source"], row["target"], row["test"], format_rate(row["bits_per_second"]),
             format_rate(row["expected_bps"]) if row.get("expected_bps") else "—",
             f"{row['share']:.0%}" if row.get("share") is not None else "—",
             str(row.get("retransmits") if row.get("retransmits") is not None else "—"),
             "pass" if row["passed"] else "FAIL", row["run"]]
            for row in sorted(rows, key=lambda r: (r["source"], r["target"], r["test"]))]
    fig = Figure(figsize=(12, 0.9 + 0.3 * len(body)))
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=body, colLabels=header, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(header))))
    for index, row in enumerate(body, start=1):
        if row[7] == "FAIL":
            for column in range(len(header)):
                table[index, column].set_facecolor("#f5b7b1")
    fig.suptitle("Mesh: every direction tested, newest run of each node")
    return fig
