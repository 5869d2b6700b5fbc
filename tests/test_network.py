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

from qualify.checks.network import _judge
from qualify.errors import NodeError, QualifyError, ToolMissing
from qualify.findings import Findings
from qualify.network.iperf import PORT_TRIES, IperfServer, run_client
from qualify.network.lock import link_test_lock
from qualify.network.mesh import mesh_cells, mesh_rows
from qualify.node import LocalNode
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
    out = subprocess.run(["pgrep", "-x", "iperf3"], capture_output=True, text=True).stdout
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
        with pytest.raises(NodeError, match=rf"ports {first}-{first + PORT_TRIES - 1} are all in use.*checks.network.port"):
            IperfServer(local(), first, 10)
    finally:
        for sock in sockets:
            sock.close()


def test_iperf3_missing_names_the_package(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "timeout"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}" if Path(f"/usr/bin/{tool}").exists() else f"/bin/{tool}")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolMissing, match="'iperf3' is not installed on the node; install the Debian package 'iperf3'"):
        IperfServer(local(), 5201, 5)


def test_no_server_gives_iperf3s_error_as_a_named_failure(tmp_path):
    """A real iperf3 "error" document (connection refused) fails the direction, naming it."""
    node = local()
    result, _ = run_client(node, "127.0.0.1", free_port(), "forward", SHORT)
    assert "Connection refused" in result.failure
    findings = Findings("network")
    store = RunStore.create("ctl", tmp_path / "reports")
    _judge("ctl", _link("lo", "127.0.0.1"), "forward", result, None, SHORT, findings, store, {}, {})
    assert findings.problems == [f"ctl ↔ ctl (forward, lo to 127.0.0.1): iperf3 gave no result: "
                                 f"{result.failure} (is the link up and the peer address right?)"]
    store.close()
    assert read_samples(store.run_dir, "network_tests")[0]["passed"] is False


def _link(interface: str, address: str) -> NetworkLink:
    return NetworkLink(peer="ctl", interface=interface, peer_address=address)


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
    assert any(r.removeprefix("warning: ").startswith("ctl → ctl (forward, lo): ") and "of the expected 100 Mbit/s" in r
               for r in check["reasons"])
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
    assert problems[0].startswith("ctl → ctl (forward, lo): ")
    assert "of the expected 100000.00 Gbit/s (the profile's expected rate), below the required 90%" in problems[0]


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
