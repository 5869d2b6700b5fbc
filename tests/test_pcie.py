"""pcie: sysfs PCI trees in the kernel's layout (built here: synthetic, no public source has such trees), the
parser on the kernel's exact file formats, the judge on a downtrained riser, an empty slot, a switch with a
downstream port, AER growth during the run; the wiring (collect on a real LocalNode reading the tree)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from qualify.checks.pcie import PcieEvidence, collect, judge
from qualify.errors import ParseError
from qualify.findings import Findings
from qualify.lab.tree import (
    RISER_PORT,
    SEED_PCI,
    NodeSpec,
    PciSpec,
    aer_file_text,
    riser_downtrained,
    write_pci_devices,
)
from qualify.node import LocalNode
from qualify.parsers.lspci import PciLink
from qualify.parsers.pci_sysfs import DUMP_SCRIPT, parse_aer_counters, parse_link_speed, parse_pci_dump
from qualify.profile import PcieExpectation, PcieSettings, Profile
from qualify.store import RunStore

NAMES = {"8086:10fb": "Intel Corporation 82599ES 10-Gigabit SFI/SFP+ Network Connection"}


def read_tree(tmp_path: Path, devices: tuple[PciSpec, ...]) -> list:
    sys = tmp_path / "sys"
    write_pci_devices(sys, devices)
    node = LocalNode("t", Profile(host="localhost", paths={"sysfs": str(sys)}))
    return parse_pci_dump(node.run(["sh", "-c", DUMP_SCRIPT, "sh", str(sys)]).stdout)


def run_judge(idle, load=None, after=None, settings: PcieSettings | None = None) -> Findings:
    findings = Findings("pcie")
    judge(PcieEvidence(idle, idle if load is None else load, after or idle, NAMES), settings or PcieSettings(),
          findings)
    return findings


@pytest.mark.parametrize("text, gts", [("8.0 GT/s PCIe", 8.0), ("5 GT/s", 5.0), ("2.5 GT/s", 2.5),
                                       ("16.0 GT/s PCIe\n", 16.0), ("Unknown", None), ("", None)])
def test_link_speed_as_kernels_write_it(text, gts):
    assert parse_link_speed(text) == gts


def test_aer_files_as_the_kernel_writes_them():
    text = aer_file_text("correctable", {"RxErr": 3, "BadTLP": 1})
    assert text.splitlines()[0] == "RxErr 3" and text.splitlines()[-1] == "TOTAL_ERR_COR 4"
    assert parse_aer_counters(text, "x")["BadTLP"] == 1 and "TOTAL_ERR_COR" not in parse_aer_counters(text, "x")
    # an unnamed bit appears only when counted, as "<array>_bit[N] count"
    assert parse_aer_counters("RxErr 0\ndev_cor_errs_bit[3] 2\nTOTAL_ERR_COR 2\n", "x")["dev_cor_errs_bit[3]"] == 2
    assert len(parse_aer_counters(aer_file_text("fatal"), "x")) == 18
    with pytest.raises(ParseError, match="aer_dev"):
        parse_aer_counters("RxErr: 0\n", "x")


def test_tree_is_read_with_upstream_ports_drivers_and_links(tmp_path):
    functions = {f.address: f for f in read_tree(tmp_path, SEED_PCI)}
    nic = functions["0000:03:00.0"]
    assert nic.upstream == RISER_PORT and nic.driver == "ixgbe" and nic.ids == "8086:10fb"
    assert nic.link == PciLink(5.0, 8) and nic.capability == PciLink(5.0, 8)
    assert functions["0000:00:1c.0"].upstream is None and functions["0000:00:1c.0"].is_bridge
    assert functions["0000:00:00.0"].link is None and functions["0000:00:00.0"].aer == {}
    assert functions["0000:01:00.0"].aer["correctable"]["RxErr"] == 0


def test_healthy_seed_passes_and_the_empty_slot_is_no_finding(tmp_path):
    findings = run_judge(read_tree(tmp_path, SEED_PCI))
    assert not findings.failed, findings.problems
    # X520 (one row per link, not per function) and the U.2 drive, idle and load; host bridge and LPC have none
    links = {m.subject for m in findings.measurements if m.name == "pcie_link_width_lanes"}
    assert len(links) == 4 and any("0000:01:00.0" in s for s in links)
    assert not any("0000:03:00.1" in s for s in links)
    assert any("ports without a link (empty slots, not judged): 0000:00:1d.0" in r for r in findings.reasons)


def test_downtrained_riser_fails_naming_slot_device_and_both_figures(tmp_path):
    findings = run_judge(read_tree(tmp_path, riser_downtrained(SEED_PCI)))
    [idle, load] = [m for m in findings.measurements if m.outcome == "failed"]
    assert idle.name == "pcie_link_width_lanes" and idle.value == 4 and idle.low == 8
    assert idle.sentence.startswith("0000:03:00.0 Intel Corporation 82599ES 10-Gigabit SFI/SFP+ Network Connection "
                                    "[8086:10fb] (ixgbe) behind 0000:00:1c.0 (idle): link width 4 lanes at 5 GT/s; "
                                    "the device can do 5 GT/s x8, its port 8 GT/s x8 (minimum 8 lanes)")
    assert "riser, adapter, cable or slot" in idle.sentence and "(load)" in load.subject


def test_a_gen3_device_in_a_gen2_port_is_capped_by_the_port_not_failed(tmp_path):
    devices = (PciSpec("0000:00:01.0", None, 0x8086, 0x1901, 0x060400, "pcieport", (5.0, 4), (5.0, 4)),
               PciSpec("0000:01:00.0", "0000:00:01.0", 0x144d, 0xa808, 0x010802, "nvme", (8.0, 4), (5.0, 4)))
    findings = run_judge(read_tree(tmp_path, devices))
    assert not findings.failed
    speed = next(m for m in findings.measurements if m.name == "pcie_link_speed_gts")
    assert speed.value == 5.0 and speed.low == 5.0


def test_switch_links_are_judged_below_each_port_not_twice(tmp_path):
    # root port -> switch upstream port (x8 gen3, trained x4) -> downstream port -> NVMe (x4 gen3, fine)
    devices = (PciSpec("0000:00:01.0", None, 0x8086, 0x1901, 0x060400, "pcieport", (8.0, 8), (8.0, 4)),
               PciSpec("0000:02:00.0", "0000:00:01.0", 0x10b5, 0x8747, 0x060400, "pcieport", (8.0, 8), (8.0, 4)),
               PciSpec("0000:03:08.0", "0000:02:00.0", 0x10b5, 0x8747, 0x060400, "pcieport", (8.0, 4), (8.0, 4)),
               PciSpec("0000:04:00.0", "0000:03:08.0", 0x8086, 0x0a54, 0x010802, "nvme", (8.0, 4), (8.0, 4)))
    findings = run_judge(read_tree(tmp_path, devices))
    failed = [m for m in findings.measurements if m.outcome == "failed"]
    assert {m.subject.split()[0] for m in failed} == {"0000:02:00.0"}  # the switch's uplink, at idle and load
    judged = {m.subject.split()[0] for m in findings.measurements if m.name == "pcie_link_width_lanes"}
    assert judged == {"0000:02:00.0", "0000:04:00.0"}  # not the downstream port 0000:03:08.0


def test_vmd_domain_devices_are_judged(tmp_path):
    devices = (PciSpec("10000:e0:06.0", None, 0x8086, 0x9a09, 0x060400, "pcieport", (16.0, 4), (16.0, 4)),
               PciSpec("10000:e1:00.0", "10000:e0:06.0", 0x15b7, 0x5009, 0x010802, "nvme", (8.0, 4), (8.0, 2)))
    functions = read_tree(tmp_path, devices)
    assert functions[1].upstream == "10000:e0:06.0"
    findings = run_judge(functions)
    assert any(m.outcome == "failed" and m.subject.startswith("10000:e1:00.0 NVMe") for m in findings.measurements)


def test_aer_growth_during_the_run_fails_per_device_and_bit(tmp_path):
    before = read_tree(tmp_path / "a", SEED_PCI)
    grown = tuple(replace(d, aer_counts={"correctable": {"RxErr": 3, "BadDLLP": 1}, "nonfatal": {"CmpltTO": 1}})
                  if d.address == "0000:01:00.0" else d for d in SEED_PCI)
    after = read_tree(tmp_path / "b", grown)
    findings = run_judge(before, after=after, settings=PcieSettings(max_correctable_growth=2))
    failed = {m.name: m for m in findings.measurements if m.outcome == "failed"}
    device = failed["pcie_aer_correctable_errors_total"]
    assert device.value == 4 and device.high == 2 and device.subject.startswith("0000:01:00.0 NVMe [8086:0a54] (nvme)")
    assert "(BadDLLP +1, RxErr +3)" in device.sentence
    assert failed["pcie_aer_nonfatal_errors_total"].value == 1 and "CmpltTO +1" in failed[
        "pcie_aer_nonfatal_errors_total"].sentence
    assert failed["pcie_aer_nonfatal_growth_errors_total"].value == 1
    assert "pcie_aer_fatal_growth_errors_total" not in failed
    # within the allowance: passes
    ok = run_judge(before, after=read_tree(tmp_path / "c", tuple(
        replace(d, aer_counts={"correctable": {"RxErr": 2}}) if d.address == "0000:01:00.0" else d
        for d in SEED_PCI)), settings=PcieSettings(max_correctable_growth=2))
    assert not ok.failed


def test_counts_from_before_the_run_are_noted_not_failed(tmp_path):
    old = tuple(replace(d, aer_counts={"correctable": {"Timeout": 7}}) if d.address == "0000:03:00.0" else d
                for d in SEED_PCI)
    functions = read_tree(tmp_path, old)
    findings = run_judge(functions)
    assert not findings.failed
    assert any("AER counts since boot before the run: correctable Timeout 7" in r for r in findings.reasons)


def test_profile_expectation_by_ids(tmp_path):
    settings = PcieSettings(expect=[PcieExpectation(ids="8086:10fb", min_speed_gts=8.0)])
    findings = run_judge(read_tree(tmp_path, SEED_PCI), settings=settings)
    assert any(m.outcome == "failed" and m.name == "pcie_link_speed_gts" for m in findings.measurements)


def test_no_aer_files_is_not_qualified_not_passed(tmp_path):
    findings = run_judge(read_tree(tmp_path, tuple(replace(d, aer=False) for d in SEED_PCI)))
    assert any("no AER counters" in part["reason"] for part in findings.not_qualified_parts)


def test_collect_reads_idle_load_and_after_on_the_node(tmp_path):
    sys = tmp_path / "sys"
    write_pci_devices(sys, riser_downtrained(SEED_PCI))
    node = LocalNode("t", Profile(host="localhost", paths={"sysfs": str(sys)}))
    store = RunStore.create("t", tmp_path / "reports")
    evidence = collect(node, PcieSettings(load=2), store)
    assert evidence.load is not None and len(evidence.after) == len(SEED_PCI)
    assert (store.run_dir / "raw/pcie-sysfs-load.txt").exists()
    findings = Findings("pcie")
    judge(evidence, PcieSettings(), findings)
    assert findings.failed and "82599ES" in findings.problems[0]


def test_end_to_end_a_riser_downtrained_node_fails_and_says_why(workspace):
    workspace.local_node("p2", NodeSpec(riser_downtrained_node="p2"), extra="checks:\n  pcie: {load: 2s}\n")
    proc = workspace.qualify("run", "p2", "--checks", "pcie or platform")
    verdict = json.loads((workspace.runs("p2")[0] / "verdict.json").read_text())
    checks = {c["name"]: c for c in verdict["checks"]}
    assert proc.returncode == 1, proc.stderr
    assert checks["pcie"]["outcome"] == "failed"
    assert any("0000:03:00.0" in r and "link width 4 lanes" in r for r in checks["pcie"]["reasons"])
    assert checks["platform"]["outcome"] == "passed", checks["platform"]["reasons"]  # warnings (no ECC) only


def test_a_link_that_trains_up_under_load_was_saving_power_not_downtrained(tmp_path):
    """Idle at 2.5 GT/s, full 8 GT/s under the load: a warning at idle, no failure; lanes missing still fail."""
    port = PciSpec("0000:00:01.0", None, 0x8086, 0x1901, 0x060400, "pcieport", (8.0, 4), (8.0, 4))
    idle = read_tree(tmp_path / "idle", (port, PciSpec("0000:01:00.0", "0000:00:01.0", 0x144d, 0xa808, 0x010802,
                                                       "nvme", (8.0, 4), (2.5, 4))))
    load = read_tree(tmp_path / "load", (port, PciSpec("0000:01:00.0", "0000:00:01.0", 0x144d, 0xa808, 0x010802,
                                                       "nvme", (8.0, 4), (8.0, 4))))
    findings = run_judge(idle, load=load)
    assert not findings.failed, findings.problems
    [speed] = [m for m in findings.measurements if m.name == "pcie_link_speed_gts" and m.outcome == "warning"]
    assert "(idle)" in speed.subject and "trained up to full speed under load" in speed.sentence
    assert run_judge(idle, load=idle).failed  # still slow under load: downtrained


def test_a_gpu_at_idle_link_speed_is_a_warning_its_lanes_are_judged(tmp_path):
    """amdgpu/nvidia drop their link to 2.5 GT/s whenever the GPU itself is idle (a CPU load does not wake it)."""
    port = PciSpec("0000:00:01.1", None, 0x1022, 0x1483, 0x060400, "pcieport", (16.0, 16), (2.5, 16))
    gpu = PciSpec("0000:0a:00.0", "0000:00:01.1", 0x1002, 0x73bf, 0x030000, "amdgpu", (16.0, 16), (2.5, 16))
    findings = run_judge(read_tree(tmp_path / "a", (port, gpu)))
    assert not findings.failed, findings.problems
    assert any("a GPU lowers its link speed while it is idle" in m.sentence for m in findings.measurements)
    narrow = run_judge(read_tree(tmp_path / "b", (port, replace(gpu, link=(2.5, 8)))))
    assert {m.name for m in narrow.measurements if m.outcome == "failed"} == {"pcie_link_width_lanes"}


def test_a_runtime_suspended_device_without_a_link_is_unknown_not_failed(tmp_path):
    """A laptop dGPU in D3cold reads current_link_width 0: its link is down by design, awake it could be judged."""
    port = PciSpec("0000:00:01.0", None, 0x8086, 0x460d, 0x060400, "pcieport", (16.0, 16))
    gpu = PciSpec("0000:01:00.0", "0000:00:01.0", 0x10de, 0x25a0, 0x030200, "nvidia", (16.0, 16), (2.5, 0),
                  aer=False, power_state="D3cold")
    findings = run_judge(read_tree(tmp_path / "a", (port, gpu)))
    link = next(m for m in findings.measurements if m.name == "pcie_link_width_lanes" and "0000:01:00.0" in
                (m.subject or "") + m.sentence)
    assert link.outcome == "unknown" and "runtime-suspended (D3cold)" in link.sentence, link.sentence
    assert "power/control" in link.sentence
    awake = run_judge(read_tree(tmp_path / "b", (port, replace(gpu, power_state="D0"))))
    assert {m.name for m in awake.measurements if m.outcome == "failed"} == {"pcie_link_width_lanes"}


def test_a_vm_with_no_pcie_link_skips_saying_why_never_passes(tmp_path):
    """A VM's virtio functions on the emulated root bus have no link files (this machine's own layout)."""
    devices = (PciSpec("0000:00:00.0", None, 0x8086, 0x0d57, 0x060000),
               PciSpec("0000:00:03.0", None, 0x1af4, 0x1041, 0x020000, "virtio-pci"))
    findings = Findings("pcie")
    with pytest.raises(pytest.skip.Exception, match="no PCIe link among the 2 PCI functions"):
        judge(PcieEvidence(read_tree(tmp_path, devices), None, [], {}), PcieSettings(), findings)
    [part] = findings.not_qualified_parts
    assert "bare-metal" in part["how"]
