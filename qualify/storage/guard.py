"""Whether a write test may run on a device: the guard against destroying data.

A write test runs only when every rule passes. The rules, in order:
- allow_destroy: the profile explicitly allows destroying this drive's data;
- not mounted: neither the device nor a partition of it is mounted or used as swap;
- no holders: nothing is stacked on it (LVM, md RAID, dm-crypt, multipath, Ceph OSD volumes, bcache);
- not busy: the kernel grants an exclusive open (catches users the rules above cannot see: a ZFS
  pool, a mount in another namespace, a program holding it with O_EXCL);
- no partition table, and no filesystem/RAID/LVM/crypto/Ceph/ZFS signature, unless the profile says
  `wipe: true` (then the signatures are erased right before the first write).
Each refusal names the rule and how to override it. The guard is asked again right before every
write job, so a device mounted between two jobs is not written either.
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.errors import QualifyError
from qualify.node import Node
from qualify.parsers.wipefs import Signature, parse_wipefs_json
from qualify.profile import StorageDrive
from qualify.storage.identity import SYS_BLOCK, BlockDevice, resolve_drive


class WriteRefused(QualifyError):
    """A write test that the guard does not allow on this device."""

    def __init__(self, device: BlockDevice, drive: StorageDrive, refusals: list["Refusal"]):
        listed = "; ".join(str(r) for r in refusals)
        super().__init__(f"refusing to write to {device.path} ({drive.identity}): {listed}")
        self.refusals = refusals


@dataclass(frozen=True)
class Refusal:
    rule: str
    detail: str
    override: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.detail} - to allow it: {self.override}"


@dataclass(frozen=True)
class DeviceUse:
    """What uses a device right now, read from the kernel."""

    partitions: list[str]
    holders: list[str]  # "dm-0", "md127", or "dm-1 (on loop3p1)"
    mounted: list[str]  # "loop3p1 on /mnt/data", "swap on /dev/loop3"
    busy: bool  # an exclusive open was refused (EBUSY)
    signatures: list[Signature]


# One command for everything but the signatures, as "kind fields..." lines: the device and its
# partitions with their major:minor, their holders, every mount (by major:minor, which no /dev path
# or symlink can disguise), swap areas, and whether an exclusive open is refused ("busy").
# Perl is Essential on Debian (perl-base), Python is not; EBUSY -> exit 16.
_USE_SCRIPT = r'''
sys="$1/$2"; [ -d "$sys" ] || exit 3
echo "dev $2 $(cat "$sys/dev")"
for h in "$sys"/holders/*; do [ -e "$h" ] && echo "holder ${h##*/}"; done
for p in "$sys/$2"*; do
  [ -f "$p/partition" ] || continue
  echo "dev ${p##*/} $(cat "$p/dev")"
  for h in "$p"/holders/*; do [ -e "$h" ] && echo "holder ${h##*/} ${p##*/}"; done
done
while read -r _ _ number _ mountpoint _; do echo "mount $number $mountpoint"; done < /proc/self/mountinfo
tail -n +2 /proc/swaps | while read -r name _; do echo "swap ${name##*/} $name"; done
perl -e 'use Fcntl; sysopen(my $f, $ARGV[0], O_RDONLY|O_EXCL) and exit 0; exit($!{EBUSY} ? 16 : 1)' "/dev/$2"
[ $? = 16 ] && echo busy
exit 0
'''


def device_use(node: Node, device: BlockDevice) -> DeviceUse:
    result = node.run(["sh", "-c", _USE_SCRIPT, "sh", SYS_BLOCK, device.name], check=False)
    if result.returncode == 3:
        raise QualifyError(f"{node.name}: {device.path} disappeared ({SYS_BLOCK}/{device.name} is gone)")
    lines = [line.split(maxsplit=2) for line in result.stdout.splitlines() if line.strip()]
    numbers = {fields[2]: fields[1] for fields in lines if fields[0] == "dev" and len(fields) == 3}  # "7:3" -> loop3
    partitions = [name for name in numbers.values() if name != device.name]
    holders = [fields[1] + (f" (on {fields[2]})" if len(fields) > 2 else "") for fields in lines if fields[0] == "holder"]
    mounted = [f"{numbers[fields[1]]} on {fields[2]}" for fields in lines
               if fields[0] == "mount" and len(fields) == 3 and fields[1] in numbers]
    mounted += [f"swap on {fields[2]}" for fields in lines
                if fields[0] == "swap" and len(fields) == 3 and fields[1] in numbers.values()]
    wipefs = node.run(["wipefs", "--no-act", "--json", device.path])
    signatures = parse_wipefs_json(wipefs.stdout, f"{node.name}: wipefs --json {device.path}")
    return DeviceUse(partitions=partitions, holders=holders, mounted=mounted,
                     busy=["busy"] in lines, signatures=signatures)


def refusals(drive: StorageDrive, use: DeviceUse, settings_key: str) -> list[Refusal]:
    """Every rule the write would break (empty: the write may go ahead)."""
    found = []
    if not drive.allow_destroy:
        found.append(Refusal("allow_destroy", "the profile does not allow destroying this drive's data",
                             f"set {settings_key}.allow_destroy: true"))
    if use.mounted:
        found.append(Refusal("mounted", f"mounted: {', '.join(use.mounted)}", "unmount it (and remove it from fstab)"))
    if use.holders:
        found.append(Refusal("holders", f"in use by {', '.join(use.holders)} (LVM, md RAID, dm-crypt, multipath, "
                                        "Ceph or bcache stacked on it)",
                             "stop what holds it (vgchange -an / mdadm --stop / cryptsetup close) and remove it"))
    if use.busy and not use.mounted and not use.holders:
        found.append(Refusal("busy", "the kernel refuses an exclusive open (a ZFS pool, a mount in another "
                                     "namespace or a program has it open exclusively)",
                             "find and stop its user (zpool export, lsof, fuser -vm)"))
    tables = sorted({s.type for s in use.signatures if s.is_partition_table})
    if (tables or use.partitions) and not drive.wipe:
        what = ", ".join([f"partition table {t}" for t in tables] + [f"partitions {', '.join(use.partitions)}"]
                         * bool(use.partitions))
        found.append(Refusal("partition_table", f"has {what}", f"set {settings_key}.wipe: true to write over it"))
    others = sorted({s.type for s in use.signatures if not s.is_partition_table})
    if others and not drive.wipe:
        found.append(Refusal("signature", f"carries {', '.join(others)} signature(s)",
                             f"set {settings_key}.wipe: true to write over it"))
    return found


def checked_for_writing(node: Node, drive: StorageDrive, settings_key: str) -> BlockDevice:
    """Resolve the drive again and return its device when a write may go ahead; WriteRefused otherwise.

    With `wipe: true`, signatures are erased here (wipefs opens the device exclusively: it fails rather
    than erase a device something started to use since the check).
    """
    device = resolve_drive(node, drive)
    use = device_use(node, device)
    found = refusals(drive, use, settings_key)
    if found:
        raise WriteRefused(device, drive, found)
    if use.signatures:
        node.run(["wipefs", "--all", "--quiet", device.path])
    return device
