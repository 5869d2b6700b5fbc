"""The network check's parts on this machine (loopback, the controller as its own peer) and its bad input:
iperf3 server start/stop and port choice, iperf3 missing, a peer that does not answer, an interface
the node does not have, an iperf3 that gives an "error", and the cross-process lock."""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import time
from pathlib import Path

import pytest

from corpus import corpus_path
from qualify.checks.network import (
    SHARE,
    THROUGHPUT,
    DirectionRun,
    LinkEvidence,
    NetworkEvidence,
    flows,
    judge,
    record_mesh,
)
from qualify.errors import NodeError, QualifyError, ToolMissing
from qualify.findings import Findings, Measurement
from qualify.network.iperf import PORT_TRIES, Direction, IperfServer, run_client
from qualify.network.links import Expectation, in_rounds
from qualify.network.lock import link_test_lock
from qualify.network.mesh import mesh_cells, mesh_rounds, mesh_rows, wall_seconds
from qualify.node import LocalNode
from qualify.parsers.iperf3 import Iperf3Result, parse_iperf3
from qualify.profile import NetworkLink, NetworkSettings, Profile
from qualify.store import RunStore, read_samples

SHORT = NetworkSettings(duration=1, streams=2, connect_timeout=5)


def local(name: str = "ctl") -> LocalNode:
    return LocalNode(name, Profile(host="localhost", command_timeout=60))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def iperf3_servers() -> set[int]:
    out = subprocess.run(["pgrep", "-x", "iperf3"], check=False, capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def test_server_started_measured_and_stopped():
    before = iperf3_servers()
    node = local()
    with IperfServer(node, free_port(), 10) as server:
        assert iperf3_servers() - before, "no iperf3 server running"
        result, raw = run_client(node, "127.0.0.1", server.port, "reverse", SHORT)
    assert json.loads(raw.split("\n}\n")[0] + "\n}")["start"]["test_start"]["reverse"] == 1
    assert result.reverse and result.flows[0].bits_per_second > 0 and not result.flows[0].client_sends
    for _ in range(50):  # stop() returns when the wrapper exits; the server follows at once
        if not iperf3_servers() - before:
            break
        time.sleep(0.1)
    assert not iperf3_servers() - before, "iperf3 server left running"


def test_busy_port_moves_to_the_next_one():
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with IperfServer(local(), port, 10) as server:
            assert server.port == port + 1


def test_every_port_busy_is_a_clear_error():
    sockets = []
    try:
        first = free_port()
        while len(sockets) < PORT_TRIES:
            sock = socket.socket(socket.AF_INET6)
            try:
                sock.bind(("::", first + len(sockets)))
            except OSError:  # someone else's port: start again higher up
                sock.close()
                for s in sockets:
                    s.close()
                sockets, first = [], free_port()
                continue
            sock.listen()
            sockets.append(sock)
        last = first + PORT_TRIES - 1
        with pytest.raises(NodeError, match=rf"ports {first}-{last} are all in use.*checks.network.port"):
            IperfServer(local(), first, 10)
    finally:
        for sock in sockets:
            sock.close()


def test_iperf3_missing_names_the_package(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "timeout", "perl"):  # perl: the tether every node command runs under
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}" if Path(f"/usr/bin/{tool}").exists() else f"/bin/{tool}")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolMissing, match="'iperf3' is not installed on the node; install the Debian package 'iperf3'"):
        IperfServer(local(), 5201, 5)


def test_no_server_gives_iperf3s_error_as_a_named_failure():
    """This machine's iperf3 "error" document (connection refused) fails the direction, naming it."""
    result, _ = run_client(local(), "127.0.0.1", free_port(), "forward", SHORT)
    assert "Connection refused" in result.failure
    findings = judged(evidence(result, link=_link("lo", "127.0.0.1"), node="ctl"))
    assert findings.problems == [(f"ctl → ctl (forward, lo): iperf3 gave no result: {result.failure} "
                                 f"(is the link up and the peer address 127.0.0.1 right?)")]


def _link(interface: str, address: str, peer: str = "ctl") -> NetworkLink:
    return NetworkLink(peer=peer, interface=interface, peer_address=address)


# -- the judge on recorded iperf3 outputs (tests/corpus/iperf3), in milliseconds

PVE2_TO_PVE3 = _link("enp6s0f0", "10.10.23.3", peer="pve3")


def corpus_result(name: str) -> Iperf3Result:
    return parse_iperf3(corpus_path("iperf3", name).read_text())


def evidence(result: Iperf3Result, expected: Expectation | None = None, direction: Direction = "forward",
             link: NetworkLink = PVE2_TO_PVE3, node: str = "pve2") -> NetworkEvidence:
    run = DirectionRun(direction, result, "2026-12-02T06:00:00Z", "2026-12-02T06:01:00Z", 0.0)
    return NetworkEvidence(node, (LinkEvidence(link, 0, expected, (run,)),))


def judged(found: NetworkEvidence, settings: NetworkSettings | None = None) -> Findings:
    findings = Findings("network")
    judge(found, settings or NetworkSettings(), findings)
    return findings


def throughput(findings: Findings) -> list[Measurement]:
    return [m for m in findings.measurements if m.name == THROUGHPUT]


MININET = "iperf-3.6-tcp-4streams-P4-60s-mininet-duplicate-keys.json"  # 17.5 Gbit/s, 2 retransmits


def test_fast_enough_against_the_profiles_rate_passes_with_the_figure_and_its_limit():
    findings = judged(evidence(corpus_result(MININET), Expectation(10e9, "the profile's expected rate")))
    [measured] = throughput(findings)
    assert (measured.outcome, measured.unit, measured.low) == ("passed", "bit/s", 9e9)
    assert measured.value == pytest.approx(17.54e9, rel=1e-3)
    assert measured.subject == "pve2 → pve3 (forward, enp6s0f0)"
    assert measured.sentence == ("pve2 → pve3 (forward, enp6s0f0): throughput 17.5 Gbit/s (175% of the expected "
                                 "10.00 Gbit/s, the profile's expected rate; 90% required; 2 retransmits) "
                                 "(minimum 9 Gbit/s)")
    assert findings.problems == []


def test_below_the_share_of_the_negotiated_speed_fails_naming_direction_and_expectation():
    findings = judged(evidence(corpus_result(MININET), Expectation(25e9, "the negotiated speed of enp6s0f0"),
                               direction="reverse"))
    [measured] = throughput(findings)
    assert measured.outcome == "failed" and measured.low == 22.5e9
    assert findings.problems == [measured.sentence]
    assert "70% of the expected 25.00 Gbit/s, the negotiated speed of enp6s0f0; 90% required" in measured.sentence


def test_no_expected_rate_is_unknown_not_passed():
    findings = judged(evidence(corpus_result(MININET), expected=None))
    assert [(m.name, m.outcome) for m in findings.measurements] == [(THROUGHPUT, "info"), (SHARE, "unknown")]
    assert findings.problems == []
    [part] = findings.not_qualified_parts
    assert part["reason"].startswith("pve2 → pve3 (forward, enp6s0f0): share of the expected rate could not be read: "
                                     "no expected rate: none in the profile and ethtool reports no speed for enp6s0f0")


def test_cpu_bound_end_is_the_likely_cause_of_a_failure_and_a_warning_on_a_pass():
    loopback = corpus_result("openwisp-iperf-3.9-tcp-1stream-loopback-client.json")  # client at 99.5 % CPU
    failed = judged(evidence(loopback, Expectation(100e9, "the profile's expected rate")))
    assert failed.problems[0].endswith("— likely cause: iperf3 on pve2 used 99 % of a CPU: that end is CPU-bound")
    passed = judged(evidence(loopback, Expectation(40e9, "the profile's expected rate")))
    assert passed.problems == [] and [m.outcome for m in passed.measurements] == ["passed", "warning"]
    assert passed.reasons[-1] == ("warning: pve2 → pve3 (forward, enp6s0f0): iperf3 on pve2 used 99 % of a CPU: "
                                  "that end is CPU-bound")


def test_retransmits_above_the_share_are_named():
    lossy = judged(evidence(corpus_result(MININET), Expectation(25e9, "the profile's expected rate")),
                   NetworkSettings(max_retransmit_percent=0.000001))
    assert ("likely cause: 2 retransmits (0.00 % of the segments sent): packets are lost on the link"
            in lossy.problems[0])


def test_refused_connection_of_a_bidir_test_fails_both_directions():
    refused = corpus_result("openwisp-iperf-3.7-openwrt-error-connection-refused.json")
    findings = judged(evidence(refused, Expectation(10e9, "x"), direction="bidir"))
    assert [(m.subject, m.outcome) for m in findings.measurements] == [
        ("pve2 → pve3 (bidir, enp6s0f0)", "failed"), ("pve3 → pve2 (bidir, enp6s0f0)", "failed")]
    assert "iperf3 gave no result: error - unable to connect to server: Connection refused" in findings.problems[0]


def test_mesh_rows_carry_the_judges_outcome(tmp_path):
    found = evidence(corpus_result(MININET), Expectation(25e9, "the profile's expected rate"))
    findings = judged(found)
    store = RunStore.create("pve2", tmp_path / "reports")
    record_mesh(flows(found), findings.measurements, store)
    store.close()
    [row] = read_samples(store.run_dir, "network_tests")
    assert (row["source"], row["target"], row["passed"], row["outcome"]) == ("pve2", "pve3", False, "failed")
    assert row["share"] == pytest.approx(0.70, abs=0.01) and row["reason"] == findings.problems[0]


def _hold(path: str, seconds: float, ready) -> None:
    with link_test_lock(Path(path), 30):
        ready.set()
        time.sleep(seconds)


def test_lock_serialises_processes(tmp_path):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(tmp_path), 1.5, ready))
    holder.start()
    try:
        assert ready.wait(20)
        with link_test_lock(tmp_path, 30) as waited:
            assert waited > 0.5 and not holder.is_alive()
        with pytest.raises(QualifyError, match="held .* for more than"):
            holder2 = multiprocessing.Process(target=_hold, args=(str(tmp_path), 2, ready))
            ready.clear()
            holder2.start()
            assert ready.wait(20)
            try:
                with link_test_lock(tmp_path, 0.5):
                    pass
            finally:
                holder2.join()
    finally:
        holder.join()


# -- the check as a user runs it, the controller testing its loopback against itself

def loopback_profile(workspace, interface: str = "lo", rate: str = "100M", extra: str = "") -> None:
    workspace.local_node("ctl", extra=(
        "checks:\n  network:\n    duration: 1s\n    streams: 2\n    directions: [forward, reverse]\n"
        f"    links:\n      - {{peer: ctl, interface: {interface}, peer_address: 127.0.0.1, expected_rate: {rate}}}\n"
        + extra))


def verdict_check(workspace, node: str = "ctl") -> dict:
    verdict = json.loads((workspace.runs(node)[-1] / "verdict.json").read_text())
    return next(c for c in verdict["checks"] if c["name"] == "network")


def test_loopback_passes_and_records_the_mesh_rows(workspace):
    loopback_profile(workspace)
    proc = workspace.qualify("run", "ctl", "--checks", "network")
    assert proc.returncode == 0, proc.stderr
    check = verdict_check(workspace)
    assert check["outcome"] == "passed" and check["problems"] == []
    # a loaded machine may add a warning (retransmits, CPU-bound end) in front: the figures are what count
    assert any(r.startswith("ctl → ctl (forward, lo): throughput ") and "of the expected 100 Mbit/s" in r
               for r in check["reasons"])
    assert {(m["subject"], m["outcome"]) for m in check["measurements"] if m["name"] == THROUGHPUT} == {
        ("ctl → ctl (forward, lo)", "passed"), ("ctl → ctl (reverse, lo)", "passed")}
    rows = mesh_rows(workspace.reports)
    assert [(r["source"], r["target"], r["test"], r["passed"]) for r in rows] == [
        ("ctl", "ctl", "forward", True), ("ctl", "ctl", "reverse", True)]
    assert mesh_cells(rows)[("ctl", "ctl")].share > 1
    run_dir = workspace.runs("ctl")[-1]
    assert (run_dir / "raw/network-lo-forward.json").is_file()
    assert "iperf3 throughput per second" in (run_dir / "report.html").read_text()


def test_expected_rate_out_of_reach_fails_naming_direction_figure_and_expectation(workspace):
    loopback_profile(workspace, rate="100T")
    proc = workspace.qualify("run", "ctl", "--checks", "network")
    assert proc.returncode == 1, proc.stderr
    problems = verdict_check(workspace)["problems"]
    assert len(problems) == 2
    assert problems[0].startswith("ctl → ctl (forward, lo): throughput ")
    assert "of the expected 100000.00 Gbit/s, the profile's expected rate; 90% required" in problems[0]


def test_interface_not_on_the_node_is_an_error_naming_the_key(workspace):
    loopback_profile(workspace, interface="enp99s0f0")
    proc = workspace.qualify("run", "ctl", "--checks", "network")
    assert proc.returncode == 2, proc.stderr
    check = verdict_check(workspace)
    assert check["outcome"] == "error"
    assert "checks.network.links[0].interface: ctl has no interface 'enp99s0f0' (it has: " in check["reasons"][0]
    assert "lo" in check["reasons"][0]


def test_unreachable_peer_is_named_within_its_timeout(workspace):
    workspace.local_node("ctl", extra=(
        "checks:\n  network:\n    links:\n      - {peer: ghost, interface: lo, peer_address: 192.0.2.1}\n"))
    (workspace.profiles / "ghost.yaml").write_text("host: 192.0.2.1\nssh:\n  connect_timeout: 2s\n")
    started = time.monotonic()
    proc = workspace.qualify("run", "ctl", "--checks", "network")
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - started < 60
    reason = verdict_check(workspace)["reasons"][-1]
    assert reason.startswith("peer ghost of link lo is unreachable, so no iperf3 server can run there: ")
    assert "192.0.2.1" in reason


def test_no_links_skips_saying_what_to_add(workspace):
    workspace.local_node("ctl")
    workspace.qualify("run", "ctl", "--checks", "network")
    check = verdict_check(workspace)
    assert check["outcome"] == "skipped" and "checks.network.links" in check["reasons"][0]


def test_links_run_in_the_rounds_of_the_mesh_every_node_computing_the_same():
    links = {node: [_link(f"to-{peer}", "10.0.0.1", peer=peer) for peer in ("pve1", "pve2", "pve3", "pve4")
                    if peer != node] for node in ("pve1", "pve2", "pve3", "pve4")}
    order = {node: [(number, link.peer) for number, link in in_rounds(node, found)] for node, found in links.items()}
    assert [number for number, _ in order["pve1"]] == [0, 1, 2]
    for node, tests in order.items():  # both ends of a link put it in the same round
        for number, peer in tests:
            assert (number, node) in order[peer]
    assert in_rounds("ctl", [_link("lo", "127.0.0.1", peer="ctl")])[0][0] == 0  # a loopback link


def test_mesh_rows_carry_round_and_wait_and_the_mesh_its_wall_time(tmp_path):
    found = evidence(corpus_result(MININET), Expectation(25e9, "the profile's expected rate"))
    store = RunStore.create("pve2", tmp_path / "reports")
    record_mesh(flows(found), judged(found).measurements, store)
    store.close()
    rows = read_samples(store.run_dir, "network_tests")
    assert rows[0]["round"] == 0 and rows[0]["lock_wait_s"] == 0.0
    assert mesh_rounds(rows) == {0: [("pve2", "pve3")]}
    assert wall_seconds((r["started"], r["finished"]) for r in rows) == 60.0
