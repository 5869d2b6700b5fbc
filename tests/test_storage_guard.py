"""The guard against data loss, on real loop devices: every refusal, and the data unchanged afterwards."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qualify.errors import QualifyError
from qualify.parsers.wipefs import parse_wipefs_json
from qualify.profile import StorageDrive, load_profile
from qualify.storage import (
    DriveNotFound,
    WriteRefused,
    block_devices,
    checked_for_writing,
    guard,
    resolve_drive,
)
from qualify.storage.identity import normalize_wwn
from qualify.storage.runner import run_fio
from storage_loop import MKFS_EXT4, checksum, local_node, loop_devices, sh

KEY = "checks.storage.drives[0]"


@pytest.fixture
def loops(tmp_path):
    with loop_devices(tmp_path) as made:
        yield made


@pytest.fixture
def serial(request):
    return f"QLAB-t{os.getpid()}-{request.node.name[:40]}"


def drive(serial: str, **flags: bool) -> StorageDrive:
    return StorageDrive(serial=serial, **flags)


def refused_rules(device_serial: str, **flags: bool) -> list[str]:
    with pytest.raises(WriteRefused) as refused:
        checked_for_writing(local_node(), drive(device_serial, **flags), KEY)
    return [r.rule for r in refused.value.refusals]


def test_blank_allowed_drive_may_be_written(loops, serial):
    device = loops.make(serial, fill=False)
    assert checked_for_writing(local_node(), drive(serial, allow_destroy=True), KEY).path == device


def test_without_allow_destroy_nothing_is_written(loops, serial):
    device = loops.make(serial)
    before = checksum(device)
    with pytest.raises(WriteRefused) as refused:
        checked_for_writing(local_node(), drive(serial), KEY)
    assert f"[allow_destroy] the profile does not allow destroying this drive's data - to allow it: set " \
           f"{KEY}.allow_destroy: true" in str(refused.value)
    assert checksum(device) == before


def test_ext4_signature_refused_unless_wipe(loops, serial):
    device = loops.make(serial)
    sh(*MKFS_EXT4, device)
    before = checksum(device)
    assert refused_rules(serial, allow_destroy=True) == ["signature"]
    assert checksum(device) == before
    # wipe: true erases the signature and lets the write go ahead
    checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
    assert parse_wipefs_json(sh("wipefs", "--no-act", "--json", device).stdout) == []


def test_mounted_refused_even_with_wipe(loops, serial, tmp_path):
    device = loops.make(serial)
    sh(*MKFS_EXT4, device)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    sh("mount", device, str(mountpoint))
    (mountpoint / "precious").write_text("data")
    sh("umount", str(mountpoint))
    # mounted again read-only, so that ext4's own background writes cannot change the checksum
    sh("mount", "-o", "ro", device, str(mountpoint))
    try:
        before = checksum(device)
        rules = refused_rules(serial, allow_destroy=True, wipe=True)
        assert rules == ["mounted"], rules
        assert checksum(device) == before
        assert (mountpoint / "precious").read_text() == "data"
    finally:
        sh("umount", str(mountpoint))


def test_partition_table_refused_and_partition_mount_seen(loops, serial, tmp_path):
    device = loops.make(serial)
    subprocess.run(["sfdisk", "--quiet", device], input="label: dos\n,32M,L\n,,L\n", text=True, check=True,
                   capture_output=True)
    sh("partx", "--update", device, check=False)
    before = checksum(device)
    assert refused_rules(serial, allow_destroy=True) == ["partition_table"]
    sh(*MKFS_EXT4, f"{device}p1")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    sh("mount", "-o", "ro", f"{device}p1", str(mountpoint))
    try:
        before = checksum(device)
        with pytest.raises(WriteRefused) as refused:
            checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
        assert f"mounted: {device.removeprefix('/dev/')}p1 on {mountpoint}" in str(refused.value)
        assert checksum(device) == before
    finally:
        sh("umount", str(mountpoint))


def test_lvm_physical_volume_refused(loops, serial):
    if sh("which", "pvcreate", check=False).returncode:
        pytest.skip("lvm2 is not installed (apt-get install lvm2)")
    device = loops.make(serial)
    only_this = f'devices {{ filter=["a|^{device}$|","r|.*|"] use_devicesfile=0 }}'
    sh("pvcreate", "-q", "--config", only_this, device)
    try:
        before = checksum(device)
        with pytest.raises(WriteRefused, match=r"\[signature\] carries LVM2_member signature"):
            checked_for_writing(local_node(), drive(serial, allow_destroy=True), KEY)
        assert checksum(device) == before
    finally:
        sh("pvremove", "-q", "-f", "--config", only_this, device, check=False)


def test_holders_refused_even_with_wipe(loops, serial, tmp_path, monkeypatch):
    """Holders as the kernel lists them (this test kernel has no device-mapper to stack a real one)."""
    device = loops.make(serial)
    name = device.removeprefix("/dev/")
    fake = tmp_path / "sys-block" / name
    (fake / "holders" / "dm-3").mkdir(parents=True)  # a volume group's logical volume
    (fake / "dev").write_text(Path(f"/sys/block/{name}/dev").read_text())
    (fake / f"{name}p1" / "holders" / "md127").mkdir(parents=True)  # a RAID member partition
    (fake / f"{name}p1" / "partition").write_text("1\n")
    (fake / f"{name}p1" / "dev").write_text("259:99\n")
    monkeypatch.setattr(guard, "SYS_BLOCK", str(tmp_path / "sys-block"))
    before = checksum(device)
    with pytest.raises(WriteRefused) as refused:
        checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
    assert [r.rule for r in refused.value.refusals] == ["holders"]
    assert f"in use by dm-3, md127 (on {name}p1)" in str(refused.value)
    assert checksum(device) == before


def test_exclusively_opened_device_is_busy(loops, serial):
    device = loops.make(serial, fill=False)
    held = os.open(device, os.O_RDONLY | os.O_EXCL)
    try:
        assert refused_rules(serial, allow_destroy=True) == ["busy"]
    finally:
        os.close(held)


def test_unknown_serial_resolves_to_nothing(loops, serial):
    loops.make(serial, fill=False)
    with pytest.raises(DriveNotFound, match=f"no block device has serial {serial}X") as err:
        resolve_drive(local_node(), drive(serial + "X"))
    assert serial in str(err.value)  # lists what is there


def test_same_serial_twice_refuses_to_guess(loops, serial):
    first, second = loops.make(serial, fill=False), loops.make(serial, fill=False)
    with pytest.raises(DriveNotFound, match="matches 2 devices") as err:
        resolve_drive(local_node(), drive(serial))
    assert first in str(err.value) and second in str(err.value)


def test_loop_without_marker_or_with_a_foreign_serial_has_none(loops, tmp_path):
    plain = loops.make(None, fill=False)
    foreign = loops.make(None, fill=False)
    (tmp_path / "drive1.img.qualify-serial").write_text("S4EVNX0R123456\n")  # looks like a real serial
    serials = {d.path: d.serial for d in block_devices(local_node())}
    assert serials[plain] is None and serials[foreign] is None


def test_wwn_spellings_agree():
    assert normalize_wwn("0x5002538E4097D3F1") == normalize_wwn("wwn-0x5002538e4097d3f1") == "5002538e4097d3f1"
    assert normalize_wwn("eui.0025388b91b2f9c1") == "0025388b91b2f9c1"


# -- users the kernel does not list as holders (issue 17): stacked loops, any offset, openers


def write_job(device: str, seconds: int = 2, size: str = "16M") -> list[str]:
    """A small fio write job over the first `size` of the device (psync: no engine the kernel may lack)."""
    return ["fio", "--name=guarded", f"--filename={device}", "--rw=write", "--bs=1M", "--direct=1", f"--size={size}",
            "--time_based", f"--runtime={seconds}s", "--ioengine=psync", "--output-format=json", "--status-interval=1"]


def test_loop_at_an_offset_with_a_mounted_filesystem_is_refused(loops, serial, tmp_path):
    """The defect: nothing claims the lower device, so it looked free and a write job destroyed the upper fs."""
    lower = loops.make(serial)
    upper = loops.stack(lower, offset=1 << 20)
    sh(*MKFS_EXT4, upper)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    sh("mount", "-o", "ro", upper, str(mountpoint))
    try:
        before = checksum(lower)
        with pytest.raises(WriteRefused) as refused:
            checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
        low, up = lower.removeprefix("/dev/"), upper.removeprefix("/dev/")
        assert [r.rule for r in refused.value.refusals] == ["mounted", "stacked"]
        assert f"mounted: {up} on {mountpoint} ({up} on {low})" in str(refused.value)
        assert f"{up} on {low} at offset 1048576" in str(refused.value)
        # and a write job asked for directly, as a check would run it, is refused too
        node = local_node(drives=[{"serial": serial, "allow_destroy": True, "wipe": True}])
        with pytest.raises(WriteRefused, match=r"\[stacked\]"):
            run_fio(node, write_job(lower), 2, lambda _: None)
        assert checksum(lower) == before
    finally:
        sh("umount", str(mountpoint))


def test_loop_on_a_partition_is_refused(loops, serial):
    device = loops.make(serial)
    subprocess.run(["sfdisk", "--quiet", device], input="label: dos\n,32M,L\n", text=True, check=True,
                   capture_output=True)
    sh("partx", "--update", device, check=False)
    upper = loops.stack(f"{device}p1", offset=4096)
    before = checksum(device)
    with pytest.raises(WriteRefused) as refused:
        checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
    name = device.removeprefix("/dev/")
    assert [r.rule for r in refused.value.refusals] == ["stacked"]
    assert f"{upper.removeprefix('/dev/')} on {name}p1 at offset 4096" in str(refused.value)
    assert checksum(device) == before


def holding_open(device: str, mode: str) -> subprocess.Popen:
    """A process of someone else's with the device open (`<>`: read-write, `<`: read-only), not exclusively."""
    process = subprocess.Popen(["sh", "-c", f'exec 3{mode}"$1"; echo ready; exec sleep 60', "sh", device],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.parametrize("mode, shown", [("<>", "read-write"), ("<", "read-only")])
def test_a_process_with_it_open_is_refused(loops, serial, mode, shown):
    device = loops.make(serial)
    before = checksum(device)
    user = holding_open(device, mode)
    try:
        with pytest.raises(WriteRefused) as refused:
            checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
        assert [r.rule for r in refused.value.refusals] == ["open"]
        assert f"open by pid {user.pid} (sleep, {shown}) on {device.removeprefix('/dev/')}" in str(refused.value)
    finally:
        user.kill()
        user.wait()
    assert checksum(device) == before


def test_a_process_with_a_stacked_device_open_is_refused(loops, serial):
    lower = loops.make(serial)
    upper = loops.stack(lower)
    user = holding_open(upper, "<>")
    try:
        use = guard.device_use(local_node(), resolve_drive(local_node(), drive(serial)))
        low, up = lower.removeprefix("/dev/"), upper.removeprefix("/dev/")
        assert use.opened == [f"pid {user.pid} (sleep, read-write) on {up} ({up} on {low})"]
    finally:
        user.kill()
        user.wait()


# -- re-audit: users seen by no holders folder and no process, signatures of every kind, hostile names


def test_a_device_exported_by_a_kernel_target_is_refused(loops, serial, tmp_path, monkeypatch):
    """nvmet and LIO fileio open the device unclaimed, in no process (this kernel has neither: their configfs
    layout, pointing at the real device node)."""
    device = loops.make(serial)
    config = tmp_path / "config"
    namespace = config / "nvmet" / "subsystems" / "nqn.2014-08.org.example:vm1" / "namespaces" / "1"
    namespace.mkdir(parents=True)
    (namespace / "device_path").write_text(f"{device}\n")
    (namespace / "enable").write_text("1\n")
    backstore = config / "target" / "core" / "fileio_0" / "disk1"
    backstore.mkdir(parents=True)
    (backstore / "udev_path").write_text(f"{device}\n")
    other = config / "target" / "core" / "iblock_0" / "elsewhere"
    other.mkdir(parents=True)
    (other / "udev_path").write_text("/dev/null\n")  # exports some other device: not ours to refuse
    monkeypatch.setattr(guard, "CONFIGFS", str(config))
    before = checksum(device)
    with pytest.raises(WriteRefused) as refused:
        checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
    name = device.removeprefix("/dev/")
    assert [r.rule for r in refused.value.refusals] == ["served"]
    assert f"{name} by {namespace}/device_path, {name} by {backstore}/udev_path" in str(refused.value)
    assert "elsewhere" not in str(refused.value)
    assert checksum(device) == before


def test_escape_sequences_from_the_node_never_reach_a_message(loops, serial, tmp_path):
    """A process name and a mount point are the node's strings: an ANSI escape in them must not reach a terminal."""
    device = loops.make(serial)
    sh(*MKFS_EXT4, device)
    evil = tmp_path / "\x1b[2Jcls"
    evil.symlink_to(sh("which", "sleep").stdout.strip())
    user = subprocess.Popen(["sh", "-c", 'exec 3<>"$1"; echo ready; exec "$2" 60', "sh", device, str(evil)],
                            stdout=subprocess.PIPE, text=True)
    mountpoint = tmp_path / "\x1b]0;title\x07 mnt"
    mountpoint.mkdir()
    try:
        assert user.stdout.readline().strip() == "ready"
        sh("mount", "-o", "ro", device, str(mountpoint))
        try:
            with pytest.raises(WriteRefused) as refused:
                checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
        finally:
            sh("umount", str(mountpoint))
    finally:
        user.kill()
        user.wait()
    message = str(refused.value)
    assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in message), repr(message)
    assert f"(\\033[2Jcls, read-write) on {device.removeprefix('/dev/')}" in message
    assert "\\033]0;title\\007\\040mnt" in message


def _run(argv: list[str], given: str = ""):
    return lambda device: subprocess.run([*argv, device], input=given, text=True, check=True, capture_output=True)


# Each made by the real tool (none needs kernel support: there is no dm, md or bcache module here):
# tool, how it makes the structure, the type wipefs shows, the rule that refuses it
SIGNATURES = {
    "swap": ("mkswap", _run(["mkswap"]), "swap", "signature"),
    "bcache": ("make-bcache", _run(["make-bcache", "-B"]), "bcache", "signature"),
    "crypto_LUKS": ("cryptsetup", _run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf",
                                        "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file=-"], "secret"),
                    "crypto_LUKS", "signature"),
    "gpt": ("sfdisk", _run(["sfdisk", "--quiet", "--no-reread"], "label: gpt\n"), "gpt", "partition_table"),
}


@pytest.mark.parametrize("kind", sorted(SIGNATURES))
def test_a_structure_on_the_device_itself_is_refused_unless_wipe(loops, serial, kind):
    """An 'unused' device carrying someone's data structure is not unused: refused unless the profile says wipe."""
    tool, make, shown, rule = SIGNATURES[kind]
    if sh("which", tool, check=False).returncode:
        pytest.skip(f"{tool} is not installed (apt-get install bcache-tools cryptsetup-bin)")
    device = loops.make(serial)
    make(device)
    before = checksum(device)
    with pytest.raises(WriteRefused) as refused:
        checked_for_writing(local_node(), drive(serial, allow_destroy=True), KEY)
    assert [r.rule for r in refused.value.refusals] == [rule]
    assert shown in str(refused.value)
    assert checksum(device) == before


def test_a_loop_whose_backing_path_names_nothing_here_is_still_seen(loops, serial, tmp_path):
    """A loop set up on a device node in a tmpfs since unmounted (or in a container's /dev): its backing_file
    names nothing from here. The loop itself still says which device it reads."""
    lower = loops.make(serial)
    elsewhere = tmp_path / "devfs"
    elsewhere.mkdir()
    sh("mount", "-t", "tmpfs", "qualify-test", str(elsewhere))
    try:
        major, minor = Path(f"/sys/class/block/{lower.removeprefix('/dev/')}/dev").read_text().split(":")
        os.mknod(elsewhere / "disk", 0o600 | stat.S_IFBLK, os.makedev(int(major), int(minor)))
        upper = sh("losetup", "--find", "--show", str(elsewhere / "disk")).stdout.strip()
        loops.attached.append((upper, elsewhere / "disk"))
    finally:
        sh("umount", "--lazy", str(elsewhere))
    up = upper.removeprefix("/dev/")
    assert not Path(Path(f"/sys/block/{up}/loop/backing_file").read_text().strip()).exists()
    before = checksum(lower)
    with pytest.raises(WriteRefused) as refused:
        checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
    assert [r.rule for r in refused.value.refusals] == ["stacked"]
    assert f"{up} on {lower.removeprefix('/dev/')}" in str(refused.value)
    assert checksum(lower) == before


def test_a_mount_in_another_mount_namespace_is_refused(loops, serial, tmp_path):
    """Not in our mountinfo, no process has the device open: only the kernel's claim shows it (a container's mount)."""
    device = loops.make(serial)
    sh(*MKFS_EXT4, device)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    other = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                              'mount -o ro "$1" "$2" && echo ready && exec sleep 60', "sh", device, str(mountpoint)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "ready"
        before = checksum(device)
        assert refused_rules(serial, allow_destroy=True, wipe=True) == ["busy"]
        node = local_node(drives=[{"serial": serial, "allow_destroy": True, "wipe": True}])
        with pytest.raises(WriteRefused, match=r"\[busy\]"):
            run_fio(node, write_job(device), 2, lambda _: None)
        assert checksum(device) == before
    finally:
        other.kill()
        other.wait()


def test_a_serial_with_shell_and_yaml_syntax_is_only_a_name(loops, tmp_path, monkeypatch):
    """A serial is data: it resolves to its device and runs nothing, in the profile's YAML or on the node."""
    serial = f"QLAB-{os.getpid()}-a;$(touch {tmp_path}/ran)`touch {tmp_path}/ran`'\"&|#: [x]"
    device = loops.make(serial)
    monkeypatch.chdir(tmp_path)
    profile = tmp_path / "n1.yaml"
    profile.write_text(yaml.safe_dump({"host": "localhost", "checks": {"storage": {"drives": [{"serial": serial}]}}}))
    (listed,) = load_profile("n1", profile).profile.checks.storage.drives
    assert listed.serial == serial
    assert resolve_drive(local_node(), listed).path == device
    with pytest.raises(WriteRefused, match=r"\[allow_destroy\]"):
        checked_for_writing(local_node(), listed, KEY)
    assert not (tmp_path / "ran").exists()


HIDDEN_OPENER = """
import ctypes, os, sys, threading, time
def hidden():
    assert ctypes.CDLL(None, use_errno=True).unshare(0x400) == 0  # CLONE_FILES: a file table of its own
    os.open(sys.argv[1], os.O_RDWR)
    print("ready", flush=True)
    time.sleep(60)
threading.Thread(target=hidden, daemon=True).start()
time.sleep(60)
"""


def test_a_thread_with_a_file_table_of_its_own_is_seen(loops, serial):
    """The device open only in one thread's own file table: not in /proc/<pid>/fd, which fuser reads."""
    device = loops.make(serial)
    user = subprocess.Popen([sys.executable, "-c", HIDDEN_OPENER, device], stdout=subprocess.PIPE, text=True)
    try:
        assert user.stdout.readline().strip() == "ready"
        assert not any(os.path.realpath(f"/proc/{user.pid}/fd/{fd}") == device
                       for fd in os.listdir(f"/proc/{user.pid}/fd"))
        before = checksum(device)
        with pytest.raises(WriteRefused) as refused:
            checked_for_writing(local_node(), drive(serial, allow_destroy=True, wipe=True), KEY)
        assert [r.rule for r in refused.value.refusals] == ["open"]
        assert re.search(rf"open by pid {user.pid} \(python[\d.]*, read-write\) on {device.removeprefix('/dev/')}",
                         str(refused.value))
        assert checksum(device) == before
    finally:
        user.kill()
        user.wait()


def test_signatures_that_cannot_be_read_refuse_with_the_reason(loops, serial, tmp_path, monkeypatch):
    """wipefs failing (a device cgroup, an old util-linux) is a clear refusal naming the tool, not a bare failure."""
    loops.make(serial, fill=False)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "wipefs").write_text("#!/bin/sh\necho 'wipefs: error: probing initialization failed: "
                                 "Operation not permitted' >&2\nexit 1\n")
    (fake / "wipefs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    with pytest.raises(QualifyError, match=r"cannot read the signatures on /dev/loop\d+, so nothing is written to it "
                                           r"\(wipefs --no-act exited with status 1: .*Operation not permitted\)"):
        checked_for_writing(local_node(), drive(serial, allow_destroy=True), KEY)
