"""The microcode check, run for real (`qualify run`) on this machine against prepared node trees."""

import json

import pytest

from qualify.lab import NodeSpec
from qualify.lab.firmware import intel_microcode_file


def run_microcode(workspace, spec=None, extra=""):
    workspace.local_node("n1", spec, extra)
    proc = workspace.qualify("run", "n1", "--checks", "microcode")
    verdict = json.loads((workspace.runs("n1")[-1] / "verdict.json").read_text())
    check = verdict["checks"][0]
    return proc, verdict, check, " | ".join(check["reasons"])


def test_the_seed_node_passes(workspace):
    proc, verdict, check, reasons = run_microcode(workspace, extra=(
        "checks:\n  microcode:\n    min_revision: 0x42c\n    require_early_load: true\n"))
    assert proc.returncode == 0, proc.stderr
    assert verdict["verdict"] == "pass" and check["outcome"] == "passed"
    assert "all 16 CPUs run microcode revision 0x435" in reasons
    assert "updated early from 0x42c to 0x435" in reasons
    assert check["metrics"]["revision"] == "0x435" and check["metrics"]["offered_revision"] == "0x435"
    assert check["metrics"]["vulnerabilities"]["meltdown"] == "Not affected"
    assert verdict["inventory"]["cpu_model"] == "12th Gen Intel(R) Core(TM) i5-12650H"


def test_below_the_profile_minimum_fails_naming_both_revisions(workspace):
    proc, verdict, check, reasons = run_microcode(workspace, extra="checks:\n  microcode:\n    min_revision: 0x4ff\n")
    assert proc.returncode == 1 and verdict["verdict"] == "fail" and check["outcome"] == "failed"
    assert "running revision 0x435 is below the profile's minimum 0x4ff" in check["problems"]


def test_cpus_that_disagree_fail_naming_the_odd_one(workspace):
    proc, _, check, _ = run_microcode(workspace, NodeSpec(microcode_per_cpu={11: 0x434}, firmware_revision=0x434))
    assert proc.returncode == 1
    assert check["problems"] == ["CPUs disagree on the microcode revision: CPU 11 runs 0x434 "
                                 "while 15 of 16 CPUs run 0x435"]


def test_a_newer_firmware_file_that_is_not_loaded_fails(workspace):
    proc, _, check, _ = run_microcode(workspace, NodeSpec(firmware_revision=0x437))
    assert proc.returncode == 1
    assert "intel-ucode/06-9a-03 offers revision 0x437 but the CPUs run 0x435" in check["problems"][0]


def test_firmware_for_another_platform_is_not_an_offer(workspace):
    # the file is for platform bit 0x80 only; this CPU's processor_flags say platform bit 0x2
    tree = workspace.local_node("n1", NodeSpec(processor_flags=0x2))
    (tree / "firmware/intel-ucode/06-9a-03").write_bytes(
        intel_microcode_file(signature=0x906A3, processor_flags=0x80, revision=0x437))
    proc = workspace.qualify("run", "n1", "--checks", "microcode")
    reasons = json.loads((workspace.runs("n1")[-1] / "verdict.json").read_text())["checks"][0]["reasons"]
    assert proc.returncode == 0, reasons
    assert any("no microcode file for this CPU" in r for r in reasons)


@pytest.mark.parametrize("firmware, outcome, expected", [
    (0x437, 1, "requires early microcode loading but the kernel log of this boot shows no early update"),
    (0x435, 0, "already run the newest revision offered (0x435), likely from the BIOS"),
    (None, 1, "requires early microcode loading"),
])
def test_early_loading_required(workspace, firmware, outcome, expected):
    spec = NodeSpec(early_update_from=None, firmware_revision=firmware)
    proc, _, check, reasons = run_microcode(workspace, spec, "checks:\n  microcode:\n    require_early_load: true\n")
    assert proc.returncode == outcome and expected in reasons


def test_old_kernel_wording_counts_as_early_loading(workspace):
    proc, _, check, reasons = run_microcode(workspace, NodeSpec(log_style="legacy"),
                                            "checks:\n  microcode:\n    require_early_load: true\n")
    assert proc.returncode == 0 and check["metrics"]["early_loaded"] is True


@pytest.mark.parametrize("policy, code", [("warn", 0), ("fail", 1)])
def test_engineering_sample_is_flagged(workspace, policy, code):
    spec = NodeSpec(model_name="Genuine Intel(R) 0000", family=6, model=154, stepping=3)
    proc, _, check, reasons = run_microcode(workspace, spec, f"checks:\n  microcode:\n    engineering_sample: {policy}\n")
    assert proc.returncode == code
    assert "engineering-sample CPU ('Genuine Intel(R) 0000')" in reasons
    assert check["metrics"]["engineering_sample"] is True


def test_amd_container_offer_is_compared(workspace):
    spec = NodeSpec(vendor_id="AuthenticAMD", model_name="AMD Ryzen 7 5800X 8-Core Processor", family=0x19,
                    model=0x21, stepping=0, microcode=0x0A201016, firmware_revision=0x0A201025,
                    early_update_from=None, cpus=16, cores=8, flags=("fpu", "sse2"))
    proc, _, check, _ = run_microcode(workspace, spec)
    assert proc.returncode == 1
    assert "amd-ucode/microcode_amd_fam19h.bin offers revision 0xa201025 but the CPUs run 0xa201016" \
        in check["problems"][0]
