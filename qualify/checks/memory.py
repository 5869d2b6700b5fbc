"""Memory burn-in: stress-ng --vm with --verify over most of the free memory (then stressapptest where
installed), while EDAC counters and the kernel log are watched; and the installed memory against the profile.

Why: a bad DIMM on a Ceph node corrupts data silently; cheap boards fail to detect a DIMM or run it
slower than rated. Fails on any verification error, any new EDAC corrected/uncorrected count and any
machine check or EDAC message in the kernel log during the run. Sizing never asks for more than the
profile's share of MemAvailable, so the node's own services keep their room (no OOM killer).

Measurements: installed memory, populated DIMMs and each DIMM's configured speed (subject: its locator)
against the profile; verification failures, stressapptest's hardware incidents, the growth of each EDAC
counter (subject: the memory controller or DIMM) and the kernel's memory events during the run, each
with a limit of 0. An expected figure that cannot be read (no DIMM table) is unknown, never passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from qualify.durations import format_duration
from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.stressapptest import parse_stressapptest
from qualify.profile import MemorySettings, Profile
from qualify.store import RunStore, read_records, utc_now
from qualify.tools.stress_ng import GRACE_S, StressJob, StressRun, run_stress

EDAC_COUNTERS = ("mc*/ce_count mc*/ue_count mc*/dimm*/dimm_ce_count mc*/dimm*/dimm_ue_count "
                 "mc*/rank*/dimm_ce_count mc*/rank*/dimm_ue_count")
MEMORY_EVENTS = ("mce", "edac_ce", "edac_ue")
SIZE_TOLERANCE = 0.05          # MemTotal is below the installed size by the kernel's and firmware's reservations
GIB = 1 << 30


@dataclass(frozen=True)
class SatRun:
    """One stressapptest run: its command line, the seconds asked for and what it printed."""

    command: str
    seconds: int
    output: str


@dataclass(frozen=True)
class BurnIn:
    node: str
    tested_mib: int
    workers: int
    stress: StressRun
    stressapptest: SatRun | None
    stressapptest_missing: bool    # asked for by the profile, not installed on the node
    edac_dir: str
    edac_before: dict[str, int]    # counter file (relative to edac_dir) -> count
    edac_after: dict[str, int]
    kernel_events: tuple[dict[str, Any], ...]  # the run's memory/machine-check events from the burn-in's start


@dataclass(frozen=True)
class MemoryEvidence:
    inventory: dict[str, Any]      # the run's inventory: memory_kib, dimms
    burn_in: BurnIn | None
    not_run: str | None            # why the burn-in did not run (the check is skipped with it)
    how: str = ""                  # what would make it run


@pytest.mark.long
def check_memory(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    evidence = collect(node, profile, run_store)
    judge(evidence, profile.checks.memory, findings)


def collect(node: Node, profile: Profile, run_store: RunStore) -> MemoryEvidence:
    settings = profile.checks.memory
    inventory: dict[str, Any] = next((r["inventory"] for r in read_records(run_store.run_dir)
                                      if r["kind"] == "inventory"), {})
    duration = settings.duration or profile.duration
    if duration is None:
        return MemoryEvidence(inventory, None, "the memory burn-in did not run: the profile sets no length",
                              "set duration: 30m (or checks.memory.duration:) in the profile, or run with "
                              "--duration 30m (make qualify DURATION=30m)")
    node.require("stress-ng")
    path = node.proc_path("meminfo")
    available_kib = _meminfo_value(node.read_text(path), "MemAvailable")
    if available_kib is None:
        raise QualifyError(f"{node.name}: {path} has no MemAvailable line (check paths.procfs in the profile)")
    share = int(available_kib / 1024 * settings.share)
    if share < settings.min_mib:
        return MemoryEvidence(inventory, None, f"too little free memory to test: {available_kib // 1024} MiB "
                                               f"available, {settings.share:.0%} of it is {share} MiB, below "
                                               f"checks.memory.min_mib ({settings.min_mib} MiB)",
                              "stop services or VMs on the node first")
    size_mib = share if settings.max_mib is None else min(share, settings.max_mib)
    edac_dir = node.sys_path("devices/system/edac/mc")
    before = _edac_counts(node, edac_dir)
    started = utc_now()
    use_sat = settings.stressapptest and node.has_tool("stressapptest")
    stress_s = duration / 2 if use_sat else duration
    workers = max(1, int(node.run(["nproc"]).stdout.strip() or 1))
    per_worker = max(1, size_mib // workers)  # per worker in stress-ng <= 0.17; later ones split it: never more
    stress = run_stress(node, StressJob("vm", stress_s, workers=workers, verify=True,
                                        extra=("--vm-bytes", f"{per_worker}m", "--vm-keep")))
    run_store.save_raw("memory-stress-ng.txt", stress.output)
    sat = _stressapptest(node, size_mib, duration - stress_s, run_store) if use_sat else None
    events = tuple(r for r in read_records(run_store.run_dir) if r["kind"] == "event" and r.get("source") == "kernel"
                   and r.get("event") in MEMORY_EVENTS and r["t"] >= started)
    return MemoryEvidence(inventory, BurnIn(node.name, per_worker * workers, workers, stress, sat,
                                            settings.stressapptest and not use_sat, edac_dir, before,
                                            _edac_counts(node, edac_dir), events), None)


def _stressapptest(node: Node, size_mib: int, seconds: float, run_store: RunStore) -> SatRun:
    length = max(1, round(seconds))
    result = node.run(["stressapptest", "-s", str(length), "-M", str(size_mib), "-W"],
                      timeout_s=length + GRACE_S, check=False)
    run_store.save_raw("memory-stressapptest.txt", result.stdout + result.stderr)
    return SatRun(result.command, length, result.stdout + result.stderr)


def _meminfo_value(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        name, _, value = line.partition(":")
        if name == key and value.split():
            return int(value.split()[0])
    return None


def _edac_counts(node: Node, edac_dir: str) -> dict[str, int]:
    return {name: int(value) for name, value in node.read_glob(edac_dir, EDAC_COUNTERS).items()
            if value.strip().isdigit()}


def judge(evidence: MemoryEvidence, settings: MemorySettings, findings: Findings) -> None:
    judge_installed(evidence.inventory, settings, findings)
    if evidence.burn_in is None:
        findings.skip(evidence.not_run or "the burn-in did not run", how=evidence.how)
    burn_in = evidence.burn_in
    _verification(burn_in, findings)
    if burn_in.stressapptest is not None:
        _judge_stressapptest(burn_in.node, burn_in.stressapptest, burn_in.tested_mib, findings)
    elif burn_in.stressapptest_missing:
        findings.note("stressapptest is not installed (Debian package stressapptest): only stress-ng's patterns ran")
    _edac(burn_in, findings)
    messages = "; ".join(event["message"] for event in burn_in.kernel_events[:5])
    findings.measure("memory_kernel_events", len(burn_in.kernel_events), high=0,
                     text="kernel memory/machine-check errors during the burn-in",
                     detail=f"(first: {messages})" if messages else "")


def judge_installed(inventory: dict[str, Any], settings: MemorySettings, findings: Findings) -> None:
    """Installed size, DIMM count and speed from the run's inventory, against the profile."""
    total = inventory.get("memory_kib", 0) * 1024 or None
    if total or settings.expected_gib is not None:
        expected = settings.expected_gib
        findings.measure("memory_installed_bytes", total, unit="B", text="installed memory",
                         low=expected * (1 - SIZE_TOLERANCE) * GIB if expected is not None else None,
                         detail=f"(the profile expects {expected:g} GiB)" if expected is not None else "",
                         because="a DIMM is missing or not detected (reseat it)")
    dimms = [d for d in inventory.get("dimms", []) if d.get("size_mib")]
    if not dimms:
        unread = "dmidecode lists no DIMMs (no SMBIOS tables, or not root)"
        if settings.expected_dimms is not None:
            findings.measure("dimms_populated", None, low=settings.expected_dimms, high=settings.expected_dimms,
                             text="populated DIMMs", detail=unread)
        if settings.min_speed_mts is not None:
            findings.measure("dimm_configured_speed_mts", None, unit="MT/s", low=settings.min_speed_mts,
                             text="DIMM speed", detail=unread)
        return
    listing = ", ".join(f"{d['locator']} {d['size_mib'] // 1024} GiB {d.get('type') or ''} "
                        f"{d.get('configured_speed_mts') or '?'} MT/s".replace("  ", " ") for d in dimms)
    findings.measure("dimms_populated", len(dimms), low=settings.expected_dimms, high=settings.expected_dimms,
                     text="populated DIMMs", detail=f"({listing})",
                     because="a DIMM is not detected (reseat it, check the slot)")
    for dimm in dimms:
        findings.measure("dimm_configured_speed_mts", dimm.get("configured_speed_mts"), unit="MT/s",
                         low=settings.min_speed_mts, subject=dimm["locator"], text="configured speed",
                         detail=f"(rated {dimm.get('speed_mts') or '?'} MT/s)",
                         because="check the BIOS memory settings/XMP")


def _verification(burn_in: BurnIn, findings: Findings) -> None:
    stress = burn_in.stress
    failures = stress.failures
    over = f"{burn_in.workers} workers over {burn_in.tested_mib} MiB for {format_duration(stress.job.seconds)}"
    if not failures:
        stress.check(burn_in.node, what="memory burn-in")  # ended badly without a bad bit: killed, out of memory
    findings.measure("memory_verify_failures", len(failures), high=0, text="stress-ng --vm --verify failures",
                     detail=f"({over}{': ' + '; '.join(failures[:3]) if failures else ''})",
                     because="the memory returned other data than was written: a DIMM, its slot or the "
                             "memory controller is failing")
    if not failures:
        [vm] = [m for m in stress.metrics(burn_in.node) if m.stressor == "vm"]
        findings.measure("vm_bogo_ops_per_second", round(vm.bogo_ops_per_s, 1), unit="bogo ops/s",
                         text="stress-ng --vm throughput")


def _judge_stressapptest(node: str, run: SatRun, size_mib: int, findings: Findings) -> None:
    verdict = parse_stressapptest(run.output, f"{node}: {run.command}")
    over = f"over {size_mib} MiB for {format_duration(run.seconds)}"
    findings.measure("stressapptest_hardware_incidents", verdict.hardware_incidents, high=0,
                     text="stressapptest hardware incidents",
                     detail=f"({over}{': ' + '; '.join(verdict.errors[:3]) if verdict.errors else ''})")
    if not verdict.passed and not verdict.hardware_incidents:
        findings.problem(f"stressapptest {over}: FAIL; {'; '.join(verdict.errors[:3]) or 'no error reported'}",
                         name="stressapptest_status")


def _edac(burn_in: BurnIn, findings: Findings) -> None:
    if not burn_in.edac_after:
        findings.note(f"no EDAC counters under {burn_in.edac_dir} (no ECC memory, or no EDAC driver loaded): "
                      f"corrected errors are not visible")
        return
    for name, count in sorted(burn_in.edac_after.items()):
        old = burn_in.edac_before.get(name, 0)
        kind = "uncorrected" if "ue_count" in name else "corrected"
        findings.measure(f"edac_{kind}_errors_during_run", count - old, high=0, subject=name.rpartition("/")[0],
                         text=f"EDAC {kind} memory errors during the burn-in",
                         detail=f"({old} -> {count}, {burn_in.edac_dir}/{name})", because="a DIMM is failing")
