"""CPU that qualify's long-lived node-side processes cost a node during a soak, from the node's own process
accounting. Goal: all of them together <= 0.05 % of one core (0.5 ms of CPU per second).

On a lab node (make lab-up; QUALIFY_LAB_* select another lab), as during `qualify soak`: the run lock
held, the freeze watch (heartbeat, kernel-log follower, probe) and the telemetry sampler at the
profile's intervals, measured over a window after start-up. Every process in the node's cgroup is read
before and after the window from
- /proc/<pid>/stat: utime + stime + cutime + cstime in clock ticks (what ps and top show; with reaped
  children, such as a shell loop's `sleep`), and
- /proc/<pid>/task/*/schedstat: the time its live threads ran, in ns (the same accounting at a
  resolution a minute can show),
and named by its command line. sshd is shown apart: it serves qualify's connection and answers the
probe, but it is the node's own. The cgroup's total (every process of the node, exited ones too) is the
cross-check. The run time (schedstat) is what is judged: a window of a minute holds only a few clock ticks
of these processes. Exits 1 when qualify's processes together exceed the goal.

    .venv/bin/python benchmarks/node_side_cpu.py [NODE] [WINDOW_S]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from qualify.lab import LabConfig, lab_status
from qualify.lab import cgroup as lab_cgroup
from qualify.node import connect, lock, tether
from qualify.overlays import resolve_profile
from qualify.store import RunStore, read_samples
from qualify.telemetry import start_telemetry
from qualify.telemetry.stream import SAMPLER_SOURCE, STREAM
from qualify.watch import heartbeat, kernel_follow, start_watch

GOAL_MS_PER_S = 0.5  # 0.05 % of one core
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
SAMPLER = SAMPLER_SOURCE.read_text()


@dataclass(frozen=True)
class Reading:
    role: str
    ticks: int  # utime + stime + cutime + cstime
    run_ns: int  # schedstat of the live threads


def role(argv: list[str]) -> str:
    """What a process of the node is, from its command line."""
    code = argv[2] if len(argv) > 2 and argv[1] in ("-e", "-c") else None
    if code == tether.SOURCE:
        return f"tether of {role(argv[6:])}"  # perl -e SOURCE limit grace lock_key command...
    if code == heartbeat.LOOP or heartbeat.LOOP in argv:  # the loop, or its sh before the exec
        return "heartbeat"
    if code == lock.SOURCE:
        return "run lock holder"
    if code == SAMPLER:
        return "telemetry sampler"
    if code is not None and kernel_follow.FOLLOW_ENDED in code:
        return "kernel-log follower (sh)"
    name = os.path.basename(argv[0]) if argv else "?"
    if name in ("tail", "journalctl", "dmesg"):
        return f"kernel-log follower ({name})"
    if name.startswith("sshd"):
        return " ".join(argv)[:48]
    return f"other: {' '.join(argv)[:60]}"


def read(pid: int) -> Reading | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        run_ns = sum(int((task / "schedstat").read_text().split()[0]) for task in Path(f"/proc/{pid}/task").iterdir())
    except (OSError, ValueError, IndexError):
        return None  # ended meanwhile
    return Reading(role(argv), sum(int(v) for v in stat[11:15]), run_ns)


def snapshot(group: Path) -> dict[int, Reading]:
    return {pid: r for pid in lab_cgroup.pids(group) if (r := read(pid)) is not None}


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout_s:g} s")
        time.sleep(0.1)


def measure(node_name: str, window_s: float) -> float:
    """The ratio of qualify's node-side processes together to the goal, measured over window_s."""
    lab = LabConfig.from_env()
    state = lab_status(lab)
    lab_node = state.nodes.get(node_name) if state else None
    group = lab_node.cgroup if lab_node else None
    if lab_node is None or group is None:
        raise SystemExit(f"{node_name}: no lab node with a cgroup (make lab-up; QUALIFY_LAB_* select the lab)")
    counted = lab_cgroup.accounting_group(lab_node.sshd_pid)  # cpuacct twin (v1) or the group (v2)
    usage = (lambda: lab_cgroup.cpu_usage_us(counted)) if counted else (lambda: None)
    profile = resolve_profile(node_name, None).profile
    node = connect(node_name, profile)
    store = RunStore.create(node_name, Path(tempfile.mkdtemp(prefix="qualify-bench-")))
    try:
        with node.exclusive("node_side_cpu benchmark"):  # the run lock's holder, as during a run
            watcher = start_watch(node, profile.watch, store)
            telemetry = start_telemetry(node, store, profile.telemetry)
            try:
                _wait(lambda: len(read_samples(store.run_dir, "heartbeat")) >= 2, 60, "heartbeats")
                _wait(lambda: len(read_samples(store.run_dir, STREAM)) >= 2, 60, "telemetry samples")
                time.sleep(2)  # start-up (discovery, the follower's first read) is not part of the window
                before, usage_before, started = snapshot(group), usage(), time.monotonic()
                time.sleep(window_s)
                after, usage_after, ended = snapshot(group), usage(), time.monotonic()
            finally:
                telemetry.stop()
                if watcher:
                    watcher.stop()
    finally:
        node.close()
        store.close()
    elapsed = ended - started
    return _print(node_name, profile, elapsed, before, after,
           (usage_after - usage_before) / 1e3 if usage_before is not None and usage_after is not None else None)


def _print(node_name: str, profile, elapsed: float, before: dict[int, Reading], after: dict[int, Reading],
           group_ms: float | None) -> float:
    """Print the table; the ratio of qualify's processes together to the goal."""
    rows = sorted(((after[p].role, p, (after[p].ticks - before[p].ticks) * TICK_S * 1e3 / elapsed,
                    (after[p].run_ns - before[p].run_ns) / 1e6 / elapsed) for p in before.keys() & after.keys()),
                  key=lambda row: (row[0].startswith(("sshd", "other")), row[0]))
    print(f"node-side CPU on {node_name} over {elapsed:.1f} s (heartbeat every {profile.watch.heartbeat_interval:g} s, "
          f"telemetry every {profile.telemetry.interval:g} s, probe every {profile.watch.probe_interval:g} s):")
    print(f"  {'process':48s} {'pid':>7s} {'stat ms/s':>10s} {'run ms/s':>9s} {'% of a core':>12s} {'of goal':>8s}")
    totals = {"qualify": 0.0, "sshd": 0.0, "other": 0.0}
    for name, pid, stat_ms, run_ms in rows:
        print(f"  {name:48s} {pid:7d} {stat_ms:10.3f} {run_ms:9.4f} {run_ms / 10:11.4f}% {run_ms / GOAL_MS_PER_S:8.0%}")
        kind = "sshd" if name.startswith("sshd") else "other" if name.startswith("other") else "qualify"
        totals[kind] += run_ms
    ratio = totals["qualify"] / GOAL_MS_PER_S
    print(f"  qualify's processes together: {totals['qualify']:.4f} ms/s = {totals['qualify'] / 10:.4f} % of one "
          f"core = {ratio:.0%} of the goal (<= {GOAL_MS_PER_S:g} ms/s, {GOAL_MS_PER_S / 10:g} %): "
          f"{'met' if ratio <= 1 else 'NOT met'}")
    print(f"  sshd (qualify's connection and probes): {totals['sshd']:.4f} ms/s; other processes of the node: "
          f"{totals['other']:.4f} ms/s")
    if group_ms is not None:
        live = sum(totals.values())
        print(f"  the node's cgroup, every process: {group_ms / elapsed:.4f} ms/s, of which processes that ended "
              f"within the window (sshd's per-connection children of the probes): "
              f"{group_ms / elapsed - live:.4f} ms/s")
    started, ended = len(after.keys() - before.keys()), len(before.keys() - after.keys())
    print(f"  processes started / ended during the window: {started} / {ended}")
    return ratio


if __name__ == "__main__":
    node_arg, window_arg = (sys.argv[1:] + ["lab-pve2", "120"][len(sys.argv) - 1:])[:2]
    sys.exit(0 if measure(node_arg, float(window_arg)) <= 1 else 1)
