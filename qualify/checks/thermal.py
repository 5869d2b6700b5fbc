"""Thermal soak: stress-ng on every CPU for the profile's duration while telemetry records temperatures,
clocks, package power and throttle counters; then the cooler's verdict.

Why: in a closed 1U lid only a 19 mm cooler fits; after a while it blows hot air and the CPU
throttles on every spike. The numbers that show it: maximum and steady package temperature, throttle
events and the share of time throttled, time to the first throttle, the sustained all-core clock,
performance drift (stress-ng's bogo ops/s late vs early) and fans that stop while hot.

Phases: idle lead-in, load in slices (one stress-ng run each, so bogo ops/s is known over time),
cool-down. Samples: samples/telemetry.jsonl and samples/stress.jsonl.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import numpy as np
import pytest

from qualify.durations import format_duration
from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.stress_ng import parse_stress_ng
from qualify.profile import Profile, ThermalSettings
from qualify.store import RunStore, read_samples
from qualify.telemetry import Telemetry, load_telemetry, start_telemetry
from qualify.telemetry.series import slope_per_minute, window

DEFAULT_DURATION_S = 1800.0   # without a profile duration: the seed's cooler gave up after ~30 min
IDLE_SHARE, IDLE_MAX_S = 0.1, 300.0
STRESS_STREAM = "stress"
SLICE_GRACE_S = 60.0          # stress-ng may take this long to start and stop its workers


@dataclass(frozen=True)
class Phases:
    """Load start and end on the telemetry time axis (seconds from the first sample)."""

    load_start: float
    load_end: float


@pytest.mark.long
def check_thermal(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.thermal
    duration = profile.duration or DEFAULT_DURATION_S
    idle = settings.idle_lead_in if settings.idle_lead_in is not None else min(duration * IDLE_SHARE, IDLE_MAX_S)
    cool = settings.cool_down if settings.cool_down is not None else min(duration * IDLE_SHARE, IDLE_MAX_S)
    stream = start_telemetry(node, run_store, profile.telemetry)
    if "C" not in stream.series.values():
        stream.stop()
        findings.skip("no temperature sensors (virtual machine?): no hwmon temperature or thermal zone under "
                      f"{node.paths.sysfs}")
    try:
        node.require("stress-ng")
        time.sleep(idle)
        load_start = time.time()
        _soak(node, settings, duration, run_store)
        load_end = time.time()
        time.sleep(cool)
    finally:
        summary = stream.stop()

    telemetry = load_telemetry(run_store.run_dir)
    phases = Phases(telemetry.axis(load_start), telemetry.axis(load_end))
    findings.metric("load_start_s", round(phases.load_start, 1))
    findings.metric("load_end_s", round(phases.load_end, 1))
    findings.note(f"stress-ng --cpu-method {settings.method} on all CPUs for {format_duration(load_end - load_start)}"
                  f" after {format_duration(idle)} idle, then {format_duration(cool)} cool-down")
    assess(telemetry, read_samples(run_store.run_dir, STRESS_STREAM), phases, settings, findings)
    for sentence in summary.sentences(profile.telemetry.interval):
        findings.note(sentence)


def _soak(node: Node, settings: ThermalSettings, duration: float, run_store: RunStore) -> None:
    """stress-ng in consecutive slices until `duration` is spent; bogo ops/s of each slice stored."""
    slices = run_store.samples(STRESS_STREAM)
    started = time.monotonic()
    number = 0
    while (left := duration - (time.monotonic() - started)) >= 1:
        length = max(1, round(min(settings.slice, left)))
        argv = ["stress-ng", "--cpu", "0", "--cpu-method", settings.method, "--timeout", f"{length}s",
                "--metrics-brief"]
        begun = time.time()
        result = node.run(argv, timeout_s=length + SLICE_GRACE_S, check=False)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            tail = "; ".join(output.strip().splitlines()[-2:]) or "no output"
            raise QualifyError(f"{node.name}: stress-ng ended early with {_exit_status(result.returncode)} after "
                               f"{time.time() - begun:.0f} s of a {length} s slice: {tail}")
        if number == 0:
            run_store.save_raw("thermal-stress-ng-first-slice.txt", output)
        metrics = parse_stress_ng(output, f"{node.name}: {result.command}")[0]
        slices.append({"t0": begun, "t1": time.time(), "stressor": metrics.stressor, "bogo_ops": metrics.bogo_ops,
                       "bogo_ops_per_s": metrics.bogo_ops_per_s, "real_time_s": metrics.real_time_s})
        number += 1
    if number:
        run_store.save_raw("thermal-stress-ng-last-slice.txt", output)


def _exit_status(code: int) -> str:
    """'exit status 137 (killed by SIGKILL)': locally a signal shows as -9, through ssh/sh as 128+9."""
    number = -code if code < 0 else code - 128 if 128 < code < 160 else None
    try:
        return f"exit status {code} (killed by {signal.Signals(number).name})" if number else f"exit status {code}"
    except ValueError:
        return f"exit status {code}"


def assess(telemetry: Telemetry, slices: list[dict], phases: Phases, settings: ThermalSettings,
           findings: Findings) -> None:
    """The verdict from the stored samples: every threshold of the profile, with the numbers."""
    t = telemetry.t
    load = window(t, phases.load_start, phases.load_end)
    span = phases.load_end - phases.load_start
    late = window(t, phases.load_end - settings.sustained_window * span, phases.load_end)
    sensors = telemetry.package_temps()
    package = telemetry.combined(sensors, "max")
    findings.metric("package_sensor", ", ".join(sensors))

    _temperatures(t, package, load, late, settings, findings)
    _throttling(telemetry, load, phases, findings, settings)
    _clocks(telemetry, late, settings, findings)
    _performance(slices, settings, findings)
    _power_and_ambient(telemetry, load, window(t, float("-inf"), phases.load_start), findings)
    _fans(telemetry, package, settings, findings)


def _temperatures(t: np.ndarray, package: np.ndarray, load: np.ndarray, late: np.ndarray,
                  settings: ThermalSettings, findings: Findings) -> None:
    if np.isnan(package).all():
        raise QualifyError("the package temperature sensor gave no reading during the soak")
    peak = int(np.nanargmax(package))
    hottest = float(package[peak])
    findings.metric("max_package_temp_c", round(hottest, 1))
    sentence = (f"package temperature peaked at {hottest:.1f} °C ({t[peak]:.0f} s into the run; "
                f"limit {settings.max_package_temp_c:g} °C)")
    (findings.problem if hottest > settings.max_package_temp_c else findings.note)(sentence)
    if late.any() and not np.isnan(package[late]).all():
        steady = float(np.nanmean(package[late]))
        findings.metric("steady_package_temp_c", round(steady, 1))
        slope = slope_per_minute(t[late], package[late])
        if slope is not None:
            findings.metric("steady_slope_c_per_min", round(slope, 2))
            if abs(slope) <= settings.steady_slope_c_per_min:
                findings.note(f"steady state reached: {steady:.1f} °C over the last "
                              f"{settings.sustained_window:.0%} of the load (slope {slope:+.2f} °C/min)")
            else:
                sentence = (f"no steady state: the package temperature still moved {slope:+.2f} °C/min over the "
                            f"last {settings.sustained_window:.0%} of the load (steady below "
                            f"{settings.steady_slope_c_per_min:g} °C/min); a longer soak would end hotter")
                (findings.problem if settings.require_steady_state else findings.note)(sentence)


def _throttling(telemetry: Telemetry, load: np.ndarray, phases: Phases, findings: Findings,
                settings: ThermalSettings) -> None:
    if not telemetry.names("throttle"):
        findings.note("the node exposes no thermal_throttle counters (not an Intel CPU?): throttling is judged "
                      "from clocks only")
        return
    events = telemetry.throttle_events()
    in_load = events[load]
    total = int(in_load.sum())
    share = float((in_load > 0).mean()) if in_load.size else 0.0
    findings.metric("throttle_events", total)
    findings.metric("throttled_share", round(share, 4))
    if total == 0:
        findings.metric("time_to_throttle_s", None)
        findings.note("no thermal throttling during the load (thermal_throttle counters unchanged)")
        return
    first = float(telemetry.t[load][np.flatnonzero(in_load)[0]] - phases.load_start)
    findings.metric("time_to_throttle_s", round(first, 1))
    sentence = (f"thermal throttling: {share:.0%} of the load time throttled (limit {settings.max_throttled_share:.0%}), "
                f"{total} throttle events, the first {max(first, 0):.1f} s after the load started")
    (findings.problem if share > settings.max_throttled_share else findings.note)(sentence)


def _clocks(telemetry: Telemetry, late: np.ndarray, settings: ThermalSettings, findings: Findings) -> None:
    freqs = telemetry.names("freq")
    if not freqs:
        findings.note("the node exposes no cpufreq scaling_cur_freq: sustained clock unknown")
        return
    all_core = telemetry.combined(freqs, "mean")[late]
    if np.isnan(all_core).all():
        return
    sustained = float(np.nanmedian(all_core))
    findings.metric("sustained_clock_mhz", round(sustained))
    sentence = (f"sustained all-core clock {sustained:.0f} MHz (median of {len(freqs)} CPUs over the last "
                f"{settings.sustained_window:.0%} of the load; minimum {settings.min_sustained_clock_mhz:g} MHz)")
    (findings.problem if sustained < settings.min_sustained_clock_mhz else findings.note)(sentence)


def _performance(slices: list[dict], settings: ThermalSettings, findings: Findings) -> None:
    if len(slices) < 2:
        findings.note("performance drift unknown: the load ran as a single stress-ng slice "
                      "(make checks.thermal.slice shorter than the duration)")
        return
    first, last = slices[0]["bogo_ops_per_s"], slices[-1]["bogo_ops_per_s"]
    drop = 100.0 * (first - last) / first if first else 0.0
    findings.metric("perf_drift_percent", round(-drop, 1))
    sentence = (f"stress-ng throughput went from {first:.0f} to {last:.0f} bogo ops/s from the first to the last of "
                f"{len(slices)} slices ({-drop:+.1f}%; a drop of more than {settings.max_perf_drop_percent:g}% fails)")
    (findings.problem if drop > settings.max_perf_drop_percent else findings.note)(sentence)


def _power_and_ambient(telemetry: Telemetry, load: np.ndarray, idle: np.ndarray, findings: Findings) -> None:
    package = telemetry.combined(telemetry.package_power(), "sum")
    power, idle_power = package[load], package[idle]
    if power.size and not np.isnan(power).all():
        findings.metric("avg_package_power_w", round(float(np.nanmean(power)), 1))
        findings.metric("load_power_w", round(float(np.nanmean(power)), 1))
        findings.note(f"average package power under load {np.nanmean(power):.1f} W, peak {np.nanmax(power):.1f} W")
    if idle_power.size and not np.isnan(idle_power).all():
        findings.metric("idle_power_w", round(float(np.nanmean(idle_power)), 1))
        findings.note(f"average package power idle before the load {np.nanmean(idle_power):.1f} W")
    ambient = [n for n in telemetry.values if "ambient" in n.lower()]
    if ambient:
        findings.metric("ambient_c", round(float(np.nanmean(telemetry.combined(ambient, "mean"))), 1))


def _fans(telemetry: Telemetry, package: np.ndarray, settings: ThermalSettings, findings: Findings) -> None:
    idle_fans, lowest = [], {}
    hot = package > settings.fan_hot_c
    for name in telemetry.names("fan"):
        rpm = telemetry.values[name]
        if np.isnan(rpm).all() or np.nanmax(rpm) <= 0:
            idle_fans.append(name)
            continue
        stopped = np.flatnonzero(hot & (rpm == 0))
        if stopped.size:
            i = stopped[0]
            findings.problem(f"{name} stopped (0 rpm) {telemetry.t[i]:.0f} s into the run while the package was at "
                             f"{package[i]:.1f} °C (above {settings.fan_hot_c:g} °C)")
        else:
            lowest[name] = int(np.nanmin(rpm))
    if lowest:
        findings.metric("fan_min_rpm", lowest)
    if idle_fans:
        findings.note(f"fans that never spun (not connected?): {', '.join(idle_fans)}")
