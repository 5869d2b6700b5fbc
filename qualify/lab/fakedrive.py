"""A drive that claims more than it holds, for the lab and the tests: a loop device over a FUSE file
whose offsets wrap onto a smaller real file (as a fake drive's controller drops the high address bits).

This kernel has no device-mapper, but it has FUSE. No FUSE library is needed: the file system is a few
replies to the kernel's FUSE protocol read from /dev/fuse (INIT, GETATTR, OPEN, READ, WRITE...),
mounted with mount(2) over an empty regular file, so the mount point *is* the fake image (a FUSE root
may be a regular file). Opened with FOPEN_DIRECT_IO: the kernel keeps no page cache of it, every read
reaches the daemon and so shows what the real file holds at offset mod its size. The loop device's
QLAB- serial marker sits next to the image, as for every lab drive.

    fake = make_fake_drive(folder, claimed_bytes=1 << 30, real_bytes=256 << 20, serial="QLAB-...")
    ...
    remove_fake_drive(folder)   # detaches the loop device, unmounts, stops the daemon (by its pid)

`python -m qualify.lab.fakedrive serve <image> <real file> <claimed bytes>` is the daemon.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import stat
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from qualify.errors import LabError
from qualify.lab import loopdev, procs
from qualify.storage.identity import mark_loop_backing_file

STATE = "fakedrive.json"
IMAGE = "fake-u2.img"  # the FUSE mount point: the fake drive's image
REAL = "fake-u2.real"  # what it really holds
MOUNT_WAIT_S = 10.0

# FUSE protocol (include/uapi/linux/fuse.h), little-endian as on every machine the lab runs on
IN_HEADER = struct.Struct("<IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, total_extlen, padding
OUT_HEADER = struct.Struct("<IiQ")  # len, error, unique
INIT_IN = struct.Struct("<IIII")  # major, minor, max_readahead, flags
INIT_OUT = struct.Struct("<IIIIHHIIHHII24x")  # ..., max_write, time_gran, max_pages, map_alignment, flags2, max_stack
# ino size blocks atime mtime ctime, their nsec, mode nlink uid gid rdev blksize flags
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")
ATTR_OUT = struct.Struct("<QII")  # attr_valid, attr_valid_nsec, dummy (then the attr)
OPEN_OUT = struct.Struct("<QIi")  # fh, open_flags, backing_id
IO_IN = struct.Struct("<QQII")  # fh, offset, size, read/write flags (then lock_owner, flags, padding)
WRITE_OUT = struct.Struct("<II")
STATFS_OUT = struct.Struct("<QQQQQIIII24x")
LOOKUP, FORGET, GETATTR, SETATTR, OPEN, READ, WRITE, STATFS, RELEASE, FSYNC = 1, 2, 3, 4, 14, 15, 16, 17, 18, 20
FLUSH, INIT, INTERRUPT, BATCH_FORGET, DESTROY = 25, 26, 36, 42, 38
NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}
FUSE_BIG_WRITES, FUSE_MAX_PAGES = 1 << 5, 1 << 22
FOPEN_DIRECT_IO = 1 << 0
MAX_WRITE = 1 << 20
ROOT = 1
MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2


class FuseServer:
    """The kernel's requests for one file (the mount's root), answered from a smaller real file."""

    def __init__(self, device_fd: int, real_fd: int, claimed: int, real_size: int):
        self.fd, self.real, self.claimed, self.real_size = device_fd, real_fd, claimed, real_size
        self.now = int(time.time())

    def serve(self) -> None:
        buffer = bytearray(MAX_WRITE + (64 << 10))
        view = memoryview(buffer)
        while True:
            try:
                length = os.readv(self.fd, [buffer])
            except OSError as error:
                if error.errno == errno.ENODEV:  # unmounted
                    return
                if error.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):  # ENOENT: an interrupted request
                    continue
                raise
            size, opcode, unique, _, _, _, _, _, _ = IN_HEADER.unpack_from(buffer)
            body = view[IN_HEADER.size:min(size, length)]
            if opcode in NO_REPLY:
                continue
            try:
                reply = self.answer(opcode, body)
            except OSError as error:
                self.reply(unique, -(error.errno or errno.EIO))
                continue
            if reply is None:
                self.reply(unique, -errno.ENOSYS)
            else:
                self.reply(unique, 0, reply)
            if opcode == DESTROY:
                return

    def reply(self, unique: int, error: int, payload: bytes | memoryview = b"") -> None:
        header = OUT_HEADER.pack(OUT_HEADER.size + (len(payload) if not error else 0), error, unique)
        try:
            os.writev(self.fd, [header, payload] if payload and not error else [header])
        except OSError as failure:
            if failure.errno != errno.ENOENT:  # the request was interrupted meanwhile
                raise

    def answer(self, opcode: int, body: memoryview) -> bytes | memoryview | None:
        if opcode == INIT:
            _, minor, readahead, flags = INIT_IN.unpack_from(body)
            wanted = flags & (FUSE_BIG_WRITES | FUSE_MAX_PAGES)
            return INIT_OUT.pack(7, min(minor, 31), readahead, wanted, 16, 12, MAX_WRITE, 1, MAX_WRITE >> 12, 0, 0, 0)
        if opcode in (GETATTR, SETATTR):
            return ATTR_OUT.pack(3600, 0, 0) + self.attr()
        if opcode == OPEN:
            return OPEN_OUT.pack(0, FOPEN_DIRECT_IO, 0)
        if opcode == READ:
            _, offset, size, _ = IO_IN.unpack_from(body)
            return b"".join(os.pread(self.real, length, at) for at, length in self.pieces(offset, size))
        if opcode == WRITE:
            _, offset, size, _ = IO_IN.unpack_from(body)
            data = body[IO_IN.size + 16:IO_IN.size + 16 + size]  # after lock_owner, flags, padding
            done = 0
            for at, length in self.pieces(offset, len(data)):
                done += os.pwrite(self.real, data[done:done + length], at)
            return WRITE_OUT.pack(done, 0)
        if opcode in (FLUSH, RELEASE, DESTROY):
            return b""
        if opcode == FSYNC:
            os.fsync(self.real)
            return b""
        if opcode == STATFS:
            return STATFS_OUT.pack(self.claimed >> 12, 0, 0, 1, 0, 4096, 255, 4096, 0)
        if opcode == LOOKUP:
            raise OSError(errno.ENOENT, "a file, not a folder")
        return None

    def attr(self) -> bytes:
        return ATTR.pack(ROOT, self.claimed, self.claimed // 512, self.now, self.now, self.now, 0, 0, 0,
                         stat.S_IFREG | 0o600, 1, 0, 0, 0, 4096, 0)

    def pieces(self, offset: int, size: int) -> list[tuple[int, int]]:
        """(real offset, length) pieces of a request: offsets beyond the real size wrap onto it."""
        size = max(0, min(size, self.claimed - offset))
        out = []
        while size > 0:
            at = offset % self.real_size
            length = min(size, self.real_size - at)
            out.append((at, length))
            offset, size = offset + length, size - length
        return out


def serve(image: Path, real: Path, claimed: int) -> None:
    """Mount the FUSE file system over `image` and answer it until it is unmounted (the daemon)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    device = os.open("/dev/fuse", os.O_RDWR)
    real_fd = os.open(real, os.O_RDWR)
    options = f"fd={device},rootmode={stat.S_IFREG:o},user_id=0,group_id=0,allow_other".encode()
    if libc.mount(b"qualify-fake-drive", str(image).encode(), b"fuse.qualify-fake", MS_NOSUID | MS_NODEV,
                  options) != 0:
        code = ctypes.get_errno()
        raise SystemExit(f"mounting the fake drive over {image} failed: {os.strerror(code)}")
    FuseServer(device, real_fd, claimed, os.fstat(real_fd).st_size).serve()


@dataclass(frozen=True)
class FakeDrive:
    image: Path  # the loop device's backing file (the FUSE mount)
    real: Path
    loop_device: str
    pid: int  # of the daemon
    serial: str
    claimed_bytes: int
    real_bytes: int


def make_fake_drive(folder: Path, claimed_bytes: int, real_bytes: int, serial: str) -> FakeDrive:
    """The fake drive in `folder`: a FUSE image claiming `claimed_bytes` over `real_bytes`, and its loop device."""
    if not fuse_available():
        raise LabError("the fake drive needs root and /dev/fuse (modprobe fuse)")
    if not 0 < real_bytes <= claimed_bytes:
        raise LabError(f"a fake drive holds less than it claims: got {real_bytes} of {claimed_bytes} bytes")
    folder.mkdir(parents=True, exist_ok=True)
    image, real = folder / IMAGE, folder / REAL
    image.write_bytes(b"")
    with open(real, "wb") as f:
        f.truncate(real_bytes)
    with open(folder / "fakedrive.log", "ab") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "qualify.lab.fakedrive", "serve", str(image), str(real),
                                   str(claimed_bytes)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True, cwd="/")
    try:
        _wait_mounted(image, claimed_bytes, daemon, folder)
        mark_loop_backing_file(image, serial)  # <image>.qualify-serial, beside the FUSE file
        device = loopdev.attach(image)
        fake = FakeDrive(image, real, device, daemon.pid, serial, claimed_bytes, real_bytes)
        (folder / STATE).write_text(json.dumps({**asdict(fake), "image": str(image), "real": str(real)}) + "\n")
        return fake
    except BaseException:
        _unmount(image)
        procs.terminate([daemon.pid])
        raise


def _wait_mounted(image: Path, claimed: int, daemon: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + MOUNT_WAIT_S
    while os.stat(image).st_size != claimed:
        if daemon.poll() is not None:
            log = (folder / "fakedrive.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(f"the fake drive's FUSE daemon ended with status {daemon.returncode}: {' '.join(log)}")
        if time.monotonic() > deadline:
            raise LabError(f"the fake drive over {image} was not mounted within {MOUNT_WAIT_S:g} s")
        time.sleep(0.05)


def fake_drive_state(folder: Path) -> FakeDrive | None:
    try:
        data = json.loads((folder / STATE).read_text())
        return FakeDrive(**{**data, "image": Path(data["image"]), "real": Path(data["real"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def fuse_available() -> bool:
    """Whether this machine can serve a fake drive: root and /dev/fuse (else the lab carries none)."""
    return os.geteuid() == 0 and Path("/dev/fuse").exists()


def fake_drive_healthy(folder: Path) -> bool:
    """The recorded fake drive is mounted, served and attached."""
    fake = fake_drive_state(folder)
    return (fake is not None and procs.alive(fake.pid) and _is_ours(fake.pid, fake.image)
            and fake.loop_device in loopdev.devices_backed_by(fake.image))


def remove_fake_drive(folder: Path) -> None:
    """Detach the fake drive's loop devices, unmount it, stop its daemon (only ours, by pid), remove its files.

    Harmless when there is none; works from what is on disk, so a crashed lab is cleaned up too.
    """
    image = folder / IMAGE
    for device in loopdev.devices_backed_by(image):
        loopdev.detach(device, image)
    _unmount(image)
    fake = fake_drive_state(folder)
    if fake is not None and _is_ours(fake.pid, fake.image):
        left = procs.terminate([fake.pid])
        if left:
            raise LabError(f"the fake drive's FUSE daemon (pid {fake.pid}) did not stop")
    if _mounted(image):
        raise LabError(f"the fake drive {image} is still mounted (umount -l {image})")
    for name in (STATE, IMAGE, f"{IMAGE}.qualify-serial", REAL, "fakedrive.log"):
        (folder / name).unlink(missing_ok=True)


def _is_ours(pid: int, image: Path) -> bool:
    line = procs.cmdline(pid)
    return "qualify.lab.fakedrive serve" in line and str(image) in line


def _mounted(image: Path) -> bool:
    try:
        mounts = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return False
    return any(fields[4] == str(image) for fields in (line.split() for line in mounts.splitlines()) if len(fields) > 4)


def _unmount(image: Path) -> None:
    if _mounted(image):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.umount2(str(image).encode(), MNT_DETACH)  # lazy: the daemon then reads ENODEV and exits


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "serve":
        raise SystemExit("usage: python -m qualify.lab.fakedrive serve <image> <real file> <claimed bytes>")
    serve(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
