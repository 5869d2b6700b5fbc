"""Second-hand SSD acceptance: accept or reject each drive of the profile on its SMART health and
its PCIe link.

Why: used enterprise drives bought as "only a few thousand hours" behind M.2 -> MiniSAS-HD -> U.2
adapter chains. Rejected: a drive that says it is failing (SMART status, critical-warning bits),
is worn (percentage used), has spare below its threshold, media errors, far more power-on hours
than the seller claimed, most of its rated endurance written, ran too hot, failed its last
self-test, or whose PCIe link trained slower or narrower than the drive can (a bad adapter or
cable), or that logged uncorrectable PCIe errors. Read-only: runs on any named drive.
"""

from __future__ import annotations

from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.lspci import PciDevice, PciLink
from qualify.parsers.smartctl import DriveHealth
from qualify.profile import Profile, SsdHealthSettings, StorageDrive
from qualify.storage import BlockDevice, resolve_drive
from qualify.storage.health import pci_address, read_aer_counters, read_health, read_pcie_link

TB = 1e12


def check_ssd_health(node: Node, profile: Profile, findings: Findings) -> None:
    drives = profile.checks.storage.drives
    if not drives:
        findings.skip("no drive is named under checks.storage.drives in the profile (by serial or wwn)")
    settings = profile.checks.ssd_health
    verdicts: dict[str, dict] = {}
    findings.metric("drives", verdicts)
    judged = 0
    for drive in drives:
        label = drive.serial or drive.wwn or ""
        device = resolve_drive(node, drive)
        drive_findings = Findings(label)
        health = read_health(node, drive, device)
        link = _pcie_link(node, device, drive, drive_findings)
        if health is None and link is None:
            findings.note(f"{label} ({device.path}): no SMART and no PCIe link to judge (a loop device): skipped")
            continue
        judged += 1
        metrics: dict = {"device": device.path, **(link or {})}
        if health is not None:
            metrics.update(judge_health(health, drive, settings, drive_findings))
        metrics["verdict"] = "reject" if drive_findings.problems else "accept"
        verdicts[label] = metrics
        for reason in drive_findings.reasons:
            sentence = f"{label}: {reason}"
            (findings.problem if reason in drive_findings.problems else findings.note)(sentence)
        findings.note(f"{label}: {metrics['verdict']}"
                      + (f" ({len(drive_findings.problems)} reason(s) above)" if drive_findings.problems else ""))
    if not judged:
        findings.skip("no drive has SMART data or a PCIe link (loop devices); nothing to accept or reject")


def judge_health(health: DriveHealth, drive: StorageDrive, settings: SsdHealthSettings, out: Findings) -> dict:
    identity = " ".join(part for part in (health.model, f"firmware {health.firmware}" if health.firmware else "") if part)
    out.note(f"{health.protocol} drive {identity}".strip())
    if drive.serial and health.serial and health.serial != drive.serial:
        out.problem(f"SMART reports serial {health.serial}, not the profile's {drive.serial}: wrong device or data")
    if health.smart_passed is False:
        out.problem("the drive's own SMART overall assessment is FAILED")
    if health.critical_warning:
        out.problem(f"critical warning 0x{health.critical_warning:02x}: {'; '.join(health.warning_reasons())}")
    _at_most(out, "percentage used", health.percentage_used, settings.max_percentage_used, "%")
    if health.available_spare is not None and health.available_spare_threshold is not None:
        sentence = (f"available spare {health.available_spare}% (threshold {health.available_spare_threshold}%)")
        (out.problem if health.available_spare < health.available_spare_threshold else out.note)(sentence)
    _at_most(out, "media and data-integrity errors", health.media_errors, settings.max_media_errors)
    _at_most(out, "reallocated sectors", health.reallocated_sectors, None)
    _at_most(out, "error-log entries", health.error_log_entries, None)
    _at_most(out, "unsafe shutdowns", health.unsafe_shutdowns, settings.max_unsafe_shutdowns)
    _power_on_hours(health, drive, settings, out)
    _endurance(health, drive, settings, out)
    _at_most(out, "temperature", health.temperature_c, settings.max_temperature_c, " °C")
    _at_most(out, "minutes above the critical temperature", health.critical_temperature_minutes, 0)
    _at_most(out, "minutes above the warning temperature", health.warning_temperature_minutes, None)
    if health.self_test_passed is False:
        out.problem(f"last self-test: {health.self_test_result}")
    elif health.self_test_result:
        out.note(f"last self-test: {health.self_test_result}")
    return {key: value for key, value in vars(health).items() if value is not None}


def _at_most(out: Findings, what: str, value: float | None, limit: float | None, unit: str = "") -> None:
    if value is None:
        return
    if limit is not None and value > limit:
        out.problem(f"{what}: {value:,}{unit}, above the limit of {limit:,g}{unit}")
    else:
        out.note(f"{what}: {value:,}{unit}" + (f" (limit {limit:,g}{unit})" if limit is not None else ""))


def _power_on_hours(health: DriveHealth, drive: StorageDrive, settings: SsdHealthSettings, out: Findings) -> None:
    hours = health.power_on_hours
    if hours is None:
        return
    claimed = drive.seller_power_on_hours
    if claimed is not None and hours > claimed * (1 + settings.seller_hours_tolerance):
        out.problem(f"power-on hours {hours:,} ({hours / 8766:.1f} years), far above the seller's claim of "
                    f"{claimed:,} (+{settings.seller_hours_tolerance:.0%} accepted)")
    elif settings.max_power_on_hours is not None and hours > settings.max_power_on_hours:
        out.problem(f"power-on hours {hours:,}, above the limit of {settings.max_power_on_hours:,}")
    else:
        out.note(f"power-on hours {hours:,}" + (f" (seller claimed {claimed:,})" if claimed is not None else ""))


def _endurance(health: DriveHealth, drive: StorageDrive, settings: SsdHealthSettings, out: Findings) -> None:
    written = health.data_written_bytes
    if written is None:
        return
    rated = drive.rated_endurance_tbw
    if rated is None:
        out.note(f"data written {written / TB:,.1f} TB (no rated endurance in the profile to compare)")
        return
    share = written / TB / rated
    sentence = f"data written {written / TB:,.1f} TB = {share:.0%} of the rated {rated:,g} TBW"
    (out.problem if share > settings.max_endurance_used else out.note)(
        sentence + (f" (more than {settings.max_endurance_used:.0%})" if share > settings.max_endurance_used else ""))


def _pcie_link(node: Node, device: BlockDevice, drive: StorageDrive, out: Findings) -> dict | None:
    address = None if device.is_loop else pci_address(node, device)
    if address is None:
        return None
    function = read_pcie_link(node, address)
    if function is None or function.link_status is None:
        out.note(f"PCIe {address}: lspci shows no link (not root, or no PCIe capability)")
        return {"pci_address": address}
    link = judge_pcie_link(function, drive, out)
    aer = read_aer_counters(node, address)
    if aer.get("fatal") or aer.get("nonfatal"):
        out.problem(f"PCIe AER: {aer.get('fatal', 0)} fatal and {aer.get('nonfatal', 0)} non-fatal errors logged")
    elif aer.get("correctable"):
        out.note(f"PCIe AER: {aer['correctable']} correctable errors logged")
    return {"pci_address": address, **link, **{f"aer_{k}": v for k, v in aer.items()}}


def judge_pcie_link(function: PciDevice, drive: StorageDrive, out: Findings) -> dict:
    """The link as trained vs what the drive can do (LnkCap) and, when given, what its spec sheet says."""
    capability, status = function.link_capability, function.link_status
    assert status is not None
    spec = PciLink(drive.spec.pcie_gts, drive.spec.pcie_width) if drive.spec.pcie_gts and drive.spec.pcie_width \
        else None
    expected = spec or capability
    below_spec = spec is not None and (status.speed_gts < spec.speed_gts or status.width < spec.width)
    sentence = f"PCIe link {status.speed_gts:g} GT/s x{status.width}" + (
        f", the drive {'is built for' if spec else 'can do'} {expected.speed_gts:g} GT/s x{expected.width}"
        if expected else "")
    if function.downgraded or below_spec:
        out.problem(sentence + " (a bad adapter, cable, riser or slot)")
    else:
        out.note(sentence)
    return {"link_gts": status.speed_gts, "link_width": status.width,
            **({"capable_gts": capability.speed_gts, "capable_width": capability.width} if capability else {})}
