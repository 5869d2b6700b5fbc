"""Whether a write test may run on a device: the guard against destroying data.

A write test runs only when every rule passes. The rules, in order:
- allow_destroy: the profile explicitly allows destroying this drive's data;
- mounted: neither the device, a partition of it, nor anything stacked on them is mounted or swap;
- holders: nothing the kernel lists as a holder sits on it or a partition, recursively (LVM, md RAID,
  dm-crypt, multipath, Ceph OSD volumes, bcache);
- stacked: no loop device is backed by it or a partition of it (at any offset), recursively;
- open: no process has it, a partition or anything stacked on them open, read-only included;
- served: no kernel NVMe-oF (nvmet) or iSCSI (LIO) target exports it (they open it unclaimed, in no process);
- unseen: every process's open files could be read;
- busy: the kernel grants an exclusive open (catches users the rules above cannot see: a ZFS
  pool, a mount in another namespace, a program holding it with O_EXCL);
- partition_table / signature: no partition table, and no filesystem/RAID/LVM/crypto/Ceph/ZFS
  signature, unless the profile says `wipe: true` (then they are erased right before the write).
Each refusal names the rule and how to override it. All of it is read on the node, from its kernel.
The guard is asked again right before every write job, and once more under the hold that keeps
the device for the job (qualify/storage/hold.py), so nothing that started to use it in between
is written over.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from qualify.errors import QualifyError
from qualify.node import LocalNode, Node
from qualify.parsers.wipefs import Signature, parse_wipefs_json
from qualify.profile import StorageDrive
from qualify.storage.identity import SYS_BLOCK, BlockDevice, resolve_drive

CONFIGFS = "/sys/kernel/config"  # where the kernel's NVMe-oF (nvmet) and iSCSI (LIO) targets are configured


class WriteRefused(QualifyError):
    """A write test that the guard does not allow on this device."""

    def __init__(self, device: BlockDevice, drive: StorageDrive, refusals: list[Refusal]):
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
    """What uses a device right now, read from the kernel on the node."""

    partitions: list[str]
    holders: list[str]  # "dm-0", "md127", or "dm-1 (on loop3p1)": the kernel's holders, recursively
    mounted: list[str]  # "loop3p1 on /mnt/data", "swap on /dev/loop3", "loop7 on /mnt/x (stacked on loop3)"
    busy: bool  # an exclusive open was refused (EBUSY)
    signatures: list[Signature]
    stacked: list[str] = field(default_factory=list)  # "loop7 on loop3 at offset 1048576": loops over it
    opened: list[str] = field(default_factory=list)  # "pid 4242 (qemu-system-x86, read-write) on loop3"
    unseen: int = 0  # processes whose open files could not be read
    served: list[str] = field(default_factory=list)  # "loop3 by <configfs>/nvmet/.../device_path": a kernel target


# The inspection, run on the node: the device, its partitions and everything stacked on them,
# recursively - the kernel's holders (dm, md, bcache: <sysfs>/block/*/holders) and loop devices
# whose backing file is one of them or lives on one (loop claims nothing: it is in no holders
# folder, at any offset) - then, for each of these: mounts (by major:minor, and by source, which
# btrfs's anonymous device numbers would hide), swap areas, and every process that has it open
# (/proc/*/fd, read-only opens included; $4.. are pids of our own: the hold). When every opener
# is read-only they are looked at again a second later (udev's blkid opens a device for a moment
# after each write). Last, unless $3 is 0, whether the kernel grants an exclusive open (EBUSY: a
# claim the rest cannot see: ZFS, a mount in another namespace, a program using O_EXCL). $2 is configfs:
# NVMe-oF and iSCSI targets that export one of them (the kernel opens it unclaimed, in no process).
# Lines: "dev NAME MAJ:MIN", "part NAME OF", "holder NAME OF", "loop NAME OF OFFSET", "mount NAME
# WHERE", "swap NAME PATH", "open NAME PID MODE COMM", "served NAME CONFIG", "unseen N" (processes whose files could not
# be read), "busy". Exit 3: no such device. Perl is Essential on Debian (perl-base), Python is not.
_USE_SCRIPT = r"""
use strict; use Fcntl; use Config;
my ($sys, $cfg, $top, $probe, @ours) = @ARGV;
my %ours = map { $_ => 1 } @ours, $$;
-d "$sys/$top" or exit 3;
sub line { open(my $h, '<', $_[0]) or return undef; my $l = <$h>; chomp $l if defined $l; $l }
sub printable { my $t = shift; $t =~ s/([^\x21-\x7e])/sprintf('\\%03o', ord $1)/ge; $t }  # no ANSI escapes in messages
sub entries { opendir(my $d, $_[0]) or return (); grep { !/^\.\.?$/ } readdir $d }
sub devno { my $d = shift; ((($d >> 8) & 0xfff) | (($d >> 32) & ~0xfff)) . ':' . (($d & 0xff) | (($d >> 12) & ~0xff)) }
# (device number if a block device, else '', device number of its filesystem) of what a loop reads: from the
# loop itself (LOOP_GET_STATUS64), since its backing_file path is the one it was given, which from here may
# name nothing or another file (set up in a container, or on a device node in a tmpfs since unmounted).
sub backing {
  my ($loop, $path) = @_;
  my ($info, $fh) = ("\0" x 232);
  if (open($fh, '<', "/dev/$loop") and ioctl($fh, 0x4C05, $info)) {
    my ($fs, $inode, $rdev) = unpack('Q3', $info);
    return ($rdev ? devno($rdev) : '', devno($fs));
  }
  my @st = stat($path) or return ('', '');
  return (-b _ ? devno($st[6]) : '', devno($st[0]));
}
my @loops;
for my $l (grep { /^loop\d+$/ } entries($sys)) {
  my $b = line("$sys/$l/loop/backing_file") // next;
  $b =~ s/ \(deleted\)$//;
  push @loops, [$l, backing($l, $b), line("$sys/$l/loop/offset") // 0];
}
my (%num, %seen, @queue);
sub add {
  my ($name, $path) = @_;
  return if $seen{$name}++;
  my $n = line("$path/dev") // return;
  $num{$n} = $name; print "dev $name $n\n"; push @queue, [$name, $path, $n];
}
add($top, "$sys/$top");
while (my $m = shift @queue) {
  my ($name, $path, $n) = @$m;
  for my $p (grep { index($_, $name) == 0 && -f "$path/$_/partition" } entries($path)) {
    print "part $p $name\n"; add($p, "$path/$p");
  }
  for my $h (entries("$path/holders")) {
    print "holder $h $name\n"; add($h, "$sys/$h") if -d "$sys/$h";
  }
  for my $l (grep { $_->[1] eq $n || $_->[2] eq $n } @loops) {
    print "loop $l->[0] $name $l->[3]\n"; add($l->[0], "$sys/$l->[0]");
  }
}
# Kernel users that open a device without claiming it and show in no process's descriptors: an NVMe-oF
# target namespace (nvmet) or an iSCSI/LIO backstore exporting it to other machines.
for my $path (glob("$cfg/nvmet/subsystems/*/namespaces/*/device_path"), glob("$cfg/target/core/*/*/udev_path")) {
  my $dev = line($path) // next;
  my @st = stat($dev) or next;
  my $on = -b _ ? $num{devno($st[6])} : undef;
  print "served $on ", printable($path), "\n" if defined $on;
}
sub by_source { my $p = shift; $p =~ m{^/dev/} && -b $p ? $num{devno((stat _)[6])} : undef }
if (open(my $mi, '<', '/proc/self/mountinfo')) {
  while (<$mi>) {
    my @f = split ' ';
    my ($source) = / - \S+ (\S+)/;
    my $on = $num{$f[2]} // by_source($source // '');
    print "mount $on ", printable($f[4]), "\n" if defined $on;
  }
}
if (open(my $sw, '<', '/proc/swaps')) {
  <$sw>;
  while (<$sw>) { my ($p) = split ' '; my $on = by_source($p); print "swap $on ", printable($p), "\n" if defined $on }
}
# A thread may have a file table of its own (unshare(CLONE_FILES)): not in /proc/<pid>/fd, only in its
# task's. kcmp(KCMP_FILES) says which threads share the leader's table, so only the others are read.
my %kcmp = (x86_64 => 312, aarch64 => 272, riscv64 => 272, ppc64le => 354, s390x => 343);
my $kcmp = $kcmp{($Config{archname} =~ /^([^-]+)/)[0]};
sub tables {
  my $pid = shift;
  my @own = grep { /^\d+$/ && $_ != $pid } entries("/proc/$pid/task");
  my @apart = grep { !$kcmp || syscall($kcmp, $pid + 0, $_ + 0, 2, 0, 0) != 0 } @own;  # 2: KCMP_FILES
  return ("/proc/$pid", map { "/proc/$pid/task/$_" } @apart);
}
sub openers {
  my (%found, $unseen);
  for my $pid (grep { /^\d+$/ && !$ours{$_} } entries('/proc')) {
    for my $table (tables($pid)) {
      opendir(my $dh, "$table/fd") or do { $unseen++ if $!{EACCES} && $table eq "/proc/$pid"; next };
      for my $fd (grep { /^\d+$/ } readdir $dh) {
        my @st = stat("$table/fd/$fd") or next;
        -b _ or next;
        my $on = $num{devno($st[6])} // next;
        my $flags = 0;
        if (open(my $fi, '<', "$table/fdinfo/$fd")) { while (<$fi>) { $flags = oct($1) if /^flags:\s+(\d+)/ } }
        my $mode = ('read-only', 'write-only', 'read-write')[$flags & 3] // 'read-write';
        my $comm = line("$table/comm") // '?';
        $comm = printable($comm);
        $found{"$table $fd"} = "open $on $pid $mode $comm";
      }
    }
  }
  return (\%found, $unseen // 0);
}
my ($found, $unseen) = openers();
if (%$found && !grep { !/ read-only / } values %$found) {
  select(undef, undef, undef, 1);
  my ($again) = openers();
  $found = { map { $_ => $found->{$_} } grep { $again->{$_} } keys %$found };
}
my %said;
print "$_\n" for grep { !$said{$_}++ } sort values %$found;
print "unseen $unseen\n" if $unseen;
if ($probe) { sysopen(my $x, "/dev/$top", O_RDONLY | O_EXCL) or print($!{EBUSY} ? "busy\n" : '') }
exit 0;
"""


def device_use(node: Node, device: BlockDevice, ours: Sequence[int] = (), probe_exclusive: bool = True) -> DeviceUse:
    """Everything that uses the device, as the node's kernel shows it.

    `ours`: node pids of our own with the device open (the hold). Under the hold, probe_exclusive=False:
    the hold's own exclusive open would make the probe fail; holding it is the proof instead.
    """
    if isinstance(node, LocalNode):
        ours = [*ours, os.getpid()]  # the controller itself, when it runs on the node
    argv = ["perl", "-e", _USE_SCRIPT, SYS_BLOCK, CONFIGFS, device.name, "1" if probe_exclusive else "0",
            *map(str, ours)]
    result = node.run(argv, check=False)
    if result.returncode == 3:
        raise QualifyError(f"{node.name}: {device.path} disappeared ({SYS_BLOCK}/{device.name} is gone)")
    if result.returncode != 0:
        raise QualifyError(f"{node.name}: cannot tell what uses {device.path}, so nothing is written to it (exit "
                           f"status {result.returncode}: {result.stderr.strip()[-300:] or 'no error output'})")
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    under = {f[1]: (f[0], f[2]) for f in lines if f[0] in ("part", "holder", "loop") and len(f) >= 3}

    def via(name: str) -> str:
        """' (loop7p1 on loop7 on loop3)' for what is stacked on the device, '' for it and its partitions."""
        path = [name]
        while path[-1] in under and len(path) < 64:
            path.append(under[path[-1]][1])
        stacked = any(under[n][0] != "part" for n in path if n in under)
        return f" ({' on '.join(path)})" if stacked else ""

    def of(kind: str, width: int) -> list[list[str]]:
        return [f for f in lines if f[0] == kind and len(f) == width]

    wipefs = node.run(["wipefs", "--no-act", "--json", device.path], check=False)
    if wipefs.returncode != 0:
        raise QualifyError(f"{node.name}: cannot read the signatures on {device.path}, so nothing is written to it "
                           f"(wipefs --no-act exited with status {wipefs.returncode}: "
                           f"{wipefs.stderr.strip()[-300:] or 'no error output'}); run qualify on the node as root, "
                           "with util-linux 2.29 or newer")
    return DeviceUse(
        partitions=[f[1] for f in of("part", 3) if f[2] == device.name],
        holders=[f[1] + (f" (on {f[2]})" if f[2] != device.name else "") for f in of("holder", 3)],
        mounted=[f"{f[1]} on {f[2]}{via(f[1])}" for f in of("mount", 3)] + [f"swap on {f[2]}" for f in of("swap", 3)],
        busy=["busy"] in lines,
        signatures=parse_wipefs_json(wipefs.stdout, f"{node.name}: wipefs --json {device.path}"),
        stacked=[f"{f[1]} on {f[2]}" + (f" at offset {f[3]}" if f[3] != "0" else "") for f in of("loop", 4)],
        opened=[f"pid {f[2]} ({f[4]}, {f[3]}) on {f[1]}{via(f[1])}" for f in of("open", 5)],
        unseen=sum(int(f[1]) for f in of("unseen", 2)),
        served=[f"{f[1]} by {f[2]}" for f in of("served", 3)],
    )


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
    if use.stacked:
        found.append(Refusal("stacked", f"loop devices are stacked on it: {', '.join(use.stacked)} (the kernel lists "
                                        "them as no holder: a VM image, a test loop or an offset partition)",
                             "detach them (losetup -d) once nothing uses them"))
    if use.opened:
        found.append(Refusal("open", f"open by {', '.join(use.opened)}",
                             "stop those processes (fuser -v <device> lists them)"))
    if use.served:
        found.append(Refusal("served", f"exported to other machines by the kernel: {', '.join(use.served)} (an NVMe-oF "
                                       "or iSCSI target opens it without a claim and without a process)",
                             "remove it from the target (nvmetcli / targetcli) first"))
    if use.unseen:
        found.append(Refusal("unseen", f"the open files of {use.unseen} process(es) cannot be read, so a user of the "
                                       "device could be missed", "run qualify on the node as root"))
    if use.busy and not (use.mounted or use.holders or use.stacked or use.opened or use.served):
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
