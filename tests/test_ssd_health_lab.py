"""End to end on the tests' own lab over SSH: SMART comes from the stand-in smartctl/nvme on each node's PATH,
as on a real node. The healthy used drive is accepted by ssd_health, selftest and drive_identity; the worn one is
rejected by ssd_health and by its failing self-test; a SAS drive with grown defects is rejected."""

from __future__ import annotations

import json

import pytest
from test_e2e_lab import lab_workspace  # noqa: F401  (the lab with the repo's profiles)

from qualify.lab.drive import WORN_NODE, lab_drive_serial, set_drive_case
from qualify.lab.lab import lab_status

CHECKS = "ssd_health or selftest or drive_identity"


def run(workspace, node, checks=CHECKS):
    proc = workspace.qualify("run", node, "--profile", str(workspace.profiles / "base/lab.yaml"), "--checks", checks)
    verdict = json.loads((workspace.runs(node)[-1] / "verdict.json").read_text())
    return proc, {check["name"]: check for check in verdict["checks"]}


def test_healthy_lab_drive_accepted(lab_workspace, lab):
    node = lab.nodes[1]
    proc, checks = run(lab_workspace, node)
    serial = lab_drive_serial(lab_status(lab).nodes[node].backing_file)
    assert proc.returncode == 0, (proc.stderr, checks)
    assert {name: c["outcome"] for name, c in checks.items()} == {
        "ssd_health": "passed", "selftest": "passed", "drive_identity": "passed"}
    assert checks["ssd_health"]["metrics"]["verdicts"] == {serial: "accept"}
    assert checks["selftest"]["metrics"]["verdicts"] == {serial: "accept"}
    assert f"{serial}: short self-test passed yes" in " ".join(checks["selftest"]["reasons"])


def test_worn_lab_drive_rejected_by_its_health_and_its_self_test(lab_workspace, lab):
    proc, checks = run(lab_workspace, WORN_NODE, "ssd_health or selftest")
    serial = lab_drive_serial(lab_status(lab).nodes[WORN_NODE].backing_file)
    assert proc.returncode == 1, proc.stderr
    assert checks["ssd_health"]["outcome"] == checks["selftest"]["outcome"] == "failed"
    assert checks["selftest"]["metrics"]["verdicts"][serial] == "reject: short self-test passed no (minimum 1)"
    assert checks["ssd_health"]["metrics"]["verdicts"][serial].startswith("reject: ")


@pytest.fixture
def sas_node(lab):
    node = lab.nodes[0]
    node_dir = lab_status(lab).nodes[node].tree_root
    set_drive_case(node_dir, "sas-grown-defects")
    try:
        yield node
    finally:
        set_drive_case(node_dir, "healthy")


def test_sas_drive_with_grown_defects_rejected(lab_workspace, lab, sas_node):
    proc, checks = run(lab_workspace, sas_node, "ssd_health")
    serial = lab_drive_serial(lab_status(lab).nodes[sas_node].backing_file)
    assert proc.returncode == 1, proc.stderr
    assert checks["ssd_health"]["metrics"]["verdicts"] == {serial: "reject: grown defect list 56 (limit ≤ 0)"}
    assert f"{serial}: grown defect list 56 (limit ≤ 0)" in checks["ssd_health"]["reasons"]
