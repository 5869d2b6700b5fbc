"""Second-hand SSD acceptance: accept or reject each drive of the profile on its SMART health, its
self-test log, published defects of its model and firmware, and its PCIe link.

Why: used enterprise drives bought as "only a few thousand hours" behind M.2 -> MiniSAS-HD -> U.2
adapter chains. Rejected: a drive that says it is failing (SMART status, critical-warning bits),
is worn (percentage used), has spare below its threshold, media or uncorrected errors, reallocated,
pending or offline-uncorrectable sectors (ATA 5/197/198), grown defects (SAS), a failed entry
anywhere in its self-test log, far more power-on hours than the seller claimed, most of its rated
endurance written, ran too hot, sits within 10 % of a published power-on-hour cliff of its
firmware, or whose PCIe link trained slower or narrower than the drive can (a bad adapter or
cable), or that logged uncorrectable PCIe errors. A figure the drive should report but does not is
`unknown`, never passed over. Each drive gets one line a buyer can act on ("accept" / "reject:
<first reason>" / "unknown: <what could not be checked>"). Read-only: runs on any named drive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qualify.errors import ParseError
from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.lspci import PciDevice, PciLink
from qualify.parsers.smartctl import DriveHealth, parse_smartctl_json
from qualify.profile import Profile, SsdHealthSettings, StorageDrive
from qualify.storage import resolve_drive
from qualify.storage.figures import DriveJudgement, Figure
from qualify.storage.health import (
    pci_address,
    pcie_function,
    read_aer_counters,
    read_lspci,
    smartctl_json,
    with_nvme_cli,
)
from qualify.storage.known_issues import KnownIssues, builtin_issues, matching
from qualify.storage.named import named_drives
from qualify.store import RunStore

TB = 1e12
HOURS_PER_YEAR = 8766
VERDICT = "ssd_verdict"  # the buyer's line per drive, a measurement the report can show first


@dataclass(frozen=True)
class DriveEvidence:
    label: str
    drive: StorageDrive
    device: str
    is_loop: bool
    health: DriveHealth | None = None
    smart_problem: str | None = None  # why SMART could not be read
    pci_address: str | None = None
    pcie: PciDevice | None = None
    aer: dict[str, int] = field(default_factory=dict)


def check_ssd_health(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    drives = named_drives(profile.checks.storage, findings, how="name the drives under checks.storage.drives")
    settings = profile.checks.ssd_health
    known = builtin_issues()
    evidence = [collect(node, drive, run_store) for drive in drives]
    judged = judge(evidence, settings, known)
    if not judged:
        findings.skip("no drive has SMART data or a PCIe link (loop devices); nothing to accept or reject")
    findings.metric("verdicts", {j.subject: j.line for j in judged})
    findings.metric("models", {j.subject: j.model for j in judged if j.model})  # the buyer's line names it
    for judgement in judged:
        judgement.record(findings, VERDICT)
    findings.note(f"known drive issues: {len(known.issues)} published defects dated {known.date}"
                  + (f" + {len(settings.known_issues)} from the profile" if settings.known_issues else ""))


def collect(node: Node, drive: StorageDrive, run_store: RunStore) -> DriveEvidence:
    """What the node says about the drive (I/O only); raw outputs are stored as they arrive."""
    label = drive.serial or drive.wwn or ""
    device = resolve_drive(node, drive)
    output = smartctl_json(node, device, "-x")
    run_store.save_raw(f"ssd-{label}-smartctl-x.json", output)
    health, problem = None, None
    try:
        health = parse_smartctl_json(output, f"{node.name}: smartctl -x -j {device.path}")
        if health.protocol == "NVMe":
            health = with_nvme_cli(node, device, health)
    except ParseError as exc:
        problem = str(exc)
    address = None if device.is_loop else pci_address(node, device)
    function, aer = None, {}
    if address is not None:
        text = read_lspci(node, address)
        run_store.save_raw(f"ssd-{label}-lspci-vv.txt", text)
        function = pcie_function(text, f"{node.name}: lspci -vv -s {address}")
        aer = read_aer_counters(node, address)
    return DriveEvidence(label=label, drive=drive, device=device.path, is_loop=device.is_loop, health=health,
                         smart_problem=problem, pci_address=address, pcie=function, aer=aer)


def judge(evidence: list[DriveEvidence], settings: SsdHealthSettings, known: KnownIssues) -> list[DriveJudgement]:
    """Pure: one judgement per drive that has anything to judge (a loop device without SMART has not)."""
    judged = []
    for ev in evidence:
        if ev.health is None and ev.is_loop and ev.pcie is None:
            continue
        out = DriveJudgement(ev.label)
        out.notes.append(ev.device)
        if ev.health is not None:
            judge_health(ev.health, ev.drive, settings, out, (*known.issues, *settings.known_issues))
        else:
            out.figures.append(Figure("smart_readable", None, low=1, text="SMART",
                                      detail=ev.smart_problem or "smartctl gave nothing"))
        if ev.pci_address is not None:
            if ev.pcie is None or ev.pcie.link_status is None:  # the link is judged on every PCIe drive: say it
                out.figures.append(Figure(
                    "pcie_link_readable", None, low=1, text="PCIe link",
                    detail=f"(lspci -vv shows no link status for {ev.pci_address}: qualify not run as root, or no "
                           "PCIe capability; its speed and width vs what the drive can do were not checked)"))
            else:
                out.figures.extend(judge_pcie_link(ev.pcie, ev.drive))
            out.figures.extend(_aer(ev.aer))
        judged.append(out)
    return judged


# Figures every drive of a protocol must report (an absent one is unknown); others are judged when present.
_EXPECTED = {
    "NVMe": {"smart_passed", "critical_warning", "percentage_used", "available_spare", "media_errors",
             "power_on_hours", "temperature_c"},
    "ATA": {"smart_passed", "reallocated_sectors", "power_on_hours", "temperature_c"},
    "SCSI": {"smart_passed", "grown_defects", "media_errors", "temperature_c"},
}


def judge_health(health: DriveHealth, drive: StorageDrive, settings: SsdHealthSettings, out: DriveJudgement,
                 issues: tuple = ()) -> None:
    identity = " ".join(p for p in (health.model, f"firmware {health.firmware}" if health.firmware else "") if p)
    out.notes.append(f"{health.protocol} drive {identity}".strip())
    out.model = health.model
    expected = set(_EXPECTED.get(health.protocol, ()))
    if health.solid_state and health.protocol != "NVMe":
        expected.add("percentage_used")  # an SSD must say how worn it is; a spinning disk has no such figure
    if health.solid_state is False and health.protocol == "ATA":
        expected |= {"pending_sectors", "offline_uncorrectable"}  # every disk keeps 197/198; many SSDs do not

    def add(fieldname: str, figure: Figure) -> None:
        if getattr(health, fieldname) is not None or fieldname in expected:
            out.figures.append(figure)

    if drive.serial and health.serial and health.serial != drive.serial:
        out.figures.append(Figure("serial_matches_profile", False, low=1, text="SMART serial matches the profile",
                                  detail=f"(SMART says {health.serial}, the profile {drive.serial}: wrong device)"))
    add("smart_passed", Figure("smart_assessment_passed", health.smart_passed, low=1,
                               text="the drive's own SMART assessment passed"))
    if health.critical_warning is not None or "critical_warning" in expected:
        reasons = "; ".join(health.warning_reasons())
        out.figures.append(Figure("critical_warning", health.critical_warning, high=0, text="critical warning",
                                  detail=f"({reasons})" if reasons else ""))
    add("percentage_used", Figure("percentage_used_percent", health.percentage_used, unit="%",
                                  high=settings.max_percentage_used, text="percentage used"))
    if health.available_spare is not None or "available_spare" in expected:
        out.figures.append(Figure("available_spare_percent", health.available_spare, unit="%",
                                  low=health.available_spare_threshold if health.available_spare_threshold else None,
                                  text="available spare",
                                  detail="(the drive's own threshold)" if health.available_spare_threshold else ""))
    media = {"NVMe": "media and data-integrity errors", "ATA": "reported uncorrectable errors (187)",
             "SCSI": "uncorrected read/write/verify errors"}.get(health.protocol, "media errors")
    add("media_errors", Figure("media_errors_total", health.media_errors, high=settings.max_media_errors, text=media))
    add("reallocated_sectors", Figure("reallocated_sectors_total", health.reallocated_sectors,
                                      high=settings.max_reallocated_sectors, text="reallocated sectors (5)"))
    add("pending_sectors", Figure("pending_sectors_total", health.pending_sectors, high=settings.max_pending_sectors,
                                  text="pending sectors" + (" (197)" if health.protocol == "ATA" else "")))
    add("offline_uncorrectable", Figure("offline_uncorrectable_total", health.offline_uncorrectable,
                                        high=settings.max_offline_uncorrectable, text="offline uncorrectable (198)"))
    add("grown_defects", Figure("grown_defects_total", health.grown_defects, high=settings.max_grown_defects,
                                text="grown defect list"))
    # most entries are harmless host mistakes ("Invalid Field in Command"); the statuses say which kind they are
    statuses = ", ".join(f"{count} {status}" for status, count in (health.error_log_statuses or ())[:3])
    media_entries = (f"; {health.error_log_media_entries} with a media status" if health.error_log_media_entries
                     else "")
    add("error_log_entries", Figure("error_log_entries_total", health.error_log_entries, text="error-log entries",
                                    detail=f"(of those read: {statuses}{media_entries})" if statuses else ""))
    add("unsafe_shutdowns", Figure("unsafe_shutdowns_total", health.unsafe_shutdowns,
                                   high=settings.max_unsafe_shutdowns, text="unsafe shutdowns"))
    hours = _power_on_hours(health.power_on_hours, drive, settings)
    if health.power_on_hours is not None or "power_on_hours" in expected or hours.high is not None:
        out.figures.append(hours)  # a limit the profile set is judged, or said unknown: never passed over
    out.figures.extend(_endurance(health, drive, settings))
    add("temperature_c", Figure("temperature_celsius", health.temperature_c, unit="°C",
                                high=settings.max_temperature_c, text="temperature"))
    if health.critical_temperature_minutes is not None:
        out.figures.append(Figure("critical_temperature_minutes_total", health.critical_temperature_minutes, high=0,
                                  text="minutes above the critical temperature"))
    add("warning_temperature_minutes", Figure("warning_temperature_minutes_total",
                                              health.warning_temperature_minutes,
                                              text="minutes above the warning temperature"))
    out.figures.append(_self_test_log(health, settings))
    _known_issues(health, issues, out)


def _power_on_hours(hours: int | None, drive: StorageDrive, settings: SsdHealthSettings) -> Figure:
    claimed = drive.seller_power_on_hours
    limits = []
    if claimed is not None:
        limits.append((round(claimed * (1 + settings.seller_hours_tolerance)),
                       f"the seller claimed {claimed:,} h (+{settings.seller_hours_tolerance:.0%} accepted)"))
    if settings.max_power_on_hours is not None:
        limits.append((settings.max_power_on_hours, "the profile's max_power_on_hours"))
    high, because = min(limits) if limits else (None, None)
    detail = f"({hours / HOURS_PER_YEAR:.1f} years)" if hours is not None else (
        f"(the drive reports none, so {because} was not checked; SAS/SCSI drives give them only with the "
        "background-scan log page: read them with `sg_logs --page=0x15 <device>` or the vendor's tool and "
        "compare by hand)" if because else "")
    return Figure("power_on_hours", hours, unit="h", high=high, text="power-on hours", detail=detail, because=because)


def _endurance(health: DriveHealth, drive: StorageDrive, settings: SsdHealthSettings) -> list[Figure]:
    written = health.data_written_bytes
    rated = drive.rated_endurance_tbw
    if written is None:  # the rated endurance the profile gives is said unchecked, not passed over
        return [] if rated is None else [Figure(
            "rated_endurance_used_percent", None, unit="%", high=100 * settings.max_endurance_used,
            text="rated endurance used",
            detail=f"(the drive reports no data written to compare with the rated {rated:,g} TBW; read it with "
                   "the vendor's tool, or `sg_logs --page=0x2 <device>` on SAS)")]
    if rated is None:
        return [Figure("data_written_terabytes", round(written / TB, 1), unit="TB", text="data written",
                       detail="(no rated endurance in the profile to compare)")]
    return [Figure("rated_endurance_used_percent", round(100 * written / TB / rated, 1), unit="%",
                   high=100 * settings.max_endurance_used, text="rated endurance used",
                   detail=f"({written / TB:,.1f} TB of the rated {rated:,g} TBW)")]


def _self_test_log(health: DriveHealth, settings: SsdHealthSettings) -> Figure:
    """Every failed entry of the log counts, not only the newest: a drive that failed once has a bad spot."""
    failed = health.failed_self_tests
    listed = "; ".join(f"{t.kind} at {t.power_on_hours:,} h: {t.result}" if t.power_on_hours is not None
                       else f"{t.kind}: {t.result}" for t in failed[:5])
    newest = health.self_tests[0] if health.self_tests else None
    detail = (f"of {len(health.self_tests)} logged ({listed}{'; ...' if len(failed) > 5 else ''})" if failed
              else f"of {len(health.self_tests)} logged" + (f", newest: {newest.kind}: {newest.result}" if newest
                                                             else ""))
    return Figure("failed_self_tests_total", len(failed), high=settings.max_failed_self_tests,
                  text="failed self-tests", detail=detail)


def _known_issues(health: DriveHealth, issues: tuple, out: DriveJudgement) -> None:
    for issue in matching(issues, health.model, health.firmware):
        named = f"{health.model} firmware {health.firmware}: {issue.summary}"
        if issue.cliff_hours is None:
            out.warnings.append(f"known issue {issue.id}: {named} — {issue.advice} (source: {issue.source})")
            continue
        margin = issue.cliff_hours * (1 - issue.cliff_margin)
        hours = health.power_on_hours
        out.figures.append(Figure(
            "known_issue_power_on_hours", hours, unit="h", high=margin,
            text=f"power-on hours vs the {issue.cliff_hours:,} h cliff of {issue.id}",
            detail=f"({named})", because=f"{issue.advice} (source: {issue.source})"))
        if hours is not None and hours <= margin:
            out.warnings.append(f"known issue {issue.id}: {named} — {issue.advice}; "
                                f"{issue.cliff_hours - hours:,} h left (source: {issue.source})")


def judge_pcie_link(function: PciDevice, drive: StorageDrive) -> list[Figure]:
    """The link as trained vs what the drive can do (LnkCap) and, when given, what its spec sheet says."""
    capability, status = function.link_capability, function.link_status
    assert status is not None
    spec = PciLink(drive.spec.pcie_gts, drive.spec.pcie_width) if drive.spec.pcie_gts and drive.spec.pcie_width \
        else None
    expected = spec or capability
    source = "the drive's spec" if spec else "what the drive can do (LnkCap)"
    because = "a bad adapter, cable, riser or slot"
    return [Figure("pcie_link_speed_gts", status.speed_gts, unit="GT/s", low=expected.speed_gts if expected else None,
                   text="PCIe link speed", detail=f"(vs {source})" if expected else "", because=because),
            Figure("pcie_link_width_lanes", status.width, unit="lanes", low=expected.width if expected else None,
                   text="PCIe link width", detail=f"(vs {source})" if expected else "", because=because)]


def _aer(aer: dict[str, int]) -> list[Figure]:
    if not aer:
        return []
    return [Figure("pcie_aer_uncorrectable_total", aer.get("fatal", 0) + aer.get("nonfatal", 0), high=0,
                   text="PCIe AER uncorrectable errors (fatal + non-fatal)"),
            Figure("pcie_aer_correctable_total", aer.get("correctable", 0), text="PCIe AER correctable errors")]
