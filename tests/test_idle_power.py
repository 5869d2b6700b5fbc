"""Idle power and C-states on lab trees the thermal model drives from this machine's real load: an idle node
passes; a node kept out of its deep C-states fails with the reason naming the ASPM policy; a VM-like tree
without RAPL/cpuidle skips; the plot renders; lspci's ASPM state is read from every corpus file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import corpus_path

from qualify.lab import NodeSpec
from qualify.lab.thermal_model import limit_cstates, start_model, stop_model
from qualify.parsers.lspci import parse_lspci_vv

# The shared machine may be busy: the passing node only has to reach its deepest state at all.
SHORT = """telemetry:
  interval: 0.5s
checks:
  idle_power:
    settle: 0s
    window: 4s
    interval: 0.5s
    max_package_w: 70
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
    modelled("idle", 0.01)
    proc = workspace.qualify("run", "idle", "--checks", "idle_power")
    run_dir = workspace.runs("idle")[0]
    check = idle_check(run_dir)
    assert proc.returncode == 0, (proc.stderr, check)
    metrics = check["metrics"]
    assert metrics["deepest_cstate"] == "C10" and metrics["deepest_residency"] > 0.01
    assert 5 < metrics["idle_package_power_w"] < 70
    assert set(metrics["cstate_residency"]) == {"POLL", "C1E", "C6", "C8", "C10"}
    assert any(r.startswith("idle package power averaged") and "limit 70 W" in r for r in check["reasons"])
    assert "Idle window: package power and C-state residency" in (run_dir / "report.html").read_text()


def test_node_kept_out_of_deep_cstates_fails_naming_aspm(workspace, modelled):
    tree = modelled("busy", 0.5)
    limit_cstates(tree, 1)  # idle time only reaches C1E, as behind a device that blocks package C-states
    (tree / "sys/module/pcie_aspm/parameters/policy").write_text("default [performance] powersave powersupersave\n")
    proc = workspace.qualify("run", "busy", "--checks", "idle_power")
    check = idle_check(workspace.runs("busy")[0])
    assert proc.returncode == 1, (proc.stderr, check)
    assert check["metrics"]["deepest_residency"] == 0.0
    [problem] = check["problems"]
    assert problem.startswith("the CPUs spent 0.0% of the idle window in their deepest C-state C10")
    assert "minimum 50%" in problem and "ASPM policy is 'performance'" in problem
    assert check["metrics"]["aspm_policy"] == "performance"


def test_vm_without_rapl_or_cpuidle_skips(workspace):
    workspace.local_node("vm")
    proc = workspace.qualify("run", "vm", "--checks", "idle_power")
    check = idle_check(workspace.runs("vm")[0])
    assert proc.returncode == 2 and check["outcome"] == "skipped"
    assert check["reasons"][-1].startswith("no RAPL package power under")


@pytest.mark.parametrize("name", sorted(p.name for p in corpus_path("lspci").iterdir()))
def test_lspci_aspm_state_of_every_corpus_file(name):
    assert [d.aspm for d in parse_lspci_vv(corpus_path("lspci", name).read_text())] == ["Disabled"]


def test_lspci_aspm_enabled_states():
    text = ("01:00.0 Ethernet controller: Intel Corporation 82599ES 10-Gigabit SFI/SFP+ (rev 01)\n"
            "\t\tLnkCtl:\tASPM L0s L1 Enabled; RCB 64 bytes, Disabled- CommClk+\n"
            "02:00.0 Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD Controller PM9A1\n"
            "\t\tLnkCtl:\tASPM L1 Enabled; RCB 64 bytes, Disabled- CommClk+\n"
            "00:1f.0 ISA bridge: Intel Corporation Device 7a83 (rev 11)\n")
    assert [d.aspm for d in parse_lspci_vv(text)] == ["L0s L1 Enabled", "L1 Enabled", None]


def test_thermal_soak_reports_idle_and_load_power():
    from qualify.checks.thermal import Phases, assess
    from qualify.findings import Findings
    from qualify.profile import ThermalSettings
    from qualify.telemetry import telemetry_from_records

    units = {"temp:coretemp/Package id 0": "C", "rapl:package-0": "W"}
    records = [{"series": units}] + [
        {"t": 1000.0 + i, "rx": 1000.05 + i,
         "v": {"temp:coretemp/Package id 0": 50.0, "rapl:package-0": 8.0 if i < 10 else 45.0}} for i in range(40)]
    findings = Findings("thermal")
    assess(telemetry_from_records(records), [], Phases(10.0, 40.0), ThermalSettings(), findings)
    assert findings.metrics["idle_power_w"] == 8.0 and findings.metrics["load_power_w"] == 45.0
    assert "average package power idle before the load 8.0 W" in findings.reasons
