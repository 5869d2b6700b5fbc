"""The node's drives: every whole disk (and every marked loop device) with its identity and what uses it.

The list of devices is the node's kernel view (`<paths.sysfs>/block`: /sys on a real node, a prepared
tree in tests and the lab); identity, size, firmware and what is stacked on each device come from
`lsblk -J -O -b` and the loop markers of qualify/storage/identity.py. What uses a drive (a mount, swap,
LVM, ZFS, md RAID, LUKS, a Ceph OSD) is only written down for the user: the storage guard asks again,
on the kernel's real state, right before every write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.node import Node
from qualify.parsers.lsblk import BlockNode, parse_lsblk_tree
from qualify.storage.identity import BlockDevice, block_devices

# Memory-backed "disks" (zram swap, ramdisks) are no drives to qualify; nor are an eMMC's hardware boot and
# RPMB partitions (mmcblk0boot0/1, mmcblk0rpmb: lsblk types them "disk", with the eMMC's own serial).
_NOT_DRIVES = re.compile(r"^(?:zram|ram)\d|^mmcblk\d+(?:boot\d+|rpmb)$")
_FSTYPE_USES = {"LVM2_member": "LVM physical volume", "zfs_member": "ZFS pool member",
                "ceph_bluestore": "Ceph OSD (BlueStore)", "linux_raid_member": "md RAID member",
                "crypto_LUKS": "LUKS encrypted", "swap": "swap"}


@dataclass(frozen=True)
class Drive:
    name: str  # nvme0n1, sda, loop3
    path: str
    serial: str | None
    wwn: str | None
    model: str | None
    size_bytes: int | None
    firmware: str | None
    transport: str | None  # nvme, sata, sas, usb; None for virtual devices
    uses: tuple[str, ...]  # what holds data on it, in words ("holds / (nvme0n1p2)", "LVM physical volume ...")

    @property
    def nameable(self) -> bool:
        """A profile names drives by serial or WWN only: /dev names change between boots."""
        return bool(self.serial or self.wwn)

    @property
    def label(self) -> str:
        return self.serial or self.wwn or self.path


def drive_uses(tree: BlockNode) -> tuple[str, ...]:
    """What is stacked on a device, in words, the root filesystem first."""
    uses: list[str] = []
    for node in tree.walk():
        where = "" if node is tree else f" ({node.name})"
        for mount in node.mountpoints:
            if mount == "/":
                uses.insert(0, f"holds / (the root filesystem){where}")
            elif mount == "[SWAP]":
                uses.append(f"swap{where}")
            else:
                uses.append(f"mounted at {mount}{where}")
        if node.fstype in _FSTYPE_USES and node.fstype != "swap":
            uses.append(f"{_FSTYPE_USES[node.fstype]}{where}")
        if node.type == "lvm" and node.name.startswith("ceph--"):  # ceph-volume's LV names
            uses.append(f"Ceph OSD ({node.name})")
    return tuple(dict.fromkeys(uses))


def select_drives(trees: list[BlockNode], identities: dict[str, BlockDevice], kernel_view: set[str],
                  loops: bool = False) -> list[Drive]:
    """Drives among lsblk's top-level devices: disks, and (`loops`) loop devices that carry a marker serial."""
    drives = []
    for tree in trees:
        ident = identities.get(tree.name)
        if tree.name not in kernel_view or _NOT_DRIVES.search(tree.name):
            continue
        if tree.type == "loop" and not (loops and ident and ident.serial):
            continue  # an unmarked loop device (a snap, an image) is no drive of the node
        if tree.type not in ("disk", "loop"):
            continue
        drives.append(Drive(
            name=tree.name, path=tree.path, serial=ident.serial if ident else tree.serial,
            wwn=ident.wwn if ident else tree.wwn, model=tree.model, size_bytes=tree.size_bytes,
            firmware=tree.firmware, transport=tree.transport, uses=drive_uses(tree)))
    return drives


def discover_drives(node: Node) -> list[Drive]:
    view = node.run(["sh", "-c", 'cd "$1" 2>/dev/null && ls -1; exit 0', "sh", node.sys_path("block")]).stdout
    trees = parse_lsblk_tree(node.run(["lsblk", "-J", "-O", "-b"]).stdout)
    identities = {device.name: device for device in block_devices(node)}
    # Loop devices are drives only in a prepared kernel view that names them (the lab's, the tests'): on a
    # real node's /sys every loop device, marked ones of a lab running beside it included, belongs to no drive.
    return select_drives(trees, identities, set(view.split()), loops=node.paths.sysfs != "/sys")
