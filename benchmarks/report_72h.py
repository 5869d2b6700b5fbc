"""A 72 h thermal soak at 1 Hz with 50 series: how long the report takes and how big it gets
(goals: <= 10 s wall, <= 10 MB, the peak kept). The run is synthetic (written like a real one: run.jsonl with a thermal
check result, samples/telemetry.jsonl with 259 200 samples), then rendered as `qualify report` does.

    .venv/bin/python benchmarks/report_72h.py [HOURS] [SERIES]
"""

from __future__ import annotations

import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

from qualify.report import render_run
from qualify.store import RunStore

PEAK = 104.3


def synthetic_run(base: Path, hours: float, series: int) -> Path:
    store = RunStore.create("soak72", base)
    store.append("run_started", node="soak72", run_id=store.run_id, host="soak72", labels={"cooler": "19mm"},
                 profile={}, profile_sources=[], argv=[], version="bench")
    cores = [f"temp:coretemp/Core {c}" for c in range(series // 3)]
    freqs = [f"freq:cpu{c}" for c in range(series - len(cores) - 5)]
    names = ["temp:coretemp/Package id 0", *cores, *freqs, "rapl:package-0", "throttle:package0", "util:cpu",
             "load:1m"]
    units = {n: {"temp": "C", "freq": "MHz", "rapl": "W", "throttle": "count", "util": "%"}.get(n.split(":")[0], "")
             for n in names}
    samples = store.samples("telemetry")
    samples.append({"series": units, "interval": 1.0, "node": "soak72"})
    seconds = int(hours * 3600)
    start = 1_764_000_000.0
    throttles = 0
    with open(samples.path, "a") as out:  # bulk: the same lines the sampler stream appends one by one
        for i in range(seconds):
            heat = 70 + 25 * (1 - math.exp(-i / 1800)) + 3 * math.sin(i / 7)
            heat = PEAK if i == seconds * 2 // 3 else heat  # one spike: the envelope must keep it
            throttles += heat > 97
            values = {"temp:coretemp/Package id 0": round(heat, 1), "rapl:package-0": round(45 - (heat > 97) * 15, 2),
                      "throttle:package0": throttles, "util:cpu": 100.0, "load:1m": 16.0}
            values.update({c: round(heat - 1 - k % 5, 1) for k, c in enumerate(cores)})
            values.update({f: 3300 - (heat > 97) * 1200 for f in freqs})
            out.write(json.dumps({"seq": i, "t": start + i, "rx": start + i + 0.01, "v": values},
                                 separators=(",", ":")) + "\n")
    store.append("check_started", name="thermal")
    store.append("check_result", name="thermal", outcome="failed", reasons=["synthetic 72 h soak"], problems=[],
                 metrics={"load_start_s": 300.0, "load_end_s": seconds - 300.0}, duration_s=float(seconds))
    store.append("run_finished", interrupted=None, pytest_exit=1)
    store.close()
    return store.run_dir


def main(hours: float = 72.0, series: int = 50) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = synthetic_run(Path(tmp), hours, series)
        data_mb = (run_dir / "samples/telemetry.jsonl").stat().st_size / 1e6
        started, cpu_before = time.perf_counter(), _cpu_s()
        report = render_run(run_dir)  # as `qualify report` does
        took, cpu = time.perf_counter() - started, _cpu_s() - cpu_before
        size_mb = report.stat().st_size / 1e6
        peak_kept = f"{PEAK}," in report.read_text() or f"{PEAK}]" in report.read_text()
    print(f"{hours:g} h x {series} series at 1 Hz: {data_mb:.0f} MB of samples")
    print(f"report rendered in {took:.1f} s wall, {cpu:.1f} s CPU (goal <= 10 s), {size_mb:.2f} MB (goal <= 10 MB), "
          f"the single {PEAK} °C sample {'kept' if peak_kept else 'LOST'} in the charts")


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the renderer)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:]))
