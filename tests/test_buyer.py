"""The buyer's line per drive, from recorded checks alone: verdicts recorded from lab runs (tests/recorded/, the
drive checks' entries and the inventory's disks of verdict.json) and checks recorded here by the real judges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qualify.checks.drive_integrity import IntegrityEvidence, judge
from qualify.findings import Findings
from qualify.profile import DriveIntegritySettings
from qualify.storage.buyer import drive_lines
from qualify.verdict import build_verdict

RECORDED = Path(__file__).parent / "recorded"
HEALTHY, WORN, SAS = "QLAB-9AC14AE6C200", "QLAB-404201AB52EF", "QLAB-3C190CB09F38"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / f"{name}.json").read_text())


def lines(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["subject"]: d for d in drive_lines(verdict["checks"], verdict["inventory"]["disks"])}


def as_check(findings: Findings, outcome: str) -> dict[str, Any]:
    return {"name": findings.name, "outcome": outcome, "reasons": findings.reasons, "problems": findings.problems,
            "metrics": findings.metrics, "measurements": [m.as_record() for m in findings.measurements],
            "not_qualified": findings.not_qualified_parts}


def integrity(subject: str, **evidence: Any) -> dict[str, Any]:
    """drive_integrity as its judge records it for one drive."""
    findings = Findings("drive_integrity")
    judged = judge(IntegrityEvidence(label=subject, device="/dev/sdx", claimed=1 << 40, **evidence),
                   DriveIntegritySettings())
    judged.record(findings, "integrity_verdict")
    return as_check(findings, "failed" if findings.failed else "passed")


def test_a_healthy_drive_without_the_surface_pass_is_unknown_naming_the_check_and_how():
    drive = lines(recorded("lab-healthy-nvme-health-selftest-identity"))[HEALTHY]
    assert drive["verdict"] == "unknown"
    assert drive["line"] == ("unknown: drive_integrity was not run (run `qualify run <node> --checks "
                             "'drive_integrity'` with the drive named under checks.storage.drives)")
    assert drive["checks"] == {"drive_integrity": "not run", "selftest": "passed", "ssd_health": "passed",
                               "drive_identity": "passed"}
    assert drive["model"] is None  # recorded before ssd_health gave the model; lsblk lists no loop device


def test_the_lab_fake_drive_is_rejected_by_its_capacity_and_the_healthy_one_accepted():
    verdict = recorded("lab-fake-and-healthy-integrity-selftest-health")
    healthy, fake = drive_lines(verdict["checks"], verdict["inventory"]["disks"])
    assert (healthy["verdict"], healthy["line"]) == ("accept", "accept")
    assert healthy["checks"] == {"drive_integrity": "passed", "selftest": "passed", "ssd_health": "passed"}
    assert fake["verdict"] == "reject"
    assert fake["line"] == ("reject: drive_integrity: claims 1.07 GB, holds 256 MiB (blocks wrap at 256 MiB) "
                            "(minimum 1 GiB)")
    assert healthy["model"] == "SAMSUNG MZQLB1T9HAJR-00007"  # SMART's, where lsblk lists no loop device


def test_a_worn_drive_is_rejected_by_its_failed_self_test_first():
    drive = lines(recorded("lab-worn-nvme-health-selftest"))[WORN]
    assert drive["verdict"] == "reject"
    assert drive["line"] == "reject: selftest: short self-test passed no (failed in a segment, 4 s) (expected yes)"
    assert drive["checks"] == {"drive_integrity": "not run", "selftest": "failed", "ssd_health": "failed"}


def test_a_sas_drive_with_grown_defects_is_rejected_though_two_checks_did_not_run():
    drive = lines(recorded("lab-sas-grown-defects-health-only"))[SAS]
    assert drive["line"] == "reject: ssd_health: grown defect list 56 (limit ≤ 0)"
    assert drive["checks"] == {"drive_integrity": "not run", "selftest": "not run", "ssd_health": "failed"}


def test_integrity_not_allowed_is_unknown_with_the_key_that_allows_it():
    verdict = recorded("lab-healthy-nvme-health-selftest-identity")
    key = "checks.storage.drives[0].allow_destroy"
    verdict["checks"].append(integrity(HEALTHY, not_run=f"the profile does not allow destroying its data "
                                                       f"(set {key}: true)"))
    drive = lines(verdict)[HEALTHY]
    assert drive["verdict"] == "unknown" and drive["checks"]["drive_integrity"] == "unknown"
    assert drive["line"].startswith("unknown: drive_integrity: full-surface integrity could not be read: ")
    assert f"(set {key}: true)" in drive["line"] and "not judged" not in drive["line"]


def test_a_skipped_or_undecided_check_leaves_the_drive_unknown_with_why():
    verdict = recorded("lab-sas-grown-defects-health-only")
    verdict["checks"] = [c for c in verdict["checks"] if c["name"] != "ssd_health"] + [
        {"name": "ssd_health", "outcome": "error", "reasons": ["smartctl timed out after 30 s"], "measurements": []},
        {"name": "selftest", "outcome": "skipped", "reasons": ["no named drive has SMART (loop devices)"],
         "measurements": [], "not_qualified": []},
        integrity(SAS, not_run="refused: /dev/sdx is mounted at /srv")]
    drive = lines(verdict)[SAS]
    assert drive["checks"] == {"drive_integrity": "unknown", "selftest": "skipped", "ssd_health": "error"}
    assert "selftest: skipped: no named drive has SMART (loop devices)" in drive["line"]
    assert "ssd_health: could not decide: smartctl timed out after 30 s" in drive["line"]
    assert "refused: /dev/sdx is mounted at /srv" in drive["line"]


def test_verdict_json_carries_the_lines():
    verdict = recorded("lab-worn-nvme-health-selftest")
    records: list[dict[str, Any]] = [{"t": "2026-12-02T14:15:00Z", "kind": "run_started", "node": "lab-pve3"}]
    records += [{"t": "2026-12-02T14:15:01Z", "kind": "check_result", **c} for c in verdict["checks"]]
    records.append({"t": "2026-12-02T14:15:09Z", "kind": "run_finished"})
    built = build_verdict(records)
    assert built["verdict"] == "fail"
    assert [(d["subject"], d["verdict"]) for d in built["drives"]] == [(WORN, "reject")]
