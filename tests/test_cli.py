"""Bad input gets a clear answer: exit 2, the file/key/host/tool named, no traceback."""

import json
import socket
import threading
import time

import pytest

from qualify.errors import ToolMissing
from qualify.node import LocalNode
from qualify.profile import Profile


def assert_clear_error(proc, *expected):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    for text in expected:
        assert text in proc.stderr, proc.stderr


def test_help_lists_every_verb(workspace):
    proc = workspace.qualify("--help")
    assert proc.returncode == 0
    for verb in ("run", "report", "lab", "prepare", "profile"):
        assert verb in proc.stdout


def test_unknown_node_lists_known_ones(workspace):
    workspace.local_node("pve1")
    assert_clear_error(workspace.qualify("run", "pve9"), "no profile for node 'pve9'", "known nodes: pve1")


def test_profile_typo_names_file_and_key(workspace):
    workspace.local_node("n1", extra="checks:\n  microcode:\n    min_revison: 0x1\n")
    assert_clear_error(workspace.qualify("run", "n1"), "n1.yaml: checks.microcode.min_revison: unknown key")
    assert not workspace.runs("n1")  # nothing started


def test_bad_duration_and_label(workspace):
    workspace.local_node("n1")
    assert_clear_error(workspace.qualify("run", "n1", "--duration", "abc"), "DURATION=abc: expected a duration")
    assert_clear_error(workspace.qualify("run", "n1", "--label", "cooler"), "label 'cooler': expected key=value")


def test_checks_that_select_nothing(workspace):
    workspace.local_node("n1")
    proc = workspace.qualify("run", "n1", "--checks", "no_such_check")
    assert_clear_error(proc, "no check selected (CHECKS='no_such_check'); the checks are: idle_power, memory, microcode")


def test_report_of_a_directory_that_is_not_a_run(workspace):
    assert_clear_error(workspace.qualify("report", str(workspace.root)), "is not a run directory")


def test_labels_are_recorded(workspace):
    workspace.local_node("n1")
    proc = workspace.qualify("run", "n1", "--label", "cooler=G195,lid=closed")
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads((workspace.runs("n1")[0] / "verdict.json").read_text())
    assert verdict["labels"] == {"cooler": "G195", "lid": "closed"}


def test_refused_ssh_connection_names_the_host(workspace):
    (workspace.profiles / "far.yaml").write_text("host: 127.0.0.1\nssh:\n  port: 9\n  connect_timeout: 3s\n")
    proc = workspace.qualify("run", "far")
    assert_clear_error(proc, "cannot reach host '127.0.0.1' over ssh")
    verdict = json.loads((workspace.runs("far")[0] / "verdict.json").read_text())
    assert verdict["verdict"] == "incomplete" and verdict["checks"][0]["outcome"] == "error"
    assert "cannot reach host '127.0.0.1'" in verdict["checks"][0]["reasons"][0]


@pytest.fixture
def silent_server():
    """A TCP port on loopback that accepts and never says a word: a hung sshd."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_unresponsive_host_gives_up_within_the_connect_timeout(workspace, silent_server):
    (workspace.profiles / "hung.yaml").write_text(
        f"host: 127.0.0.1\nssh:\n  port: {silent_server}\n  connect_timeout: 2s\n")
    started = time.monotonic()
    proc = workspace.qualify("run", "hung")
    assert_clear_error(proc, "cannot reach host '127.0.0.1' over ssh")
    assert time.monotonic() - started < 30


def test_missing_tool_names_the_debian_package():
    node = LocalNode("n1", Profile(host="localhost"))
    with pytest.raises(ToolMissing, match=r"n1: 'stressapptest' is not installed on the node; "
                                          r"install the Debian package 'stressapptest'"):
        node.run(["stressapptest", "-s", "1"])
    with pytest.raises(ToolMissing, match="install the Debian package 'stressapptest'"):
        node.require("stressapptest")


def test_localhost_run_skips_what_cannot_apply(workspace):
    """This machine is a VM: no microcode revision is exposed, so the check skips and says why."""
    (workspace.profiles / "localhost.yaml").write_text("host: localhost\n")
    proc = workspace.qualify("run", "localhost")
    verdict = json.loads((workspace.runs("localhost")[0] / "verdict.json").read_text())
    check = next(c for c in verdict["checks"] if c["name"] == "microcode")
    if check["outcome"] == "skipped":
        assert proc.returncode == 2 and verdict["verdict"] == "incomplete"
        assert "microcode" in check["reasons"][0]
    else:  # bare metal: a real verdict
        assert check["outcome"] in ("passed", "failed")
    assert verdict["inventory"]["kernel"] and verdict["inventory"]["logical_cpus"] >= 1
