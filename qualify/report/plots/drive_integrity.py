"""Throughput over the surface of each drive, write pass and read-back: speed against the position on the
drive (GiB), with the slow-zone line (a share of the pass's median). Drawn from the stored samples only."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from qualify.report.charts import Chart, Limit, time_chart
from qualify.store import read_samples

GIB = 1 << 30
STREAM = "drive_integrity"  # as qualify/checks/drive_integrity.py stores them
PASSES = {"write": "write pass", "read": "read-back"}


def charts(run_dir: Path, check: dict[str, Any]) -> list[Chart]:
    passes: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for sample in read_samples(run_dir, STREAM):
        passes[(sample["drive"], sample["phase"])].append(sample)
    share = (check.get("metrics") or {}).get("slow_zone_share")
    out = []
    for (drive, phase), samples in passes.items():
        samples.sort(key=lambda s: s["from"])
        x = [(s["from"] + s["to"]) / 2 / GIB for s in samples]
        speeds = [s["bytes_per_second"] / 1e6 for s in samples]
        chart = time_chart(f"Drive {drive}: {PASSES.get(phase, phase)} speed over the surface", x,
                           {f"{phase} MB/s": speeds}, "MB/s", time_axis=False, x_label="position on the drive, GiB",
                           caption="each point: the bytes done in one sample interval, at the stretch they covered")
        if share and speeds:
            median = sorted(speeds)[len(speeds) // 2]
            chart.limits.append(Limit(median * share, f"slow zone: below {share:.0%} of the median {median:,.0f} MB/s"))
        out.append(chart)
    return out
