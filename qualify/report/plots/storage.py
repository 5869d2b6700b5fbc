"""Storage matrix plots: bandwidth and IOPS of every fio job over its seconds, and the completion-latency
percentiles of each job as bars (log scale: p99.99 is often 100x p50). One figure each per drive.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from qualify.store import read_samples

PERCENTILES = ("p50", "p99", "p99.9", "p99.99")


def figures(run_dir: Path, check: dict[str, Any]) -> list[Figure]:
    series: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for sample in read_samples(run_dir, "storage"):
        series[sample["drive"]][sample["job"]].append(sample)
    drives = check.get("metrics", {}).get("drives", {})
    out = [_over_time(drive, jobs) for drive, jobs in series.items()]
    out += [fig for drive, jobs in drives.items() if (fig := _latency_bars(drive, jobs))]
    return out


def _over_time(drive: str, jobs: dict[str, list[dict]]) -> Figure:
    fig = Figure(figsize=(11, 6))
    bandwidth_ax, iops_ax = fig.subplots(2, 1, sharex=True)
    for job, samples in jobs.items():
        t = [s["t"] for s in samples]
        bandwidth_ax.plot(t, [s["read_mb_s"] + s["write_mb_s"] for s in samples], marker=".", label=job)
        iops_ax.plot(t, [s["read_iops"] + s["write_iops"] for s in samples], marker=".", label=job)
    bandwidth_ax.set_ylabel("MB/s")
    iops_ax.set_ylabel("IOPS")
    iops_ax.set_xlabel("seconds into the job")
    bandwidth_ax.legend(loc="upper right", fontsize="small", ncol=3)
    for ax in (bandwidth_ax, iops_ax):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.suptitle(f"Drive {drive}: fio jobs over time")
    return fig


def _latency_bars(drive: str, jobs: dict[str, Any]) -> Figure | None:
    measured = {job: values["latency_us"] for job, values in jobs.items()
                if isinstance(values, dict) and values.get("latency_us")}
    if not measured:
        return None
    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    width = 0.8 / len(PERCENTILES)
    positions = np.arange(len(measured))
    for i, name in enumerate(PERCENTILES):
        ax.bar(positions + i * width, [latency.get(name, 0) for latency in measured.values()], width, label=name)
    ax.set_xticks(positions + width * (len(PERCENTILES) - 1) / 2, list(measured))
    ax.set_yscale("log")
    ax.set_ylabel("completion latency, µs")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Drive {drive}: latency percentiles per job")
    return fig
