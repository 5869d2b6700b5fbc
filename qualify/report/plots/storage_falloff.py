"""Sustained-write plot: write bandwidth per second with the start level, the judged share of it and
the falloff point marked (from the check's measurements), and the GiB written on a second axis.
One figure per drive.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from qualify.store import read_samples

MB = 1_000_000
GIB = 1 << 30


def figures(run_dir: Path, check: dict[str, Any]) -> list[Figure]:
    series: dict[str, list[dict]] = defaultdict(list)
    for sample in read_samples(run_dir, "storage_falloff"):
        series[sample["drive"]].append(sample)
    measured: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for m in check.get("measurements") or []:
        measured[m.get("subject") or ""][m["name"]] = m
    return [_falloff(drive, samples, measured[drive]) for drive, samples in series.items()]


def _falloff(drive: str, samples: list[dict], measured: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    t = [s["t"] for s in samples]
    ax.plot(t, [s["write_mb_s"] for s in samples], color="tab:blue", label="write MB/s")
    start = (measured.get("sustained_write_start_bytes_per_second") or {}).get("value")
    share = (measured.get("sustained_write_share_of_start_ratio") or {}).get("low")
    if start:
        ax.axhline(start / MB, color="0.5", linestyle=":", label="start")
        if share:
            ax.axhline(start / MB * share, color="tab:red", linestyle=":", label=f"{share:.0%} of the start")
    falloff_s = (measured.get("cache_falloff_seconds") or {}).get("value")
    if falloff_s is not None:
        done = (measured.get("cache_falloff_written_bytes") or {}).get("value") or 0
        ax.axvline(falloff_s, color="tab:red", label=f"falloff after {falloff_s:.0f} s / {done / GIB:.2f} GiB")
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
