"""Sustained-write plot: write bandwidth per second with the initial level, the falloff threshold and
the falloff point marked, and the GiB written on a second axis. One figure per drive.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from qualify.store import read_samples


def figures(run_dir: Path, check: dict[str, Any]) -> list[Figure]:
    series: dict[str, list[dict]] = defaultdict(list)
    for sample in read_samples(run_dir, "storage_falloff"):
        series[sample["drive"]].append(sample)
    metrics = check.get("metrics", {})
    return [_falloff(drive, samples, metrics.get("drives", {}).get(drive, {}), metrics.get("falloff_share"))
            for drive, samples in series.items()]


def _falloff(drive: str, samples: list[dict], result: dict[str, Any], share: float | None) -> Figure:
    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    t = [s["t"] for s in samples]
    ax.plot(t, [s["write_mb_s"] for s in samples], color="tab:blue", label="write MB/s")
    if "initial_mb_s" in result:
        ax.axhline(result["initial_mb_s"], color="0.5", linestyle=":", label="initial")
        if share:
            ax.axhline(result["initial_mb_s"] * share, color="tab:red", linestyle=":", label=f"{share:.0%} of initial")
    if "falloff_s" in result:
        ax.axvline(result["falloff_s"], color="tab:red",
                   label=f"falloff after {result['falloff_s']:.0f} s / {result['falloff_gib']:g} GiB")
    ax.set_xlabel("seconds")
    ax.set_ylabel("MB/s")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    written = ax.twinx()
    written.plot(t, [s["written_gib"] for s in samples], color="tab:green", alpha=0.6, label="GiB written")
    written.set_ylabel("GiB written")
    lines, labels = ax.get_legend_handles_labels()
    more_lines, more_labels = written.get_legend_handles_labels()
    ax.legend(lines + more_lines, labels + more_labels, loc="lower left", fontsize="small")
    fig.suptitle(f"Drive {drive}: sustained write")
    return fig
