"""Idle power and C-states. Judge tests on recorded evidence: a busy node's figures are reported, not judged, and
the check is skipped with the reason ("not idle: 43% busy"), never failed for watts. End to end on trees the thermal
model drives: an idle node passes; a node kept out of its deep C-states fails naming the ASPM policy; a VM-like
tree without RAPL/cpuidle skips; the plot renders; on the lab over SSH a busy loop elsewhere on this machine does not
make the lab node busy (its model follows its own cgroup). lspci's ASPM state is read from every corpus file."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from corpus import corpus_path
from qualify.checks.idle_power import CpuidleState, IdleEvidence, judge
from qualify.findings import Findings
from qualify.lab import NodeSpec
from qualify.lab.thermal_model import limit_cstates, start_model, stop_model
from qualify.parsers.lspci import parse_lspci_vv
from qualify.parsers.proc_stat import busy_percent, parse_cpu_line
from qualify.profile import IdlePowerSettings
from qualify.telemetry import telemetry_from_records

# A local tree's load is this shared machine's (no cgroup of its own): it may be busy, so busy is not judged here
# and the passing node only has to reach its deepest state at all.
SHORT = """telemetry:
  interval: 0.5s
checks:
  idle_power:
    settle: 0s
    window: 4s
    interval: 0.5s
    max_package_w: 70
    max_busy_percent: 100
    min_deepest_residency: {residency}
"""


def idle_check(run_dir: Path) -> dict:
    [check] = [c for c in json.loads((run_dir / "verdict.json").read_text())["checks"] if c["name"] == "idle_power"]
    return check


@pytest.fixture
def modelled(workspace):
    trees = []

    def make(name: str, residency: float) -> Path:
        tree = workspace.local_node(name, NodeSpec(sensors=True), extra=SHORT.format(residency=residency))
        trees.append(tree)
        start_model(tree)
        return tree

    yield make
    for tree in trees:
        stop_model(tree)


def test_idle_node_passes_with_power_and_residency(workspace, modelled):
    modelled("idle", 0.001)
    proc = workspace.qualify("run", "idle", "--checks", "idle_power")
    run_dir = workspace.runs("idle")[0]
    check = idle_check(run_dir)
    assert proc.returncode == 0, (proc.stderr, check)
    metrics = check["metrics"]
    assert metrics["deepest_cstate"] == "C10" and metrics["deepest_cstate_residency_percent"] > 0.1
    assert 5 < metrics["idle_package_power_watts"] < 70
    assert set(metrics["cstate_residency_percent"]) == {"POLL", "C1E", "C6", "C8", "C10"}
    assert any(r.startswith("idle package power averaged") and "limit ≤ 70 W" in r for r in check["reasons"])
    assert "Idle window: package power" in (run_dir / "report.html").read_text()
    assert (run_dir / "samples/telemetry-idle_power.jsonl").is_file()


def test_node_kept_out_of_deep_cstates_fails_naming_aspm(workspace, modelled):
    tree = modelled("busy", 0.5)
    limit_cstates(tree, 1)  # idle time only reaches C1E, as behind a device that blocks package C-states
    (tree / "sys/module/pcie_aspm/parameters/policy").write_text("default [performance] powersave powersupersave\n")
    proc = workspace.qualify("run", "busy", "--checks", "idle_power")
    check = idle_check(workspace.runs("busy")[0])
    assert proc.returncode == 1, (proc.stderr, check)
    assert check["metrics"]["deepest_cstate_residency_percent"] == 0.0
    [problem] = check["problems"]
    assert problem.startswith("the CPUs' time in their deepest C-state C10 0.0% (average of 16 CPUs")
    assert "minimum 50.0%" in problem and "ASPM policy is 'performance'" in problem
    assert check["metrics"]["aspm_policy"] == "performance"


def test_vm_without_rapl_or_cpuidle_skips(workspace):
    workspace.local_node("vm")
    proc = workspace.qualify("run", "vm", "--checks", "idle_power")
    check = idle_check(workspace.runs("vm")[0])
    assert proc.returncode == 2 and check["outcome"] == "skipped"
    assert check["reasons"][-1].startswith("no RAPL package power under")


LSPCI_ASPM = {  # corpus file -> ASPM state of each device, in order
    "ivybridge-panther-point-root-ports-empty-slots-width-x0-rciep-speed-unknown-excerpt.txt":
        ["Disabled", None, None, None, None, "Disabled", "Disabled", "Disabled"],
    "marvell-88e8053-sky2-legacy-endpoint-devsta-correrr-uncorrerr-cesta-rxerr.txt": ["Disabled"],
    "nvme-pm983-x4-gen3-old-lspci-format.txt": ["Disabled"],
    "nvme-samsung-sm961-x4-gen3-ok-tabbed.txt": ["Disabled"],
    "nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt": ["Disabled"],
    "vmd-domain-10000-root-port-and-nvme-excerpt-linux-pci-2024.txt": None,
    "stats-collect-genoa0-rcec-and-gen5-x16-root-port-pciutils-3.13-new-aer-bits-excerpt.txt": [None, "Disabled"],
}


def test_every_lspci_corpus_file_has_an_aspm_expectation():
    assert {p.name for p in corpus_path("lspci").iterdir()} == set(LSPCI_ASPM)


@pytest.mark.parametrize("name", sorted(LSPCI_ASPM))
def test_lspci_aspm_state_of_every_corpus_file(name):
    states = [d.aspm for d in parse_lspci_vv(corpus_path("lspci", name).read_text())]
    expected = LSPCI_ASPM[name]
    assert states == expected if expected is not None else not any(states)  # excerpts without LnkCtl ASPM


def test_lspci_aspm_enabled_states():
    text = ("01:00.0 Ethernet controller: Intel Corporation 82599ES 10-Gigabit SFI/SFP+ (rev 01)\n"
            "\t\tLnkCtl:\tASPM L0s L1 Enabled; RCB 64 bytes, Disabled- CommClk+\n"
            "02:00.0 Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD Controller PM9A1\n"
            "\t\tLnkCtl:\tASPM L1 Enabled; RCB 64 bytes, Disabled- CommClk+\n"
            "00:1f.0 ISA bridge: Intel Corporation Device 7a83 (rev 11)\n")
    assert [d.aspm for d in parse_lspci_vv(text)] == ["L0s L1 Enabled", "L1 Enabled", None]


def evidence(busy_percent: float, watts: float, deepest_share: float) -> IdleEvidence:
    """A 10 s window on 2 CPUs (synthetic, in the shapes the check stores)."""
    records = [{"series": {"rapl:package-0": "W"}}] + [
        {"t": 100.0 + i, "rx": 100.0 + i, "v": {"rapl:package-0": watts}} for i in range(12)]
    ticks = 2 * 100 * 10  # USER_HZ x CPUs x seconds
    busy = round(ticks * busy_percent / 100)
    first = [CpuidleState(cpu, i, name, 0, False) for cpu in (0, 1) for i, name in enumerate(("POLL", "C1", "C6"))]
    last = [CpuidleState(s.cpu, s.index, s.name, round(10e6 * deepest_share) if s.name == "C6" else 0, False)
            for s in first]
    return IdleEvidence(telemetry=telemetry_from_records(records), start=100.0, end=110.0, first=first, last=last,
                        stat_start="cpu  1000 0 0 5000 0 0 0 0 0 0",
                        stat_end=f"cpu  {1000 + busy} 0 0 {5000 + ticks - busy} 0 0 0 0 0 0",
                        aspm_policy="[default] performance powersave powersupersave", lspci=None, turbostat=None)


def test_busy_node_reports_idle_figures_but_is_skipped_never_failed_for_watts():
    findings = Findings("idle_power")
    with pytest.raises(pytest.skip.Exception, match=r"not idle: 43% busy \(above checks.idle_power.max_busy_percent "
                                                    r"10%\) — idle power and C-state residency not judged"):
        judge(evidence(43.0, 60.0, 0.1), IdlePowerSettings(), findings)
    assert not findings.problems
    outcomes = {m.name: (m.value, m.outcome) for m in findings.measurements if not m.subject}
    assert outcomes["busy_percent"] == (43.0, "info")
    assert outcomes["idle_package_power_watts"] == (60.0, "info")  # 60 W > 25 W, reported, not judged
    assert outcomes["deepest_cstate_residency_percent"] == (10.0, "info")
    [part] = findings.not_qualified_parts
    assert part["reason"].startswith("not idle: 43% busy") and "max_busy_percent" in part["how"]


def test_idle_node_is_judged_on_watts_and_residency():
    findings = Findings("idle_power")
    judge(evidence(2.0, 30.0, 0.8), IdlePowerSettings(), findings)
    outcomes = {m.name: m.outcome for m in findings.measurements if not m.subject}
    assert outcomes == {"busy_percent": "info", "idle_package_power_watts": "failed",
                        "deepest_cstate_residency_percent": "passed"}
    assert findings.problems[0].startswith("idle package power averaged 30 W over 10 s (peak 30.0 W) (limit ≤ 25 W)")


def test_psys_is_not_added_to_the_package():
    """Skylake+ client parts have a top-level intel-rapl:1 zone named psys (the whole platform, the package
    included): the idle package power is package-0's, not package-0 + psys."""
    base = evidence(2.0, 12.0, 0.8)
    records = [{"series": {"rapl:package-0": "W", "rapl:psys": "W", "rapl:package-0/core": "W"}}] + [
        {"t": 100.0 + i, "rx": 100.0 + i, "v": {"rapl:package-0": 12.0, "rapl:psys": 19.5, "rapl:package-0/core": 4.0}}
        for i in range(12)]
    findings = Findings("idle_power")
    judge(replace(base, telemetry=telemetry_from_records(records)), IdlePowerSettings(), findings)
    assert findings.metrics["idle_package_power_watts"] == 12.0


def test_proc_stat_busy_share():
    before = parse_cpu_line("cpu  74608 2520 24433 1117073 6176 4054 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    after = parse_cpu_line("cpu  74708 2520 24533 1117273 6176 4054 0 0 0 0\n")
    assert busy_percent(before, after) == 50.0 and busy_percent(after, after) is None


@pytest.fixture
def busy_loop():
    """One CPU of this machine kept busy by a process in the root namespace, stopped by its pid."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc
    proc.kill()
    proc.wait()


def test_lab_node_stays_idle_while_this_machine_is_busy(workspace, lab, busy_loop):
    import shutil

    from helpers import REPO

    shutil.rmtree(workspace.profiles)
    shutil.copytree(REPO / "profiles", workspace.profiles)
    workspace.lab = lab
    node = lab.nodes[0]
    (workspace.profiles / "idle.yaml").write_text("extends: base/lab.yaml\ntelemetry: {interval: 0.5s}\n"
                                                  "checks:\n  idle_power: {settle: 1s, window: 5s, interval: 1s}\n")
    proc = workspace.qualify("run", node, "--profile", str(workspace.profiles / "idle.yaml"), "--checks", "idle_power")
    check = idle_check(workspace.runs(node)[0])
    assert proc.returncode == 0, (proc.stderr, check["reasons"])
    assert check["outcome"] == "passed" and check["metrics"]["busy_percent"] < 10
