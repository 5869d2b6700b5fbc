"""Real loop devices for the storage tests: made with a marker serial, always detached again.

Each device's backing file lives in the test's tmp folder; whatever a test stacked on it (mounts,
LVM volume groups) is taken down by the test before `loop_devices` detaches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qualify.checks.drive_integrity import check_drive_integrity
from qualify.findings import Findings
from qualify.node import LocalNode
from qualify.profile import DriveIntegritySettings, Profile
from qualify.storage import mark_loop_backing_file
from qualify.store import RunStore


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


class LoopDevices:
    def __init__(self, folder: Path):
        self.folder = folder
        self.attached: list[tuple[str, Path]] = []

    def make(self, serial: str | None, size_mib: int = 64, fill: bool = True, name: str | None = None) -> str:
        """A loop device over a new file (filled with a pattern so checksums mean something)."""
        backing = self.folder / (name or f"drive{len(self.attached)}.img")
        backing.parent.mkdir(parents=True, exist_ok=True)
        with open(backing, "wb") as f:
            if fill:
                block = hashlib.sha256(str(backing).encode()).digest() * (1 << 15)  # 1 MiB of pattern
                f.writelines(block for _ in range(size_mib))
            else:
                f.truncate(size_mib << 20)
        if serial is not None:
            mark_loop_backing_file(backing, serial)
        device = sh("losetup", "--find", "--show", "--partscan", str(backing)).stdout.strip()
        self.attached.append((device, backing))
        return device

    def stack(self, lower: str, offset: int = 0) -> str:
        """A loop device over the device `lower`, from `offset` bytes on (as a VM image or a test might)."""
        device = sh("losetup", "--find", "--show", "--partscan", "--offset", str(offset), lower).stdout.strip()
        self.attached.append((device, Path(lower)))
        return device

    def detach_all(self) -> None:
        for device, _backing in reversed(self.attached):  # what is stacked first
            sh("losetup", "-d", device, check=False)
        self.attached.clear()


@contextmanager
def loop_devices(folder: Path) -> Iterator[LoopDevices]:
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    loops = LoopDevices(folder)
    try:
        yield loops
    finally:
        loops.detach_all()


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[LoopDevices]:
    """Loop devices in the test's tmp folder (import the fixture from here), detached after the test."""
    with loop_devices(tmp_path) as made:
        yield made


def marker_serial(request: pytest.FixtureRequest, tag: str) -> str:
    """A QLAB- marker serial unique to this test process and test (`tag`: which test file)."""
    return f"QLAB-{tag}{os.getpid()}-{request.node.name[:36]}"


def checksum(device: str) -> str:
    digest = hashlib.sha256()
    with open(device, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def forget_run_lock(sysfs: Path) -> None:
    """Remove the run lock files a test's own tree made in /run/qualify (the product leaves its lock files)."""
    key = LocalNode("any", Profile(host="localhost", paths={"sysfs": str(sysfs)})).lock_key
    net = os.stat("/proc/self/ns/net").st_ino
    for suffix in (".run", ".load"):
        Path(f"/run/qualify/node-{net}-{key}{suffix}").unlink(missing_ok=True)


def local_node(paths: dict | None = None, lock_wait: float | None = None, **storage: object) -> LocalNode:
    """This machine as a node with `storage` as checks.storage (`paths.sysfs` also picks its run lock)."""
    profile = Profile.model_validate({"host": "localhost", "checks": {"storage": storage}, "paths": paths or {},
                                      **({"lock_wait": lock_wait} if lock_wait else {})})
    node = LocalNode("testnode", profile)
    node.open()
    return node


# ext4 without lazy initialisation: a mounted filesystem must not keep writing its inode tables in
# the background, or a checksum would change without qualify writing anything.
MKFS_EXT4 = ("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0")


@contextmanager
def mounted(device: str, folder: Path) -> Iterator[Path]:
    """The device made ext4 and mounted read-only under `folder` for the block; unmounted even when it fails."""
    sh(*MKFS_EXT4, device)
    mountpoint = folder / "mnt"
    mountpoint.mkdir()
    sh("mount", "-o", "ro", device, str(mountpoint))
    try:
        yield mountpoint
    finally:
        sh("umount", str(mountpoint))


class Terminal:
    """pytest's capture manager as drive_integrity uses it (to print progress): nothing to suspend here."""

    def disabled(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def run_integrity_check(tmp_path: Path, drives: list[dict], **settings: object) -> tuple[Findings, Path]:
    """drive_integrity on this machine over `drives` (quick sampling unless `settings` say otherwise)."""
    node = local_node(drives=drives)
    profile = node.profile.model_copy(update={"checks": node.profile.checks.model_copy(update={
        "drive_integrity": DriveIntegritySettings(**{"sample_interval": 0.2, **settings})})})  # type: ignore[arg-type]
    store = RunStore.create("testnode", tmp_path / "reports")
    findings = Findings("drive_integrity")
    try:
        check_drive_integrity(node, profile, findings, store, Terminal())  # type: ignore[arg-type]
    finally:
        store.close()
    return findings, store.run_dir


def run_drive_check(check: Callable[..., None], tmp_path: Path, drives: list[dict], **sections: object) -> Findings:
    """A read-only drive check on this machine over `drives`; `sections`: other checks' settings (selftest={...})."""
    profile = Profile.model_validate({"host": "localhost", "checks": {"storage": {"drives": drives}, **sections}})
    node = local_node()
    node.profile = profile
    findings = Findings(check.__name__.removeprefix("check_"))
    check(node, profile, findings, RunStore.create("testnode", tmp_path / "reports"))
    return findings


def run_storage_check(check: Callable[..., None], tmp_path: Path, **storage: object) -> tuple[Findings, Path]:
    """Run a storage check function on this machine with `storage` as checks.storage; its findings and run dir."""
    node = local_node(**storage)  # type: ignore[arg-type]
    store = RunStore.create("testnode", tmp_path / "reports")
    findings = Findings(check.__name__.removeprefix("check_"))
    try:
        check(node, node.profile, findings, store)
    finally:
        store.close()
    return findings, store.run_dir
