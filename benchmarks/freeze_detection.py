"""Freeze detection of the watch on a lab node: detection latency over repeated real freezes (cgroup
freezer), and false alarms per hour while the node runs stress-ng on every CPU.

Needs the built-in lab (make lab-up; QUALIFY_LAB_* select another lab). Latency is measured from the
moment the node was frozen to the freeze event; with the default 1 s interval and 3 missed beats the
floor is about 3 s minus the time since the last beat.

    .venv/bin/python benchmarks/freeze_detection.py [NODE] [FREEZES] [LOAD_MINUTES]
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from qualify.lab import LabConfig, freeze_node, thaw_node
from qualify.node import connect
from qualify.overlays import resolve_profile
from qualify.store import RunStore, read_records, read_samples
from qualify.watch import start_watch


def _events(store: RunStore, kind: str) -> list[dict]:
    return [r for r in read_records(store.run_dir) if r["kind"] == "event" and r.get("event") == kind]


def _wait(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the watch did not report in time")
        time.sleep(0.02)


def _wait_for_events(store: RunStore, kind: str, more_than: int) -> list[dict]:
    _wait(lambda: len(_events(store, kind)) > more_than, 30)
    return _events(store, kind)


def _epoch(utc: str) -> float:
    return datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp()


def detection_latencies(lab: LabConfig, node_name: str, store: RunStore, freezes: int) -> list[float]:
    latencies = []
    for n in range(freezes):
        time.sleep(random.uniform(1.0, 2.0))  # freeze at a random point of the heartbeat interval
        frozen_at = time.time()
        freeze_node(lab, node_name)
        try:
            freezes_seen = _wait_for_events(store, "freeze", n)
        finally:
            thaw_node(lab, node_name)
        latencies.append(_epoch(freezes_seen[n]["t"]) - frozen_at)
        _wait_for_events(store, "recovered", n)
    return latencies


def false_alarms_under_load(node, store: RunStore, minutes: float) -> tuple[int, list[float]]:
    before = len(_events(store, "freeze")) + len(_events(store, "heartbeat_lost"))
    started = len(read_samples(store.run_dir, "heartbeat"))
    stress = node.spawn(["stress-ng", "--cpu", "0", "--timeout", f"{round(minutes * 60) + 5}s", "--quiet"])
    try:
        time.sleep(minutes * 60)
    finally:
        stress.stop()
    alarms = len(_events(store, "freeze")) + len(_events(store, "heartbeat_lost")) - before
    gaps = [b["gap_s"] for b in read_samples(store.run_dir, "heartbeat")[started + 1:]]
    return alarms, gaps


def main(node_name: str = "lab-pve2", freezes: int = 20, load_minutes: float = 5.0) -> None:
    lab = LabConfig.from_env()
    profile = resolve_profile(node_name, None).profile
    node = connect(node_name, profile)
    store = RunStore.create(node_name, Path(tempfile.mkdtemp(prefix="qualify-bench-")))
    watcher = start_watch(node, profile.watch, store)
    try:
        if watcher is None:
            raise SystemExit(f"the watch is off in {node_name}'s profile (watch.enabled): nothing to measure")
        _wait(lambda: len(read_samples(store.run_dir, "heartbeat")) >= 2, 30)
        latencies = detection_latencies(lab, node_name, store, freezes)
        alarms, gaps = false_alarms_under_load(node, store, load_minutes)
    finally:
        if watcher is not None:
            watcher.stop()
        node.close()
        store.close()
    threshold = profile.watch.heartbeat_interval * profile.watch.missed_heartbeats
    print(f"freeze detection over {len(latencies)} freezes (threshold {threshold:g} s): "
          f"median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s, min {min(latencies):.2f} s")
    print(f"all-CPU stress-ng for {load_minutes:g} min: {alarms} false alarm(s) "
          f"= {alarms / (load_minutes / 60):.1f} per hour; heartbeat gap median {statistics.median(gaps):.3f} s, "
          f"max {max(gaps):.3f} s over {len(gaps)} beats")
    print(f"records: {store.run_dir}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "lab-pve2", int(args[1]) if len(args) > 1 else 20,
         float(args[2]) if len(args) > 2 else 5.0)
