"""End to end over real SSH: the tests' own lab (lab-pve1..lab-pve3 in namespaces), qualified like real nodes."""

import json
import shutil
import time
from pathlib import Path

import pytest

from helpers import REPO
from qualify.errors import CommandTimeout, ToolMissing
from qualify.node import SshNode, connect
from qualify.overlays import resolve_profile


@pytest.fixture
def lab_workspace(workspace, lab):
    shutil.rmtree(workspace.profiles)
    shutil.copytree(REPO / "profiles", workspace.profiles)
    workspace.lab = lab
    return workspace


def verdict_of(run_dir):
    return json.loads((run_dir / "verdict.json").read_text())


def test_lab_node_passes_over_ssh(lab_workspace):
    proc = lab_workspace.qualify("run", "lab-pve2", "--checks", "microcode")
    assert proc.returncode == 0, proc.stderr
    assert "lab-pve2: lab node: using " in proc.stderr
    run_dir = lab_workspace.runs("lab-pve2")[0]
    verdict = verdict_of(run_dir)
    assert verdict["verdict"] == "pass" and verdict["host"] == "lab-pve2"
    assert verdict["checks"][0]["name"] == "microcode" and verdict["checks"][0]["outcome"] == "passed"
    assert {"mgmt0", "to-lab-pve1", "to-lab-pve3"} <= {nic["name"] for nic in verdict["inventory"]["nics"]}
    assert verdict["inventory"]["board"]["board_name"] == "G660"
    for name in ("report.html", "junit.xml", "run.jsonl", "raw/microcode-cpuinfo.txt"):
        assert (run_dir / name).is_file(), name
    assert 'testsuite name="pytest" errors="0" failures="0"' in (run_dir / "junit.xml").read_text()
    index = (lab_workspace.reports / "index.html").read_text()
    assert f"lab-pve2/{run_dir.name}/report.html" in index


def test_higher_minimum_fails_naming_both_revisions(lab_workspace):
    strict = lab_workspace.root / "strict.yaml"
    strict.write_text("extends: pve2.yaml\nchecks:\n  microcode:\n    min_revision: 0x500\n")
    proc = lab_workspace.qualify("run", "lab-pve2", "--profile", str(strict), "--checks", "microcode")
    assert proc.returncode == 1, proc.stderr
    verdict = verdict_of(lab_workspace.runs("lab-pve2")[0])
    assert verdict["verdict"] == "fail"
    assert any(p.startswith("running revision 0x435 (minimum 0x500)") for p in verdict["checks"][0]["problems"])
    assert 'failures="1"' in (lab_workspace.runs("lab-pve2")[0] / "junit.xml").read_text()


def test_three_nodes_in_parallel_get_a_run_each(lab_workspace):
    proc = lab_workspace.qualify("run", "lab-pve1 lab-pve2 lab-pve3",
                                 "--profile", str(lab_workspace.profiles / "base/lab.yaml"),
                                 "--checks", "microcode", "--label", "batch=mesh")
    assert proc.returncode == 0, proc.stderr
    for node in ("lab-pve1", "lab-pve2", "lab-pve3"):
        verdict = verdict_of(lab_workspace.runs(node)[0])
        assert verdict["verdict"] == "pass" and verdict["node"] == node and verdict["labels"] == {"batch": "mesh"}


@pytest.fixture
def lab_pve2(lab_workspace, monkeypatch):
    for key, value in lab_workspace.env().items():
        monkeypatch.setenv(key, value)
    node = connect("lab-pve2", resolve_profile("lab-pve2", None).profile)
    yield node
    node.close()


def test_ssh_node_reuses_one_connection_and_quotes_arguments(lab_pve2):
    assert isinstance(lab_pve2, SshNode)
    assert list(Path(lab_pve2._control_dir).iterdir()), "no master connection socket"
    started = time.monotonic()
    for _ in range(10):
        assert lab_pve2.run(["hostname"]).stdout.strip() == "lab-pve2"
    assert time.monotonic() - started < 10
    hostile = "$(touch /tmp/qualify-injected); `id`; rm -rf /nonexistent"
    assert lab_pve2.run(["echo", hostile]).stdout == hostile + "\n"


def test_ssh_command_timeout_and_missing_tool_are_named(lab_pve2):
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"lab-pve2: command did not finish within 1 s \(command: sleep 30\)"):
        lab_pve2.run(["sleep", "30"], timeout_s=1)
    assert time.monotonic() - started < 15
    with pytest.raises(ToolMissing, match="lab-pve2: 'stressapptest' is not installed on the node; "
                                          "install the Debian package 'stressapptest'"):
        lab_pve2.run(["stressapptest", "-s", "1"])


def test_ssh_stream_stops_on_the_node(lab_pve2):
    from test_node import assert_stream_stops_on_the_node

    assert_stream_stops_on_the_node(lab_pve2)
