"""platform: ECC, watchdog, IOMMU, boot parameters and BIOS on prepared trees in the kernel's layout (built here,
synthetic), the judge on evidence, the wiring on a LocalNode."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from qualify.checks.platform import PlatformEvidence, boot_parameters, collect, ecc_enabled, judge
from qualify.findings import Findings
from qualify.lab.tree import NodeSpec, build_node_tree
from qualify.node import LocalNode
from qualify.parsers.dmidecode import parse_memory_error_correction
from qualify.profile import PlatformSettings, Profile
from qualify.store import RunStore


def evidence_of(tmp_path: Path, spec: NodeSpec) -> PlatformEvidence:
    tree = tmp_path / "node"
    build_node_tree(tree, spec)
    node = LocalNode("t", Profile(host="localhost", paths={"sysfs": f"{tree}/sys", "procfs": f"{tree}/proc",
                                                           "kernel_log": f"{tree}/kernel.log"}))
    return collect(node, RunStore.create("t", tmp_path / "reports"))


def judged(evidence: PlatformEvidence, **settings) -> Findings:
    findings = Findings("platform")
    judge(evidence, PlatformSettings(**settings), findings)
    return findings


def outcome(findings: Findings, name: str) -> str:
    return next(m.outcome for m in findings.measurements if m.name == name)


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> PlatformEvidence:
    return evidence_of(tmp_path_factory.mktemp("seed"), NodeSpec(sensors=True))  # sensors: the lab's EDAC mc0


def test_seed_node_read_from_its_tree(seed):
    assert seed.watchdogs == {"watchdog0": "iTCO_wdt"} and seed.iommus == ["dmar0"]
    assert seed.edac_sizes_mb == {"mc0": 64000} and set(seed.edac_modes.values()) == {"None"}
    assert seed.dmi_error_correction is None  # a prepared tree: dmidecode would read this machine, not the node
    assert "intel_iommu=on" in seed.cmdline and seed.iommu_log[0] == "[    0.412301] DMAR: IOMMU enabled"
    assert seed.bios["bios_version"] == "5.27"
    assert seed.module_parameters["intel_idle/parameters/max_cstate"] == "9"


def test_ecc_less_node_passes_where_the_profile_expects_none_and_fails_where_required(seed):
    none = judged(seed, ecc="none")
    assert not none.failed and outcome(none, "ecc_memory_enabled") == "info"
    assert any("has no ECC memory" in r for r in none.reasons)
    required = judged(seed, ecc="required")
    assert outcome(required, "ecc_memory_enabled") == "failed"
    assert any("ECC memory no (EDAC mc0 64000 MB; ECC mode mc0/dimm0 None" in p for p in required.problems)
    assert outcome(judged(seed), "ecc_memory_enabled") == "warning"  # default: expected


def test_ecc_evidence():
    base = PlatformEvidence({}, {}, None, {}, [], [], None, {}, {})
    assert ecc_enabled(base) is None  # nothing tells: unknown, not "no"
    assert ecc_enabled(replace(base, edac_sizes_mb={"mc0": 32768}, edac_modes={"mc0/dimm0": "SECDED"})) is True
    assert ecc_enabled(replace(base, edac_sizes_mb={"mc0": 32768})) is True
    assert ecc_enabled(replace(base, dmi_error_correction=["None"])) is False
    assert ecc_enabled(replace(base, dmi_error_correction=["Multi-bit ECC"])) is True
    findings = judged(base, ecc="required")
    assert outcome(findings, "ecc_memory_enabled") == "unknown" and findings.not_qualified_parts


def test_dmidecode_type_16_error_correction():
    # Synthetic, in dmidecode 3.x's layout for SMBIOS type 16 (a type 17 block after it must not count).
    text = ("# dmidecode 3.4\nGetting SMBIOS data from sysfs.\nSMBIOS 3.3.0 present.\n\n"
            "Handle 0x1000, DMI type 16, 23 bytes\nPhysical Memory Array\n\tLocation: System Board Or Motherboard\n"
            "\tUse: System Memory\n\tError Correction Type: Multi-bit ECC\n\tMaximum Capacity: 3 TB\n"
            "\tError Information Handle: Not Provided\n\tNumber Of Devices: 24\n\n"
            "Handle 0x1100, DMI type 17, 84 bytes\nMemory Device\n\tError Correction Type: None\n")
    assert parse_memory_error_correction(text) == ["Multi-bit ECC"]


def test_softdog_only_node_is_named(tmp_path):
    evidence = evidence_of(tmp_path, NodeSpec(watchdogs=("Software Watchdog",)))
    findings = judged(evidence, watchdog="required")
    assert outcome(findings, "hardware_watchdog") == "failed"
    assert "only softdog: watchdog0 Software Watchdog; it cannot reset a hung board" in findings.problems[0]
    assert outcome(judged(evidence), "hardware_watchdog") == "warning"


def test_no_watchdog_and_no_iommu(tmp_path):
    evidence = evidence_of(tmp_path, NodeSpec(watchdogs=(), iommu=False))
    assert evidence.iommus == [] and evidence.iommu_log == []
    findings = judged(evidence, watchdog="required", iommu="required")
    assert outcome(findings, "hardware_watchdog") == "failed" and outcome(findings, "iommu_active") == "failed"
    assert not judged(evidence, watchdog="off", iommu="off", ecc="none").failed


def test_bios_version_against_the_profile(seed):
    assert not judged(seed, bios_version="5.27", ecc="none").failed
    findings = judged(seed, bios_version="5.29")
    assert any(p.startswith("BIOS 5.27 (07/20/2023), the profile expects 5.29") for p in findings.problems)


def test_boot_parameters_recorded():
    cmdline = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet pcie_aspm=off intel_idle.max_cstate=1 nowatchdog"
    assert boot_parameters(cmdline) == {"pcie_aspm": "off", "intel_idle.max_cstate": "1", "nowatchdog": ""}
    evidence = PlatformEvidence({}, {}, None, {}, [], [], cmdline, {"pcie_aspm/parameters/policy": "[default]"}, {})
    findings = judged(evidence, ecc="none", watchdog="off", iommu="off")
    assert findings.metrics["boot_parameters"]["pcie_aspm"] == "off"
    assert any("idle/ASPM/IOMMU parameters: pcie_aspm=off intel_idle.max_cstate=1 nowatchdog" in r
               for r in findings.reasons)


@pytest.mark.parametrize("layout, folder", [("dimm", "mc0/dimm0"), ("rank", "mc0/rank0"), ("csrow", "mc0/csrow0")])
def test_ecc_mode_read_in_each_edac_layout(tmp_path, layout, folder):
    """EDAC names its per-DIMM folders rankN on chip-select based drivers (edac_mc_sysfs.c: mci->csbased) and
    keeps the legacy csrowN/edac_mode: ECC is found (and its absence said) in each."""
    with_ecc = evidence_of(tmp_path / "ecc", NodeSpec(sensors=True, ecc=True, edac_layout=layout))
    assert with_ecc.edac_modes[folder] == "SECDED" and ecc_enabled(with_ecc) is True
    without = evidence_of(tmp_path / "none", NodeSpec(sensors=True, edac_layout=layout))
    assert set(without.edac_modes.values()) == {"None"} and ecc_enabled(without) is False


def test_edac_mode_none_outweighs_the_boards_smbios_claim():
    """SMBIOS type 16 says what the board can do ("Multi-bit ECC" with non-ECC DIMMs fitted is common);
    EDAC's DIMM mode is what the memory controller runs."""
    base = PlatformEvidence({"mc0": 32768}, {"mc0/dimm0": "None"}, ["Multi-bit ECC"], {}, [], [], None, {}, {})
    assert ecc_enabled(base) is False
    assert ecc_enabled(replace(base, edac_modes={"mc0/dimm0": "Unknown"})) is True  # EDAC cannot tell: SMBIOS does
