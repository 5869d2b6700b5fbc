"""CPU correctness: known-answer work whose results are verified, pinned to each logical CPU in turn, then
on all CPUs at once; a wrong result names the CPU, its core and its type.

Why: Meta and Google found about 1 in 1000 server CPUs computing wrong results silently ("silent
data corruption", "cores that don't count"); Intel's OpenDCDiag pins known-answer tests to each core,
retests and blames a core. The seed's engineering-sample board froze under Linux; a part like that
can as well compute wrongly. stress-ng's verifying stressors (`--verify`: cpu methods, hash, memcpy,
zlib, qsort, crypt) check every result; a failing CPU is retested to tell a reproducible fault from
a one-off. The pinning is read back from the kernel (`ps` psr: the processor each worker last ran
on) while the work runs, not taken from the command line. A machine check meanwhile fails the run
through the kernel-log watch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from qualify.durations import format_duration
from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.cpu_topology import LogicalCpu, parse_cpulist, topology
from qualify.parsers.ps import parse_ps_psr
from qualify.profile import CpuCorrectnessSettings, Profile
from qualify.store import RunStore
from qualify.tools.stress_ng import StressJob, StressRun, exit_status, run_stress

STREAM = "cpu_correctness"
FAILED_STATUS = 2  # stress-ng: "a stressor failed" (how --verify reports a wrong result)
UNTRUSTWORTHY_METRICS = 7  # stress-ng: bogo-ops metrics untrustworthy (a busy machine); results were still verified


@dataclass(frozen=True)
class Attempt:
    returncode: int
    failures: tuple[str, ...]
    observed_cpus: tuple[int, ...]      # processors the workers were seen on while running
    seconds: float

    @property
    def wrong(self) -> bool:
        return bool(self.failures) or self.returncode == FAILED_STATUS


@dataclass
class CpuEvidence:
    cpu: LogicalCpu
    first: Attempt
    retests: list[Attempt] = field(default_factory=list)


@dataclass
class Evidence:
    stressors: list[str]
    unverifiable: list[str]
    per_cpu: list[CpuEvidence]
    all_cpus: Attempt | None
    unavailable: list[LogicalCpu] = field(default_factory=list)  # online, but not in our processes' affinity


def _job(settings: CpuCorrectnessSettings, stressors: list[str], seconds: float, cpu: int | None) -> StressJob:
    """One stress-ng run of every stressor at once: one worker each on `cpu`, or one per CPU on all."""
    first, *others = stressors
    extra: list[str] = []
    for name in others:
        extra += [f"--{name}", "1" if cpu is not None else "0"]
    if "cpu" in stressors:
        extra += ["--cpu-method", settings.cpu_method]
    return StressJob(first, seconds, workers=1 if cpu is not None else 0, verify=True,
                     cpus=[cpu] if cpu is not None else None, metrics=False, extra=tuple(extra))


def _attempt(node: Node, job: StressJob, interval: float, store: RunStore, label: str) -> Attempt:
    """Run the job while reading back, every `interval`, which processors its workers run on."""
    result: list[StressRun] = []
    worker = threading.Thread(target=lambda: result.append(run_stress(node, job)), daemon=True)
    started = time.monotonic()
    worker.start()
    seen: set[int] = set()
    while worker.is_alive():
        worker.join(interval)
        if worker.is_alive():
            ps = node.run(["ps", "-eo", "pid=,psr=,args="], check=False)
            seen |= {p.psr for p in parse_ps_psr(ps.stdout) if p.args.startswith("stress-ng")}
    run = result[0]
    store.save_raw(f"cpu-correctness-{label}.txt", f"$ {run.command}\n{run.output}")
    attempt = Attempt(run.returncode, tuple(run.failures), tuple(sorted(seen)), time.monotonic() - started)
    store.samples(STREAM).append({"t": time.time(), "run": label, "returncode": attempt.returncode,
                                  "failures": list(attempt.failures), "observed_cpus": list(attempt.observed_cpus)})
    if run.returncode not in (0, FAILED_STATUS, UNTRUSTWORTHY_METRICS) and not run.failures:
        run.check(node.name, what=f"known-answer run ({label})")  # stress-ng itself could not run: the node's error
    return attempt


def collect(node: Node, settings: CpuCorrectnessSettings, store: RunStore) -> Evidence:
    node.require("stress-ng")
    sysfs = node.paths.sysfs
    cpu_dir = f"{sysfs}/devices/system/cpu"
    online = node.read_text(f"{cpu_dir}/online") or ""
    files = node.read_glob(cpu_dir, "cpu[0-9]*/topology/core_id cpu[0-9]*/topology/physical_package_id")
    cpus = topology(online, files, node.read_text(f"{sysfs}/devices/cpu_core/cpus"),
                    node.read_text(f"{sysfs}/devices/cpu_atom/cpus"))
    # The kernel's own view of where our processes may run (a cpuset or affinity mask can hide CPUs)
    status = node.run(["cat", "/proc/self/status"], check=False).stdout
    allowed_line = next((line for line in status.splitlines() if line.startswith("Cpus_allowed_list:")), None)
    allowed = set(parse_cpulist(allowed_line.split(":", 1)[1])) if allowed_line else {c.cpu for c in cpus}
    unavailable = [c for c in cpus if c.cpu not in allowed]
    cpus = [c for c in cpus if c.cpu in allowed]
    listed = node.run(["stress-ng", "--verifiable"], check=False)
    verifiable = set(listed.stdout.split()) if listed.returncode == 0 else set(settings.stressors)
    stressors = [s for s in settings.stressors if s in verifiable]
    unverifiable = [s for s in settings.stressors if s not in verifiable]
    per_cpu = []
    if stressors:
        for cpu in cpus:
            job = _job(settings, stressors, settings.per_cpu, cpu.cpu)
            evidence = CpuEvidence(cpu, _attempt(node, job, settings.pin_sample_interval, store, f"cpu{cpu.cpu}"))
            for number in range(settings.retests if evidence.first.wrong else 0):
                evidence.retests.append(_attempt(node, job, settings.pin_sample_interval, store,
                                                 f"cpu{cpu.cpu}-retest{number + 1}"))
            per_cpu.append(evidence)
    everything = _attempt(node, _job(settings, stressors, settings.all_cpus, None), settings.pin_sample_interval,
                          store, "all-cpus") if stressors else None
    return Evidence(stressors, unverifiable, per_cpu, everything, unavailable)


def judge(evidence: Evidence, settings: CpuCorrectnessSettings, findings: Findings) -> None:
    if evidence.unverifiable:
        findings.note(f"stressors this stress-ng cannot verify, left out: {', '.join(evidence.unverifiable)}")
    if not evidence.stressors:
        findings.skip("none of the profile's stressors can verify its results with this stress-ng "
                      f"({', '.join(evidence.unverifiable)})",
                      how="install a newer stress-ng, or list verifiable stressors in checks.cpu_correctness")
    findings.note(f"known-answer work ({', '.join(evidence.stressors)}, --verify) for "
                  f"{format_duration(settings.per_cpu)} on each of {len(evidence.per_cpu)} logical CPUs in turn, "
                  f"then {format_duration(settings.all_cpus)} on all at once")
    if evidence.unavailable:
        findings.not_qualified(
            f"{len(evidence.unavailable)} online CPU(s) are outside the affinity of qualify's processes on the node "
            f"and were not tested: {', '.join(c.label for c in evidence.unavailable)}",
            "run qualify's node commands without a cpuset/affinity limit (e.g. outside a container)")
    unpinned = []
    for item in evidence.per_cpu:
        wrong = [a for a in (item.first, *item.retests) if a.wrong]
        detail = ""
        if item.first.wrong:
            repeats = sum(a.wrong for a in item.retests)
            first = (item.first.failures or (f"stress-ng {exit_status(item.first.returncode)}",))[0]
            verdict = ("reproducible" if repeats else "one-off (not reproduced)") if item.retests else "not retested"
            detail = f"— {first}; {verdict}: failed again in {repeats} of {len(item.retests)} retests"
        findings.measure("verification_failures_count", len(wrong), unit="runs", high=0, subject=item.cpu.label,
                         text="known-answer runs with a wrong result", detail=detail,
                         because="a CPU that computes a wrong result corrupts data silently: replace it (or the "
                                 "part), and retest after a BIOS/microcode update")
        others = set(item.first.observed_cpus) - {item.cpu.cpu}
        if others:
            unpinned.append(f"{item.cpu.label}: workers also seen on CPU {', '.join(map(str, sorted(others)))}")
        elif not item.first.observed_cpus:
            unpinned.append(f"{item.cpu.label}: workers not observed while running")
    seen_right = sum(1 for i in evidence.per_cpu if set(i.first.observed_cpus) == {i.cpu.cpu})
    findings.measure("pinning_confirmed_cpus_count", seen_right, unit="CPUs", text="CPUs where the work was seen "
                     "running on that CPU alone (read back from /proc)", low=len(evidence.per_cpu), warn=True,
                     detail=f"of {len(evidence.per_cpu)}")
    for sentence in unpinned:
        findings.note(f"pinning: {sentence}")
    if evidence.all_cpus is not None:
        failures = evidence.all_cpus.failures
        findings.measure("all_cpus_verification_failures_count", int(evidence.all_cpus.wrong), unit="runs", high=0,
                         text="known-answer run on all CPUs at once with a wrong result",
                         detail=f"— {failures[0]}" if failures else "",
                         because="a fault under full load (heat, power delivery, shared caches) is as real as one "
                                 "on a single core")


def check_cpu_correctness(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.cpu_correctness
    judge(collect(node, settings, run_store), settings, findings)
