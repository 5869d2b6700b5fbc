"""Thermal soak: stress-ng on every CPU for the profile's duration while telemetry records temperatures,
clocks, package power and throttle counters; then the cooler's verdict.

Why: in a closed 1U lid only a 19 mm cooler fits; after a while it blows hot air and the CPU
throttles on every spike. The numbers that show it: maximum and steady package temperature, throttle
events and the share of time throttled, time to the first throttle, the sustained all-core clock
against the CPU's own nominal clock (AMD parts have no throttle counters: their clock is the evidence),
performance drift (stress-ng's bogo ops/s late vs early) and fans that stop while hot.

Phases: idle lead-in, load in slices (one stress-ng run each, so bogo ops/s is known over time),
cool-down. Evidence: samples/telemetry-thermal.jsonl (this check's window only), samples/stress.jsonl,
raw/thermal-evidence.json (phases and the cpufreq files the nominal clock is read from).

Measurements (name, unit, limit from checks.thermal):
    max_package_temperature_celsius      °C   ≤ max_package_temp_c
    steady_package_temperature_celsius   °C   —
    steady_slope_celsius_per_minute      °C/min ±steady_slope_c_per_min (warning unless require_steady_state)
    throttled_time_percent               %    ≤ max_throttled_share (thermal_throttle counters)
    throttle_events_total / time_to_first_throttle_seconds  —
    sustained_clock_percent_of_nominal   %    ≥ min_sustained_clock_share of the nominal clock
    sustained_all_core_clock_mhz         MHz  ≥ min_sustained_clock_mhz (optional floor)
    performance_change_percent           %    ≥ -max_perf_drop_percent
    load_package_power_watts, idle_package_power_watts, ambient_celsius — context
    fan_minimum_rpm (per fan)            rpm  ≥ 1 while the package is above fan_hot_c
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from qualify.durations import format_duration
from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.cpuinfo import parse_cpuinfo
from qualify.profile import Profile, ThermalSettings
from qualify.store import RunStore, read_samples
from qualify.telemetry import Telemetry, TelemetrySummary, load_check_telemetry, start_telemetry, stream_for
from qualify.telemetry.rating import NOMINAL_FILES, NominalClock, nominal_clock
from qualify.telemetry.series import package_sensors, slope_per_minute, window
from qualify.tools.stress_ng import StressJob, run_stress

DEFAULT_DURATION_S = 1800.0   # without a profile duration: the seed's cooler gave up after ~30 min
IDLE_SHARE, IDLE_MAX_S = 0.1, 300.0
NAME = "thermal"
STRESS_STREAM = "stress"
EVIDENCE_FILE = "thermal-evidence.json"
HOW_SENSORS = ("run it on the bare-metal node (a VM sees no sensors); there, load the CPU's sensor driver: "
               "`modprobe coretemp` (Intel), `modprobe k10temp` (AMD; a CPU newer than the kernel's k10temp "
               "needs a newer kernel, or zenpower), and check `sensors` lists the package temperature")


@dataclass(frozen=True)
class Phases:
    """Load start and end on the telemetry time axis (seconds from the first sample)."""

    load_start: float
    load_end: float


@dataclass(frozen=True)
class ThermalEvidence:
    telemetry: Telemetry        # this check's own stream
    slices: list[dict]          # one per stress-ng slice: t0, t1, bogo_ops_per_s
    phases: Phases
    nominal: NominalClock | None
    method: str = ""


@pytest.mark.long
def check_thermal(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    summary = collect(node, profile, run_store, findings)
    evidence = load_evidence(run_store.run_dir)
    findings.metric("load_start_s", round(evidence.phases.load_start, 1))
    findings.metric("load_end_s", round(evidence.phases.load_end, 1))
    judge(evidence, profile.checks.thermal, findings)
    for sentence in summary.sentences(profile.telemetry.interval):
        findings.note(sentence)


def collect(node: Node, profile: Profile, run_store: RunStore, findings: Findings) -> TelemetrySummary:
    """Idle lead-in, the sliced load, cool-down; every sample stored as it arrives. Skips a node without
    temperature sensors (nothing to judge)."""
    settings = profile.checks.thermal
    duration = profile.duration or DEFAULT_DURATION_S
    idle = settings.idle_lead_in if settings.idle_lead_in is not None else min(duration * IDLE_SHARE, IDLE_MAX_S)
    cool = settings.cool_down if settings.cool_down is not None else min(duration * IDLE_SHARE, IDLE_MAX_S)
    cpufreq = node.read_glob(node.sys_path("devices/system/cpu"), NOMINAL_FILES)
    model_name = _model_name(node)
    stream = start_telemetry(node, run_store, profile.telemetry, stream_for(NAME))
    temperatures = [name for name, unit in stream.series.items() if unit == "C"]
    if not temperatures:
        stream.stop()
        findings.skip("no temperature sensors (virtual machine?): no hwmon temperature or thermal zone under "
                      f"{node.paths.sysfs}", how=HOW_SENSORS)
    if not package_sensors(temperatures):
        stream.stop()
        findings.skip(f"no CPU temperature sensor: only {', '.join(temperatures[:6])} under {node.paths.sysfs} "
                      f"(the CPU's hwmon driver is not loaded, or too old for this CPU)", how=HOW_SENSORS)
    try:
        node.require("stress-ng")
        time.sleep(idle)
        load_start = time.time()
        _soak(node, settings, duration, run_store)
        load_end = time.time()
        time.sleep(cool)
    finally:
        summary = stream.stop()
    run_store.save_raw(EVIDENCE_FILE, json.dumps({"load_start": load_start, "load_end": load_end, "idle_s": idle,
                                                  "cool_s": cool, "method": settings.method, "cpufreq": cpufreq,
                                                  "model_name": model_name}))
    return summary


def _soak(node: Node, settings: ThermalSettings, duration: float, run_store: RunStore) -> None:
    """stress-ng in consecutive slices until `duration` is spent; bogo ops/s of each slice stored."""
    slices = run_store.samples(STRESS_STREAM)
    started = time.monotonic()
    number = 0
    while (left := duration - (time.monotonic() - started)) >= 1:
        run = run_stress(node, StressJob("cpu", min(settings.slice, left), method=settings.method))
        if number == 0:
            run_store.save_raw("thermal-stress-ng-first-slice.txt", run.output)
        run.check(node.name, what="slice")
        metrics = run.metrics(node.name)[0]
        slices.append({"t0": run.started, "t1": run.ended, "stressor": metrics.stressor,
                       "bogo_ops": metrics.bogo_ops, "bogo_ops_per_s": metrics.bogo_ops_per_s,
                       "real_time_s": metrics.real_time_s})
        number += 1
    if number:
        run_store.save_raw("thermal-stress-ng-last-slice.txt", run.output)


def _model_name(node: Node) -> str | None:
    """The first CPU's model name (the rated clock of older Intel parts is only there); None when unreadable."""
    try:
        cpus = parse_cpuinfo(node.read_text(node.proc_path("cpuinfo")) or "")
    except QualifyError:  # a ParseError too
        return None
    return cpus[0].model_name if cpus else None


def load_evidence(run_dir: Path) -> ThermalEvidence:
    """The check's evidence as stored (re-judge or plot any finished run)."""
    telemetry = load_check_telemetry(run_dir, NAME)
    try:
        stored = json.loads((run_dir / "raw" / EVIDENCE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise QualifyError(f"{run_dir}: no readable raw/{EVIDENCE_FILE} ({exc}); the thermal check did not "
                           f"finish its load") from None
    return ThermalEvidence(telemetry=telemetry, slices=read_samples(run_dir, STRESS_STREAM),
                           phases=Phases(telemetry.axis(stored["load_start"]), telemetry.axis(stored["load_end"])),
                           nominal=nominal_clock(stored.get("cpufreq", {}), stored.get("model_name")),
                           method=stored.get("method", ""))


# ---------------------------------------------------------------- judging (pure)


def judge(evidence: ThermalEvidence, settings: ThermalSettings, findings: Findings) -> None:
    """Every threshold of the profile against the stored samples, each figure with its unit and limit."""
    telemetry, phases = evidence.telemetry, evidence.phases
    t = telemetry.t
    load = window(t, phases.load_start, phases.load_end)
    span = phases.load_end - phases.load_start
    late = window(t, phases.load_end - settings.sustained_window * span, phases.load_end)
    sensors = telemetry.package_temps()
    package = telemetry.combined(sensors, "max")
    findings.metric("package_sensor", ", ".join(sensors))
    if evidence.method:
        findings.note(f"stress-ng --cpu-method {evidence.method} on all CPUs for {format_duration(span)}")
    if (dropped := telemetry.dropped_sentence()) is not None:
        findings.note(dropped)

    _temperatures(t, package, late, settings, findings)
    _throttling(telemetry, load, phases, findings, settings)
    _clocks(telemetry, package, load, late, phases.load_start, evidence.nominal, settings, findings)
    _performance(evidence.slices, settings, findings)
    _power_and_ambient(telemetry, load, window(t, float("-inf"), phases.load_start), findings)
    _fans(telemetry, package, settings, findings)


def assess(telemetry: Telemetry, slices: list[dict], phases: Phases, settings: ThermalSettings,
           findings: Findings, nominal: NominalClock | None = None) -> None:
    """judge() on loose parts (recorded telemetry in tests)."""
    judge(ThermalEvidence(telemetry, slices, phases, nominal), settings, findings)


def _temperatures(t: np.ndarray, package: np.ndarray, late: np.ndarray, settings: ThermalSettings,
                  findings: Findings) -> None:
    if np.isnan(package).all():
        raise QualifyError("the package temperature sensor gave no reading during the soak")
    peak = int(np.nanargmax(package))
    findings.measure("max_package_temperature_celsius", round(float(package[peak]), 1), unit="°C",
                     high=settings.max_package_temp_c, text="package temperature peaked at",
                     detail=f"({t[peak]:.0f} s into the run)",
                     because="the cooler cannot hold the package below its limit under sustained load")
    if not late.any() or np.isnan(package[late]).all():
        return
    steady = float(np.nanmean(package[late]))
    findings.measure("steady_package_temperature_celsius", round(steady, 1), unit="°C",
                     text="steady package temperature",
                     detail=f"(mean over the last {settings.sustained_window:.0%} of the load)")
    slope = slope_per_minute(t[late], package[late])
    if slope is not None:
        limit = settings.steady_slope_c_per_min
        findings.measure("steady_slope_celsius_per_minute", round(slope, 2), unit="°C/min", low=-limit, high=limit,
                         warn=not settings.require_steady_state, text="package temperature slope",
                         detail=f"over the last {settings.sustained_window:.0%} of the load",
                         because="no steady state: a longer soak would end hotter")


def _throttling(telemetry: Telemetry, load: np.ndarray, phases: Phases, findings: Findings,
                settings: ThermalSettings) -> None:
    if not telemetry.names("throttle"):
        findings.note("the node exposes no thermal_throttle counters (AMD, or not an Intel CPU): throttling is "
                      "judged from the sustained clock against the CPU's nominal clock")
        return
    in_load = telemetry.throttle_events()[load]
    total = int(in_load.sum())
    share = float((in_load > 0).mean()) if in_load.size else 0.0
    findings.measure("throttle_events_total", total, text="thermal throttle events during the load",
                     detail="(thermal_throttle counters)")
    findings.measure("throttled_time_percent", round(100 * share, 1), unit="%", high=100 * settings.max_throttled_share,
                     text="share of the load time throttled",
                     because="the CPU throttles: the cooler does not hold it under sustained load")
    if total:
        first = float(telemetry.t[load][np.flatnonzero(in_load)[0]] - phases.load_start)
        findings.measure("time_to_first_throttle_seconds", round(max(first, 0.0), 1), unit="s",
                         text="first thermal throttling", detail="after the load started")


def _clocks(telemetry: Telemetry, package: np.ndarray, load: np.ndarray, late: np.ndarray, load_start: float,
            nominal: NominalClock | None, settings: ThermalSettings, findings: Findings) -> None:
    freqs = telemetry.names("freq")
    limit = 100 * settings.min_sustained_clock_share
    if not freqs:
        findings.measure("sustained_clock_percent_of_nominal", None, unit="%", low=limit,
                         text="sustained all-core clock", detail="the node exposes no cpufreq scaling_cur_freq")
        return
    all_core = telemetry.combined(freqs, "mean")
    sustained = float(np.nanmedian(all_core[late])) if not np.isnan(all_core[late]).all() else None
    where = f"median of {len(freqs)} CPUs over the last {settings.sustained_window:.0%} of the load"
    findings.measure("sustained_all_core_clock_mhz", round(sustained) if sustained is not None else None, unit="MHz",
                     low=settings.min_sustained_clock_mhz, text="sustained all-core clock", detail=f"({where})",
                     because="below the profile's floor for this node")
    if nominal is None:
        findings.measure("sustained_clock_percent_of_nominal", None, unit="%", low=limit,
                         text="sustained all-core clock against the nominal clock",
                         detail="no nominal clock (no base_frequency, amd-pstate/CPPC nominal_freq or acpi-cpufreq "
                                "P-state table under cpufreq)")
        return
    paired = {f"freq:cpu{cpu}": mhz for cpu, mhz in nominal.mhz.items() if f"freq:cpu{cpu}" in telemetry.values}
    rated = float(np.mean(list(paired.values()))) if paired else nominal.mean_mhz
    clock = telemetry.combined(list(paired) or freqs, "mean")
    held = float(np.nanmedian(clock[late])) if not np.isnan(clock[late]).all() else None
    findings.metric("nominal_clock_mhz", round(rated))
    findings.metric("nominal_clock_source", nominal.source)
    hot = float(np.nanmean(package[late])) if late.any() and not np.isnan(package[late]).all() else None
    cause = ("" if hot is None else
             f" while the package averaged {hot:.0f} °C" +
             (": thermal throttling" if hot >= settings.max_package_temp_c - 10 else
              ": not hot, so a power limit (PL1/PPT) or a BIOS clock cap"))
    share = None if held is None else round(100 * held / rated, 1)
    findings.measure("sustained_clock_percent_of_nominal", share, unit="%", low=limit,
                     text="sustained all-core clock against the nominal clock",
                     detail=(f"({held:.0f} MHz of the nominal {rated:.0f} MHz from {nominal.source}; {where})"
                             if held is not None else ""),
                     because=f"the CPU does not hold its rated clock under load{cause}")
    if not telemetry.names("throttle") and held is not None:
        _clock_throttling(telemetry.t[load] - load_start, clock[load], rated, settings, findings)


def _clock_throttling(t: np.ndarray, clock: np.ndarray, rated: float, settings: ThermalSettings,
                      findings: Findings) -> None:
    """Without throttle counters the clock is the evidence: the share of the load below the nominal bar and
    the first drop below it once the load had reached it (the first samples may predate the workers)."""
    bar = settings.min_sustained_clock_share
    below = clock < bar * rated
    findings.measure("clock_below_nominal_time_percent", round(100 * float(below.mean()), 1) if below.size else None,
                     unit="%", text=f"share of the load time below {bar:.0%} of the nominal clock",
                     detail="(stands in for throttle counters)")
    reached = np.flatnonzero(~below)
    drops = np.flatnonzero(below[reached[0]:]) if reached.size else np.array([], dtype=int)
    if drops.size:
        findings.measure("time_to_first_throttle_seconds", round(float(t[reached[0] + drops[0]]), 1), unit="s",
                         text=f"first drop below {bar:.0%} of the nominal clock", detail="after the load started")


def _performance(slices: list[dict], settings: ThermalSettings, findings: Findings) -> None:
    if len(slices) < 2:
        findings.note("performance drift unknown: the load ran as a single stress-ng slice "
                      "(make checks.thermal.slice shorter than the duration)")
        return
    first, last = slices[0]["bogo_ops_per_s"], slices[-1]["bogo_ops_per_s"]
    change = 100.0 * (last - first) / first if first else 0.0
    findings.measure("performance_change_percent", round(change, 1), unit="%", low=-settings.max_perf_drop_percent,
                     text="stress-ng throughput change",
                     detail=f"from {first:.0f} to {last:.0f} bogo ops/s, first to last of {len(slices)} slices",
                     because="the CPU got slower as the soak went on (throttling)")


def _power_and_ambient(telemetry: Telemetry, load: np.ndarray, idle: np.ndarray, findings: Findings) -> None:
    package = telemetry.combined(telemetry.package_power(), "sum")
    power, idle_power = package[load], package[idle]
    if power.size and not np.isnan(power).all():
        findings.measure("load_package_power_watts", round(float(np.nanmean(power)), 1), unit="W",
                         text="average package power under load", detail=f"(peak {np.nanmax(power):.1f} W)")
    if idle_power.size and not np.isnan(idle_power).all():
        findings.measure("idle_package_power_watts", round(float(np.nanmean(idle_power)), 1), unit="W",
                         text="average package power idle before the load")
    ambient = [n for n in telemetry.values if "ambient" in n.lower()]
    if ambient:
        findings.measure("ambient_celsius", round(float(np.nanmean(telemetry.combined(ambient, "mean"))), 1),
                         unit="°C", text="ambient")


def _fans(telemetry: Telemetry, package: np.ndarray, settings: ThermalSettings, findings: Findings) -> None:
    never = []
    hot = package > settings.fan_hot_c
    for name in telemetry.names("fan"):
        rpm = telemetry.values[name]
        if np.isnan(rpm).all() or np.nanmax(rpm) <= 0:
            never.append(name)
            continue
        judged = hot & ~np.isnan(rpm)
        if judged.any():
            stopped = np.flatnonzero(judged & (rpm == 0))
            detail = (f"while the package was above {settings.fan_hot_c:g} °C" if not stopped.size else
                      f"while the package was above {settings.fan_hot_c:g} °C: stopped {telemetry.t[stopped[0]]:.0f} s "
                      f"into the run at {package[stopped[0]]:.1f} °C")
            findings.measure("fan_minimum_rpm", int(np.nanmin(rpm[judged])), unit="rpm", low=1, subject=name,
                             text="lowest speed", detail=detail, because="a fan that stops while hot")
        else:
            findings.measure("fan_minimum_rpm", int(np.nanmin(rpm)), unit="rpm", subject=name, text="lowest speed")
    if never:
        findings.note(f"fans that never spun (not connected?): {', '.join(never)}")
