"""End to end over real SSH on the tests' own lab: each node's loop "U.2" drive through the fio matrix,
the sustained write and second-hand acceptance - a healthy drive accepted, WORN_NODE's rejected."""

from __future__ import annotations

import json

import pytest
from test_e2e_lab import lab_workspace  # noqa: F401  (the lab with the repo's profiles)

from qualify.lab.drive import WORN_NODE, lab_drive_serial
from qualify.lab.lab import lab_status

pytestmark = pytest.mark.destructive


def verdict_of(workspace, node):
    run_dir = workspace.runs(node)[-1]
    return run_dir, json.loads((run_dir / "verdict.json").read_text())


def checks_by_name(verdict):
    return {check["name"]: check for check in verdict["checks"]}


def test_lab_drive_passes_the_matrix_and_is_accepted(lab_workspace, lab):
    serial = lab_drive_serial(lab_status(lab).nodes["lab-pve2"].backing_file)
    writable = lab_workspace.root / "writable.yaml"  # discovery names the drive; writing it is the profile's word
    writable.write_text(f"extends: base/lab.yaml\nchecks:\n  storage:\n    drives:\n"
                        f"      - {{serial: {serial}, allow_destroy: true}}\n")
    proc = lab_workspace.qualify("run", "lab-pve2", "--profile", str(writable),
                                 "--checks", "storage or ssd_health", "--duration", "5s")
    run_dir, verdict = verdict_of(lab_workspace, "lab-pve2")
    checks = checks_by_name(verdict)
    assert proc.returncode == 0, (proc.stderr, checks)
    assert {name: check["outcome"] for name, check in checks.items()} == \
        {"storage": "passed", "storage_falloff": "passed", "ssd_health": "passed"}
    measured = checks["storage"]["metrics"]["drives"][serial]
    assert measured["device"] == lab_status(lab).nodes["lab-pve2"].loop_device
    assert {"seq_read", "seq_write", "rand_read", "rand_write", "mixed", "sync_write"} <= set(measured)
    assert measured["sync_write"]["fit_for_ceph"] is True
    assert checks["ssd_health"]["metrics"]["verdicts"][serial] == "accept"
    falloff = {m["name"]: m for m in checks["storage_falloff"]["measurements"] if m.get("subject") == serial}
    assert falloff["sustained_write_share_of_start_ratio"]["outcome"] == "passed"
    assert falloff["sustained_write_start_bytes_per_second"]["value"] > 0
    report = (run_dir / "report.html").read_text()
    assert f"Drive {serial}: fio jobs over time" in report and f"Drive {serial}: sustained write" in report


def test_worn_lab_drive_is_rejected(lab_workspace, lab):
    proc = lab_workspace.qualify("run", WORN_NODE, "--profile", str(lab_workspace.profiles / "base/lab.yaml"),
                                 "--checks", "ssd_health")
    assert proc.returncode == 1, proc.stderr
    _, verdict = verdict_of(lab_workspace, WORN_NODE)
    check = checks_by_name(verdict)["ssd_health"]
    serial = lab_drive_serial(lab_status(lab).nodes[WORN_NODE].backing_file)
    assert check["outcome"] == "failed" and check["metrics"]["verdicts"][serial].startswith("reject: ")
    assert f"{serial}: media and data-integrity errors 14 (limit ≤ 0)" in check["reasons"]
