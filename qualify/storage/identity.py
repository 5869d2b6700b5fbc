"""Which block device of a node a profile's drive (serial or WWN) is.

Real drives: serial and WWN as udev reports them (`lsblk`). Loop devices (the lab's and the tests'
"drives") have neither; they get a serial from a marker file beside their backing file,
`<backing file>.qualify-serial`, which holds a serial starting with LOOP_SERIAL_PREFIX. Only a
loop device whose backing file has that marker has a serial at all, and no real drive serial starts
with the prefix - if one ever did, the name would match two devices and resolution would refuse.

Safety reads the kernel's real state (/sys/block, lsblk), never the prepared tree of paths.sysfs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qualify.errors import QualifyError
from qualify.node import Node
from qualify.parsers.lsblk import LSBLK_COLUMNS, parse_lsblk
from qualify.profile import StorageDrive

LOOP_SERIAL_PREFIX = "QLAB-"
SERIAL_MARKER_SUFFIX = ".qualify-serial"
SYS_BLOCK = "/sys/block"


class DriveNotFound(QualifyError):
    """A drive of the profile resolves to no device or to several."""


@dataclass(frozen=True)
class BlockDevice:
    name: str  # "nvme0n1", "loop3"
    path: str  # "/dev/nvme0n1"
    serial: str | None
    wwn: str | None
    model: str | None
    size_bytes: int | None
    backing_file: str | None  # loop devices only

    @property
    def is_loop(self) -> bool:
        return self.backing_file is not None


def mark_loop_backing_file(backing_file: Path, serial: str) -> None:
    """Give the loop device over `backing_file` the serial `serial` (lab and tests)."""
    if not serial.startswith(LOOP_SERIAL_PREFIX):
        raise ValueError(f"a loop device serial must start with {LOOP_SERIAL_PREFIX!r}, got {serial!r}")
    Path(f"{backing_file}{SERIAL_MARKER_SUFFIX}").write_text(serial + "\n")


def block_devices(node: Node) -> list[BlockDevice]:
    """Whole block devices of the node (no partitions), with the loop devices' marker serials."""
    listed = parse_lsblk(node.run(["lsblk", "-J", "-d", "-b", "-o", LSBLK_COLUMNS]).stdout)
    backing = {rel.split("/", 1)[0]: value.removesuffix(" (deleted)")
               for rel, value in node.read_glob(SYS_BLOCK, "loop*/loop/backing_file").items()}
    markers = _loop_markers(node, list(backing.values()))
    devices = []
    for dev in listed:
        serial = dev.serial
        if dev.name in backing:
            marked = markers.get(backing[dev.name], "")
            serial = marked if marked.startswith(LOOP_SERIAL_PREFIX) else None
        elif serial and serial.startswith(LOOP_SERIAL_PREFIX):
            serial = None  # the prefix is reserved for loop devices
        devices.append(BlockDevice(name=dev.name, path=dev.path, serial=serial, wwn=dev.wwn, model=dev.model,
                                   size_bytes=dev.size_bytes, backing_file=backing.get(dev.name)))
    return devices


def _loop_markers(node: Node, backing_files: list[str]) -> dict[str, str]:
    """{backing file: first line of its serial marker} in one command (a node may have dozens of loops)."""
    if not backing_files:
        return {}
    script = (f'for f in "$@"; do [ -f "$f{SERIAL_MARKER_SUFFIX}" ] && '
              f'printf "%s\\t%s\\n" "$f" "$(head -n1 "$f{SERIAL_MARKER_SUFFIX}")"; done; exit 0')
    out = node.run(["sh", "-c", script, "sh", *backing_files]).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def resolve_drive(node: Node, drive: StorageDrive) -> BlockDevice:
    """The one device that is `drive`; DriveNotFound when none or several are."""
    devices = block_devices(node)
    if drive.serial:
        matches = [d for d in devices if d.serial == drive.serial.strip()]
    else:
        matches = [d for d in devices if d.wwn and normalize_wwn(d.wwn) == normalize_wwn(drive.wwn or "")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(f"{d.path} ({_names(d)})" for d in devices if d.serial or d.wwn) or "none"
        raise DriveNotFound(f"{node.name}: no block device has {drive.identity} (devices with a serial or WWN: "
                            f"{known}); fix checks.storage.drives in the profile")
    raise DriveNotFound(f"{node.name}: {drive.identity} matches {len(matches)} devices "
                        f"({', '.join(d.path for d in matches)}): refusing to guess; name the drive by its WWN "
                        f"(each namespace/path has its own) or detach the duplicate")


def normalize_wwn(wwn: str) -> str:
    """lsblk prints "0x5002538e..." or "eui.0025...", /dev/disk/by-id "wwn-0x5002...", spec sheets bare hex."""
    value = wwn.strip().lower()
    for prefix in ("wwn-", "0x", "eui.", "naa.", "nguid."):
        value = value.removeprefix(prefix)
    return value


def _names(device: BlockDevice) -> str:
    return ", ".join(part for part in (f"serial {device.serial}" if device.serial else "",
                                       f"WWN {device.wwn}" if device.wwn else "") if part)
