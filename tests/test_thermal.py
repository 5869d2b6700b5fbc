"""The thermal soak, end to end: a prepared tree driven by the thermal model under real stress-ng load.
The 19 mm cooler with the lid closed fails (throttling, with the time); the tall cooler passes; the
comparison shows both; a VM skips; plots render. Durations are seconds; the model runs faster to match."""

import json
import shutil
from pathlib import Path

import pytest

from helpers import REPO
from qualify.lab import NodeSpec
from qualify.lab.thermal_model import set_cooler, start_model, stop_model
from qualify.telemetry import Telemetry, telemetry_from_records

SPEEDUP = 100.0   # a 12 s soak is 20 min of heatsink time
SHORT = """duration: 12s
telemetry:
  interval: 0.5s
checks:
  thermal:
    slice: 4s
    idle_lead_in: 1s
    cool_down: 1s
    max_perf_drop_percent: 90  # the shared test machine's own throughput varies; judged on synthetic data below
"""


def verdict_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "verdict.json").read_text())


@pytest.fixture
def modelled(workspace):
    """A local node whose tree the thermal model drives; the model is stopped afterwards."""
    trees = []

    def make(name: str, cooler: str) -> Path:
        tree = workspace.local_node(name, NodeSpec(sensors=True), extra=SHORT)
        trees.append(tree)
        start_model(tree, cooler, SPEEDUP)
        return tree

    yield make
    for tree in trees:
        stop_model(tree)


def thermal_check(run_dir: Path) -> dict:
    [check] = [c for c in verdict_of(run_dir)["checks"] if c["name"] == "thermal"]
    return check


def test_19mm_lid_closed_fails_tall_cooler_passes_and_compare_shows_both(workspace, modelled):
    modelled("hot", "19mm-lid-closed")
    modelled("cool", "tall-lid-open")
    hot = workspace.qualify("run", "hot", "--checks", "thermal", "--label", "cooler=19mm,lid=closed")
    cool = workspace.qualify("run", "cool", "--checks", "thermal", "--label", "cooler=tall,lid=open")
    assert hot.returncode == 1, hot.stderr
    assert cool.returncode == 0, cool.stderr

    failed = thermal_check(workspace.runs("hot")[0])
    assert failed["outcome"] == "failed"
    throttling = [p for p in failed["problems"] if p.startswith("thermal throttling:")]
    assert throttling and "after the load started" in throttling[0] and "limit 2%" in throttling[0]
    metrics = failed["metrics"]
    assert metrics["throttle_events"] > 0 and metrics["time_to_throttle_s"] is not None
    assert metrics["max_package_temp_c"] >= 99
    assert any("package temperature peaked at" in p and "limit 95 °C" in p for p in failed["problems"])

    passed = thermal_check(workspace.runs("cool")[0])
    assert passed["outcome"] == "passed", passed["reasons"]
    assert passed["metrics"]["throttle_events"] == 0 and passed["metrics"]["max_package_temp_c"] < 70
    assert passed["metrics"]["sustained_clock_mhz"] > 2000
    assert any(r.startswith("stress-ng throughput went from") for r in passed["reasons"])
    assert any(r.startswith("average package power under load") for r in passed["reasons"])

    for node in ("hot", "cool"):  # the report embeds the soak plot
        assert "Thermal soak: temperatures" in (workspace.runs(node)[0] / "report.html").read_text()

    out = workspace.root / "compare.html"
    proc = workspace.qualify("compare", str(workspace.runs("hot")[0]), str(workspace.runs("cool")[0]),
                             "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert "cooler=19mm, lid=closed" in html and "cooler=tall, lid=open" in html
    assert html.count("data:image/png;base64,") == 1 and ">failed<" in html and ">passed<" in html


def test_vm_without_sensors_is_skipped_never_passed(workspace):
    workspace.local_node("vm", NodeSpec(flags=("fpu", "hypervisor")), extra=SHORT)
    proc = workspace.qualify("run", "vm", "--checks", "thermal")
    assert proc.returncode == 2, proc.stderr  # nothing passed: incomplete
    check = thermal_check(workspace.runs("vm")[0])
    assert check["outcome"] == "skipped"
    assert check["reasons"][0].startswith("no temperature sensors (virtual machine?)")


def test_compare_refuses_a_directory_that_is_not_a_run(workspace):
    proc = workspace.qualify("compare", str(workspace.root))
    assert proc.returncode == 2
    assert "is not a run directory" in proc.stderr and "Traceback" not in proc.stderr


def test_stress_ng_killed_early_is_an_error_with_its_exit_status(workspace, modelled, monkeypatch):
    tree = modelled("killed", "tall-lid-open")
    fake = workspace.root / "bin"
    fake.mkdir()
    (fake / "stress-ng").write_text("#!/bin/sh\necho 'stress-ng: info:  [1] dispatching hogs: 2 cpu' >&2\n"
                                    "kill -KILL $$\n")
    (fake / "stress-ng").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{__import__('os').environ['PATH']}")
    proc = workspace.qualify("run", "killed", "--checks", "thermal")
    assert proc.returncode == 2, proc.stderr
    check = thermal_check(workspace.runs("killed")[0])
    assert check["outcome"] == "error"
    assert "stress-ng ended early with exit status" in check["reasons"][0]
    assert "(killed by SIGKILL) after 0 s of a 4 s slice" in check["reasons"][0]
    assert tree.is_dir()


def test_lab_node_over_ssh_fails_with_the_19mm_cooler(workspace, lab):
    shutil.rmtree(workspace.profiles)
    shutil.copytree(REPO / "profiles", workspace.profiles)
    workspace.lab = lab
    (workspace.profiles / "short.yaml").write_text("extends: pve3.yaml\n" + SHORT)
    node_dir = lab.node_dir("pve3")
    set_cooler(node_dir, "19mm-lid-closed", SPEEDUP)
    try:
        proc = workspace.qualify("run", "pve3", "--profile", str(workspace.profiles / "short.yaml"),
                                 "--checks", "thermal")
    finally:
        set_cooler(node_dir, "tall-lid-open")
    assert proc.returncode == 1, proc.stderr
    check = thermal_check(workspace.runs("pve3")[0])
    assert any(p.startswith("thermal throttling:") for p in check["problems"])
    assert (workspace.runs("pve3")[0] / "samples/telemetry.jsonl").stat().st_size > 0


def synthetic(seconds: int, package: list[float], fan: list[float]) -> Telemetry:
    units = {"temp:coretemp/Package id 0": "C", "fan:nct6798/fan1": "rpm", "fan:nct6798/fan3": "rpm",
             "freq:cpu0": "MHz"}
    records = [{"series": units}] + [
        {"t": 1000.0 + i, "rx": 1000.05 + i,
         "v": {"temp:coretemp/Package id 0": package[i], "fan:nct6798/fan1": fan[i], "fan:nct6798/fan3": 0,
               "freq:cpu0": 3000}} for i in range(seconds)]
    return telemetry_from_records(records)


def test_drift_and_a_fan_that_stops_while_hot_fail_with_numbers():
    from qualify.checks.thermal import Phases, assess
    from qualify.findings import Findings
    from qualify.profile import ThermalSettings

    hot = [50.0] * 10 + [80.0] * 50
    fan = [1200.0] * 40 + [0.0] * 20
    findings = Findings("thermal")
    slices = [{"bogo_ops_per_s": 1000.0}, {"bogo_ops_per_s": 950.0}, {"bogo_ops_per_s": 800.0}]
    assess(synthetic(60, hot, fan), slices, Phases(10.0, 60.0), ThermalSettings(), findings)
    assert ("stress-ng throughput went from 1000 to 800 bogo ops/s from the first to the last of 3 slices "
            "(-20.0%; a drop of more than 10% fails)") in findings.problems
    assert ("fan:nct6798/fan1 stopped (0 rpm) 40 s into the run while the package was at 80.0 °C "
            "(above 60 °C)") in findings.problems
    assert "fans that never spun (not connected?): fan:nct6798/fan3" in findings.reasons
    assert findings.metrics["perf_drift_percent"] == -20.0
    assert "the node exposes no thermal_throttle counters (not an Intel CPU?): throttling is judged from clocks only" \
        in findings.reasons


def test_a_soak_still_heating_up_is_no_steady_state():
    from qualify.checks.thermal import Phases, assess
    from qualify.findings import Findings
    from qualify.profile import ThermalSettings

    rising = [40.0 + i * 0.5 for i in range(120)]  # +30 °C/min to the end
    findings = Findings("thermal")
    assess(synthetic(120, rising, [900.0] * 120), [], Phases(0.0, 120.0), ThermalSettings(require_steady_state=True),
           findings)
    assert any(p.startswith("no steady state: the package temperature still moved +30.00 °C/min")
               for p in findings.problems)
    assert findings.metrics["max_package_temp_c"] == 99.5
    assert any(r.startswith("package temperature peaked at 99.5 °C") for r in findings.problems)
