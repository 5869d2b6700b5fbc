"""NVMe identity judged on real nvme-cli outputs (PM983 id-ctrl, the id-ns LBA formats of a drive formatted
512+8), a shrunk namespace, and the lab drive through the stand-in nvme."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from corpus import corpus_path
from qualify.checks.drive_identity import IdentityEvidence, check_drive_identity, judge
from qualify.findings import Findings
from qualify.lab.drive import bin_dir, prepare_lab_drive
from qualify.parsers.nvme import parse_nvme_id_ctrl, parse_nvme_id_ns
from qualify.profile import DriveIdentitySettings, Profile
from qualify.store import RunStore
from storage_loop import local_node, loop_devices

PM983 = parse_nvme_id_ctrl(corpus_path("nvme-cli", "id-ctrl-samsung-pm983-mz1lb960-nvmecli1x.json").read_text())
LBAFS = json.loads(corpus_path("nvme-cli", "id-ns-lbafs-5-formats-512+8-in-use-nvmecli2x-excerpt.json").read_text())


def namespace(flbas: int, size_bytes: int):
    # synthetic nsze/flbas around the real LBA format list
    block = 1 << LBAFS[flbas]["ds"]
    return parse_nvme_id_ns(json.dumps({"nsze": size_bytes // block, "flbas": flbas, "lbafs": LBAFS}))


def evidence(ns, controller=PM983) -> IdentityEvidence:
    return IdentityEvidence(label="S43ANA0M405593", device="/dev/nvme0n1", controller=controller, namespace=ns,
                            listed=None)


def by_name(out):
    return {f.name: f for f in out.figures}


def test_drive_formatted_512_plus_8_is_rejected_and_the_format_command_named():
    out = judge(evidence(namespace(1, PM983.capacity_bytes)), DriveIdentitySettings())
    figures = by_name(out)
    assert out.line == "reject: metadata per block of the LBA format in use 8 B (limit ≤ 0 B)"
    assert "`nvme format /dev/nvme0n1 --lbaf=2` would change it to 4096+0 (Best)" in figures[
        "lba_format_metadata_bytes"].because
    assert figures["lba_format_relative_performance"].outcome == "warning"
    assert figures["namespace_share_of_capacity_percent"].outcome == "passed"
    assert figures["volatile_write_cache_present"].value is False
    assert out.notes[0] == "/dev/nvme0n1: Unknown MZ1LB960HAJQ-000FB, firmware EDA76F2Q, 3 firmware slots " \
                           "(slot 1 read-only)"


def test_best_format_and_whole_capacity_accept():
    out = judge(evidence(namespace(2, PM983.capacity_bytes)), DriveIdentitySettings())
    assert out.line == "accept" and not out.warnings


def test_shrunk_namespace_is_a_finding():
    controller = dataclasses.replace(PM983, unallocated_bytes=PM983.capacity_bytes // 2)
    out = judge(evidence(namespace(2, PM983.capacity_bytes // 2), controller), DriveIdentitySettings())
    share = by_name(out)["namespace_share_of_capacity_percent"]
    assert (share.value, share.outcome) == (50.0, "failed") and "450.1 GB unallocated" in share.detail


def test_no_total_capacity_is_said():
    out = judge(evidence(namespace(2, 10**12), dataclasses.replace(PM983, capacity_bytes=None)),
                DriveIdentitySettings())
    assert "namespace_share_of_capacity_percent" not in by_name(out)
    assert any("tnvmcap 0" in note for note in out.notes)


def test_lab_drive_through_the_stand_in(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    with loop_devices(tmp_path) as loops:
        loops.make(None, fill=False, name="lab-pve1/u2.img")
        backing = loops.attached[-1][1]
        drive = prepare_lab_drive("lab-pve1", backing)
        monkeypatch.setenv("PATH", f"{bin_dir(backing.parent)}:{os.environ['PATH']}")
        profile = Profile.model_validate({"host": "localhost", "checks": {"storage": {"drives": [drive]}}})
        node = local_node()
        node.profile = profile
        findings = Findings("drive_identity")
        check_drive_identity(node, profile, findings, RunStore.create("testnode", tmp_path / "reports"))
    outcomes = {m.name: m.outcome for m in findings.measurements}
    assert outcomes["identity_verdict"] == "info" and not findings.problems
    assert outcomes["lba_format_relative_performance"] == "warning"
    assert outcomes["namespace_share_of_capacity_percent"] == "passed"
