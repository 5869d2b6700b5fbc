"""Idle power and C-states: package power (RAPL) and per-CPU C-state residency over an idle window.

Why: the seed's first server idled at 135 W; on the new nodes C-states and ASPM made the difference.
A node that never reaches its deep C-states burns power all day, and idle is where boards freeze.
Judged: average package power against checks.idle_power.max_package_w, and the share of the window
the CPUs spend in their deepest enabled state against min_deepest_residency. What may block deep
states is named: the ASPM policy, PCIe devices with ASPM disabled, disabled cpuidle states. Where
turbostat is installed its package C-state columns (Pkg%pc2..pc10) are recorded too.

Only an idle node can be judged: the CPU utilisation over the window (/proc/stat at its start and end)
comes first. Above checks.idle_power.max_busy_percent (a Proxmox node with running VMs, a backup) the
power and residency are reported but not judged and the check ends `skipped` with the reason
("not idle: 43% busy — idle power not judged"), listed as not qualified: never `failed` for watts a
workload drew.

Evidence: samples/idle_cstates.jsonl (cumulative residency per state), samples/telemetry-idle_power.jsonl
(power, this window only), raw/idle-evidence.json (window, /proc/stat lines, ASPM policy).

Measurements: busy_percent (%), idle_package_power_watts (W, ≤ max_package_w),
deepest_cstate_residency_percent (%, ≥ min_deepest_residency), cstate_residency_percent per state.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node, NodeProcess
from qualify.parsers.lspci import parse_lspci_vv
from qualify.parsers.proc_stat import busy_percent, parse_cpu_line
from qualify.parsers.turbostat import parse_turbostat
from qualify.profile import IdlePowerSettings, Profile
from qualify.store import JsonLines, RunStore, read_samples
from qualify.telemetry import Telemetry, load_check_telemetry, start_telemetry, stream_for
from qualify.telemetry.series import window

NAME = "idle_power"
STREAM = "idle_cstates"
EVIDENCE_FILE = "idle-evidence.json"
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


@dataclass(frozen=True)
class IdleEvidence:
    telemetry: Telemetry             # this check's own stream
    start: float                     # the window, controller time
    end: float
    first: list[CpuidleState]        # cpuidle at the start and the end of the window
    last: list[CpuidleState]
    stat_start: str | None           # /proc/stat at the start and the end
    stat_end: str | None
    aspm_policy: str | None          # module/pcie_aspm/parameters/policy
    lspci: str | None                # lspci -vv, where installed
    turbostat: str | None


def check_idle_power(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    collect(node, profile, run_store, findings)
    judge(load_evidence(run_store.run_dir), profile.checks.idle_power, findings)


def collect(node: Node, profile: Profile, run_store: RunStore, findings: Findings) -> None:
    """The idle window: cpuidle samples, telemetry, /proc/stat at both ends, what may block deep states."""
    settings = profile.checks.idle_power
    cpu_dir = node.sys_path("devices/system/cpu")
    powercap = node.sys_path("class/powercap")
    if not node.read_glob(powercap, "intel-rapl:[0-9]*/name"):
        findings.skip(f"no RAPL package power under {powercap} (virtual machine, or the intel_rapl driver is "
                      f"not loaded): idle power cannot be measured",
                      how="run it on the bare-metal node; there, `modprobe intel_rapl_msr` (Intel, and AMD Zen "
                          "on kernels that have its RAPL: the older amd_energy hwmon is not read), or measure the "
                          "wall power with a meter")
    if not _cpuidle(node, cpu_dir):
        findings.skip(f"no cpuidle states under {cpu_dir}/cpu*/cpuidle (cpuidle disabled, or a virtual machine)",
                      how="boot without cpuidle.off=1 / idle=poll and let intel_idle or acpi_idle load "
                          "(C-states enabled in the BIOS)")
    length = settings.window or min(profile.duration or MAX_DEFAULT_WINDOW_S, MAX_DEFAULT_WINDOW_S)
    time.sleep(settings.settle if settings.settle is not None else min(length / 4, MAX_DEFAULT_SETTLE_S))
    telemetry = start_telemetry(node, run_store, profile.telemetry, stream_for(NAME))
    turbostat = _Turbostat(node, length) if node.has_tool("turbostat") else None
    samples = run_store.samples(STREAM)
    try:
        start = time.time()
        stat_start = node.read_text(node.proc_path("stat"))
        _sample(node, cpu_dir, samples, start)
        while (left := length - (time.time() - start)) > 0:
            time.sleep(min(settings.interval, left))
            _sample(node, cpu_dir, samples, start)
        stat_end = node.read_text(node.proc_path("stat"))
        end = time.time()
    finally:
        telemetry.stop()
        turbostat_text = turbostat.finish() if turbostat else None
    lspci = node.run(["lspci", "-vv"], check=False).stdout if node.has_tool("lspci") else None
    if lspci is not None:
        run_store.save_raw("idle-lspci-vv.txt", lspci)
    if turbostat_text is not None:
        run_store.save_raw("idle-turbostat.txt", turbostat_text)
    policy = node.read_text(node.sys_path("module/pcie_aspm/parameters/policy"))
    run_store.save_raw(EVIDENCE_FILE, json.dumps({
        "start": start, "end": end, "stat_start": _first_line(stat_start), "stat_end": _first_line(stat_end),
        "aspm_policy": policy.strip() if policy else None}))


def _first_line(text: str | None) -> str | None:
    return text.split("\n", 1)[0] if text else None


def load_evidence(run_dir: Path) -> IdleEvidence:
    """The window as stored: re-judge or plot any run."""
    try:
        stored = json.loads((run_dir / "raw" / EVIDENCE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise QualifyError(f"{run_dir}: no readable raw/{EVIDENCE_FILE} ({exc}); the idle window did not end") from None
    samples = read_samples(run_dir, STREAM)
    raw = {name: (run_dir / "raw" / name) for name in ("idle-lspci-vv.txt", "idle-turbostat.txt")}
    text = {name: path.read_text() if path.is_file() else None for name, path in raw.items()}
    return IdleEvidence(telemetry=load_check_telemetry(run_dir, NAME), start=stored["start"], end=stored["end"],
                        first=_states(samples[0]) if samples else [], last=_states(samples[-1]) if samples else [],
                        stat_start=stored.get("stat_start"), stat_end=stored.get("stat_end"),
                        aspm_policy=stored.get("aspm_policy"), lspci=text["idle-lspci-vv.txt"],
                        turbostat=text["idle-turbostat.txt"])


def _cpuidle(node: Node, cpu_dir: str) -> list[CpuidleState]:
    return _states_from_files(node.read_glob(cpu_dir, CPUIDLE_FILES))


def _states_from_files(files: dict[str, str]) -> list[CpuidleState]:
    states = []
    for rel, name in files.items():
        cpu_part, _, state_part, _ = rel.split("/")
        if rel.endswith("/name"):
            base = rel.removesuffix("/name")
            states.append(CpuidleState(cpu=int(cpu_part[3:]), index=int(state_part[5:]), name=name.strip(),
                                       time_us=int(files.get(f"{base}/time", "0") or 0),
                                       disabled=files.get(f"{base}/disable", "0").strip() == "1"))
    return sorted(states, key=lambda s: (s.cpu, s.index))


def _sample(node: Node, cpu_dir: str, samples: JsonLines, start: float) -> None:
    """Totals per state (for the plot) and every CPU's states (for the judge), as read."""
    states = _cpuidle(node, cpu_dir)
    totals: dict[str, int] = {}
    for state in states:
        totals[state.name] = totals.get(state.name, 0) + state.time_us
    samples.append({"t": round(time.time() - start, 3), "cpus": len({s.cpu for s in states}), "time_us": totals,
                    "states": [[s.cpu, s.index, s.name, s.time_us, int(s.disabled)] for s in states]})


def _states(sample: dict) -> list[CpuidleState]:
    return [CpuidleState(cpu, index, name, time_us, bool(disabled))
            for cpu, index, name, time_us, disabled in sample.get("states", [])]


# ---------------------------------------------------------------- judging (pure)


def judge(evidence: IdleEvidence, settings: IdlePowerSettings, findings: Findings) -> None:
    """Busy first: an idle node's power and residency are judged; a busy node's are reported, then skipped."""
    seconds = evidence.end - evidence.start
    findings.metric("window_s", round(seconds, 1))
    busy = _busy(evidence)
    findings.measure("busy_percent", None if busy is None else round(busy, 1), unit="%",
                     text="CPU utilisation over the idle window", detail="(/proc/stat)")
    idle = busy is not None and busy <= settings.max_busy_percent
    if (dropped := evidence.telemetry.dropped_sentence()) is not None:
        findings.note(dropped)
    blockers = _blockers(evidence, findings)
    _power(evidence, settings if idle else None, findings)
    _residency(evidence, seconds, settings if idle else None, blockers, findings)
    if evidence.turbostat is not None:
        _package_cstates(evidence.turbostat, findings)
    if not idle:
        why = (f"not idle: {busy:.0f}% busy (above checks.idle_power.max_busy_percent "
               f"{settings.max_busy_percent:g}%)" if busy is not None else
               "the node's CPU utilisation could not be read (/proc/stat)")
        findings.skip(f"{why} — idle power and C-state residency not judged",
                      how="run it while the node is idle (stop VMs, containers and backups for the window), or raise "
                          "checks.idle_power.max_busy_percent")


def _busy(evidence: IdleEvidence) -> float | None:
    if not evidence.stat_start or not evidence.stat_end:
        return None
    return busy_percent(parse_cpu_line(evidence.stat_start), parse_cpu_line(evidence.stat_end))


def _power(evidence: IdleEvidence, settings: IdlePowerSettings | None, findings: Findings) -> None:
    telemetry = evidence.telemetry
    in_window = window(telemetry.t, telemetry.axis(evidence.start), telemetry.axis(evidence.end))
    power = telemetry.combined(telemetry.package_power(), "sum")[in_window]
    if not power.size or np.isnan(power).all():
        raise QualifyError("the RAPL package energy counter gave no reading during the idle window")
    findings.measure("idle_package_power_watts", round(float(np.nanmean(power)), 2), unit="W",
                     high=settings.max_package_w if settings else None, text="idle package power averaged",
                     detail=f"over {evidence.end - evidence.start:.0f} s (peak {np.nanmax(power):.1f} W)",
                     because="the node burns this much doing nothing (C-states, ASPM, BIOS power settings)")


def _residency(evidence: IdleEvidence, seconds: float, settings: IdlePowerSettings | None, blockers: list[str],
               findings: Findings) -> None:
    first, last = evidence.first, evidence.last
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
    for name, share in per_state.items():
        findings.measure("cstate_residency_percent", round(100 * share, 2), unit="%", subject=name,
                         text="share of the idle window")
    deepest = max((s for s in last if not s.disabled and s.name != "POLL"), key=lambda s: s.index, default=None)
    if deepest is None:
        findings.problem("every cpuidle state but POLL is disabled: the CPUs never sleep")
        return
    findings.metric("deepest_cstate", deepest.name)
    cause = (f"what may block deep C-states: {'; '.join(blockers)}" if blockers else
             "nothing the node exposes explains it (check the BIOS C-state and package C-state limits, and "
             "`powertop` for busy devices)")
    findings.measure("deepest_cstate_residency_percent",
                     round(100 * float(np.mean(deepest_shares)), 1) if deepest_shares else 0.0, unit="%",
                     low=100 * settings.min_deepest_residency if settings else None,
                     text=f"the CPUs' time in their deepest C-state {deepest.name}",
                     detail=f"(average of {len(cpus)} CPUs over the idle window)", because=cause)


def _blockers(evidence: IdleEvidence, findings: Findings) -> list[str]:
    """What the node shows that keeps CPUs or the package out of deep C-states (ASPM recorded as metrics)."""
    found = []
    disabled = sorted({s.name for s in evidence.last if s.disabled})
    if disabled:
        found.append(f"cpuidle state(s) {', '.join(disabled)} disabled")
    policy = evidence.aspm_policy
    current = next((w.strip("[]") for w in (policy or "").split() if w.startswith("[")), None)
    findings.metric("aspm_policy", current)
    if current == "performance":
        found.append("ASPM policy is 'performance' (/sys/module/pcie_aspm/parameters/policy): PCIe links never "
                     "enter L0s/L1")
    if evidence.lspci is not None:
        devices = parse_lspci_vv(evidence.lspci, "lspci -vv")
        findings.metric("aspm_per_device", {d.slot: d.aspm for d in devices if d.aspm})
        off = [d for d in devices if d.aspm == "Disabled"]
        if off:
            listed = ", ".join(f"{d.slot} ({d.description.split(':')[0]})" for d in off[:6])
            found.append(f"ASPM disabled on {len(off)} PCIe device(s): {listed}")
    return found


def _package_cstates(text: str, findings: Findings) -> None:
    try:
        interval = parse_turbostat(text, "turbostat")[-1]
    except QualifyError as exc:
        findings.note(f"turbostat gave no usable table: {exc}")
        return
    for name, share in interval.package_cstates.items():
        findings.measure("package_cstate_residency_percent", share, unit="%", subject=name,
                         text="turbostat package C-state")


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
