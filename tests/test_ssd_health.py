"""Second-hand SSD acceptance: corpus drives judged, the lab's healthy and worn drives on real loop devices,
PCIe links from the lspci corpus."""

from __future__ import annotations

import os

import pytest
from corpus import corpus_path
from storage_loop import local_node, loop_devices

from qualify.checks.ssd_health import check_ssd_health, judge_health, judge_pcie_link
from qualify.errors import ParseError
from qualify.findings import Findings
from qualify.parsers.lspci import parse_lspci_vv
from qualify.parsers.smartctl import parse_smartctl_json, parse_smartctl_text
from qualify.profile import Profile, SsdHealthSettings, StorageDrive
from qualify.storage.lab_drive import WORN_NODE, prepare_lab_drive

# corpus file -> (verdict, a problem it must name)
CORPUS_VERDICTS = {
    "nvme-goodram-irdm-pro-2tb-smartctl75-json-compact-16pct-used-64C.json": ("accept", None),
    "nvme-sabrent-rocket4-smartctl74-a-json.json": ("accept", None),
    "nvme-samsung970evo-media-errors-smartctl70-x-j.json":
        ("reject", "media and data-integrity errors: 7, above the limit of 0"),
    "sata-ssd-wd-red-sa500-4tb-smartctl73-all-json.json": ("accept", None),
    "nvme-samsung-pm9a1-worn-100pct-critical-warning-0x04-TEXT-excerpt.txt":
        ("reject", "critical warning 0x04: NVM subsystem reliability degraded (media errors or wear)"),
}


@pytest.mark.parametrize("name", sorted(CORPUS_VERDICTS))
def test_corpus_drive_verdicts(name):
    text = corpus_path("smartctl", name).read_text()
    health = parse_smartctl_text(text) if name.endswith(".txt") else parse_smartctl_json(text)
    out = Findings("drive")
    judge_health(health, StorageDrive(wwn="5002538e00000000"), SsdHealthSettings(), out)
    verdict, problem = CORPUS_VERDICTS[name]
    assert ("reject" if out.problems else "accept") == verdict, out.problems
    if problem:
        assert problem in out.problems


def test_seller_claim_and_endurance_name_the_numbers():
    text = corpus_path("smartctl", "nvme-samsung970evo-media-errors-smartctl70-x-j.json").read_text()
    out = Findings("drive")
    judge_health(parse_smartctl_json(text), StorageDrive(serial="S466NX0M776250H", seller_power_on_hours=3000,
                                                         rated_endurance_tbw=300), SsdHealthSettings(), out)
    assert "power-on hours 12,798 (1.5 years), far above the seller's claim of 3,000 (+10% accepted)" in out.problems
    assert "data written 33.6 TB = 11% of the rated 300 TBW" in out.reasons


LINKS = {  # lspci corpus file -> (problem?, sentence)
    "nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt":
        (True, "PCIe link 2.5 GT/s x1, the drive can do 8 GT/s x4 (a bad adapter, cable, riser or slot)"),
    "nvme-samsung-sm961-x4-gen3-ok-tabbed.txt": (False, "PCIe link 8 GT/s x4, the drive can do 8 GT/s x4"),
    "nvme-pm983-x4-gen3-old-lspci-format.txt": (False, "PCIe link 8 GT/s x4, the drive can do 8 GT/s x4"),
}


@pytest.mark.parametrize("name", sorted(LINKS))
def test_pcie_link_from_the_lspci_corpus(name):
    out = Findings("drive")
    judge_pcie_link(parse_lspci_vv(corpus_path("lspci", name).read_text())[0], StorageDrive(serial="x"), out)
    problem, sentence = LINKS[name]
    assert (out.problems if problem else out.reasons) == [sentence]


def test_gen4_drive_on_a_gen3_link_fails_against_its_spec():
    out = Findings("drive")
    device = parse_lspci_vv(corpus_path("lspci", "nvme-pm983-x4-gen3-old-lspci-format.txt").read_text())[0]
    judge_pcie_link(device, StorageDrive(serial="x", spec={"pcie_gts": 16, "pcie_width": 4}), out)
    assert out.problems == ["PCIe link 8 GT/s x4, the drive is built for 16 GT/s x4 (a bad adapter, cable, riser "
                            "or slot)"]


@pytest.fixture
def lab_like_drives(tmp_path):
    """Two loop drives prepared exactly as the lab prepares its nodes' drives (healthy, and WORN_NODE's)."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    with loop_devices(tmp_path) as loops:
        entries = []
        for node in ("pve1", WORN_NODE):
            loops.make(None, fill=False, name=f"{node}/u2.img")
            backing = loops.attached[-1][1]
            entries.append(prepare_lab_drive(node, backing))
        yield entries


def run_check(drives: list[dict]) -> Findings:
    profile = Profile.model_validate({"host": "localhost", "checks": {"storage": {"drives": drives}}})
    node = local_node()
    node.profile = profile
    findings = Findings("ssd_health")
    check_ssd_health(node, profile, findings)
    return findings


def test_lab_drives_healthy_accepted_worn_rejected(lab_like_drives):
    healthy, worn = lab_like_drives
    findings = run_check([healthy, worn])
    verdicts = findings.metrics["drives"]
    assert verdicts[healthy["serial"]]["verdict"] == "accept"
    assert verdicts[worn["serial"]]["verdict"] == "reject"
    assert all(problem.startswith(worn["serial"]) for problem in findings.problems)
    for expected in ("the drive's own SMART overall assessment is FAILED",
                     "percentage used: 103%, above the limit of 80%",
                     "available spare 6% (threshold 10%)",
                     "media and data-integrity errors: 14, above the limit of 0",
                     "power-on hours 41,318 (4.7 years), far above the seller's claim of 5,000 (+10% accepted)",
                     "last self-test: Completed: failed segments"):
        assert f"{worn['serial']}: {expected}" in findings.problems
    assert f"{healthy['serial']}: power-on hours 4,127 (seller claimed 5,000)" in findings.reasons


def test_loop_drive_without_smart_is_skipped_with_the_reason(tmp_path):
    with loop_devices(tmp_path) as loops:
        serial = f"QLAB-t{os.getpid()}-nosmart"
        loops.make(serial, fill=False)
        with pytest.raises(pytest.skip.Exception, match="no drive has SMART data or a PCIe link"):
            run_check([{"serial": serial}])


def test_garbage_smart_file_names_the_file(lab_like_drives, tmp_path):
    healthy = dict(lab_like_drives[0])
    with open(healthy["smart_json"], "w") as f:
        f.write('{"smartctl": {"exit_status": 0}, "device": ')  # cut short
    with pytest.raises(ParseError, match=f"cannot parse testnode:{healthy['smart_json']}: not JSON"):
        run_check([healthy])
