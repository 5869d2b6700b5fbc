"""Memory burn-in: stress-ng --vm with --verify over most of the free memory (then stressapptest where
installed), while EDAC counters and the kernel log are watched; and the installed memory against the profile.

Why: a bad DIMM on a Ceph node corrupts data silently; cheap boards fail to detect a DIMM or run it
slower than rated. Fails on any verification error, any new EDAC corrected/uncorrected count and any
machine check or EDAC message in the kernel log during the run. Sizing never asks for more than the
profile's share of MemAvailable, so the node's own services keep their room (no OOM killer).
"""

from __future__ import annotations

from typing import Any

import pytest

from qualify.durations import format_duration
from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.stress_ng import parse_stress_ng, stress_ng_failures
from qualify.parsers.stressapptest import parse_stressapptest
from qualify.profile import MemorySettings, Profile
from qualify.store import RunStore, read_records, utc_now

GRACE_S = 60.0                 # stress-ng/stressapptest may take this long to map and release memory
EDAC_COUNTERS = ("mc*/ce_count mc*/ue_count mc*/dimm*/dimm_ce_count mc*/dimm*/dimm_ue_count "
                 "mc*/rank*/dimm_ce_count mc*/rank*/dimm_ue_count")
MEMORY_EVENTS = ("mce", "edac_ce", "edac_ue")
SIZE_TOLERANCE = 0.05          # MemTotal is below the installed size by the kernel's and firmware's reservations


@pytest.mark.long
def check_memory(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    settings = profile.checks.memory
    inventory = next((r["inventory"] for r in read_records(run_store.run_dir) if r["kind"] == "inventory"), {})
    _installed(inventory, settings, findings)
    duration = settings.duration or profile.duration
    if duration is None:
        findings.skip("the memory burn-in needs a length: set duration: (or checks.memory.duration:) in the "
                      "profile, or DURATION=30m")
    node.require("stress-ng")
    size_mib = _size_mib(node, settings, findings)
    edac_dir = node.sys_path("devices/system/edac/mc")
    before = _edac_counts(node, edac_dir)
    started = utc_now()
    use_sat = settings.stressapptest and node.has_tool("stressapptest")
    stress_s = duration / 2 if use_sat else duration
    _stress_ng(node, size_mib, stress_s, run_store, findings)
    if use_sat:
        _stressapptest(node, size_mib, duration - stress_s, run_store, findings)
    elif settings.stressapptest:
        findings.note("stressapptest is not installed (Debian package stressapptest): only stress-ng's patterns ran")
    _edac_changes(edac_dir, before, _edac_counts(node, edac_dir), findings)
    _kernel_events(run_store, started, findings)


def _installed(inventory: dict[str, Any], settings: MemorySettings, findings: Findings) -> None:
    """Installed size, DIMM count and speed from the run's inventory, against the profile."""
    total_gib = inventory.get("memory_kib", 0) / 2**20
    dimms = [d for d in inventory.get("dimms", []) if d.get("size_mib")]
    if total_gib:
        findings.metric("memory_gib", round(total_gib, 1))
    if settings.expected_gib is not None:
        if total_gib < settings.expected_gib * (1 - SIZE_TOLERANCE):
            findings.problem(f"the node shows {total_gib:.1f} GiB of memory, the profile expects "
                             f"{settings.expected_gib:g} GiB: a DIMM is missing or not detected (reseat it)")
        else:
            findings.note(f"{total_gib:.1f} GiB of memory, as the profile expects ({settings.expected_gib:g} GiB)")
    if not dimms:
        if settings.expected_dimms or settings.min_speed_mts:
            findings.note("DIMM count and speed unknown: dmidecode lists no DIMMs (no SMBIOS tables, or not root)")
        return
    findings.metric("dimms", len(dimms))
    listing = ", ".join(f"{d['locator']} {d['size_mib'] // 1024} GiB {d.get('type') or ''} "
                        f"{d.get('configured_speed_mts') or '?'} MT/s".replace("  ", " ") for d in dimms)
    if settings.expected_dimms is not None and len(dimms) != settings.expected_dimms:
        findings.problem(f"dmidecode lists {len(dimms)} populated DIMM slot(s) ({listing}), the profile expects "
                         f"{settings.expected_dimms}: a DIMM is not detected (reseat it, check the slot)")
    else:
        findings.note(f"DIMMs: {listing}")
    minimum = settings.min_speed_mts or 0
    for dimm in (d for d in dimms if (d.get("configured_speed_mts") or 0) < minimum):
        findings.problem(f"DIMM {dimm['locator']} runs at {dimm.get('configured_speed_mts') or 'an unknown speed'} "
                         f"MT/s (rated {dimm.get('speed_mts') or '?'} MT/s), below the profile's minimum "
                         f"{settings.min_speed_mts} MT/s (check the BIOS memory settings/XMP)")


def _size_mib(node: Node, settings: MemorySettings, findings: Findings) -> int:
    path = node.proc_path("meminfo")
    available_kib = _meminfo_value(node.read_text(path), "MemAvailable")
    if available_kib is None:
        raise QualifyError(f"{node.name}: {path} has no MemAvailable line (check paths.procfs in the profile)")
    share = int(available_kib / 1024 * settings.share)
    findings.metric("available_mib", available_kib // 1024)
    if share < settings.min_mib:
        findings.skip(f"too little free memory to test: {available_kib // 1024} MiB available, "
                      f"{settings.share:.0%} of it is {share} MiB, below checks.memory.min_mib "
                      f"({settings.min_mib} MiB); stop services or VMs on the node first")
    size = share if settings.max_mib is None else min(share, settings.max_mib)
    findings.metric("tested_mib", size)
    return size


def _meminfo_value(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        name, _, value = line.partition(":")
        if name == key and value.split():
            return int(value.split()[0])
    return None


def _stress_ng(node: Node, size_mib: int, seconds: float, run_store: RunStore, findings: Findings) -> None:
    workers = max(1, int(node.run(["nproc"]).stdout.strip() or 1))
    per_worker = max(1, size_mib // workers)  # per worker in stress-ng <= 0.17; later ones split it: never more
    length = max(1, round(seconds))
    argv = ["stress-ng", "--vm", str(workers), "--vm-bytes", f"{per_worker}m", "--vm-keep", "--verify",
            "--timeout", f"{length}s", "--metrics-brief"]
    result = node.run(argv, timeout_s=length + GRACE_S, check=False)
    output = result.stdout + result.stderr
    run_store.save_raw("memory-stress-ng.txt", output)
    failures = stress_ng_failures(output)
    findings.metric("verify_failures", len(failures))
    if failures:
        findings.problem(f"stress-ng --vm --verify found memory errors in {per_worker * workers} MiB over "
                         f"{format_duration(length)}: {'; '.join(failures[:3])}")
        return
    if result.returncode != 0:
        tail = "; ".join(output.strip().splitlines()[-2:]) or "no output"
        raise QualifyError(f"{node.name}: stress-ng --vm ended with exit status {result.returncode} and no "
                           f"verification failure (killed, out of memory?): {tail}")
    [metrics] = [m for m in parse_stress_ng(output, f"{node.name}: {result.command}") if m.stressor == "vm"]
    findings.metric("vm_bogo_ops_per_s", round(metrics.bogo_ops_per_s, 1))
    findings.note(f"stress-ng --vm --verify: {workers} workers over {per_worker * workers} MiB for "
                  f"{format_duration(length)}, no verification error ({metrics.bogo_ops_per_s:.0f} bogo ops/s)")


def _stressapptest(node: Node, size_mib: int, seconds: float, run_store: RunStore, findings: Findings) -> None:
    length = max(1, round(seconds))
    result = node.run(["stressapptest", "-s", str(length), "-M", str(size_mib), "-W"],
                      timeout_s=length + GRACE_S, check=False)
    output = result.stdout + result.stderr
    run_store.save_raw("memory-stressapptest.txt", output)
    verdict = parse_stressapptest(output, f"{node.name}: {result.command}")
    findings.metric("stressapptest_incidents", verdict.hardware_incidents)
    if verdict.passed:
        findings.note(f"stressapptest over {size_mib} MiB for {format_duration(length)}: PASS")
    else:
        findings.problem(f"stressapptest over {size_mib} MiB for {format_duration(length)}: FAIL with "
                         f"{verdict.hardware_incidents} hardware incident(s); {'; '.join(verdict.errors[:3])}")


def _edac_counts(node: Node, edac_dir: str) -> dict[str, int]:
    return {name: int(value) for name, value in node.read_glob(edac_dir, EDAC_COUNTERS).items()
            if value.strip().isdigit()}


def _edac_changes(edac_dir: str, before: dict[str, int], after: dict[str, int], findings: Findings) -> None:
    if not after:
        findings.note(f"no EDAC counters under {edac_dir} (no ECC memory, or no EDAC driver loaded): "
                      f"corrected errors are not visible")
        return
    risen = {name: (before.get(name, 0), count) for name, count in after.items() if count > before.get(name, 0)}
    findings.metric("edac_new_errors", sum(new - old for old, new in risen.values()))
    for name, (old, new) in sorted(risen.items()):
        kind = "uncorrected" if "ue_count" in name else "corrected"
        findings.problem(f"EDAC {kind} memory errors rose from {old} to {new} during the burn-in "
                         f"({edac_dir}/{name}): a DIMM is failing")
    if not risen:
        findings.note(f"EDAC: {len(after)} counters under {edac_dir}, none rose during the burn-in")


def _kernel_events(run_store: RunStore, started: str, findings: Findings) -> None:
    events = [r for r in read_records(run_store.run_dir) if r["kind"] == "event" and r.get("source") == "kernel"
              and r.get("event") in MEMORY_EVENTS and r["t"] >= started]
    findings.metric("memory_kernel_events", len(events))
    for event in events[:5]:
        findings.problem(f"the kernel reported a memory/machine-check error during the burn-in: {event['message']}")
