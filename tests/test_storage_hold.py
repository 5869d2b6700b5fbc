"""The hold, on real loop devices: while fio writes, nobody else gets the drive, and a second run waits or refuses."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time

import pytest
from test_storage_guard import write_job

from loopback_sshd import loopback_sshd
from qualify.errors import QualifyError
from qualify.node import connect
from qualify.node.lock import NodeBusy
from qualify.storage import WriteRefused
from qualify.storage.runner import run_fio
from storage_loop import MKFS_EXT4, forget_run_lock, local_node, loop_devices, sh

MIB = 1 << 20


@pytest.fixture
def loops(tmp_path):
    with loop_devices(tmp_path / "drives") as made:
        yield made


@pytest.fixture(autouse=True)
def own_lock_files(tmp_path):
    """Nodes on tmp_path/"tree" have a run lock of this test's own: its files go afterwards."""
    yield
    forget_run_lock(tmp_path / "tree")


@pytest.fixture
def serial(request):
    return f"QLAB-h{os.getpid()}-{request.node.name[:40]}"


def region_checksum(device: str, start: int) -> str:
    """The device's content from `start` on: what a job writing only below `start` must leave alone."""
    digest = hashlib.sha256()
    with open(device, "rb") as f:
        f.seek(start)
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def node_for(serial: str, tmp_path, **settings: object):
    """The drive allowed for writing; a run lock of this test's own (its own tree path), not the machine's."""
    return local_node(paths={"sysfs": str(tmp_path / "tree")}, drives=[{"serial": serial, "allow_destroy": True}],
                      **settings)


class Job(threading.Thread):
    """A write job in the background; `started` is set once fio reports its first second."""

    def __init__(self, node, device: str, seconds: int):
        super().__init__(daemon=True)
        self.node, self.device, self.seconds = node, device, seconds
        self.started = threading.Event()
        self.outcome = None
        self.error: BaseException | None = None
        self.ended_at = 0.0

    def run(self) -> None:
        try:
            self.outcome = run_fio(self.node, write_job(self.device, self.seconds), self.seconds,
                                   lambda _: self.started.set())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.started.set()


def test_mkfs_mount_and_wipefs_fail_while_a_write_job_runs(loops, serial, tmp_path):
    device = loops.make(serial)
    rest = region_checksum(device, 16 * MIB)  # the job writes only the first 16 MiB
    job = Job(node_for(serial, tmp_path), device, seconds=4)
    job.start()
    assert job.started.wait(30) and job.error is None, job.error
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    # mkfs forced twice (past its own in-use check), wipefs, mount: each needs the exclusive open the hold has
    attempts = {"mkfs": sh(*MKFS_EXT4, "-F", "-F", device, check=False),
                "wipefs": sh("wipefs", "--all", device, check=False), "mount": sh("mount", device, str(mountpoint),
                                                                                  check=False)}
    job.join(60)
    assert job.outcome is not None and job.outcome.failed is None, job.error or job.outcome.failed
    for tool, result in attempts.items():
        assert result.returncode != 0, f"{tool} succeeded on a device being written: {result.stdout}"
        assert re.search("busy|in use", result.stdout + result.stderr, re.IGNORECASE), (tool, result.stderr)
    assert not os.path.ismount(mountpoint)
    assert region_checksum(device, 16 * MIB) == rest  # nothing but the job wrote


def test_a_second_writer_is_refused_naming_the_first_then_runs_after_it(loops, serial, tmp_path):
    device = loops.make(serial)
    first = Job(node_for(serial, tmp_path), device, seconds=4)
    first.start()
    assert first.started.wait(30) and first.error is None, first.error
    impatient = node_for(serial, tmp_path, lock_wait=1)
    with pytest.raises(NodeBusy, match=rf"another run is writing to or loading this node: fio writing to {device} "
                                       rf"on testnode for pid {os.getpid()} .*waited 1 s \(profile key lock_wait\)"):
        run_fio(impatient, write_job(device, 1), 1, lambda _: None)
    assert first.is_alive(), "the refusal came only after the first job ended"
    # A patient one waits, and writes only once the first has let go of the drive.
    second = Job(node_for(serial, tmp_path, lock_wait=60), device, seconds=1)
    second.start()
    second.join(60)
    first.join(60)
    assert first.outcome and first.outcome.failed is None and second.outcome and second.outcome.failed is None
    assert second.ended_at - first.ended_at >= 1  # its 1 s job ran after the first ended


def test_a_write_the_guard_did_not_allow_never_starts(loops, serial, tmp_path):
    device = loops.make(serial)
    not_allowed = local_node(paths={"sysfs": str(tmp_path / "tree")}, drives=[{"serial": serial}])
    with pytest.raises(WriteRefused, match=r"\[allow_destroy\]"):
        run_fio(not_allowed, write_job(device), 1, lambda _: None)
    unnamed = local_node(paths={"sysfs": str(tmp_path / "tree")})
    with pytest.raises(QualifyError, match=rf"refusing to write to {device} \({serial}\): it is not a drive named"):
        run_fio(unnamed, write_job(device), 1, lambda _: None)


def test_a_device_held_by_someone_else_exclusively_is_not_written(loops, serial, tmp_path):
    device = loops.make(serial)
    holder = 'use Fcntl; sysopen(my $f, $ARGV[0], O_RDONLY|O_EXCL) or die; $| = 1; print "ready\\n"; sleep 60'
    other = subprocess.Popen(["perl", "-e", holder, device], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "ready"
        with pytest.raises(WriteRefused, match=rf"\[open\] open by pid {other.pid} \(perl, read-only\)"):
            run_fio(node_for(serial, tmp_path), write_job(device), 1, lambda _: None)
    finally:
        other.kill()
        other.wait()


def test_over_ssh_the_write_job_holds_the_drive_too(loops, serial, tmp_path):
    device = loops.make(serial)
    rest = region_checksum(device, 16 * MIB)
    with loopback_sshd(tmp_path / "sshd") as sshd:
        node = connect("remote", sshd.profile(paths={"sysfs": str(tmp_path / "tree")}, checks={
            "storage": {"drives": [{"serial": serial, "allow_destroy": True}]}}))
        try:
            job = Job(node, device, seconds=3)
            job.start()
            assert job.started.wait(60) and job.error is None, job.error
            mkfs = sh(*MKFS_EXT4, "-F", "-F", device, check=False)
            job.join(60)
        finally:
            node.close()
    assert job.outcome is not None and job.outcome.failed is None, job.error or job.outcome.failed
    assert mkfs.returncode != 0 and re.search("busy|in use", mkfs.stderr, re.IGNORECASE), mkfs.stderr
    assert region_checksum(device, 16 * MIB) == rest


def test_one_tree_spelled_differently_is_one_run_lock():
    """Two runs of one machine must not load it at once because one profile says /sys/ and the other //sys."""
    keys = {local_node(paths={"sysfs": spelling}).lock_key for spelling in ("/sys", "/sys/", "//sys", "/sys/.",
                                                                          "/proc/../sys")}
    assert len(keys) == 1
    assert local_node(paths={"sysfs": "/tmp/tree"}).lock_key not in keys
