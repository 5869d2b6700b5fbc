"""The hold: a drive being written to is kept from every other user for the whole job.

The guard's check is a moment; the hold makes it last. A small process on the node opens the
device with O_EXCL and keeps it open until the job ends: while it does, the kernel refuses every
other exclusive open of the device and of its partitions - mount, mkfs, wipefs, swapon, LVM, md,
dm, another run's hold - so nothing can start to use the drive while fio writes over it. fio has
no exclusive open of its own (its lockfile= is between its own jobs); its plain open works beside
the hold. The holder runs under the tether: it goes with the controller, SIGKILL included.

Under the hold the guard is asked once more, with the holder's own descriptor left out (and no
exclusive-open probe: holding it is the proof), so a user that slipped in before the hold was
taken - a loop device set up on it, a process that opened it - is still refused. Everything runs
under the node's run lock: a second run waits for the first to finish its write, or refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from qualify.errors import QualifyError
from qualify.node import Node
from qualify.node.base import NodeProcess
from qualify.profile import StorageDrive
from qualify.storage.guard import Refusal, WriteRefused, device_use, refusals
from qualify.storage.identity import (
    BlockDevice,
    DriveNotFound,
    block_devices,
    resolve_drive,
)

# $@: the devices to hold. Prints "held <pid>" once all are held, or "refused <device> <reason>".
_HOLD = r"""
use strict; use Fcntl; $| = 1;
my @held;
for my $device (@ARGV) {
  sysopen(my $fh, $device, O_RDONLY | O_EXCL)
    or do { print "refused $device ", ($!{EBUSY} ? 'busy' : $!), "\n"; exit 16 };
  push @held, $fh;
}
print "held $$\n";
sleep while 1;
"""
HOLD_SOURCE = " ".join(line.strip() for line in _HOLD.strip().splitlines())


class DeviceHold:
    """An exclusive open of a device, kept by a process on the node until release()."""

    def __init__(self, node: Node, device: BlockDevice):
        self.device = device
        self._process: NodeProcess = node.spawn(["perl", "-e", HOLD_SOURCE, device.path], load=True)
        self.pid = 0  # of the holder, on the node
        self.refused = ""
        for line in self._process.lines():
            kind, _, rest = line.partition(" ")
            if kind == "held":
                self.pid = int(rest)
                return
            if kind == "refused":
                self.refused = rest.partition(" ")[2]
                break
        code = self._process.stop()
        self.refused = self.refused or f"the holder ended with status {code}: {self._process.stderr().strip()}"

    def release(self) -> None:
        self._process.stop()


@contextmanager
def held_for_writing(node: Node, drive: StorageDrive, settings_key: str) -> Iterator[BlockDevice]:
    """The drive's device, held exclusively for the block: WriteRefused when any rule of the guard says no.

    With `wipe: true` the signatures are erased under the hold (wipefs --force: the hold, not wipefs's
    own exclusive open, keeps everyone else out).
    """
    with node.exclusive(f"writing to {drive.identity}"):
        device = resolve_drive(node, drive)
        found = refusals(drive, device_use(node, device), settings_key)
        if found:
            raise WriteRefused(device, drive, found)
        hold = DeviceHold(node, device)
        try:
            if not hold.pid:
                raise WriteRefused(device, drive, [Refusal("busy", f"it cannot be held exclusively ({hold.refused})",
                                                           "find and stop its user (lsof, fuser -v)")])
            if resolve_drive(node, drive).path != device.path:
                raise DriveNotFound(f"{node.name}: {drive.identity} moved from {device.path} while being held")
            use = device_use(node, device, ours=[hold.pid], probe_exclusive=False)
            found = refusals(drive, use, settings_key)
            if found:
                raise WriteRefused(device, drive, found)
            if use.signatures:
                node.run(["wipefs", "--all", "--force", "--quiet", device.path])
            yield device
        finally:
            hold.release()


def drive_at(node: Node, path: str) -> tuple[StorageDrive, str]:
    """The profile's drive that is the device at `path`, and its settings key; QualifyError when none is."""
    drives = node.profile.checks.storage.drives
    serials = {d.path: d for d in block_devices(node)}
    for index, drive in enumerate(drives):
        try:
            if resolve_drive(node, drive).path == path:
                return drive, f"checks.storage.drives[{index}]"
        except DriveNotFound:
            continue
    known = serials.get(path)
    raise QualifyError(f"{node.name}: refusing to write to {path}"
                       + (f" ({known.serial or known.wwn or 'no serial'})" if known else "")
                       + ": it is not a drive named under checks.storage.drives in the profile")
