"""PCI functions from sysfs (`<sysfs>/bus/pci/devices/*`), as the kernel writes its files.

The node dumps every function's files in one command (`DUMP_SCRIPT`); `parse_pci_dump` turns that text into
records. Per function, the kernel writes (drivers/pci/pci-sysfs.c, drivers/pci/pcie/aer.c):

    vendor              0x8086                 class  0x020000        device 0x10fb
    current_link_speed  5.0 GT/s PCIe          ("2.5 GT/s PCIe" .. "64.0 GT/s PCIe"; "5 GT/s" before 4.20;
                                                "Unknown" when the link is down on some kernels)
    current_link_width  4                      (0: no link — an empty slot's port)
    max_link_speed / max_link_width            what this end can do
    aer_dev_correctable RxErr 0\\nBadTLP 0\\n ... TOTAL_ERR_COR 0
    aer_dev_nonfatal / aer_dev_fatal  Undefined 0\\nDLP 0\\n ... TOTAL_ERR_NONFATAL 0 / TOTAL_ERR_FATAL 0
                        (unnamed bits appear as "dev_cor_errs_bit[3] 2" only when counted)
    driver              symlink to ../../bus/pci/drivers/<name>
    power_state         D0 .. D3hot, D3cold    (5.10+; a runtime-suspended device in D3cold has no link up)

The device's directory under devices/ gives its upstream port: /sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0
is behind the port 0000:00:1c.0; a function directly below pci0000:00 (or a VMD domain's pci10000:e0) has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qualify.errors import ParseError
from qualify.parsers.lspci import PciLink

FILES = ("vendor", "device", "class", "current_link_speed", "current_link_width", "max_link_speed",
         "max_link_width", "aer_dev_correctable", "aer_dev_nonfatal", "aer_dev_fatal", "power_state")
# One command for every function: "@device <address> <resolved path>", "@driver <name>", "@file <name>" + content.
DUMP_SCRIPT = (
    'cd "$1/bus/pci/devices" 2>/dev/null || exit 0\n'
    'for d in *; do\n'
    '  [ -e "$d" ] || continue\n'
    '  printf "@device %s %s\\n" "$d" "$(readlink -f "$d")"\n'
    '  [ -L "$d/driver" ] && printf "@driver %s\\n" "$(basename "$(readlink "$d/driver")")"\n'
    f'  for f in {" ".join(FILES)}; do\n'
    '    [ -f "$d/$f" ] && printf "@file %s\\n%s\\n" "$f" "$(cat "$d/$f" 2>/dev/null)"\n'
    '  done\n'
    'done\n'
    'exit 0\n')
AER_CLASSES = ("correctable", "nonfatal", "fatal")

_ADDRESS = re.compile(r"^[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")
_SPEED = re.compile(r"^([\d.]+)\s*GT/s")
_COUNTER = re.compile(r"^([A-Za-z][\w\[\]]*) (\d+)$")


@dataclass(frozen=True)
class PciFunction:
    address: str                      # "0000:03:00.0" (domain included; 5+ hex digits behind VMD)
    upstream: str | None              # the port above it, None directly below a host bridge
    vendor: int | None
    device: int | None
    class_code: int | None            # 0x020000 Ethernet, 0x010802 NVMe, 0x060400 PCI bridge, ...
    driver: str | None
    link: PciLink | None              # current_link_*; None without the files or unreadable
    capability: PciLink | None        # max_link_*
    # {"correctable": {"RxErr": 0, ...}, "nonfatal": {...}, "fatal": {...}}, TOTAL_* lines left out;
    # empty without the files (no AER capability, or a kernel without CONFIG_PCIEAER)
    aer: dict[str, dict[str, int]] = field(default_factory=dict)
    power_state: str | None = None    # "D0", "D3cold", ...; None on kernels without the file

    @property
    def suspended(self) -> bool:
        """Runtime-suspended (a laptop dGPU, an idle controller): its link is down by design, not broken."""
        return (self.power_state or "").startswith("D3")

    @property
    def ids(self) -> str:
        return f"{self.vendor or 0:04x}:{self.device or 0:04x}"

    @property
    def is_bridge(self) -> bool:
        return self.class_code is not None and self.class_code >> 8 == 0x0604

    @property
    def link_up(self) -> bool:
        return self.link is not None and self.link.width > 0


def parse_link_speed(text: str | None) -> float | None:
    """GT/s from "8.0 GT/s PCIe", "5 GT/s", "2.5 GT/s"; None for "Unknown" or nothing."""
    m = _SPEED.match((text or "").strip())
    return float(m[1]) if m else None


def parse_aer_counters(text: str, source: str) -> dict[str, int]:
    """{bit name: count} of an aer_dev_* file, without its TOTAL_ line; ParseError on another shape."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _COUNTER.match(line.strip())
        if m is None:
            raise ParseError(source, f"line {line!r} is not '<bit> <count>' (expected the kernel's aer_dev_* format)")
        if not m[1].startswith("TOTAL_"):
            counters[m[1]] = int(m[2])
    return counters


def parse_pci_dump(text: str, source: str = "pci sysfs dump") -> list[PciFunction]:
    """Records from DUMP_SCRIPT's output (the resolved device paths give each function's upstream port)."""
    blocks: list[tuple[str, str, str | None, dict[str, str]]] = []
    current_file: str | None = None
    for line in text.splitlines():
        if line.startswith("@device "):
            parts = line.split(" ", 2)
            if len(parts) < 3 or not _ADDRESS.match(parts[1]):
                raise ParseError(source, f"bad device line {line!r}")
            blocks.append((parts[1], parts[2], None, {}))
            current_file = None
        elif not blocks:
            continue
        elif line.startswith("@driver "):
            address, path, _, files = blocks[-1]
            blocks[-1] = (address, path, line.removeprefix("@driver ").strip() or None, files)
        elif line.startswith("@file "):
            current_file = line.removeprefix("@file ").strip()
            blocks[-1][3][current_file] = ""
        elif current_file is not None:
            files = blocks[-1][3]
            files[current_file] += line + "\n"
    return [_function(address, path, driver, files, source) for address, path, driver, files in blocks]


def _function(address: str, path: str, driver: str | None, files: dict[str, str], source: str) -> PciFunction:
    parent = path.rstrip("/").split("/")[-2] if "/" in path.rstrip("/") else ""
    aer = {kind: parse_aer_counters(files[f"aer_dev_{kind}"], f"{source}: {address}/aer_dev_{kind}")
           for kind in AER_CLASSES if f"aer_dev_{kind}" in files}
    return PciFunction(
        address=address, upstream=parent if _ADDRESS.match(parent) else None,
        vendor=_hex(files.get("vendor")), device=_hex(files.get("device")), class_code=_hex(files.get("class")),
        driver=driver, link=_link(files, "current"), capability=_link(files, "max"), aer=aer,
        power_state=(files.get("power_state") or "").strip() or None)


def _link(files: dict[str, str], which: str) -> PciLink | None:
    speed = parse_link_speed(files.get(f"{which}_link_speed"))
    width = (files.get(f"{which}_link_width") or "").strip()
    if speed is None or not width.isdigit():
        return None
    return PciLink(speed_gts=speed, width=int(width))


def _hex(text: str | None) -> int | None:
    try:
        return int((text or "").strip(), 16)
    except ValueError:
        return None


def pci_ids_names(text: str, wanted: set[str]) -> dict[str, str]:
    """{"8086:10fb": "Intel Corporation 82599ES 10-Gigabit SFI/SFP+ Network Connection"} from pci.ids text."""
    names: dict[str, str] = {}
    vendor_id, vendor_name = "", ""
    vendors = {ids.split(":")[0] for ids in wanted}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("C "):
            break  # the device classes follow the vendors
        if not line.startswith("\t"):
            vendor_id, _, vendor_name = line.partition("  ")
        elif not line.startswith("\t\t") and vendor_id in vendors:
            device_id, _, device_name = line.strip().partition("  ")
            if f"{vendor_id}:{device_id}" in wanted:
                names[f"{vendor_id}:{device_id}"] = f"{vendor_name.strip()} {device_name.strip()}"
    return names
