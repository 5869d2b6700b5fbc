"""Network: iperf3 over every link of the node, forward, reverse and both ways at once.

Why: SFP+ links through transceivers and fibre "work" at a fraction of their speed when a fibre
is dirty, a transceiver marginal or a riser trains the NIC down; only a full-rate test in each
direction shows it. The server runs on the peer node (its own profile says how to reach it), the
client here. The links are tested in the order of the mesh's round-robin rounds (qualify/cluster/schedule.py),
each test holding the locks of its two nodes (qualify/network/lock.py): across the qualify processes of a mesh
run, tests that share a node take turns and the disjoint pairs of a round run at once. Each test row records
its round and how long it waited for its nodes; the check's `mesh` metric the rounds and the wall time.

Each direction's throughput (`iperf_throughput_bits_per_second`, subject "pve2 → pve3 (forward, enp6s0f0)")
must reach the profile's share (default 90 %) of the link's expected rate: the profile's `expected_rate`,
else the speed ethtool reports as negotiated. With neither, the direction is `unknown` (not qualified),
never passed. Many retransmits or a CPU-bound end are named as the likely cause (and as a warning on a
link that is fast enough all the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qualify.findings import Findings, Measurement
from qualify.network.iperf import Direction, IperfServer, run_client
from qualify.network.links import (
    Expectation,
    connect_peer,
    expectation,
    in_rounds,
    link_settings,
    node_interfaces,
    require_interface,
)
from qualify.network.lock import link_test_lock
from qualify.network.mesh import INTERVALS_STREAM, TESTS_STREAM, wall_seconds
from qualify.network.units import format_rate
from qualify.node import Node
from qualify.parsers.iperf3 import Flow, Iperf3Result
from qualify.profile import NetworkLink, NetworkSettings, Profile
from qualify.store import RunStore, utc_now

THROUGHPUT = "iperf_throughput_bits_per_second"
SHARE = "expected_rate_share_ratio"
_DEFAULT_MSS = 1448  # Ethernet MTU 1500 minus IP/TCP headers with timestamps


@dataclass(frozen=True)
class DirectionRun:
    """One iperf3 test of a link as the client (the node under test) saw it."""

    direction: Direction
    result: Iperf3Result
    started: str
    finished: str
    lock_wait_s: float  # waiting for the locks of both nodes (another test of one of them ran)


@dataclass(frozen=True)
class LinkEvidence:
    link: NetworkLink
    round: int  # of the mesh's round-robin schedule (0-based)
    expected: Expectation | None
    runs: tuple[DirectionRun, ...]


@dataclass(frozen=True)
class NetworkEvidence:
    node: str
    links: tuple[LinkEvidence, ...]


@dataclass(frozen=True)
class FlowFigures:
    """Data flowing source -> target in one test: what the judge decides and the mesh shows."""

    source: str
    target: str
    direction: Direction
    link: NetworkLink
    expected: Expectation | None
    round: int
    bits_per_second: float | None  # None: iperf3 gave no result (`failure` says why)
    failure: str | None
    retransmits: int | None
    retransmit_percent: float | None
    cpu_client_percent: float | None
    cpu_server_percent: float | None
    started: str
    finished: str
    lock_wait_s: float

    @property
    def subject(self) -> str:
        return f"{self.source} → {self.target} ({self.direction}, {self.link.interface})"


def check_network(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.network
    if not settings.links:
        findings.skip("no links in the profile: list each link under checks.network.links "
                      "(interface, peer node, peer address) to test it",
                      how="no peer known: run every node of the mesh at once (make qualify NODE=\"pve1 pve2 "
                          "pve3\"), or set peers: or checks.network.links in the profile (qualify profile init "
                          "NODE --peers a,b writes them)")
    evidence = collect(node, settings, run_store)
    judge(evidence, settings, findings)
    record_mesh(flows(evidence), findings.measurements, run_store)
    findings.metric("mesh", mesh_summary(evidence))


def collect(node: Node, settings: NetworkSettings, run_store: RunStore) -> NetworkEvidence:
    """Every direction of every link, raw iperf3 output and per-second figures stored as each test ends."""
    node.require("iperf3")
    interfaces = node_interfaces(node)
    for index, link in enumerate(settings.links):
        require_interface(node, link, index, interfaces)
    links = []
    for number, link in in_rounds(node.name, settings.links):
        expected = expectation(link, link_settings(node, link.interface))
        links.append(LinkEvidence(link, number, expected, _test_link(node, link, settings, run_store)))
    return NetworkEvidence(node.name, tuple(links))


def _test_link(node: Node, link: NetworkLink, settings: NetworkSettings,
               run_store: RunStore) -> tuple[DirectionRun, ...]:
    peer = connect_peer(link)
    lock_timeout = max(1800.0, 30 * settings.duration * len(settings.directions))
    runs = []
    try:
        with IperfServer(peer, settings.port, settings.connect_timeout) as server:
            for direction in settings.directions:
                with link_test_lock(run_store.run_dir.parents[1], lock_timeout, (node.name, link.peer)) as waited:
                    started = utc_now()
                    result, raw = run_client(node, link.peer_address, server.port, direction, settings)
                    run = DirectionRun(direction, result, started, utc_now(), round(waited, 3))
                run_store.save_raw(f"network-{link.interface}-{direction}.json", raw)
                _store_intervals(node.name, link, run, run_store)
                runs.append(run)
    finally:
        peer.close()
    return tuple(runs)


def _store_intervals(node_name: str, link: NetworkLink, run: DirectionRun, run_store: RunStore) -> None:
    samples = run_store.samples(INTERVALS_STREAM)
    for flow in run.result.flows:
        source, target = (node_name, link.peer) if flow.client_sends else (link.peer, node_name)
        for interval in flow.intervals:
            samples.append({"source": source, "target": target, "test": run.direction, "t_s": interval.end_s,
                            "bits_per_second": interval.bits_per_second, "retransmits": interval.retransmits,
                            "omitted": interval.omitted})


def flows(evidence: NetworkEvidence) -> list[FlowFigures]:
    """Each direction data flowed in, per test; a test without a result stands for every direction it had."""
    found = []
    for link_evidence in evidence.links:
        link, node = link_evidence.link, evidence.node
        for run in link_evidence.runs:
            result = run.result
            if result.failure or not result.flows:
                ends = {"forward": [(node, link.peer)], "reverse": [(link.peer, node)],
                        "bidir": [(node, link.peer), (link.peer, node)]}[run.direction]
                found += [FlowFigures(source, target, run.direction, link, link_evidence.expected,
                                      link_evidence.round, None, result.failure or "no totals", None, None, None, None,
                                      run.started, run.finished, run.lock_wait_s)
                          for source, target in ends]
                continue
            cpu = result.cpu
            for flow in result.flows:
                source, target = (node, link.peer) if flow.client_sends else (link.peer, node)
                found.append(FlowFigures(source, target, run.direction, link, link_evidence.expected,
                                         link_evidence.round, flow.bits_per_second or 0.0, None, flow.retransmits,
                                         _retransmit_percent(flow, result.tcp_mss), cpu.host_total if cpu else None,
                                         cpu.remote_total if cpu else None, run.started, run.finished,
                                         run.lock_wait_s))
    return found


def judge(evidence: NetworkEvidence, settings: NetworkSettings, findings: Findings) -> None:
    """Each direction's throughput against the share of its link's expected rate."""
    for figures in flows(evidence):
        subject = figures.subject
        if figures.failure is not None:
            findings.problem(f"{subject}: iperf3 gave no result: {figures.failure} (is the link up and the peer "
                             f"address {figures.link.peer_address} right?)", name=THROUGHPUT, subject=subject)
            continue
        causes = _likely_causes(figures, settings, evidence.node)
        retransmits = f"{figures.retransmits or 0} retransmits"
        expected = figures.expected
        if expected is None:
            findings.measure(THROUGHPUT, figures.bits_per_second, unit="bit/s", subject=subject, text="throughput",
                             detail=f"({retransmits})")
            findings.measure(SHARE, None, low=settings.min_share, subject=subject, text="share of the expected rate",
                             detail=f"no expected rate: none in the profile and ethtool reports no speed for "
                                    f"{figures.link.interface}")
            continue
        share = (figures.bits_per_second or 0.0) / expected.bits_per_second
        measured = findings.measure(
            THROUGHPUT, figures.bits_per_second, unit="bit/s", low=expected.bits_per_second * settings.min_share,
            subject=subject, text="throughput",
            detail=f"({share:.0%} of the expected {format_rate(expected.bits_per_second)}, {expected.basis}; "
                   f"{settings.min_share:.0%} required; {retransmits})",
            because=f"likely cause: {'; '.join(causes)}" if causes else None)
        if causes and measured.outcome == "passed":  # fast enough, yet losing packets or at a CPU's limit
            findings.warning(f"{subject}: {'; '.join(causes)}")


def record_mesh(figures: list[FlowFigures], measurements: list[Measurement], run_store: RunStore) -> None:
    """One row of the mesh per direction and test, with the judge's outcome (read by every node's report)."""
    decided = {(m.name, m.subject): m for m in measurements if m.name == THROUGHPUT}
    rows = run_store.samples(TESTS_STREAM)
    for flow in figures:
        measured = decided.get((THROUGHPUT, flow.subject))
        expected_bps = flow.expected.bits_per_second if flow.expected else None
        bps = flow.bits_per_second or 0.0
        rows.append({
            "source": flow.source, "target": flow.target, "test": flow.direction, "interface": flow.link.interface,
            "bits_per_second": bps, "expected_bps": expected_bps,
            "share": bps / expected_bps if expected_bps else None,
            "passed": measured is not None and measured.outcome != "failed",
            "outcome": measured.outcome if measured else "unknown", "reason": measured.sentence if measured else "",
            "retransmits": flow.retransmits, "retransmit_percent": flow.retransmit_percent,
            "cpu_client_percent": flow.cpu_client_percent, "cpu_server_percent": flow.cpu_server_percent,
            "round": flow.round, "lock_wait_s": flow.lock_wait_s, "started": flow.started, "finished": flow.finished})


def mesh_summary(evidence: NetworkEvidence) -> dict[str, Any]:
    """The node's links by round and the wall time of its tests (first start to last end), waits included."""
    runs = [run for link in evidence.links for run in link.runs]
    wall = wall_seconds((run.started, run.finished) for run in runs)
    return {"rounds": {f"{evidence.node}–{link.link.peer} ({link.link.interface})": link.round
                       for link in evidence.links},
            "wall_seconds": round(wall, 3), "lock_wait_seconds": round(sum(r.lock_wait_s for r in runs), 3)}


def _retransmit_percent(flow: Flow, mss: int | None) -> float | None:
    if flow.retransmits is None or not flow.sent or not flow.sent.bytes:
        return None
    segments = flow.sent.bytes / (mss or _DEFAULT_MSS)
    return 100 * flow.retransmits / segments


def _likely_causes(figures: FlowFigures, settings: NetworkSettings, node_name: str) -> list[str]:
    causes = []
    if figures.retransmit_percent is not None and figures.retransmit_percent > settings.max_retransmit_percent:
        causes.append(f"{figures.retransmits} retransmits ({figures.retransmit_percent:.2f} % of the segments "
                      f"sent): packets are lost on the link (fibre, transceiver, CRC errors)")
    for end, busy in ((node_name, figures.cpu_client_percent), (figures.link.peer, figures.cpu_server_percent)):
        if busy is not None and busy >= settings.cpu_bound_percent:
            causes.append(f"iperf3 on {end} used {busy:.0f} % of a CPU: that end is CPU-bound")
    return causes
