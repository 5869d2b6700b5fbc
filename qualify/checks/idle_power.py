"""Idle power and C-states: package power (RAPL) and per-CPU C-state residency over an idle window.

Why: the seed's first server idled at 135 W; on the new nodes C-states and ASPM made the difference.
A node that never reaches its deep C-states burns power all day, and idle is where boards freeze.
Judged: average package power against checks.idle_power.max_package_w, and the share of the window
the CPUs spend in their deepest enabled state against min_deepest_residency. What may block deep
states is named: the ASPM policy, PCIe devices with ASPM disabled, disabled cpuidle states. Where
turbostat is installed its package C-state columns (Pkg%pc2..pc10) are recorded too.

Samples: samples/idle_cstates.jsonl (cumulative residency per state) and samples/telemetry.jsonl (power).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node, NodeProcess
from qualify.parsers.lspci import parse_lspci_vv
from qualify.parsers.turbostat import parse_turbostat
from qualify.profile import IdlePowerSettings, Profile
from qualify.store import JsonLines, RunStore
from qualify.telemetry import load_telemetry, start_telemetry
from qualify.telemetry.series import window

STREAM = "idle_cstates"
CPUIDLE_FILES = " ".join(f"cpu[0-9]*/cpuidle/state[0-9]*/{name}" for name in ("name", "time", "disable"))
TURBOSTAT_GRACE_S = 5.0
MAX_DEFAULT_WINDOW_S, MAX_DEFAULT_SETTLE_S = 180.0, 30.0


@dataclass(frozen=True)
class CpuidleState:
    cpu: int
    index: int
    name: str
    time_us: int
    disabled: bool


def check_idle_power(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.idle_power
    cpu_dir = node.sys_path("devices/system/cpu")
    powercap = node.sys_path("class/powercap")
    if not node.read_glob(powercap, "intel-rapl:[0-9]/name"):
        findings.skip(f"no RAPL package power under {powercap} (virtual machine, or the intel_rapl driver is "
                      f"not loaded): idle power cannot be measured")
    if not _cpuidle(node, cpu_dir):
        findings.skip(f"no cpuidle states under {cpu_dir}/cpu*/cpuidle (cpuidle disabled, or a virtual machine)")
    length = settings.window or min(profile.duration or MAX_DEFAULT_WINDOW_S, MAX_DEFAULT_WINDOW_S)
    time.sleep(settings.settle if settings.settle is not None else min(length / 4, MAX_DEFAULT_SETTLE_S))
    telemetry = start_telemetry(node, run_store, profile.telemetry)
    turbostat = _Turbostat(node, length) if node.has_tool("turbostat") else None
    samples = run_store.samples(STREAM)
    try:
        start = time.time()
        first = _sample(node, cpu_dir, samples, start)
        last = first
        while (left := length - (time.time() - start)) > 0:
            time.sleep(min(settings.interval, left))
            last = _sample(node, cpu_dir, samples, start)
        end = time.time()
    finally:
        telemetry.stop()
        turbostat_text = turbostat.finish() if turbostat else None
    findings.metric("window_s", round(end - start, 1))
    _power(run_store, start, end, settings, findings)
    blockers = _blockers(node, run_store, last, findings)
    _residency(first, last, end - start, settings, blockers, findings)
    if turbostat_text is not None:
        _package_cstates(node, turbostat_text, run_store, findings)


def _cpuidle(node: Node, cpu_dir: str) -> list[CpuidleState]:
    files = node.read_glob(cpu_dir, CPUIDLE_FILES)
    states = []
    for rel, name in files.items():
        cpu_part, _, state_part, _ = rel.split("/")
        if rel.endswith("/name"):
            base = rel.removesuffix("/name")
            states.append(CpuidleState(cpu=int(cpu_part[3:]), index=int(state_part[5:]), name=name.strip(),
                                       time_us=int(files.get(f"{base}/time", "0") or 0),
                                       disabled=files.get(f"{base}/disable", "0").strip() == "1"))
    return sorted(states, key=lambda s: (s.cpu, s.index))


def _sample(node: Node, cpu_dir: str, samples: JsonLines, start: float) -> list[CpuidleState]:
    states = _cpuidle(node, cpu_dir)
    totals: dict[str, int] = {}
    for state in states:
        totals[state.name] = totals.get(state.name, 0) + state.time_us
    samples.append({"t": round(time.time() - start, 3), "cpus": len({s.cpu for s in states}), "time_us": totals})
    return states


def _power(run_store: RunStore, start: float, end: float, settings: IdlePowerSettings, findings: Findings) -> None:
    telemetry = load_telemetry(run_store.run_dir)
    zones = telemetry.package_power()
    power = telemetry.combined(zones, "sum")[window(telemetry.t, telemetry.axis(start), telemetry.axis(end))]
    if not power.size or np.isnan(power).all():
        raise QualifyError("the RAPL package energy counter gave no reading during the idle window")
    average = float(np.nanmean(power))
    findings.metric("idle_package_power_w", round(average, 2))
    sentence = (f"idle package power averaged {average:.1f} W over {end - start:.0f} s (peak {np.nanmax(power):.1f} W; "
                f"limit {settings.max_package_w:g} W)")
    (findings.problem if average > settings.max_package_w else findings.note)(sentence)


def _residency(first: list[CpuidleState], last: list[CpuidleState], seconds: float, settings: IdlePowerSettings,
               blockers: list[str], findings: Findings) -> None:
    before = {(s.cpu, s.index): s.time_us for s in first}
    per_state: dict[str, float] = {}
    deepest_shares = []
    cpus = sorted({s.cpu for s in last})
    for cpu in cpus:
        enabled = [s for s in last if s.cpu == cpu and not s.disabled and s.name != "POLL"]
        for state in (s for s in last if s.cpu == cpu):
            share = max(0, state.time_us - before.get((cpu, state.index), state.time_us)) / (seconds * 1e6)
            per_state[state.name] = per_state.get(state.name, 0.0) + share / len(cpus)
            if enabled and state.index == enabled[-1].index:
                deepest_shares.append(share)
    deepest = max((s for s in last if not s.disabled and s.name != "POLL"), key=lambda s: s.index, default=None)
    findings.metric("cstate_residency", {name: round(share, 4) for name, share in per_state.items()})
    if deepest is None:
        findings.problem("every cpuidle state but POLL is disabled: the CPUs never sleep")
        return
    average = float(np.mean(deepest_shares)) if deepest_shares else 0.0
    findings.metric("deepest_cstate", deepest.name)
    findings.metric("deepest_residency", round(average, 4))
    sentence = (f"the CPUs spent {average:.1%} of the idle window in their deepest C-state {deepest.name} "
                f"(average of {len(cpus)} CPUs; minimum {settings.min_deepest_residency:.0%})")
    if average >= settings.min_deepest_residency:
        findings.note(sentence)
    elif blockers:
        findings.problem(f"{sentence}; what may block deep C-states: {'; '.join(blockers)}")
    else:
        findings.problem(f"{sentence}; nothing the node exposes explains it (check the BIOS C-state and "
                         f"package C-state limits, and `powertop` for busy devices)")


def _blockers(node: Node, run_store: RunStore, states: list[CpuidleState], findings: Findings) -> list[str]:
    """What the node shows that keeps CPUs or the package out of deep C-states (ASPM recorded as metrics)."""
    found = []
    disabled = sorted({s.name for s in states if s.disabled})
    if disabled:
        found.append(f"cpuidle state(s) {', '.join(disabled)} disabled")
    policy_path = node.sys_path("module/pcie_aspm/parameters/policy")
    policy = node.read_text(policy_path)
    current = next((w.strip("[]") for w in (policy or "").split() if w.startswith("[")), None)
    findings.metric("aspm_policy", current)
    if current == "performance":
        found.append(f"ASPM policy is 'performance' ({policy_path}): PCIe links never enter L0s/L1")
    if node.has_tool("lspci"):
        text = node.run(["lspci", "-vv"], check=False).stdout
        run_store.save_raw("idle-lspci-vv.txt", text)
        devices = parse_lspci_vv(text, f"{node.name}: lspci -vv")
        findings.metric("aspm_per_device", {d.slot: d.aspm for d in devices if d.aspm})
        off = [d for d in devices if d.aspm == "Disabled"]
        if off:
            listed = ", ".join(f"{d.slot} ({d.description.split(':')[0]})" for d in off[:6])
            found.append(f"ASPM disabled on {len(off)} PCIe device(s): {listed}")
    return found


def _package_cstates(node: Node, text: str, run_store: RunStore, findings: Findings) -> None:
    run_store.save_raw("idle-turbostat.txt", text)
    try:
        interval = parse_turbostat(text, f"{node.name}: turbostat")[-1]
    except QualifyError as exc:
        findings.note(f"turbostat gave no usable table: {exc}")
        return
    if interval.package_cstates:
        findings.metric("package_cstates", interval.package_cstates)
        listed = ", ".join(f"{name} {share:.1f}%" for name, share in interval.package_cstates.items())
        findings.note(f"turbostat package C-states over the window: {listed}")


class _Turbostat:
    """turbostat over the whole window, one interval; its table arrives when the interval ends."""

    def __init__(self, node: Node, seconds: float):
        self._process: NodeProcess = node.spawn(
            ["sh", "-c", 'exec turbostat --quiet --interval "$1" --num_iterations 1 2>&1', "sh",
             str(max(1, round(seconds)))])
        self._lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self._lines.extend(self._process.lines()), daemon=True)
        self._reader.start()
        self._ends = time.monotonic() + seconds + TURBOSTAT_GRACE_S

    def finish(self) -> str:
        self._reader.join(max(0.0, self._ends - time.monotonic()))
        self._process.stop()
        self._reader.join(TURBOSTAT_GRACE_S)
        return "\n".join(self._lines)
