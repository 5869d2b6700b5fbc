"""Throughput measured through qualify ÷ plain iperf3, on the same lab veth pair in the same run (goal ≥ 0.97).

qualify's path: the server started on the peer over ssh (node.spawn), the client run over ssh
(node.run) and its JSON parsed. The plain path: `ip netns exec` into the same two lab namespaces.
Rounds alternate between the two so the machine's noise hits both alike; medians are compared.
Unshaped, a veth is CPU-bound and swings by ±40 % on a shared machine; RATE (bits/s) shapes the
pair with tc for the run (as the lab tests do), which gives a steady figure.
Needs root and the built-in lab (make lab-up).

    .venv/bin/python benchmarks/iperf_overhead.py [NODE] [PEER] [ROUNDS] [SECONDS] [RATE]
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time

from qualify.lab import LabConfig, lab_status
from qualify.lab.shaping import Shape, shaped
from qualify.network.iperf import IperfServer, run_client
from qualify.node import connect
from qualify.overlays import resolve_profile
from qualify.parsers.iperf3 import parse_iperf3

PLAIN_PORT = 5290


def plain_iperf3(cfg: LabConfig, node: str, peer: str, address: str, seconds: int, streams: int) -> float:
    server = subprocess.Popen(["ip", "netns", "exec", cfg.netns(peer), "iperf3", "-s", "-1", "-p", str(PLAIN_PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # until it listens
        out = subprocess.run(["ip", "netns", "exec", cfg.netns(node), "iperf3", "-c", address, "-p", str(PLAIN_PORT),
                              "-J", "-t", str(seconds), "-P", str(streams)], capture_output=True, text=True,
                             timeout=seconds + 30).stdout
    finally:
        server.wait(10)
    return parse_iperf3(out).flows[0].bits_per_second or 0.0


def main(node_name: str = "lab-pve2", peer_name: str = "lab-pve1", rounds: int = 5, seconds: int = 3,
         rate: float | None = None) -> None:
    cfg = LabConfig.from_env()
    if lab_status(cfg) is None:
        sys.exit("the built-in lab is not up: make lab-up")
    profile = resolve_profile(node_name, None).profile
    link = next(link for link in profile.checks.network.links if link.peer == peer_name)
    settings = profile.checks.network.model_copy(update={"duration": seconds})
    node = connect(node_name, profile)
    peer = connect(peer_name, resolve_profile(peer_name, None).profile)
    through_qualify: list[float] = []
    plain: list[float] = []
    shaping = shaped(cfg, {(node_name, peer_name): Shape(rate_bits=rate)}) if rate else contextlib.nullcontext()
    try:
        with shaping:
            for _ in range(rounds):
                with IperfServer(peer, settings.port, settings.connect_timeout) as server:
                    result, _ = run_client(node, link.peer_address, server.port, "forward", settings)
                through_qualify.append(result.flows[0].bits_per_second or 0.0)
                plain.append(plain_iperf3(cfg, node_name, peer_name, link.peer_address, seconds, settings.streams))
    finally:
        node.close()
        peer.close()
    for name, values in (("through qualify", through_qualify), ("plain iperf3", plain)):
        print(f"{name:16s} median {statistics.median(values) / 1e9:6.2f} Gbit/s  "
              f"(runs: {', '.join(f'{v / 1e9:.2f}' for v in values)})")
    print(f"qualify / plain: {statistics.median(through_qualify) / statistics.median(plain):.3f} (goal >= 0.97)")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "lab-pve2", args[1] if len(args) > 1 else "lab-pve1",
         int(args[2]) if len(args) > 2 else 5, int(args[3]) if len(args) > 3 else 3,
         float(args[4]) if len(args) > 4 else None)
