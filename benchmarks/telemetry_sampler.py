"""CPU time of the telemetry sampler per sample, on a prepared tree of ~64 series (goal: <= 2 ms,
i.e. < 0.2% of one core at 1 Hz).

Two figures: one sampling pass in-process (kept-open files re-read with pread, vs the naive
open/read/close of every file, as a ratio in the same run), and the real sampler process as it runs on
a node (JSON encoding and the write included), from its own utime+stime in /proc.

    .venv/bin/python benchmarks/telemetry_sampler.py [PASSES]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qualify.lab import NodeSpec, build_node_tree
from qualify.telemetry import sampler
from qualify.telemetry.stream import SAMPLER_SOURCE


def tree_of_64_series(root: Path) -> Path:
    build_node_tree(root, NodeSpec(cpus=24, cores=16, sensors=True))  # 24 CPUs, 16 cores: ~64 series
    for name in ("stat", "loadavg"):
        shutil.copy(f"/proc/{name}", root / "proc" / name)
    return root


def in_process_ms(sources: list, passes: int) -> float:
    sampler.sample(sources, time.monotonic())
    started = time.process_time()
    for _ in range(passes):
        sampler.sample(sources, time.monotonic())
    return (time.process_time() - started) / passes * 1000


def open_read_close_ms(paths: list[str], passes: int) -> float:
    started = time.process_time()
    for _ in range(passes):
        for path in paths:
            with open(path, "rb") as f:
                f.read()
    return (time.process_time() - started) / passes * 1000


def process_ms(root: Path, seconds: float = 5.0, interval: float = 0.02) -> tuple[float, int]:
    """CPU ms per sample of the real sampler process (discovery excluded) and the samples it sent."""
    config = json.dumps({"sysfs": str(root / "sys"), "procfs": str(root / "proc"), "interval": interval})
    proc = subprocess.Popen(["python3", "-c", SAMPLER_SOURCE.read_text(), config], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the header: discovery is done
    proc.stdout.readline()
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_s() -> float:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    before, count = cpu_s(), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        proc.stdout.readline()
        count += 1
    spent = cpu_s() - before
    proc.terminate()
    proc.wait()
    return spent / count * 1000, count


def main(passes: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = tree_of_64_series(Path(tmp))
        sources, _ = sampler.discover(str(root / "sys"), str(root / "proc"))
        kept_open = in_process_ms(sources, passes)
        naive = open_read_close_ms([s.path for s in sources], passes)
        per_sample, samples = process_ms(root)
    print(f"series: {len(sources)}")
    print(f"one pass, files kept open (pread):   {kept_open:.3f} ms CPU")
    print(f"one pass, open/read/close each file: {naive:.3f} ms CPU ({naive / kept_open:.1f}x)")
    print(f"sampler process, per sample sent:    {per_sample:.3f} ms CPU over {samples} samples "
          f"(goal <= 2 ms; at 1 Hz {per_sample / 10:.3f}% of one core)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
