"""The lab's fake drive (a loop device over a FUSE file that wraps onto a smaller real file) and
drive_integrity against it: rejected naming the real capacity, while a healthy drive passes; cleaned up
(loop detached, FUSE unmounted, daemon stopped) even when a test fails or the daemon died."""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import signal
from pathlib import Path

import pytest

from helpers import Workspace, test_lab_config
from qualify.findings import Findings
from qualify.lab import lab_down, lab_status, lab_up
from qualify.lab.drive import lab_drive_serial
from qualify.lab.fakedrive import IMAGE, FuseServer, fuse_available, make_fake_drive, remove_fake_drive
from qualify.lab.lab import LabConfig
from qualify.lab.loopdev import devices_backed_by
from qualify.lab.procs import alive
from qualify.storage import block_devices
from storage_loop import local_node, run_integrity_check

MIB = 1 << 20


def test_requests_beyond_the_real_size_wrap_onto_it():
    server = FuseServer(-1, -1, claimed=1000, real_size=300)
    assert server.pieces(0, 100) == [(0, 100)]
    assert server.pieces(250, 100) == [(250, 50), (0, 50)]  # across the wrap
    assert server.pieces(650, 100) == [(50, 100)]
    assert server.pieces(950, 100) == [(50, 50)]  # never past the claimed end


def mounted(image: Path) -> bool:
    return any(line.split()[4] == str(image) for line in Path("/proc/self/mountinfo").read_text().splitlines())


@pytest.fixture
def fake_folder(tmp_path):
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        pytest.skip("the fake drive needs root and /dev/fuse")
    folder = tmp_path / "fake"
    try:
        yield folder
    finally:
        remove_fake_drive(folder)  # whatever the test did
        assert not mounted(folder / IMAGE) and not devices_backed_by(folder / IMAGE)


def read_block(device: str, offset: int) -> bytes:
    fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
    try:
        buffer = mmap.mmap(-1, 4096)
        os.preadv(fd, [buffer], offset)
        return bytes(buffer[:16])
    finally:
        os.close(fd)


def write_block(device: str, offset: int, data: bytes) -> None:
    fd = os.open(device, os.O_WRONLY | os.O_DIRECT)
    try:
        buffer = mmap.mmap(-1, 4096)
        buffer[:len(data)] = data
        os.pwrite(fd, buffer, offset)
    finally:
        os.close(fd)


def test_the_fake_drive_claims_more_than_it_holds_and_is_named_by_its_marker(fake_folder):
    fake = make_fake_drive(fake_folder, 64 * MIB, 16 * MIB, "QLAB-fake-marker")
    name = fake.loop_device.removeprefix("/dev/")
    assert int(Path(f"/sys/block/{name}/size").read_text()) * 512 == 64 * MIB
    write_block(fake.loop_device, 0, b"first block")
    write_block(fake.loop_device, 16 * MIB, b"beyond the real")  # lands on offset 0 of the real file
    assert read_block(fake.loop_device, 0).startswith(b"beyond the real")
    assert (fake_folder / f"{IMAGE}.qualify-serial").read_text() == "QLAB-fake-marker\n"  # next to the FUSE file
    serials = {d.path: d.serial for d in block_devices(local_node())}
    assert serials[fake.loop_device] == "QLAB-fake-marker"


def test_a_dead_daemon_is_still_cleaned_up(fake_folder):
    fake = make_fake_drive(fake_folder, 8 * MIB, 4 * MIB, "QLAB-fake-dead")
    os.kill(fake.pid, signal.SIGKILL)
    remove_fake_drive(fake_folder)
    assert not alive(fake.pid) and not list(fake_folder.iterdir())


def integrity(tmp_path: Path, serial: str, **settings: object) -> Findings:
    return run_integrity_check(tmp_path, [{"serial": serial, "allow_destroy": True}], **settings)[0]


def test_drive_integrity_rejects_the_fake_naming_its_real_capacity(fake_folder, tmp_path):
    make_fake_drive(fake_folder, 256 * MIB, 64 * MIB, "QLAB-fake-probe")
    findings = integrity(tmp_path, "QLAB-fake-probe")
    assert findings.metrics["verdicts"] == {"QLAB-fake-probe": "reject: claims 268 MB, holds 64 MiB (minimum 256 MiB)"}
    assert "QLAB-fake-probe: claims 268 MB, holds 64 MiB (blocks wrap at 64 MiB) (minimum 256 MiB) — a drive that " \
           "claims more than it holds loses what is written beyond that" in findings.problems
    assert "QLAB-fake-probe: surface pass not run: the probe already rejected the drive" in findings.reasons


def test_a_wrap_the_probe_misses_is_caught_by_the_surface_pass(fake_folder, tmp_path):
    """f3's lesson: a fake that passes a quick probe (here it wraps at an odd size no probe block lands on)."""
    real = 101 * MIB + 12 * 4096
    make_fake_drive(fake_folder, 256 * MIB, real, "QLAB-fake-odd")
    findings = integrity(tmp_path, "QLAB-fake-odd")
    probe = next(r for r in findings.reasons if "fake-capacity probe" in r)
    assert "all" in probe and "read back as written" in probe, probe  # the probe alone is not enough
    [verdict] = findings.metrics["verdicts"].values()
    assert verdict == "reject: blocks read back as written 0 B (minimum 256 MiB)"
    mismatch = next(p for p in findings.problems if "first mismatch" in p)
    held = 2 * real  # offset 0 was last overwritten by the block two wraps later
    assert f"first mismatch at offset 0 = 0 B: it holds the block written at offset {held:,}" in mismatch


# ---------------------------------------------------------------- the lab carries it

@pytest.fixture(scope="module")
def fake_lab():
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        pytest.skip("the lab needs root and /dev/fuse")
    config = dataclasses.replace(test_lab_config("f"), nodes=("lab-pve1",), fake_drive="lab-pve1")
    try:
        lab_up(config)
        yield config
    finally:
        lab_down(config)
    assert not devices_backed_by(config.fake_drive_dir("lab-pve1") / IMAGE)


@pytest.mark.destructive
def test_the_lab_node_rejects_its_fake_drive_and_accepts_its_healthy_one(fake_lab, tmp_path):
    node = lab_status(fake_lab).nodes["lab-pve1"]
    healthy = lab_drive_serial(node.backing_file)
    fake = lab_drive_serial(fake_lab.fake_drive_dir("lab-pve1") / IMAGE)
    workspace = Workspace(tmp_path)
    workspace.lab = fake_lab
    workspace.profiles.mkdir()
    (workspace.profiles / "lab-pve1.yaml").write_text(
        "checks:\n  storage:\n    drives:\n"
        f"      - {{serial: {healthy}, allow_destroy: true}}\n      - {{serial: {fake}, allow_destroy: true}}\n"
        "  drive_integrity: {sample_interval: 0.5}\n")
    proc = workspace.qualify("run", "lab-pve1", "--checks", "drive_integrity or selftest or ssd_health")
    assert proc.returncode == 1, proc.stderr
    verdict = json.loads((workspace.runs("lab-pve1")[-1] / "verdict.json").read_text())
    [check] = [c for c in verdict["checks"] if c["name"] == "drive_integrity"]
    lines = check["metrics"]["verdicts"]
    assert lines[healthy] == "accept"
    assert lines[fake] == "reject: claims 1.07 GB, holds 256 MiB (minimum 1 GiB)"
    assert any(f"{fake}: claims 1.07 GB, holds 256 MiB (blocks wrap at 256 MiB)" in r for r in check["reasons"])
    # the buyer's line over the three drive checks: the healthy drive accepted, the fake one rejected by its capacity
    drives = {d["subject"]: d for d in verdict["drives"]}
    assert (drives[healthy]["line"], drives[healthy]["checks"]) == (
        "accept", {"drive_integrity": "passed", "selftest": "passed", "ssd_health": "passed"}), drives[healthy]
    assert drives[fake]["line"] == "reject: drive_integrity: claims 1.07 GB, holds 256 MiB (blocks wrap at 256 MiB) " \
                                   "(minimum 1 GiB)", drives[fake]
    report = (workspace.runs("lab-pve1")[-1] / "report.html").read_text()
    assert f"Drive {healthy}: write pass speed over the surface" in report


def test_the_lab_carries_the_fake_drive_on_lab_pve1_by_default_where_fuse_is(monkeypatch, tmp_path):
    monkeypatch.setenv("QUALIFY_LAB_DIR", str(tmp_path / "lab"))
    assert LabConfig().fake_drive == ("lab-pve1" if fuse_available() else None)
    assert LabConfig(nodes=("lab-a", "lab-b")).fake_drive is None  # the default where the lab has no lab-pve1
    monkeypatch.setenv("QUALIFY_LAB_FAKE_DRIVE", "none")
    assert LabConfig.from_env().fake_drive is None
    monkeypatch.setenv("QUALIFY_LAB_FAKE_DRIVE", "lab-pve2")
    assert LabConfig.from_env().fake_drive == "lab-pve2"
