"""The memory burn-in: a real stress-ng --vm --verify run passes here; EDAC counts that rise and a machine
check in the kernel log during the run fail it; too little free memory and no duration skip with the
reason; the installed memory is judged against the profile; stress-ng's and stressapptest's failure lines."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from corpus import corpus_path
from qualify.checks.memory import BurnIn, MemoryEvidence, judge, judge_installed
from qualify.errors import ParseError
from qualify.findings import Findings
from qualify.lab import NodeSpec
from qualify.parsers.stress_ng import stress_ng_failures
from qualify.parsers.stressapptest import parse_stressapptest
from qualify.profile import MemorySettings
from qualify.tools.stress_ng import StressJob, StressNgFailed, StressRun


def memory_check(run_dir: Path) -> dict:
    [check] = [c for c in json.loads((run_dir / "verdict.json").read_text())["checks"] if c["name"] == "memory"]
    return check


def test_real_stress_ng_vm_verify_passes(workspace):
    workspace.local_node("m1", extra="duration: 3s\nchecks:\n  memory:\n    max_mib: 64\n")
    proc = workspace.qualify("run", "m1", "--checks", "memory")
    check = memory_check(workspace.runs("m1")[0])
    assert proc.returncode == 0, (proc.stderr, check)
    assert check["outcome"] == "passed"
    measured = {m["name"]: m for m in check["measurements"]}
    failures = measured["memory_verify_failures"]
    assert failures["value"] == 0 and failures["outcome"] == "passed"
    assert " over 64 MiB for 3s" in measured["memory_verify_failures"]["sentence"]
    assert measured["vm_bogo_ops_per_second"]["value"] > 0
    assert any(r.startswith("no EDAC counters under") for r in check["reasons"])
    assert "successful run completed" in (workspace.runs("m1")[0] / "raw/memory-stress-ng.txt").read_text()


def _stress_ng_vm_running(per_worker: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--vm-keep" in args and per_worker.encode() in args:
            return True
    return False


def test_edac_count_and_machine_check_during_the_run_fail(workspace):
    tree = workspace.local_node("m2", NodeSpec(sensors=True),  # sensors: the lab's EDAC files
                                extra="duration: 6s\nchecks:\n  memory:\n    max_mib: 38\n")
    workers = len([line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("processor")])
    per_worker = f"{max(1, 38 // workers)}m"
    mc = tree / "sys/devices/system/edac/mc/mc0"
    injected = threading.Event()

    def inject() -> None:  # a DIMM going bad while the burn-in runs
        deadline = time.monotonic() + 60
        while not _stress_ng_vm_running(per_worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        (mc / "ce_count").write_text("3\n")
        (mc / "dimm1/dimm_ce_count").write_text("3\n")
        with open(tree / "kernel.log", "a") as log:
            log.write("[43210.123456] mce: [Hardware Error]: CPU 2: Machine Check: 0 Bank 8: cc00008000010090\n")
        injected.set()

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    proc = workspace.qualify("run", "m2", "--checks", "memory")
    thread.join(5)
    assert injected.is_set(), "the stress-ng --vm run was never seen"
    assert proc.returncode == 1, proc.stderr
    check = memory_check(workspace.runs("m2")[0])
    assert check["outcome"] == "failed"
    problems = " | ".join(check["problems"])
    assert "mc0/dimm1: EDAC corrected memory errors during the burn-in 3 (0 -> 3, " in problems
    assert "mc0/dimm1/dimm_ce_count" in problems and "mc0/ce_count" in problems
    grown = {m["subject"]: m["value"] for m in check["measurements"] if m["outcome"] == "failed"
             and m["name"] == "edac_corrected_errors_during_run"}
    assert grown == {"mc0": 3, "mc0/dimm1": 3}
    assert "kernel memory/machine-check errors during the burn-in 1 (first: " in problems
    assert "Machine Check: 0 Bank 8" in problems


def test_too_little_free_memory_skips_and_says_so(workspace):
    workspace.local_node("m3", NodeSpec(mem_kb=200_000), extra="duration: 2s\n")
    proc = workspace.qualify("run", "m3", "--checks", "memory")
    check = memory_check(workspace.runs("m3")[0])
    assert proc.returncode == 2 and check["outcome"] == "skipped"
    assert "too little free memory to test: 181 MiB available" in check["reasons"][-1]
    assert "below checks.memory.min_mib (256 MiB)" in check["reasons"][-1]


def test_without_a_duration_it_skips_with_what_to_set(workspace):
    workspace.local_node("m4")
    workspace.qualify("run", "m4", "--checks", "memory")
    check = memory_check(workspace.runs("m4")[0])
    assert check["outcome"] == "skipped" and check["reasons"][-1].endswith("the profile sets no length")
    [part] = check["not_qualified"]
    assert "duration: 30m" in part["how"] and "DURATION=30m" in part["how"]


DIMM = {"locator": "DIMM 0", "size_mib": 32768, "type": "DDR4", "speed_mts": 3200, "configured_speed_mts": 2400}


def installed(inventory: dict, settings: MemorySettings) -> Findings:
    findings = Findings("memory")
    judge_installed(inventory, settings, findings)
    return findings


def test_installed_memory_against_the_profile():
    findings = installed({"memory_kib": 32 * 2**20 - 500_000, "dimms": [DIMM]},
                         MemorySettings(expected_gib=64, expected_dimms=2, min_speed_mts=3200))
    assert findings.problems == [
        ("installed memory 31.5 GiB (the profile expects 64 GiB) (minimum 60.8 GiB) — a DIMM is missing or not "
        "detected (reseat it)"),
        ("populated DIMMs 1 (DIMM 0 32 GiB DDR4 2400 MT/s) (expected 2) — a DIMM is not detected (reseat it, check "
        "the slot)"),
        ("DIMM 0: configured speed 2,400 MT/s (rated 3200 MT/s) (minimum 3,200 MT/s) — check the BIOS memory "
        "settings/XMP"),
    ]
    assert [m.subject for m in findings.measurements] == [None, None, "DIMM 0"]
    ok = installed({"memory_kib": 63 * 2**20, "dimms": [DIMM, {**DIMM, "locator": "DIMM 1"}]},
                   MemorySettings(expected_gib=64, expected_dimms=2, min_speed_mts=2400))
    assert not ok.problems and [m.outcome for m in ok.measurements] == ["passed"] * 4


def test_expected_dimms_without_a_dimm_table_are_unknown_not_passed():
    findings = installed({"memory_kib": 16 * 2**20}, MemorySettings(expected_dimms=2, min_speed_mts=3200))
    assert [(m.name, m.outcome) for m in findings.measurements] == [
        ("memory_installed_bytes", "info"), ("dimms_populated", "unknown"), ("dimm_configured_speed_mts", "unknown")]
    assert len(findings.not_qualified_parts) == 2 and not findings.problems


# -- the judge on recorded stress-ng outputs (tests/corpus/stress-ng-verify)

def _verify_corpus_is_covered():
    assert {p.name for p in corpus_path("stress-ng-verify").iterdir()} == {
        "issue546-vm-verify-5-bit-errors-stdout-exit-2.txt", "issue533-vm-verify-192-hogs-mmap-gave-up-exit-3.txt"}


def burn_in(output: str, returncode: int, edac_before=None, edac_after=None, events=()) -> MemoryEvidence:
    stress = StressRun(StressJob("vm", 60, workers=2, verify=True), "stress-ng --vm 2 ...", returncode, output,
                       0.0, 60.0)
    return MemoryEvidence({}, BurnIn("pve2", 1024, 2, stress, None, False, "/sys/devices/system/edac/mc",
                                     edac_before or {}, edac_after or {}, tuple(events)), None)


def judged(evidence: MemoryEvidence) -> Findings:
    findings = Findings("memory")
    judge(evidence, MemorySettings(), findings)
    return findings


def test_verification_failures_fail_with_stress_ngs_lines():
    _verify_corpus_is_covered()
    text = corpus_path("stress-ng-verify", "issue546-vm-verify-5-bit-errors-stdout-exit-2.txt").read_text()
    findings = judged(burn_in(text, 2))
    [verify] = [m for m in findings.measurements if m.name == "memory_verify_failures"]
    assert (verify.value, verify.outcome, verify.high) == (6, "failed", 0)
    assert verify.sentence.startswith("stress-ng --vm --verify failures 6 (2 workers over 1024 MiB for 1m: "
                                      "elon: detected 1 memory error; ")


def test_stress_ng_ending_badly_without_a_bad_bit_is_an_error_naming_its_status():
    text = corpus_path("stress-ng-verify", "issue533-vm-verify-192-hogs-mmap-gave-up-exit-3.txt").read_text()
    with pytest.raises(StressNgFailed, match=r"pve2: stress-ng ended early with exit status 3 \(a stressor lacked "
                                             r"resources such as memory\) after 60 s of a 60 s memory burn-in"):
        judged(burn_in(text, 3))


def test_edac_growth_per_counter_and_kernel_events_fail(tmp_path):
    # this machine's real stress-ng: a clean vm run, so only the counters and the events decide
    import subprocess

    proc = subprocess.run(["stress-ng", "--vm", "1", "--vm-bytes", "8m", "--verify", "--timeout", "1s",
                           "--metrics-brief"], check=False, capture_output=True, text=True, timeout=60)
    before = {"mc0/ce_count": 1, "mc0/dimm0/dimm_ce_count": 1, "mc0/dimm0/dimm_ue_count": 0}
    after = {"mc0/ce_count": 4, "mc0/dimm0/dimm_ce_count": 4, "mc0/dimm0/dimm_ue_count": 0}
    event = {"message": "mce: [Hardware Error]: Machine check events logged"}
    findings = judged(burn_in(proc.stdout + proc.stderr, proc.returncode, before, after, [event]))
    outcomes = {(m.name, m.subject): (m.value, m.outcome) for m in findings.measurements}
    assert outcomes[("memory_verify_failures", None)] == (0, "passed")
    assert outcomes[("edac_corrected_errors_during_run", "mc0")] == (3, "failed")
    assert outcomes[("edac_corrected_errors_during_run", "mc0/dimm0")] == (3, "failed")
    assert outcomes[("edac_uncorrected_errors_during_run", "mc0/dimm0")] == (0, "passed")
    assert outcomes[("memory_kernel_events", None)] == (1, "failed")
    assert findings.problems[-1] == ("kernel memory/machine-check errors during the burn-in 1 (first: mce: [Hardware "
                                     "Error]: Machine check events logged) (limit ≤ 0)")


def test_stress_ng_verification_failure_lines():
    output = ("stress-ng: info:  [4211] dispatching hogs: 2 vm\n"
              "stress-ng: fail:  [4213] vm: detected 17 bit errors while stressing memory\n"
              "stress-ng: info:  [4211] unsuccessful run completed in 10.02s\n")
    assert stress_ng_failures(output) == ["vm: detected 17 bit errors while stressing memory"]
    assert stress_ng_failures("stress-ng: info:  [1] successful run completed in 2.00s\n") == []


def test_stressapptest_status():
    failed = parse_stressapptest("Log: Seconds remaining: 10\nReport Error: miscompare : DIMM Unknown : 1 : 144s\n"
                                 "Stats: Completed: 1284920.00M in 20.00s 64245.66MB/s, with 2 hardware incidents, "
                                 "0 errors\nStatus: FAIL - test discovered HW problems\n")
    assert not failed.passed and failed.hardware_incidents == 2
    assert failed.errors == ("miscompare : DIMM Unknown : 1 : 144s",)
    assert parse_stressapptest("Stats: Completed: 10.00M in 1.00s 10MB/s, with 0 hardware incidents, 0 errors\n"
                               "Status: PASS - please verify no corrected errors\n").passed
    with pytest.raises(ParseError, match="stressapptest on pve2: no 'Status: PASS'"):
        parse_stressapptest("Killed\n", "stressapptest on pve2")
