"""End to end over real SSH: the tests' own lab (pve1..pve3 in namespaces), qualified like real nodes."""

import json
import shutil
import time
from pathlib import Path

import pytest

from qualify.errors import CommandTimeout, ToolMissing
from qualify.node import SshNode, connect
from qualify.plugin import resolve_profile

from conftest import REPO


@pytest.fixture
def lab_workspace(workspace, lab):
    shutil.rmtree(workspace.profiles)
    shutil.copytree(REPO / "profiles", workspace.profiles)
    workspace.lab = lab
    return workspace


def verdict_of(run_dir):
    return json.loads((run_dir / "verdict.json").read_text())


def test_lab_node_passes_over_ssh(lab_workspace):
    proc = lab_workspace.qualify("run", "pve2", "--checks", "microcode")
    assert proc.returncode == 0, proc.stderr
    assert "pve2: lab node (the built-in lab is up)" in proc.stderr
    run_dir = lab_workspace.runs("pve2")[0]
    verdict = verdict_of(run_dir)
    assert verdict["verdict"] == "pass" and verdict["host"] == "pve2"
    assert verdict["checks"][0]["name"] == "microcode" and verdict["checks"][0]["outcome"] == "passed"
    assert {"mgmt0", "to-pve1", "to-pve3"} <= {nic["name"] for nic in verdict["inventory"]["nics"]}
    assert verdict["inventory"]["board"]["board_name"] == "G660"
    for name in ("report.html", "junit.xml", "run.jsonl", "raw/microcode-cpuinfo.txt"):
        assert (run_dir / name).is_file(), name
    assert 'testsuite name="pytest" errors="0" failures="0"' in (run_dir / "junit.xml").read_text()
    index = (lab_workspace.reports / "index.html").read_text()
    assert f"pve2/{run_dir.name}/report.html" in index


def test_higher_minimum_fails_naming_both_revisions(lab_workspace):
    strict = lab_workspace.root / "strict.yaml"
    strict.write_text("extends: pve2.yaml\nchecks:\n  microcode:\n    min_revision: 0x500\n")
    proc = lab_workspace.qualify("run", "pve2", "--profile", str(strict), "--checks", "microcode")
    assert proc.returncode == 1, proc.stderr
    verdict = verdict_of(lab_workspace.runs("pve2")[0])
    assert verdict["verdict"] == "fail"
    assert "running revision 0x435 is below the profile's minimum 0x500" in verdict["checks"][0]["problems"]
    assert 'failures="1"' in (lab_workspace.runs("pve2")[0] / "junit.xml").read_text()


def test_three_nodes_in_parallel_get_a_run_each(lab_workspace):
    proc = lab_workspace.qualify("run", "pve1 pve2 pve3", "--profile", str(lab_workspace.profiles / "base/lab.yaml"),
                                 "--checks", "microcode", "--label", "batch=mesh")
    assert proc.returncode == 0, proc.stderr
    for node in ("pve1", "pve2", "pve3"):
        verdict = verdict_of(lab_workspace.runs(node)[0])
        assert verdict["verdict"] == "pass" and verdict["node"] == node and verdict["labels"] == {"batch": "mesh"}


@pytest.fixture
def pve2(lab_workspace, monkeypatch):
    for key, value in lab_workspace.env().items():
        monkeypatch.setenv(key, value)
    node = connect("pve2", resolve_profile("pve2", None).profile)
    yield node
    node.close()


def test_ssh_node_reuses_one_connection_and_quotes_arguments(pve2):
    assert isinstance(pve2, SshNode)
    assert list(Path(pve2._control_dir).iterdir()), "no master connection socket"
    started = time.monotonic()
    for _ in range(10):
        assert pve2.run(["hostname"]).stdout.strip() == "pve2"
    assert time.monotonic() - started < 10
    hostile = "$(touch /tmp/qualify-injected); `id`; rm -rf /nonexistent"
    assert pve2.run(["echo", hostile]).stdout == hostile + "\n"


def test_ssh_command_timeout_and_missing_tool_are_named(pve2):
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"pve2: command did not finish within 1 s \(command: sleep 30\)"):
        pve2.run(["sleep", "30"], timeout_s=1)
    assert time.monotonic() - started < 15
    with pytest.raises(ToolMissing, match="pve2: 'stressapptest' is not installed on the node; "
                                          "install the Debian package 'stressapptest'"):
        pve2.run(["stressapptest", "-s", "1"])


def test_ssh_stream_stops_on_the_node(pve2):
    from test_node import assert_stream_stops_on_the_node

    assert_stream_stops_on_the_node(pve2)
