"""The microcode check: its judge on recorded evidence (the corpus's cpuinfo and kernel logs), and the check
run for real (`qualify run`) on this machine against prepared node trees."""

import json
from dataclasses import replace

import pytest

from corpus import corpus_path
from qualify.checks.microcode import MicrocodeEvidence, Offer, judge
from qualify.findings import Findings
from qualify.lab import NodeSpec
from qualify.lab.firmware import intel_microcode_file
from qualify.parsers.cpuinfo import parse_cpuinfo
from qualify.parsers.microcode_log import parse_microcode_log
from qualify.profile import MicrocodeSettings

# -- the judge on recorded evidence, in milliseconds

ALDER_LAKE = MicrocodeEvidence(
    cpus=tuple(parse_cpuinfo(corpus_path("microcode", "cpuinfo-i5-12400-alderlake-microcode-0x2c-cpu0.txt")
                             .read_text())),
    revisions={0: 0x2C}, firmware_dir="/lib/firmware", firmware_read=True,
    offer=Offer(0x2C, "/lib/firmware/intel-ucode/06-97-05"),  # built: the revision cpu0 runs
    kernel_log=parse_microcode_log(corpus_path(
        "microcode", "dmesg-alderlake-i7-1260p-galaxybook2pro-updated-early-0x42c.txt").read_text()),
    vulnerabilities={"meltdown": "Not affected", "mmio_stale_data": "Vulnerable: Clear CPU buffers attempted"})


def judged(evidence: MicrocodeEvidence, **settings) -> Findings:
    findings = Findings("microcode")
    judge(evidence, MicrocodeSettings(**settings), findings)
    return findings


def test_judge_passes_the_running_revision_against_minimum_and_offer():
    findings = judged(ALDER_LAKE, min_revision=0x2A, require_early_load=True)
    assert findings.problems == []
    assert [(m.name, m.value, m.outcome) for m in findings.measurements] == [
        ("microcode_cpus_on_other_revision", 0, "passed"), ("microcode_revision", 0x2C, "passed"),
        ("microcode_offered_revision", 0x2C, "passed")]
    assert "running revision 0x2c (minimum 0x2a)" in findings.reasons
    assert "kernel log: microcode updated early to 0x42c" in findings.reasons
    assert "kernel reports the CPU vulnerable to mmio_stale_data: Vulnerable: Clear CPU buffers attempted" \
        in findings.reasons
    assert findings.metrics["revision"] == "0x2c"


def test_judge_fails_a_newer_offer_that_is_not_loaded_and_cpus_that_disagree():
    evidence = replace(ALDER_LAKE, revisions={0: 0x2C, 1: 0x2C, 2: 0x2B}, offer=Offer(0x35, "/fw/06-97-05"))
    findings = judged(evidence)
    assert findings.problems == [
        ("CPUs on another revision 1 (CPU 2 runs 0x2b while 2 of 3 CPUs run 0x2c) (limit ≤ 0) — the CPUs disagree on "
        "the microcode revision"),
        ("/fw/06-97-05 offers revision 0x35 (the CPUs run 0x2b) (limit ≤ 0x2b) — the newer microcode is not being "
        "loaded (rebuild the initramfs, `update-initramfs -u`, and reboot)")]


def test_judge_without_an_early_update_fails_only_where_required_and_not_explained():
    quiet = replace(ALDER_LAKE, kernel_log=parse_microcode_log(""), offer=Offer(0x35, "/fw/06-97-05"))
    assert "requires early microcode loading" in judged(quiet, require_early_load=True).problems[-1]
    assert judged(replace(quiet, offer=None, firmware_read=False)).problems == []


# -- the check as a user runs it, on prepared trees


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
    assert "running revision 0x435 (minimum 0x4ff) — the profile's minimum: older microcode lacks errata fixes " \
           "and mitigations" in check["problems"]


def test_cpus_that_disagree_fail_naming_the_odd_one(workspace):
    proc, _, check, _ = run_microcode(workspace, NodeSpec(microcode_per_cpu={11: 0x434}, firmware_revision=0x434))
    assert proc.returncode == 1
    assert check["problems"] == [("CPUs on another revision 1 (CPU 11 runs 0x434 while 15 of 16 CPUs run 0x435) "
                                 "(limit ≤ 0) — the CPUs disagree on the microcode revision")]


def test_a_newer_firmware_file_that_is_not_loaded_fails(workspace):
    proc, _, check, _ = run_microcode(workspace, NodeSpec(firmware_revision=0x437))
    assert proc.returncode == 1
    assert "intel-ucode/06-9a-03 offers revision 0x437 (the CPUs run 0x435) (limit ≤ 0x435)" in check["problems"][0]


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
    proc, _, check, reasons = run_microcode(workspace, spec,
                                            f"checks:\n  microcode:\n    engineering_sample: {policy}\n")
    assert proc.returncode == code
    assert "engineering-sample CPU ('Genuine Intel(R) 0000')" in reasons
    assert check["metrics"]["engineering_sample"] is True


def test_amd_container_offer_is_compared(workspace):
    spec = NodeSpec(vendor_id="AuthenticAMD", model_name="AMD Ryzen 7 5800X 8-Core Processor", family=0x19,
                    model=0x21, stepping=0, microcode=0x0A201016, firmware_revision=0x0A201025,
                    early_update_from=None, cpus=16, cores=8, flags=("fpu", "sse2"))
    proc, _, check, _ = run_microcode(workspace, spec)
    assert proc.returncode == 1
    assert "amd-ucode/microcode_amd_fam19h.bin offers revision 0xa201025 (the CPUs run 0xa201016)" \
        in check["problems"][0]
