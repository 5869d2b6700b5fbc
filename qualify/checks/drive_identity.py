"""NVMe identity: what each named NVMe drive says it is, from `nvme id-ctrl`, `nvme id-ns` and `nvme list`.

Why: drives pulled from storage arrays often come formatted with metadata (512+8, for the array's
checksums), which Linux cannot use as a plain block device and which is slower than the drive's
best format; a used drive may carry a shrunk namespace (part of its capacity hidden, or left for
overprovisioning by the previous owner). Judged: metadata in the LBA format in use (fails), the
format in use vs the best one the drive offers (a warning naming the `nvme format` command - never
run by qualify, it destroys all data), namespace size vs total NVM capacity. Said: volatile write
cache, firmware revision and slots. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.errors import ParseError
from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.nvme import (
    RELATIVE_PERFORMANCE,
    LbaFormat,
    NvmeController,
    NvmeListEntry,
    NvmeNamespace,
    parse_nvme_id_ctrl,
    parse_nvme_id_ns,
    parse_nvme_list,
)
from qualify.profile import DriveIdentitySettings, Profile, StorageDrive
from qualify.storage import resolve_drive
from qualify.storage.figures import DriveJudgement, Figure
from qualify.storage.named import named_drives
from qualify.store import RunStore

VERDICT = "identity_verdict"


@dataclass(frozen=True)
class IdentityEvidence:
    label: str
    device: str
    controller: NvmeController
    namespace: NvmeNamespace
    listed: NvmeListEntry | None  # the device in `nvme list`, None when it is not listed


def check_drive_identity(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    drives = named_drives(profile.checks.storage, findings, how="name the drives under checks.storage.drives")
    evidence = []
    for drive in drives:
        found = collect(node, drive, run_store)
        if isinstance(found, str):
            findings.note(found)
        else:
            evidence.append(found)
    if not evidence:
        findings.skip("no named drive is an NVMe drive: nothing to identify (SATA/SAS identity is in ssd_health)")
    for ev in evidence:
        judge(ev, profile.checks.drive_identity).record(findings, VERDICT)


def _format(f: LbaFormat) -> str:
    return f"{f.data_bytes}+{f.metadata_bytes} ({RELATIVE_PERFORMANCE[f.relative_performance & 3]})"


def collect(node: Node, drive: StorageDrive, run_store: RunStore) -> IdentityEvidence | str:
    """The drive's identity, or why there is none (not NVMe, no nvme-cli)."""
    label = drive.serial or drive.wwn or ""
    device = resolve_drive(node, drive)
    if not node.has_tool("nvme"):
        return f"{label}: nvme-cli is not installed on the node (apt install nvme-cli): identity not read"
    outputs = {}
    for command in ("id-ctrl", "id-ns"):
        result = node.run(["nvme", command, device.path, "-o", "json"], check=False)
        if result.returncode != 0:
            return f"{label} ({device.path}): not an NVMe drive ({(result.stderr or result.stdout).strip()[:120]})"
        outputs[command] = result.stdout
        run_store.save_raw(f"identity-{label}-nvme-{command}.json", result.stdout)
    listing = node.run(["nvme", "list", "-o", "json"], check=False).stdout
    run_store.save_raw(f"identity-{label}-nvme-list.json", listing)
    try:
        listed = parse_nvme_list(listing, f"{node.name}: nvme list -o json")
    except ParseError:
        listed = []
    return IdentityEvidence(
        label=label, device=device.path,
        controller=parse_nvme_id_ctrl(outputs["id-ctrl"], f"{node.name}: nvme id-ctrl {device.path}"),
        namespace=parse_nvme_id_ns(outputs["id-ns"], f"{node.name}: nvme id-ns {device.path}"),
        listed=next((entry for entry in listed if entry.device_path == device.path), None))


def judge(ev: IdentityEvidence, settings: DriveIdentitySettings) -> DriveJudgement:
    out = DriveJudgement(ev.label)
    ctrl, ns = ev.controller, ev.namespace
    used, best = ns.format_in_use, ns.best_format
    slots = f", {ctrl.firmware_slots} firmware slots" if ctrl.firmware_slots else ""
    read_only = " (slot 1 read-only)" if ctrl.firmware_slot1_read_only else ""
    out.notes.append(f"{ev.device}: {ctrl.model}, firmware {ctrl.firmware}{slots}{read_only}")
    # as data, so the cluster view can tell siblings whose drives run other firmware
    out.figures.append(Figure("firmware_revision", ctrl.firmware, text="firmware revision"))
    if ev.listed is None:
        out.notes.append("not in `nvme list` (a namespace the kernel has no block device for is not listed)")
    command = f"nvme format {ev.device} --lbaf={best.index}"
    out.figures.append(Figure(
        "lba_format_metadata_bytes", used.metadata_bytes, unit="B", high=0, text="metadata per block of the LBA format "
        "in use", detail=f"(format {used.index}: {_format(used)})",
        because=f"a format with metadata (as storage arrays use) is no plain block device for Linux; `{command}` "
                "would change it to " + _format(best) + " - it destroys all data, qualify never runs it"))
    formats = ", ".join(f"{f.index}: {_format(f)}" for f in ns.formats)
    out.figures.append(Figure(
        "lba_format_relative_performance", used.relative_performance, high=best.relative_performance, warn=True,
        text="relative performance of the LBA format in use (0 best, 3 degraded)",
        detail=f"(in use {used.index}: {_format(used)}; offered {formats})",
        because=f"`{command}` would use the best format {_format(best)} - it destroys all data, qualify never "
                "runs it"))
    if ctrl.capacity_bytes:
        share = round(100 * ns.size_bytes / ctrl.capacity_bytes, 1)
        out.figures.append(Figure(
            "namespace_share_of_capacity_percent", share, unit="%", low=100 * settings.min_namespace_share,
            text="namespace size of the total NVM capacity",
            detail=f"({ns.size_bytes / 1e9:,.1f} GB of {ctrl.capacity_bytes / 1e9:,.1f} GB"
                   + (f", {ctrl.unallocated_bytes / 1e9:,.1f} GB unallocated" if ctrl.unallocated_bytes else "") + ")",
            because="a shrunk namespace hides capacity: delete it and create one over the whole drive "
                    "(nvme delete-ns / create-ns, destroys all data)"))
    else:
        out.notes.append("the controller reports no total NVM capacity (tnvmcap 0): namespace size not compared")
    if ctrl.volatile_write_cache is not None:
        out.figures.append(Figure("volatile_write_cache_present", ctrl.volatile_write_cache,
                                  text="volatile write cache present",
                                  detail="(with power-loss protection it is safe; without, sync writes must flush "
                                         "it - see the storage check's sync-write figures)"))
    return out
