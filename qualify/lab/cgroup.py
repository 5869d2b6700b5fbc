"""Per-node freezer cgroups, so a whole node (sshd and everything it started) can be frozen at once.

cgroup v1's freezer is preferred (freezer.state FROZEN/THAWED). On a pure cgroup v2 host (a stock
Debian 12) the v2 core freezer (cgroup.freeze 1/0) does the same job; `freeze`/`thaw` hide the
difference. Without either the lab runs without freezer and records kind None.
"""

from __future__ import annotations

import time
from pathlib import Path

from qualify.errors import LabError

V1 = "freezer-v1"
V2 = "cgroup2"


def _mounts() -> list[tuple[str, str, list[str]]]:
    out: list[tuple[str, str, list[str]]] = []
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out.append((parts[2], parts[1], parts[3].split(",")))
    return out


def find_freezer() -> tuple[str, Path] | None:
    """(kind, mount point) of the freezer to use, or None."""
    mounts = _mounts()
    for fstype, mnt, opts in mounts:
        if fstype == "cgroup" and "freezer" in opts:
            return V1, Path(mnt)
    for fstype, mnt, _ in mounts:
        if fstype == "cgroup2":
            return V2, Path(mnt)
    return None


def group_name(prefix: str) -> str:
    """The parent cgroup's name: the prefix without its trailing '-' ('qlab-' -> 'qlab')."""
    return prefix.rstrip("-") or prefix


def create(path: Path, kind: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LabError(f"cannot create cgroup {path}: {e}") from None
    probe = path / ("freezer.state" if kind == V1 else "cgroup.freeze")
    if not probe.exists():
        raise LabError(f"cgroup {path} has no {probe.name}: the {kind} freezer is not usable here")


def add_pid(path: Path, pid: int) -> None:
    try:
        (path / "cgroup.procs").write_text(f"{pid}\n")
    except OSError as e:
        raise LabError(f"cannot move pid {pid} into cgroup {path}: {e}") from None


def pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def freeze(path: Path, kind: str) -> None:
    if kind == V1:
        (path / "freezer.state").write_text("FROZEN\n")
    else:
        (path / "cgroup.freeze").write_text("1\n")


def thaw(path: Path, kind: str) -> None:
    if kind == V1:
        (path / "freezer.state").write_text("THAWED\n")
    else:
        (path / "cgroup.freeze").write_text("0\n")


def is_frozen(path: Path, kind: str) -> bool:
    try:
        if kind == V1:
            return (path / "freezer.state").read_text().strip() != "THAWED"
        return (path / "cgroup.events").read_text().split("frozen ")[1].startswith("1")
    except (OSError, IndexError):
        return False


def remove(path: Path, timeout: float = 5.0) -> None:
    """rmdir the cgroup; processes that were just killed may need a moment to leave it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if time.monotonic() > deadline:
                raise LabError(f"cannot remove cgroup {path}: {e} (pids still in it: {pids(path)})") from None
            time.sleep(0.1)
