"""Sustained-write chart: write bandwidth per second with the start level, the judged share of it and
the falloff point marked (from the check's measurements), and the GiB written on a second axis.
One chart per drive.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from qualify.report.charts import Chart, Limit, Marker, time_chart
from qualify.store import read_samples

MB = 1_000_000
GIB = 1 << 30


def charts(run_dir: Path, check: dict[str, Any]) -> list[Chart]:
    series: dict[str, list[dict]] = defaultdict(list)
    for sample in read_samples(run_dir, "storage_falloff"):
        series[sample["drive"]].append(sample)
    measured: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for m in check.get("measurements") or []:
        measured[m.get("subject") or ""][m["name"]] = m
    return [_falloff(drive, samples, measured[drive]) for drive, samples in series.items()]


def _falloff(drive: str, samples: list[dict], measured: dict[str, dict[str, Any]]) -> Chart:
    chart = time_chart(f"Drive {drive}: sustained write", [s["t"] for s in samples],
                       {"write MB/s": [s["write_mb_s"] for s in samples],
                        "GiB written": [s["written_gib"] for s in samples]}, "MB/s", time_axis=False,
                       x_label="seconds", y2_label="GiB written")
    written = next(s for s in chart.series if s.label == "GiB written")
    written.unit, written.axis, written.dashed = "GiB", "y2", True
    start = (measured.get("sustained_write_start_bytes_per_second") or {}).get("value")
    share = (measured.get("sustained_write_share_of_start_ratio") or {}).get("low")
    if start:
        chart.limits.append(Limit(start / MB, f"start {start / MB:,.0f} MB/s"))
        if share:
            chart.limits.append(Limit(start / MB * share, f"{share:.0%} of the start"))
    falloff_s = (measured.get("cache_falloff_seconds") or {}).get("value")
    if falloff_s is not None:
        done = (measured.get("cache_falloff_written_bytes") or {}).get("value") or 0
        chart.markers.append(Marker(float(falloff_s), f"falloff after {falloff_s:.0f} s / {done / GIB:.2f} GiB",
                                    "warning"))
    return chart

