"""`qualify soak` end to end over SSH on lab nodes: a quiet soak passes, a node frozen mid-soak fails it
with the time of its last heartbeat, a controller killed mid-soak leaves an incomplete run, and the
soak stays out of ordinary runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_watch import wait_for

from qualify.checks.soak import check_soak
from qualify.findings import Findings
from qualify.lab import freeze_node, thaw_node
from qualify.profile import Profile
from qualify.store import read_samples

SOAK_PROFILE = """host: {node}
watch:
  heartbeat_interval: 0.5s
  probe_interval: 1s
checks:
  soak:
    idle_phase: 3s
    load_phase: 3s
    progress_interval: 2s
"""


@pytest.fixture
def soak_lab(lab, workspace):
    workspace.lab = lab
    for node in lab.nodes:
        (workspace.profiles / f"{node}.yaml").write_text(SOAK_PROFILE.format(node=node))
    return workspace


def verdict_of(run_dir):
    return json.loads((run_dir / "verdict.json").read_text())


def start_soak(workspace, node, duration):
    return subprocess.Popen([sys.executable, "-m", "qualify", "soak", node, "--duration", duration],
                            env=workspace.env(), cwd=workspace.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def first_heartbeats(workspace, node):
    runs = wait_for(lambda: workspace.runs(node), timeout=30, what="run directory")
    wait_for(lambda: len(read_samples(runs[0], "heartbeat")) >= 2, timeout=30, what="heartbeats")
    return runs[0]


def test_quiet_soak_passes_with_idle_and_load_phases(soak_lab):
    proc = soak_lab.qualify("soak", "lab-pve1", "--duration", "8s")
    assert proc.returncode == 0, proc.stderr
    run_dir = soak_lab.runs("lab-pve1")[0]
    soak = verdict_of(run_dir)["checks"][0]
    assert soak["name"] == "soak" and soak["outcome"] == "passed"
    assert soak["metrics"]["phases"] == 3 and soak["metrics"]["freezes"] == 0
    assert "lab-pve1 neither froze nor rebooted during the 8 s soak (3 idle/load phases)" in soak["reasons"]
    phases = [p["phase"] for p in read_samples(run_dir, "soak_phases")]
    assert phases == ["idle", "load", "idle"]
    assert "lab-pve1: soak 0:00:0" in proc.stderr and "phase load" in proc.stderr, "plain progress lines"
    assert "lab-pve1/trend.html" in proc.stderr and (soak_lab.reports / "lab-pve1" / "trend.html").is_file()


def test_node_frozen_mid_soak_fails_it_with_the_time_of_the_last_heartbeat(lab, soak_lab):
    proc = start_soak(soak_lab, "lab-pve2", "14s")
    try:
        run_dir = first_heartbeats(soak_lab, "lab-pve2")
        time.sleep(2)
        freeze_node(lab, "lab-pve2")
        try:
            time.sleep(4)
        finally:
            thaw_node(lab, "lab-pve2")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    verdict = verdict_of(run_dir)
    assert verdict["verdict"] == "fail"
    soak = verdict["checks"][0]
    assert soak["outcome"] == "failed" and soak["metrics"]["freezes"] == 1
    assert any(p.startswith("lab-pve2 froze: no heartbeat for ") for p in soak["problems"])
    kinds = [e.get("event") for e in verdict["events"]]
    assert "freeze" in kinds and "recovered" in kinds
    assert "froze" in (run_dir / "report.html").read_text()


def test_controller_killed_mid_soak_leaves_an_incomplete_run_and_a_new_soak_starts_a_new_run(soak_lab):
    proc = start_soak(soak_lab, "lab-pve3", "60s")
    try:
        run_dir = first_heartbeats(soak_lab, "lab-pve3")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    beats = len(read_samples(run_dir, "heartbeat"))
    report = soak_lab.qualify("report", str(run_dir))
    assert report.returncode == 0, report.stderr
    verdict = verdict_of(run_dir)
    assert verdict["verdict"] == "incomplete" and verdict["finished"] is None
    assert "the run did not finish; its last record is from" in verdict["notes"][0]
    assert beats >= 2 and len(read_samples(run_dir, "heartbeat")) == beats
    again = soak_lab.qualify("soak", "lab-pve3", "--duration", "2s")
    assert again.returncode == 0, again.stderr
    assert len(soak_lab.runs("lab-pve3")) == 2 and verdict_of(run_dir)["verdict"] == "incomplete"


@pytest.mark.parametrize("expression", ["", "microcode or thermal", "not soak", "soakless"])
def test_soak_is_skipped_unless_asked_for(expression):
    class Config:
        def getoption(self, name):
            return {"keyword": expression}[name]

    request = type("Request", (), {"config": Config()})()
    findings = Findings("soak")
    with pytest.raises(pytest.skip.Exception, match="only when asked for: `qualify soak NODE`"):
        check_soak(None, Profile(host="localhost"), findings, None, request, None)


def test_bad_soak_duration_is_a_usage_error(workspace):
    workspace.local_node("local1")
    proc = workspace.qualify("soak", "local1", "--duration", "forever")
    assert proc.returncode == 2 and "DURATION=forever" in proc.stderr
