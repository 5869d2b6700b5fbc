"""CPU the telemetry sampler costs the node, from the node's own process accounting (goal: all of qualify's
long-lived node-side processes together <= 0.05% of one core, i.e. <= 0.5 ms of CPU per second).

The real sampler process (`python3 -c <sampler.py>`, as a node runs it) samples a prepared tree of ~66
series at the profile's interval (1 s) for a window; its CPU is read from /proc/<pid>/stat (utime + stime,
clock ticks) and /proc/<pid>/schedstat (run time in ns: the same accounting at a resolution that a
window of seconds can show). Discovery is excluded: the window starts after the first sample. Also shown:
one sampling pass in-process (kept-open files re-read with pread, as the line it sends) against
open/read/close of every file.

    .venv/bin/python benchmarks/telemetry_sampler.py [WINDOW_S] [INTERVAL_S]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from qualify.lab import NodeSpec, build_node_tree
from qualify.telemetry import sampler
from qualify.telemetry.stream import SAMPLER_SOURCE

GOAL_MS_PER_S = 0.5  # 0.05% of one core


def tree_of_64_series(root: Path) -> Path:
    build_node_tree(root, NodeSpec(cpus=24, cores=16, sensors=True))  # 24 CPUs, 16 cores: ~64 series
    for name in ("stat", "loadavg"):
        shutil.copy(f"/proc/{name}", root / "proc" / name)
    return root


def in_process_ms(sources: list, passes: int) -> float:
    sampling = sampler.Pass(sources)
    sampling.tokens()
    started = time.process_time()
    for _ in range(passes):
        sampling.tokens()
    return (time.process_time() - started) / passes * 1000


def open_read_close_ms(paths: list[str], passes: int) -> float:
    started = time.process_time()
    for _ in range(passes):
        for path in paths:
            with open(path, "rb") as f:
                f.read()
    return (time.process_time() - started) / passes * 1000


def process_accounting(pid: int) -> tuple[float, float]:
    """(utime + stime in seconds, schedstat run time in seconds) of one process, as the node's kernel counts."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return ticks, int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def sampler_cost(root: Path, window_s: float, interval_s: float) -> tuple[float, float, int, int]:
    """(ms/s from stat, ms/s from schedstat, samples in the window, bytes per sample) of the real sampler."""
    config = json.dumps({"sysfs": str(root / "sys"), "procfs": str(root / "proc"), "interval": interval_s})
    proc = subprocess.Popen(["python3", "-c", SAMPLER_SOURCE.read_text(), config], stdout=subprocess.PIPE)
    stdout = proc.stdout
    assert stdout is not None
    try:
        stdout.readline()  # the header: discovery is done
        stdout.readline()  # the first sample (its baselines)
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, b"")), daemon=True)
        reader.start()
        before, started = process_accounting(proc.pid), time.monotonic()
        time.sleep(window_s)
        after, elapsed = process_accounting(proc.pid), time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait()
    reader.join(timeout=5)
    size = sum(map(len, lines)) // max(1, len(lines))
    return ((after[0] - before[0]) / elapsed * 1000, (after[1] - before[1]) / elapsed * 1000, len(lines), size)


def main(window_s: float = 60.0, interval_s: float = 1.0) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = tree_of_64_series(Path(tmp))
        sources, _ = sampler.discover(str(root / "sys"), str(root / "proc"))
        kept_open = in_process_ms(sources, 2000)
        naive = open_read_close_ms([s.path for s in sources], 2000)
        by_stat, by_schedstat, samples, size = sampler_cost(root, window_s, interval_s)
    print(f"series: {len(sources)}")
    print(f"one pass, files kept open (pread):   {kept_open:.3f} ms CPU (warm)")
    print(f"one pass, open/read/close each file: {naive:.3f} ms CPU ({naive / kept_open:.1f}x)")
    print(f"sampler process over {window_s:g} s at {interval_s:g} s ({samples} samples, {size} bytes each): "
          f"{by_schedstat:.3f} ms CPU per second by /proc/<pid>/schedstat, {by_stat:.3f} by utime+stime "
          f"= {by_schedstat / 10:.4f}% of one core, {by_schedstat / GOAL_MS_PER_S:.0%} of the goal for all "
          f"node-side processes together (<= {GOAL_MS_PER_S:g} ms/s, {GOAL_MS_PER_S / 10:g}%)")


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:]))
