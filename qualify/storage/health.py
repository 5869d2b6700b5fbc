"""Reading a drive's health and its PCIe link from the node (SMART, nvme-cli, lspci, AER counters)."""

from __future__ import annotations

import dataclasses
import re

from qualify.errors import ParseError
from qualify.node import Node
from qualify.parsers.lspci import PciDevice, parse_lspci_vv
from qualify.parsers.nvme import parse_nvme_smart_log
from qualify.parsers.smartctl import (
    NVME_DATA_UNIT_BYTES,
    DriveHealth,
    parse_smartctl_json,
)
from qualify.storage.identity import SYS_BLOCK, BlockDevice

# DriveHealth fields that `nvme smart-log` also reports (same names in NvmeSmartLog, but data written)
_NVME_LOG_FIELDS = ("critical_warning", "percentage_used", "available_spare", "available_spare_threshold",
                    "media_errors", "error_log_entries", "unsafe_shutdowns", "data_written_bytes",
                    "warning_temperature_minutes", "critical_temperature_minutes")
_PCI_ADDRESS = re.compile(r"^[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def smartctl_json(node: Node, device: BlockDevice, *options: str) -> str:
    """`smartctl <options> -j <device>`: its exit status is a bit mask that is non-zero for a failing
    drive too, so the JSON (parsed by the caller) says what happened."""
    node.require("smartctl")
    return node.run(["smartctl", *options, "-j", device.path], check=False).stdout


def read_health(node: Node, device: BlockDevice) -> DriveHealth | None:
    """SMART health of the drive; None for a loop device smartctl cannot read (a plain file has no SMART)."""
    output = smartctl_json(node, device, "-x")
    try:
        health = parse_smartctl_json(output, f"{node.name}: smartctl -x -j {device.path}")
    except ParseError:
        if device.is_loop:
            return None
        raise
    return with_nvme_cli(node, device, health) if health.protocol == "NVMe" else health


def with_nvme_cli(node: Node, device: BlockDevice, health: DriveHealth) -> DriveHealth:
    """Fields an old smartctl leaves out, from nvme-cli when the node has it."""
    if all(getattr(health, field) is not None for field in _NVME_LOG_FIELDS) or not node.has_tool("nvme"):
        return health
    result = node.run(["nvme", "smart-log", device.path, "-o", "json"], check=False)
    try:
        log = parse_nvme_smart_log(result.stdout, f"{node.name}: nvme smart-log {device.path}")
    except ParseError:
        return health  # nvme-cli could not help; smartctl's fields stand
    found = {field: getattr(log, field) for field in _NVME_LOG_FIELDS if field != "data_written_bytes"}
    found["data_written_bytes"] = log.data_units_written * NVME_DATA_UNIT_BYTES
    return dataclasses.replace(health, **{k: v for k, v in found.items() if getattr(health, k) is None})


def pci_address(node: Node, device: BlockDevice) -> str | None:
    """The PCI function behind a block device (an NVMe drive's controller), None when there is none."""
    resolved = node.run(["readlink", "-f", f"{SYS_BLOCK}/{device.name}/device/device"], check=False).stdout.strip()
    if not resolved:
        resolved = node.run(["readlink", "-f", f"{SYS_BLOCK}/{device.name}/device"], check=False).stdout.strip()
    # .../pci0000:00/0000:00:1d.0/0000:04:00.0/nvme/nvme0 -> the last PCI address on the path
    addresses = [part for part in resolved.split("/") if _PCI_ADDRESS.match(part)]
    return addresses[-1] if addresses else None


def read_lspci(node: Node, address: str) -> str:
    node.require("lspci")
    return node.run(["lspci", "-vv", "-D", "-s", address]).stdout


def pcie_function(text: str, source: str) -> PciDevice | None:
    devices = parse_lspci_vv(text, source)
    return devices[0] if devices else None


def read_aer_counters(node: Node, address: str) -> dict[str, int]:
    """{"correctable": n, "nonfatal": n, "fatal": n} from the kernel's AER statistics (empty without AER)."""
    counters = {}
    for name in (f for f in node.list_files(f"/sys/bus/pci/devices/{address}") if f.startswith("aer_dev_")):
        text = node.read_text(f"/sys/bus/pci/devices/{address}/{name}") or ""
        total = next((line.split()[1] for line in text.splitlines() if line.startswith("TOTAL_ERR")), None)
        if total is not None and total.isdigit():
            counters[name.removeprefix("aer_dev_")] = int(total)
    return counters
