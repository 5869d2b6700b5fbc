"""Storage matrix charts: bandwidth and IOPS of every fio job over its seconds, and the completion-latency
percentiles of each job (log scale: p99.99 is often 100x p50). Drawn per drive from the stored samples.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from qualify.report.charts import Chart, Series, joined_chart
from qualify.store import read_samples

PERCENTILES = ("p50", "p99", "p99.9", "p99.99")


def charts(run_dir: Path, check: dict[str, Any]) -> list[Chart]:
    series: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for sample in read_samples(run_dir, "storage"):
        series[sample["drive"]][sample["job"]].append(sample)
    drives = (check.get("metrics") or {}).get("drives") or {}
    out = [_over_time(drive, jobs) for drive, jobs in series.items()]
    out += [chart for drive, jobs in drives.items() if (chart := _latency(drive, jobs))]
    return out


def _over_time(drive: str, jobs: dict[str, list[dict]]) -> Chart:
    """Bandwidth per job on the left axis, IOPS per job (dashed) on the right: one x axis, seconds into each job."""
    lines = {f"{job} MB/s": ([s["t"] for s in samples], [s["read_mb_s"] + s["write_mb_s"] for s in samples])
             for job, samples in jobs.items()}
    chart = joined_chart(f"Drive {drive}: fio jobs over time", lines, "MB/s", time_axis=False,
                         x_label="seconds into the job", y2_label="IOPS",
                         caption="solid: bandwidth (MB/s, left axis); dashed: IOPS (right axis)")
    iops = joined_chart("", {f"{job} IOPS": ([s["t"] for s in samples],
                                             [s["read_iops"] + s["write_iops"] for s in samples])
                             for job, samples in jobs.items()}, "IOPS", time_axis=False)
    for line in iops.series:
        line.dashed, line.axis = True, "y2"
    chart.series += iops.series
    return chart


def _latency(drive: str, jobs: dict[str, Any]) -> Chart | None:
    measured = {job: values["latency_us"] for job, values in jobs.items()
                if isinstance(values, dict) and isinstance(values.get("latency_us"), dict) and values["latency_us"]}
    if not measured:
        return None
    series = [Series(job, [latency.get(name) for name in PERCENTILES], "µs", span_gaps=True, points=True)
              for job, latency in measured.items()]
    return Chart(f"Drive {drive}: latency percentiles per job", [float(i) for i in range(len(PERCENTILES))],
                 series, time_axis=False, x_label="completion latency percentile", y_label="µs (log scale)",
                 categories=list(PERCENTILES), log_y=True)
