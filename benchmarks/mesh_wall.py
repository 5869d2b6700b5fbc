"""Wall time of the lab's mesh tested in round-robin rounds ÷ tested pair by pair, in the same run.

Every link of the mesh is tested once (iperf3 forward, SECONDS, through qualify's own server and
client over ssh, each test holding the locks of its two nodes as the network check does). In rounds
(qualify/cluster/schedule.py) the disjoint pairs of a round run at once; pair by pair runs the
N·(N−1)/2 links one after another. The links are shaped to the lab's link rate, as the lab tests do.

What the figure means: on 3 nodes a round holds one pair (3 rounds of 1 = 3 pairs one by one), so
the ratio is ~1.0 by construction; it shows the rounds and locks add no cost. The gain needs 4+
nodes: NODES=4 brings up a lab of its own with 4 nodes for the run (3 rounds of 2 pairs against 6
pairs: goal ratio >= 1.6 on a 2-core machine; 2.0 when the pairs of a round do not compete for CPUs).
Needs root; uses the built-in lab when it is up with that many nodes (make lab-up), else one of its own.

    .venv/bin/python benchmarks/mesh_wall.py [NODES] [SECONDS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from qualify.cluster.schedule import Pair, round_robin
from qualify.lab import LabConfig, lab_down, lab_status, lab_up
from qualify.lab.lab import LabState
from qualify.lab.shaping import LAB_LINK_RATE, Shape, shaped
from qualify.network.iperf import IperfServer, run_client
from qualify.network.lock import link_test_lock
from qualify.node import Node, connect
from qualify.overlays import resolve_profile
from qualify.profile import NetworkSettings


def test_pair(nodes: dict[str, Node], state: LabState, pair: Pair, settings: NetworkSettings, locks: Path) -> float:
    """One forward iperf3 test a -> b; its throughput (bits/s)."""
    a, b = pair
    link = next(ln for ln in state.links if {ln.a, ln.b} == {a, b})
    address = (link.addr_b if link.a == a else link.addr_a).split("/")[0]
    with link_test_lock(locks, 600, pair), IperfServer(nodes[b], settings.port, settings.connect_timeout) as server:
        result, _ = run_client(nodes[a], address, server.port, "forward", settings)
    return (result.flows[0].bits_per_second or 0.0) if result.flows else 0.0


def timed(schedule: list[list[Pair]], nodes: dict[str, Node], state: LabState, settings: NetworkSettings,
          locks: Path) -> tuple[float, list[float]]:
    """Wall seconds of the schedule (the pairs of one entry at once) and each test's throughput."""
    rates: list[float] = []
    started = time.monotonic()
    for pairs in schedule:
        threads = [threading.Thread(target=lambda p=pair: rates.append(test_pair(nodes, state, p, settings, locks)))
                   for pair in pairs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return time.monotonic() - started, rates


def bench(cfg: LabConfig, state: LabState, seconds: int) -> None:
    names = list(cfg.nodes)
    settings = NetworkSettings(duration=seconds, streams=1)
    nodes = {name: connect(name, resolve_profile(name, None).profile) for name in names}
    rounds = round_robin(names)
    one_by_one = [[pair] for pairs in rounds for pair in pairs]
    shapes = {(a, b): Shape(rate_bits=LAB_LINK_RATE) for a in names for b in names if a != b}
    try:
        with shaped(cfg, shapes), tempfile.TemporaryDirectory(prefix="qualify-mesh-bench-") as locks:
            in_rounds, rates = timed(rounds, nodes, state, settings, Path(locks))
            pairwise, _ = timed(one_by_one, nodes, state, settings, Path(locks))
    finally:
        for node in nodes.values():
            node.close()
    pairs = len(one_by_one)
    print(f"{len(names)} nodes, {pairs} links, {seconds} s per test")
    print(f"in rounds     {in_rounds:6.1f} s  ({len(rounds)} rounds of {max(len(r) for r in rounds)} pairs at most; "
          f"slowest link {min(rates) / 1e6:.0f} Mbit/s of {LAB_LINK_RATE / 1e6:.0f})")
    print(f"pair by pair  {pairwise:6.1f} s  ({pairs} tests one after another)")
    meaning = ("a round holds one pair: ~1.0 by construction, the rounds and locks cost nothing" if len(names) <= 3
               else "goal >= 1.6 on 2 cores")
    print(f"pair by pair / in rounds: {pairwise / in_rounds:.2f} ({meaning})")


def free_subnet() -> int:
    used = subprocess.run(["ip", "-4", "-o", "addr"], check=False, capture_output=True, text=True).stdout
    return next(n for n in range(230, 250) if f" 10.{n}." not in used)


def main(node_count: int = 3, seconds: int = 3) -> None:
    cfg = LabConfig.from_env()
    state = lab_status(cfg) if node_count == len(cfg.nodes) else None
    if state is not None:
        bench(cfg, state, seconds)
        return
    # a lab of its own (4+ nodes, or the built-in one is down), its overlays the ones resolve_profile reads
    pid = os.getpid()
    own = LabConfig(lab_dir=Path(f"/run/qualify-bench-{pid}"), prefix=f"qb{pid % 10000}-",
                    nodes=tuple(f"lab-pve{i + 1}" for i in range(node_count)), subnet=free_subnet())
    os.environ.update(QUALIFY_LAB_DIR=str(own.lab_dir), QUALIFY_LAB_PREFIX=own.prefix,
                      QUALIFY_LAB_SUBNET=str(own.subnet), QUALIFY_LAB_NODES=" ".join(own.nodes))
    try:
        bench(own, lab_up(own), seconds)
    finally:
        lab_down(own)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
