"""The thermal soak. Judge tests on recorded telemetry (milliseconds): drift and a stopped fan fail with their
numbers, a soak still heating is no steady state, an AMD node whose clock falls far below its nominal while hot
fails naming the clock and the nominal's source, implausible readings are dropped with a note. The nominal clock
is read from prepared sysfs trees in the kernel's layout (amd-pstate with CPPC, acpi-cpufreq, intel_pstate).
End to end (a tree driven by the thermal model under real stress-ng load): the 19 mm cooler with the lid closed
fails, the tall one passes, compare shows both; an AMD node with the 19 mm cooler fails on its clock; a VM skips;
a killed stress-ng is an error; a lab node over SSH fails with the 19 mm cooler."""

import json
import os
import shutil
from pathlib import Path

import pytest

from corpus import corpus_path
from helpers import REPO
from qualify.checks.thermal import Phases, assess
from qualify.findings import Findings
from qualify.lab import NodeSpec, build_node_tree
from qualify.lab.thermal_model import amd_spec, set_cooler, start_model, stop_model, write_hwmon
from qualify.node import connect
from qualify.parsers.sensors import parse_sensors_json
from qualify.profile import Profile, ThermalSettings
from qualify.telemetry import Telemetry, telemetry_from_records
from qualify.telemetry.rating import NOMINAL_FILES, NominalClock, nominal_clock
from qualify.telemetry.series import package_sensors

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


def thermal_check(run_dir: Path) -> dict:
    [check] = [c for c in verdict_of(run_dir)["checks"] if c["name"] == "thermal"]
    return check


def measurement(check: dict, name: str, subject: str | None = None) -> dict:
    [found] = [m for m in check["measurements"] if m["name"] == name and m.get("subject") == subject]
    return found


# ---------------------------------------------------------------- the nominal clock from real layouts


def nominal_of(spec: NodeSpec, tmp_path: Path) -> NominalClock | None:
    """What the check reads: NOMINAL_FILES through a local node's read_glob, over the prepared tree."""
    build_node_tree(tmp_path, spec)
    node = connect("local", Profile(host="localhost", paths={"sysfs": str(tmp_path / "sys")}))
    return nominal_clock(node.read_glob(node.sys_path("devices/system/cpu"), NOMINAL_FILES))


def test_amd_pstate_nominal_comes_from_cppc(tmp_path):
    nominal = nominal_of(amd_spec("amd-pstate-epp"), tmp_path)
    assert nominal is not None and nominal.source == "amd-pstate-epp ACPI CPPC nominal_freq"
    assert nominal.mhz == {cpu: 3800.0 for cpu in range(12)}  # not the 5.17 GHz boost of cpuinfo_max_freq


def test_acpi_cpufreq_with_boost_on_takes_the_p0_state_not_the_boost_clock(tmp_path):
    nominal = nominal_of(amd_spec("acpi-cpufreq"), tmp_path)
    assert nominal is not None and nominal.mean_mhz == 3800.0
    assert nominal.source == "acpi-cpufreq P0 state (highest of scaling_available_frequencies)"


def test_acpi_cpufreq_with_boost_off_takes_cpuinfo_max_freq(tmp_path):
    build_node_tree(tmp_path, amd_spec("acpi-cpufreq"))
    (tmp_path / "sys/devices/system/cpu/cpufreq/boost").write_text("0\n")
    for policy in (tmp_path / "sys/devices/system/cpu/cpufreq").glob("policy*"):
        (policy / "cpuinfo_max_freq").write_text("3800000\n")  # boost off: the kernel drops the boost clock
    node = connect("local", Profile(host="localhost", paths={"sysfs": str(tmp_path / "sys")}))
    nominal = nominal_clock(node.read_glob(node.sys_path("devices/system/cpu"), NOMINAL_FILES))
    assert nominal is not None and nominal.source == "acpi-cpufreq cpuinfo_max_freq (boost off)"
    assert nominal.mean_mhz == 3800.0


def test_intel_hybrid_nominal_is_base_frequency_per_core_type(tmp_path):
    nominal = nominal_of(NodeSpec(sensors=True), tmp_path)
    assert nominal is not None and nominal.source == "intel_pstate base_frequency"
    assert nominal.mhz[0] == 2300.0 and nominal.mhz[15] == 1700.0  # P-core threads first, then E-cores


def test_without_a_cpufreq_figure_the_rated_clock_of_the_model_name_is_the_nominal():
    # intel_pstate without HWP (Broadwell Xeons) has no base_frequency; Intel's model name carries the rated clock
    files = {"cpu0/cpufreq/scaling_driver": "intel_pstate", "cpu1/cpufreq/scaling_driver": "intel_pstate"}
    name = "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
    assert nominal_clock(files, name) == NominalClock({0: 2400.0, 1: 2400.0}, f"the model name ('{name}')")
    assert nominal_clock(files, "AMD Ryzen 5 7600 6-Core Processor") is None  # AMD names carry no clock


def test_intel_acpi_cpufreq_skips_the_turbo_entry_and_broken_cppc_is_ignored():
    # synthetic, in the kernel's file shapes: Intel lists turbo as base + 1 MHz; CPPC nominal 0 = BIOS left it out
    files = {"cpu0/cpufreq/scaling_driver": "acpi-cpufreq", "cpu0/acpi_cppc/nominal_freq": "0",
             "cpu0/cpufreq/scaling_available_frequencies": "3401000 3400000 3200000 2800000 ",
             "cpu0/cpufreq/cpuinfo_max_freq": "3401000", "cpufreq/boost": "1"}
    assert nominal_clock(files) == NominalClock({0: 3400.0}, "acpi-cpufreq P0 state (highest of "
                                                             "scaling_available_frequencies)")
    assert nominal_clock({"cpu0/cpufreq/scaling_driver": "acpi-cpufreq"}) is None


# ---------------------------------------------------------------- judging recorded telemetry


def synthetic(seconds: int, package: list[float], fan: list[float], freq: float | list[float] = 3000.0,
              sensor: str = "temp:coretemp/Package id 0", extra: dict | None = None) -> Telemetry:
    """Telemetry records in the stored shape (synthetic values)."""
    units = {sensor: "C", "fan:nct6798/fan1": "rpm", "fan:nct6798/fan3": "rpm", "freq:cpu0": "MHz",
             **{k: u for k, (u, _) in (extra or {}).items()}}
    freqs = freq if isinstance(freq, list) else [freq] * seconds
    records = [{"series": units, "power_limits": {"rapl:package-0": 45.0}}] + [
        {"t": 1000.0 + i, "rx": 1000.05 + i,
         "v": {sensor: package[i], "fan:nct6798/fan1": fan[i], "fan:nct6798/fan3": 0, "freq:cpu0": freqs[i],
               **{k: values[i] for k, (_, values) in (extra or {}).items()}}} for i in range(seconds)]
    return telemetry_from_records(records)


def test_drift_and_a_fan_that_stops_while_hot_fail_with_numbers():
    hot = [50.0] * 10 + [80.0] * 50
    fan = [1200.0] * 40 + [0.0] * 20
    findings = Findings("thermal")
    slices = [{"bogo_ops_per_s": 1000.0}, {"bogo_ops_per_s": 950.0}, {"bogo_ops_per_s": 800.0}]
    assess(synthetic(60, hot, fan), slices, Phases(10.0, 60.0), ThermalSettings(), findings)
    by_name = {(m.name, m.subject): m for m in findings.measurements}
    drift = by_name[("performance_change_percent", None)]
    assert drift.outcome == "failed" and drift.value == -20.0 and drift.low == -10.0
    assert drift.sentence.startswith("stress-ng throughput change -20.0% from 1000 to 800 bogo ops/s, first to last "
                                     "of 3 slices (minimum -10.0%)")
    fan1 = by_name[("fan_minimum_rpm", "fan:nct6798/fan1")]
    assert fan1.outcome == "failed" and fan1.value == 0 and fan1.unit == "rpm"
    assert "stopped 40 s into the run at 80.0 °C" in fan1.sentence
    assert "fans that never spun (not connected?): fan:nct6798/fan3" in findings.reasons
    assert any(r.startswith("the node exposes no thermal_throttle counters") for r in findings.reasons)


def test_a_soak_still_heating_up_is_no_steady_state():
    rising = [40.0 + i * 0.5 for i in range(120)]  # +30 °C/min to the end
    for required, outcome in ((True, "failed"), (False, "warning")):
        findings = Findings("thermal")
        assess(synthetic(120, rising, [900.0] * 120), [], Phases(0.0, 120.0),
               ThermalSettings(require_steady_state=required), findings)
        slope = next(m for m in findings.measurements if m.name == "steady_slope_celsius_per_minute")
        assert slope.outcome == outcome and slope.value == 30.0 and slope.unit == "°C/min"
        assert "no steady state" in slope.sentence
        peak = next(m for m in findings.measurements if m.name == "max_package_temperature_celsius")
        assert peak.value == 99.5 and peak.outcome == "failed" and peak.high == 95.0
        assert peak.sentence.startswith("package temperature peaked at 99.5°C (119 s into the run) (limit ≤ 95°C)")


AMD = NominalClock({0: 3800.0}, "amd-pstate-epp ACPI CPPC nominal_freq")


def test_amd_node_whose_clock_falls_far_below_nominal_while_hot_fails_naming_both():
    # synthetic: k10temp Tctl at its 95 °C limit, all-core clock sagging to 1300 MHz; no throttle counters at all
    seconds = 60
    tctl = [45.0] * 10 + [95.0] * 50
    clock = [800.0] * 10 + [4400.0] * 10 + [1300.0] * 40
    findings = Findings("thermal")
    assess(synthetic(seconds, tctl, [1500.0] * seconds, clock, sensor="temp:k10temp/Tctl"), [], Phases(10.0, 60.0),
           ThermalSettings(max_package_temp_c=96), findings, nominal=AMD)
    share = next(m for m in findings.measurements if m.name == "sustained_clock_percent_of_nominal")
    assert share.outcome == "failed" and share.value == 34.2 and share.low == 90.0
    assert share.sentence == ("sustained all-core clock against the nominal clock 34.2% (1300 MHz of the nominal "
                              "3800 MHz from amd-pstate-epp ACPI CPPC nominal_freq; median of 1 CPUs over the last 25% "
                              "of the load) (minimum 90.0%) — the CPU does not hold its rated clock under load while "
                              "the package averaged 95 °C: thermal throttling")
    assert share.sentence in findings.problems
    first = next(m for m in findings.measurements if m.name == "time_to_first_throttle_seconds")
    assert first.value == 10.0 and "below 90% of the nominal clock" in first.sentence
    below = next(m for m in findings.measurements if m.name == "clock_below_nominal_time_percent")
    assert below.value == 80.0  # 40 of the 50 load samples
    assert findings.metrics["nominal_clock_mhz"] == 3800


def test_healthy_amd_node_passes_and_a_node_without_a_nominal_clock_is_not_qualified():
    tctl = [45.0] * 10 + [80.0] * 50
    clock = [800.0] * 10 + [4400.0] * 50
    telemetry = synthetic(60, tctl, [1500.0] * 60, clock, sensor="temp:k10temp/Tctl")
    findings = Findings("thermal")
    assess(telemetry, [], Phases(10.0, 60.0), ThermalSettings(), findings, nominal=AMD)
    assert not findings.problems and not findings.not_qualified_parts, findings.reasons
    share = next(m for m in findings.measurements if m.name == "sustained_clock_percent_of_nominal")
    assert share.outcome == "passed" and share.value == pytest.approx(115.8)
    unknown = Findings("thermal")
    assess(telemetry, [], Phases(10.0, 60.0), ThermalSettings(min_sustained_clock_mhz=4500), unknown)
    outcomes = {m.name: m.outcome for m in unknown.measurements}
    assert outcomes["sustained_clock_percent_of_nominal"] == "unknown"  # said, listed as not qualified
    assert outcomes["sustained_all_core_clock_mhz"] == "failed"         # the optional absolute floor
    assert unknown.not_qualified_parts


def test_implausible_readings_are_dropped_with_a_note():
    # synthetic glitches: a k10temp read of 255.5 °C and -273 °C, a RAPL delta of 5 kW against a 45 W limit
    tctl = [50.0] * 30
    tctl[12], tctl[20] = 255.5, -273.0
    power = [30.0] * 30
    power[15] = 5000.0
    findings = Findings("thermal")
    telemetry = synthetic(30, tctl, [900.0] * 30, sensor="temp:k10temp/Tctl",
                          extra={"rapl:package-0": ("W", power)})
    assess(telemetry, [], Phases(5.0, 30.0), ThermalSettings(), findings)
    assert ("dropped 3 implausible telemetry readings: temp:k10temp/Tctl 2 (outside -40..150 °C), rapl:package-0 1 "
            "(above 2x its 45 W power limit)") in findings.reasons
    assert findings.metrics["max_package_temperature_celsius"] == 50.0
    assert findings.metrics["load_package_power_watts"] == 30.0


def test_thermal_soak_reports_idle_and_load_power():
    units = {"temp:coretemp/Package id 0": "C", "rapl:package-0": "W"}
    records = [{"series": units}] + [
        {"t": 1000.0 + i, "rx": 1000.05 + i,
         "v": {"temp:coretemp/Package id 0": 50.0, "rapl:package-0": 8.0 if i < 10 else 45.0}} for i in range(40)]
    findings = Findings("thermal")
    assess(telemetry_from_records(records), [], Phases(10.0, 40.0), ThermalSettings(), findings)
    assert findings.metrics["idle_package_power_watts"] == 8.0 and findings.metrics["load_package_power_watts"] == 45.0
    assert "average package power idle before the load 8 W" in findings.reasons


# ---------------------------------------------------------------- end to end


@pytest.fixture
def modelled(workspace):
    """A local node whose tree the thermal model drives; the model is stopped afterwards."""
    trees = []

    def make(name: str, cooler: str, spec: NodeSpec | None = None) -> Path:
        tree = workspace.local_node(name, spec or NodeSpec(sensors=True), extra=SHORT)
        trees.append(tree)
        start_model(tree, cooler, SPEEDUP)
        return tree

    yield make
    for tree in trees:
        stop_model(tree)


def test_19mm_lid_closed_fails_tall_cooler_passes_and_compare_shows_both(workspace, modelled):
    modelled("hot", "19mm-lid-closed")
    modelled("cool", "tall-lid-open")
    hot = workspace.qualify("run", "hot", "--checks", "thermal", "--label", "cooler=19mm,lid=closed")
    cool = workspace.qualify("run", "cool", "--checks", "thermal", "--label", "cooler=tall,lid=open")
    assert hot.returncode == 1, hot.stderr
    assert cool.returncode == 0, cool.stderr

    failed = thermal_check(workspace.runs("hot")[0])
    assert failed["outcome"] == "failed"
    throttled = measurement(failed, "throttled_time_percent")
    assert throttled["outcome"] == "failed" and throttled["high"] == 2.0
    assert measurement(failed, "throttle_events_total")["value"] > 0
    assert measurement(failed, "time_to_first_throttle_seconds")["value"] is not None
    peak = measurement(failed, "max_package_temperature_celsius")
    assert peak["value"] >= 99 and peak["outcome"] == "failed" and "limit ≤ 95°C" in peak["sentence"]

    passed = thermal_check(workspace.runs("cool")[0])
    assert passed["outcome"] == "passed", passed["reasons"]
    assert measurement(passed, "throttle_events_total")["value"] == 0
    assert measurement(passed, "max_package_temperature_celsius")["value"] < 70
    share = measurement(passed, "sustained_clock_percent_of_nominal")
    assert share["outcome"] == "passed" and "intel_pstate base_frequency" in share["sentence"]
    # two slices or more give a drift figure (a machine this busy may stretch the first slice over the duration)
    assert any(m["name"] == "performance_change_percent" for m in passed["measurements"]) or \
        any(r.startswith("performance drift unknown") for r in passed["reasons"])
    assert measurement(passed, "load_package_power_watts")["value"] > 0

    for node in ("hot", "cool"):  # the report embeds the soak plot; the samples are the check's own
        run_dir = workspace.runs(node)[0]
        assert "Thermal soak: temperatures" in (run_dir / "report.html").read_text()
        assert (run_dir / "samples/telemetry-thermal.jsonl").stat().st_size > 0
        assert not (run_dir / "samples/telemetry.jsonl").exists()

    out = workspace.root / "compare.html"
    proc = workspace.qualify("compare", str(workspace.runs("hot")[0]), str(workspace.runs("cool")[0]),
                             "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert "cooler=19mm, lid=closed" in html and "cooler=tall, lid=open" in html


def test_amd_node_that_throttles_fails_on_its_clock_against_its_nominal(workspace, modelled):
    modelled("ryzen", "19mm-lid-closed", amd_spec("amd-pstate-epp"))
    proc = workspace.qualify("run", "ryzen", "--checks", "thermal")
    check = thermal_check(workspace.runs("ryzen")[0])
    assert proc.returncode == 1, (proc.stderr, check["reasons"])
    share = measurement(check, "sustained_clock_percent_of_nominal")
    assert share["outcome"] == "failed", check["reasons"]
    assert "of the nominal 3800 MHz from amd-pstate-epp ACPI CPPC nominal_freq" in share["sentence"]
    assert share["sentence"] in check["problems"]
    assert not [m for m in check["measurements"] if m["name"] == "throttle_events_total"]  # AMD: no counters
    assert check["metrics"]["package_sensor"] == "temp:k10temp/Tctl"


def test_vm_without_sensors_is_skipped_never_passed(workspace):
    workspace.local_node("vm", NodeSpec(flags=("fpu", "hypervisor")), extra=SHORT)
    proc = workspace.qualify("run", "vm", "--checks", "thermal")
    assert proc.returncode == 2, proc.stderr  # nothing passed: incomplete
    check = thermal_check(workspace.runs("vm")[0])
    assert check["outcome"] == "skipped"
    assert check["reasons"][0].startswith("no temperature sensors (virtual machine?)")


def test_node_whose_only_sensors_are_drives_skips_at_once_saying_how(workspace):
    """A real node without the CPU's hwmon driver (coretemp not loaded, a k10temp older than the CPU) still has
    its NVMe drives' sensors: the soak would run for its whole length and judge nothing, so it skips at the
    start and says how to get the CPU's sensor. The drives' chips are real `sensors -j` output (corpus)."""
    tree = workspace.local_node("nocpu", NodeSpec(), extra=SHORT)
    chips = parse_sensors_json(corpus_path("lm-sensors", "intel-8p8e-hybrid-coretemp-2x-nvme-sensors-j.json")
                               .read_text())
    write_hwmon(tree / "sys", [chip for chip in chips if chip.driver == "nvme"])
    proc = workspace.qualify("run", "nocpu", "--checks", "thermal")
    assert proc.returncode == 2, proc.stderr  # nothing judged: incomplete, never pass
    check = thermal_check(workspace.runs("nocpu")[0])
    assert check["outcome"] == "skipped" and check["duration_s"] < 60
    assert check["reasons"][0].startswith("no CPU temperature sensor: only temp:nvme/Composite, "
                                          "temp:nvme#2/Composite under")
    [part] = check["not_qualified"]
    assert "modprobe coretemp" in part["how"] and "k10temp" in part["how"]


def test_package_sensor_of_each_real_layout():
    """Which series stands for the CPU package, on the hwmon/zone names real kernels give."""
    assert package_sensors(["temp:nvme/Composite", "temp:coretemp/Package id 0", "temp:coretemp/Core 0"]) == \
        ["temp:coretemp/Package id 0"]
    assert package_sensors(["temp:coretemp/Package id 0", "temp:coretemp#2/Package id 1"]) == \
        ["temp:coretemp/Package id 0", "temp:coretemp#2/Package id 1"]            # two sockets
    assert package_sensors(["temp:k10temp/Tctl", "temp:k10temp/Tccd1"]) == ["temp:k10temp/Tctl"]
    assert package_sensors(["temp:zenpower/Tdie", "temp:zenpower/Tctl"]) == ["temp:zenpower/Tdie"]
    assert package_sensors(["temp:cpu_thermal/temp1", "zone:cpu-thermal"]) == ["temp:cpu_thermal/temp1"]  # ARM
    # no CPU chip: the ACPI zone may be the CPU's; a Wi-Fi card, the chipset, INT3400 or a drive are not
    assert package_sensors(["zone:acpitz", "zone:iwlwifi_1", "zone:pch_cannonlake", "zone:INT3400 Thermal"]) == \
        ["zone:acpitz"]
    assert package_sensors(["temp:nvme/Composite", "temp:amdgpu/edge", "temp:drivetemp/temp1",
                            "zone:iwlwifi_1"]) == []


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
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
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
    node = lab.nodes[-1]
    (workspace.profiles / "short.yaml").write_text("extends: base/lab.yaml\n" + SHORT)
    node_dir = lab.node_dir(node)
    set_cooler(node_dir, "19mm-lid-closed", SPEEDUP)
    try:
        proc = workspace.qualify("run", node, "--profile", str(workspace.profiles / "short.yaml"),
                                 "--checks", "thermal")
    finally:
        set_cooler(node_dir, "tall-lid-open")
    assert proc.returncode == 1, proc.stderr
    check = thermal_check(workspace.runs(node)[0])
    assert measurement(check, "throttled_time_percent")["outcome"] == "failed", check["reasons"]
    assert (workspace.runs(node)[0] / "samples/telemetry-thermal.jsonl").stat().st_size > 0


def test_stress_ng_job_command_lines():
    from qualify.tools.stress_ng import StressJob, cpu_list, exit_status

    assert StressJob("cpu", 59.6, method="matrixprod").argv() == [
        "stress-ng", "--cpu", "0", "--cpu-method", "matrixprod", "--timeout", "60s", "--metrics-brief"]
    assert StressJob("vm", 10, workers=2, verify=True, cpus=[0, 1, 2, 5], metrics=False, quiet=True,
                     extra=("--vm-bytes", "256m", "--vm-keep")).argv() == [
        "stress-ng", "--vm", "2", "--verify", "--taskset", "0-2,5", "--vm-bytes", "256m", "--vm-keep",
        "--timeout", "10s", "--quiet"]
    assert cpu_list([7, 3, 4, 5, 9]) == "3-5,7,9" and cpu_list("0-3") == "0-3"
    assert exit_status(137) == "exit status 137 (killed by SIGKILL)" == exit_status(-9).replace("-9", "137")
    assert exit_status(3) == "exit status 3 (a stressor lacked resources such as memory)"
