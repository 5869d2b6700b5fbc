"""The node's "U.2 drive": a loop device over a sparse file in the lab directory."""

from __future__ import annotations

import time
from pathlib import Path

from qualify.errors import LabError
from qualify.lab._cmd import run

SYS_BLOCK = Path("/sys/block")


def make_backing_file(path: Path, size_mib: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size_mib * 1024 * 1024)  # sparse: costs no disk until written


def attach(backing: Path) -> str:
    return run(["losetup", "--find", "--show", str(backing)]).stdout.strip()


def attached() -> dict[str, str]:
    """/dev/loopN -> backing file, read from sysfs (works with no losetup JSON quirks)."""
    out: dict[str, str] = {}
    for bf in SYS_BLOCK.glob("loop*/loop/backing_file"):
        try:
            out[f"/dev/{bf.parent.parent.name}"] = bf.read_text().strip()
        except OSError:
            continue
    return out


def _same_file(listed: str, ours: Path) -> bool:
    # The kernel appends " (deleted)" when the file was removed while attached.
    listed = listed.removesuffix(" (deleted)")
    return listed == str(ours) or listed == str(ours.resolve())


def devices_backed_by(backing: Path) -> list[str]:
    return [dev for dev, bf in attached().items() if _same_file(bf, backing)]


def detach(device: str, backing: Path, timeout: float = 5.0) -> None:
    """Detach and wait until it is gone: a device still open (udev probing it, a killed fio) is only
    marked autoclear by `losetup -d` and lets go once closed."""
    run(["losetup", "-d", device])
    deadline = time.monotonic() + timeout
    while device in devices_backed_by(backing):
        if time.monotonic() > deadline:
            raise LabError(f"{device} ({backing}) is still attached {timeout:g} s after `losetup -d`: "
                           "something keeps it open")
        time.sleep(0.05)
