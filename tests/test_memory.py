"""The memory burn-in: a real stress-ng --vm --verify run passes here; EDAC counts that rise and a machine
check in the kernel log during the run fail it; too little free memory and no duration skip with the
reason; the installed memory is judged against the profile; stress-ng's and stressapptest's failure lines."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from qualify.errors import ParseError
from qualify.checks.memory import _installed
from qualify.findings import Findings
from qualify.lab import NodeSpec
from qualify.parsers.stress_ng import stress_ng_failures
from qualify.parsers.stressapptest import parse_stressapptest
from qualify.profile import MemorySettings


def memory_check(run_dir: Path) -> dict:
    [check] = [c for c in json.loads((run_dir / "verdict.json").read_text())["checks"] if c["name"] == "memory"]
    return check


def test_real_stress_ng_vm_verify_passes(workspace):
    workspace.local_node("m1", extra="duration: 3s\nchecks:\n  memory:\n    max_mib: 64\n")
    proc = workspace.qualify("run", "m1", "--checks", "memory")
    check = memory_check(workspace.runs("m1")[0])
    assert proc.returncode == 0, (proc.stderr, check)
    assert check["outcome"] == "passed"
    assert check["metrics"]["verify_failures"] == 0 and check["metrics"]["tested_mib"] == 64
    assert check["metrics"]["vm_bogo_ops_per_s"] > 0
    assert any("stress-ng --vm --verify:" in r and "no verification error" in r for r in check["reasons"])
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
    assert "EDAC corrected memory errors rose from 0 to 3 during the burn-in" in problems
    assert "mc0/dimm1/dimm_ce_count" in problems and "mc0/ce_count" in problems
    assert check["metrics"]["edac_new_errors"] == 6
    assert "the kernel reported a memory/machine-check error during the burn-in" in problems
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
    assert check["outcome"] == "skipped" and "DURATION=30m" in check["reasons"][-1]


DIMM = {"locator": "DIMM 0", "size_mib": 32768, "type": "DDR4", "speed_mts": 3200, "configured_speed_mts": 2400}


def test_installed_memory_against_the_profile():
    findings = Findings("memory")
    inventory = {"memory_kib": 32 * 2**20 - 500_000, "dimms": [DIMM]}
    _installed(inventory, MemorySettings(expected_gib=64, expected_dimms=2, min_speed_mts=3200), findings)
    assert findings.problems == [
        "the node shows 31.5 GiB of memory, the profile expects 64 GiB: a DIMM is missing or not detected (reseat it)",
        "dmidecode lists 1 populated DIMM slot(s) (DIMM 0 32 GiB DDR4 2400 MT/s), the profile expects 2: a DIMM is "
        "not detected (reseat it, check the slot)",
        "DIMM DIMM 0 runs at 2400 MT/s (rated 3200 MT/s), below the profile's minimum 3200 MT/s (check the BIOS "
        "memory settings/XMP)",
    ]
    ok = Findings("memory")
    _installed({"memory_kib": 63 * 2**20, "dimms": [DIMM, {**DIMM, "locator": "DIMM 1"}]},
               MemorySettings(expected_gib=64, expected_dimms=2, min_speed_mts=2400), ok)
    assert not ok.problems and ok.metrics["dimms"] == 2


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
