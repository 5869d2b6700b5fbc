"""Network: iperf3 over every link of the node, forward, reverse and both ways at once.

Why: SFP+ links through transceivers and fibre "work" at a fraction of their speed when a fibre
is dirty, a transceiver marginal or a riser trains the NIC down; only a full-rate test in each
direction shows it. The server runs on the peer node (its own profile says how to reach it), the
client here; one link test at a time across every qualify process of a mesh run (qualify/network/lock.py).
Each direction must reach the profile's share (default 90 %) of the link's expected rate (the
profile's, else the negotiated speed); many retransmits or a CPU-bound end are named as the likely
cause (and as a warning on a link that is fast enough all the same).
"""

from __future__ import annotations

from qualify.findings import Findings
from qualify.network.iperf import Direction, IperfServer, run_client
from qualify.network.links import (Expectation, connect_peer, expectation, link_settings, node_interfaces,
                                   require_interface)
from qualify.network.lock import link_test_lock
from qualify.network.mesh import INTERVALS_STREAM, TESTS_STREAM
from qualify.network.units import format_rate
from qualify.node import Node
from qualify.parsers.iperf3 import Flow, Iperf3Result
from qualify.profile import NetworkLink, NetworkSettings, Profile
from qualify.store import RunStore, utc_now

_DEFAULT_MSS = 1448  # Ethernet MTU 1500 minus IP/TCP headers with timestamps


def check_network(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.network
    if not settings.links:
        findings.skip("no links in the profile: list each link under checks.network.links "
                      "(interface, peer node, peer address) to test it")
    node.require("iperf3")
    interfaces = node_interfaces(node)
    for index, link in enumerate(settings.links):
        require_interface(node, link, index, interfaces)
    lowest: dict[str, float] = {}
    for link in settings.links:
        expected = expectation(link, link_settings(node, link.interface))
        if expected is None:
            findings.note(f"{link.interface}: no expected rate (none in the profile and ethtool reports no "
                          f"speed): throughput to {link.peer} is measured, not judged")
        _test_link(node, link, expected, settings, findings, run_store, lowest)
    findings.metric("throughput_bps", lowest)
    findings.metric("min_share", settings.min_share)


def _test_link(node: Node, link: NetworkLink, expected: Expectation | None, settings: NetworkSettings,
               findings: Findings, run_store: RunStore, lowest: dict[str, float]) -> None:
    peer = connect_peer(link)
    reports_base = run_store.run_dir.parents[1]
    lock_timeout = max(1800.0, 30 * settings.duration * len(settings.directions))
    try:
        with IperfServer(peer, settings.port, settings.connect_timeout) as server:
            for direction in settings.directions:
                with link_test_lock(reports_base, lock_timeout):
                    timing = {"started": utc_now()}
                    result, raw = run_client(node, link.peer_address, server.port, direction, settings)
                    timing["finished"] = utc_now()
                run_store.save_raw(f"network-{link.interface}-{direction}.json", raw)
                _judge(node.name, link, direction, result, expected, settings, findings, run_store, lowest, timing)
    finally:
        peer.close()


def _judge(node_name: str, link: NetworkLink, direction: Direction, result: Iperf3Result,
           expected: Expectation | None, settings: NetworkSettings, findings: Findings, run_store: RunStore,
           lowest: dict[str, float], timing: dict[str, str]) -> None:
    if result.failure or not result.flows:
        reason = (f"{node_name} ↔ {link.peer} ({direction}, {link.interface} to {link.peer_address}): iperf3 gave "
                  f"no result: {result.failure or 'no totals'} (is the link up and the peer address right?)")
        findings.problem(reason)
        ends = {"forward": [(node_name, link.peer)], "reverse": [(link.peer, node_name)],
                "bidir": [(node_name, link.peer), (link.peer, node_name)]}[direction]
        for source, target in ends:  # the mesh shows the direction as failed, not as missing
            _record_test(run_store, source, target, direction, link, expected, 0.0, False, reason, timing)
        return
    for flow in result.flows:
        source, target = (node_name, link.peer) if flow.client_sends else (link.peer, node_name)
        label = f"{source} → {target} ({direction}, {link.interface})"
        bps = flow.bits_per_second or 0.0
        retransmit_percent = _retransmit_percent(flow, result.tcp_mss)
        causes = _likely_causes(flow, retransmit_percent, result, settings, node_name, link.peer)
        share = bps / expected.bits_per_second if expected else None
        passed = share is None or share >= settings.min_share
        if not passed:
            reason = (f"{label}: {format_rate(bps)} is {share:.0%} of the expected "
                      f"{format_rate(expected.bits_per_second)} ({expected.basis}), below the required "
                      f"{settings.min_share:.0%}" + (f"; likely cause: {'; '.join(causes)}" if causes else ""))
        else:
            judged = f", {share:.0%} of the expected {format_rate(expected.bits_per_second)}" if expected else ""
            reason = f"{label}: {format_rate(bps)}{judged}, {flow.retransmits or 0} retransmits"
            if causes:  # fast enough, yet losing packets or at the CPU's limit: worth a look
                reason = f"warning: {reason}; {'; '.join(causes)}"
        (findings.note if passed else findings.problem)(reason)
        key = f"{source}->{target}"
        lowest[key] = min(lowest.get(key, bps), bps)
        _record_test(run_store, source, target, direction, link, expected, bps, passed, reason, timing,
                     retransmits=flow.retransmits, retransmit_percent=retransmit_percent,
                     cpu_client_percent=result.cpu.host_total if result.cpu else None,
                     cpu_server_percent=result.cpu.remote_total if result.cpu else None)
        for interval in flow.intervals:
            run_store.samples(INTERVALS_STREAM).append({
                "source": source, "target": target, "test": direction, "t_s": interval.end_s,
                "bits_per_second": interval.bits_per_second, "retransmits": interval.retransmits,
                "omitted": interval.omitted})


def _record_test(run_store: RunStore, source: str, target: str, direction: Direction, link: NetworkLink,
                 expected: Expectation | None, bps: float, passed: bool, reason: str, timing: dict[str, str],
                 **extra: float | int | None) -> None:
    """One row of the mesh: data flowing source -> target in one test."""
    expected_bps = expected.bits_per_second if expected else None
    run_store.samples(TESTS_STREAM).append({
        "source": source, "target": target, "test": direction, "interface": link.interface,
        "bits_per_second": bps, "expected_bps": expected_bps, "share": bps / expected_bps if expected_bps else None,
        "passed": passed, "reason": reason, "retransmits": None, **extra, **timing})


def _retransmit_percent(flow: Flow, mss: int | None) -> float | None:
    if flow.retransmits is None or not flow.sent or not flow.sent.bytes:
        return None
    segments = flow.sent.bytes / (mss or _DEFAULT_MSS)
    return 100 * flow.retransmits / segments


def _likely_causes(flow: Flow, retransmit_percent: float | None, result: Iperf3Result, settings: NetworkSettings,
                   node_name: str, peer: str) -> list[str]:
    causes = []
    if retransmit_percent is not None and retransmit_percent > settings.max_retransmit_percent:
        causes.append(f"{flow.retransmits} retransmits ({retransmit_percent:.2f} % of the segments sent): "
                      f"packets are lost on the link (fibre, transceiver, CRC errors)")
    if result.cpu:
        for end, busy in ((node_name, result.cpu.host_total), (peer, result.cpu.remote_total)):
            if busy >= settings.cpu_bound_percent:
                causes.append(f"iperf3 on {end} used {busy:.0f} % of a CPU: that end is CPU-bound")
    return causes
