"""cpu_correctness: known-answer work pinned to each CPU for real here, and a CPU that computes wrongly."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from qualify.checks.cpu_correctness import Attempt, CpuEvidence, Evidence, judge
from qualify.findings import Findings
from qualify.parsers.cpu_topology import LogicalCpu, parse_cpulist, topology
from qualify.parsers.ps import parse_ps_psr
from qualify.profile import CpuCorrectnessSettings

needs_stress = pytest.mark.skipif(shutil.which("stress-ng") is None, reason="stress-ng is not installed")
SHORT = "checks:\n  cpu_correctness:\n    per_cpu: 2s\n    all_cpus: 2s\n    retests: 1\n"


def test_cpulist_and_hybrid_topology():
    assert parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    cpus = topology("0-3", {"cpu0/topology/core_id": "0", "cpu1/topology/core_id": "0",
                            "cpu2/topology/core_id": "8", "cpu3/topology/core_id": "9"},
                    p_cores="0-1", e_cores="2-3")
    assert [c.label for c in cpus] == ["CPU 0 (core 0, P-core)", "CPU 1 (core 0, P-core)",
                                       "CPU 2 (core 8, E-core)", "CPU 3 (core 9, E-core)"]


def test_ps_psr():
    rows = parse_ps_psr("  412   3 stress-ng --cpu 1 --taskset 3\n  413   3 stress-ng-cpu [run]\n 1 0 /sbin/init\n")
    assert [(r.pid, r.psr) for r in rows if r.args.startswith("stress-ng")] == [(412, 3), (413, 3)]


def _evidence(wrong_cpu: int | None, reproduced: bool) -> Evidence:
    per_cpu = []
    for n in range(4):
        bad = n == wrong_cpu
        first = Attempt(2 if bad else 0, ("cpu: fft: verification failed",) if bad else (), (n,), 2.0)
        retests = [Attempt(2 if reproduced else 0, ("cpu: fft: verification failed",) if reproduced else (), (n,),
                           2.0)] if bad else []
        per_cpu.append(CpuEvidence(LogicalCpu(n, n // 2, 0, "P-core" if n < 2 else "E-core"), first, retests))
    return Evidence(["cpu", "hash"], [], per_cpu, Attempt(0, (), (0, 1, 2, 3), 2.0))


def test_a_wrong_result_names_the_cpu_its_core_and_type_and_whether_it_reproduced():
    findings = Findings("cpu_correctness")
    judge(_evidence(2, reproduced=True), CpuCorrectnessSettings(retests=1), findings)
    assert len(findings.problems) == 1
    problem = findings.problems[0]
    assert problem.startswith("CPU 2 (core 1, E-core): known-answer runs with a wrong result 2 runs")
    assert "cpu: fft: verification failed; reproducible: failed again in 1 of 1 retests" in problem


def test_a_one_off_is_told_apart():
    findings = Findings("cpu_correctness")
    judge(_evidence(0, reproduced=False), CpuCorrectnessSettings(retests=1), findings)
    assert "one-off (not reproduced)" in findings.problems[0]


def test_clean_cpus_pass():
    findings = Findings("cpu_correctness")
    judge(_evidence(None, False), CpuCorrectnessSettings(), findings)
    assert findings.problems == []
    assert {m.subject for m in findings.measurements if m.name == "verification_failures_count"} == {
        "CPU 0 (core 0, P-core)", "CPU 1 (core 0, P-core)", "CPU 2 (core 1, E-core)", "CPU 3 (core 1, E-core)"}


@needs_stress
def test_every_cpu_of_this_machine_runs_verified_work_pinned(workspace):
    workspace.local_node("n1", extra=SHORT)
    # this machine's own CPUs: the prepared tree's topology is the lab's; read the real one
    profile = workspace.profiles / "n1.yaml"
    profile.write_text("host: localhost\n" + SHORT)
    proc = workspace.qualify("run", "n1", "--checks", "cpu_correctness", timeout=240)
    verdict = json.loads((workspace.runs("n1")[-1] / "verdict.json").read_text())
    check = verdict["checks"][0]
    assert proc.returncode == 0, (proc.stderr, check)
    subjects = [m["subject"] for m in check["measurements"] if m["name"] == "verification_failures_count"]
    assert len(subjects) == os.cpu_count()
    pinned = next(m for m in check["measurements"] if m["name"] == "pinning_confirmed_cpus_count")
    assert pinned["value"] == os.cpu_count(), check["reasons"]


@needs_stress
def test_a_stand_in_that_computes_wrongly_on_one_cpu_fails_naming_it(workspace, tmp_path):
    """A stand-in stress-ng (synthetic): the real one, except pinned to CPU 1 it reports a verification failure."""
    real = shutil.which("stress-ng")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "stress-ng"
    fake.write_text(f"""#!/bin/bash
args=("$@")
for ((i = 0; i < ${{#args[@]}}; i++)); do
  if [ "${{args[i]}}" = --taskset ] && [ "${{args[i+1]}}" = 1 ]; then
    "{real}" "$@" >/dev/null 2>&1
    echo "stress-ng: fail:  [4242] cpu: fft: verification failed on iteration 17" >&2
    exit 2
  fi
done
exec "{real}" "$@"
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (workspace.profiles / "n1.yaml").write_text("host: localhost\n" + SHORT)
    env = workspace.env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "qualify", "run", "n1", "--checks", "cpu_correctness"],
                          capture_output=True, text=True, env=env, cwd=workspace.root, timeout=240)
    verdict = json.loads((workspace.runs("n1")[-1] / "verdict.json").read_text())
    check = verdict["checks"][0]
    assert proc.returncode == 1 and check["outcome"] == "failed", proc.stderr
    assert [p.split(":")[0] for p in check["problems"]] == [check["problems"][0].split(":")[0]]
    assert check["problems"][0].startswith("CPU 1") and "reproducible" in check["problems"][0]
