"""Per-node freezer cgroups, so a whole node (sshd and everything it started) can be frozen at once.

cgroup v1's freezer is preferred (freezer.state FROZEN/THAWED). On a pure cgroup v2 host (a stock
Debian 12) the v2 core freezer (cgroup.freeze 1/0) does the same job; `freeze`/`thaw` hide the
difference. Without either the lab runs without freezer and records kind None.

CPU accounting: the thermal model heats a node by the CPU its own processes use (not the whole machine's),
read from `accounting_group(sshd pid)`. cgroup v2 keeps cpu.stat usage_usec in every group; on v1 the freezer
hierarchy counts nothing, so each v1 node group gets a twin of the same name under the cpuacct hierarchy
(created, joined and removed along with it).
"""

from __future__ import annotations

import contextlib
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


def _cpuacct_twin(path: Path) -> Path | None:
    """The cpuacct group mirroring a v1 freezer group (None on v2, or where cpuacct shares the freezer's tree)."""
    mounts = [(Path(mnt), opts) for fstype, mnt, opts in _mounts() if fstype == "cgroup"]
    freezer = next((mnt for mnt, opts in mounts if "freezer" in opts and path.is_relative_to(mnt)), None)
    cpuacct = next((mnt for mnt, opts in mounts if "cpuacct" in opts), None)
    if freezer is None or cpuacct is None or cpuacct == freezer:
        return None
    return cpuacct / path.relative_to(freezer)


def create(path: Path, kind: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LabError(f"cannot create cgroup {path}: {e}") from None
    probe = path / ("freezer.state" if kind == V1 else "cgroup.freeze")
    if not probe.exists():
        raise LabError(f"cgroup {path} has no {probe.name}: the {kind} freezer is not usable here")
    if (twin := _cpuacct_twin(path)) is not None:
        with contextlib.suppress(OSError):  # accounting is optional: the model then follows the machine's load
            twin.mkdir(parents=True, exist_ok=True)


def add_pid(path: Path, pid: int) -> None:
    try:
        (path / "cgroup.procs").write_text(f"{pid}\n")
    except OSError as e:
        raise LabError(f"cannot move pid {pid} into cgroup {path}: {e}") from None
    if (twin := _cpuacct_twin(path)) is not None and twin.is_dir():
        with contextlib.suppress(OSError):
            (twin / "cgroup.procs").write_text(f"{pid}\n")


def accounting_group(pid: int) -> Path | None:
    """The cgroup directory that counts the CPU of `pid`'s group (v1 cpuacct, else v2); None when the pid is gone
    or sits in a root group (that would be the whole machine)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    groups = {controllers: rel for _, controllers, rel in (line.split(":", 2) for line in lines
                                                             if line.count(":") >= 2)}
    mounts = _mounts()
    for controllers, rel in groups.items():
        if "cpuacct" in controllers.split(",") and rel != "/":
            mount = next((Path(m) for t, m, o in mounts if t == "cgroup" and "cpuacct" in o), None)
            return mount / rel.lstrip("/") if mount else None
    unified = groups.get("")
    if unified and unified != "/":
        mount = next((Path(m) for t, m, _ in mounts if t == "cgroup2"), None)
        return mount / unified.lstrip("/") if mount else None
    return None


def cpu_usage_us(group: Path) -> int | None:
    """CPU time the group (its processes and their children) used so far, in microseconds."""
    try:
        if (group / "cpuacct.usage").exists():
            return int((group / "cpuacct.usage").read_text()) // 1000
        return int((group / "cpu.stat").read_text().split("usage_usec", 1)[1].split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def demand_ns(group: Path) -> dict[int, int]:
    """Per live task of the group: nanoseconds it ran plus waited for a CPU (/proc/<pid>/schedstat), what it
    would have run on a machine of its own."""
    found = {}
    for pid in pids(group):
        try:
            run, wait = Path(f"/proc/{pid}/schedstat").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        found[pid] = int(run) + int(wait)
    return found


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
    """rmdir the cgroup (and its cpuacct twin, with the twin's parent once empty); processes that were just
    killed may need a moment to leave it."""
    twin = _cpuacct_twin(path)
    _rmdir(path, timeout)
    if twin is not None:
        _rmdir(twin, timeout)
        with contextlib.suppress(OSError):
            if twin.parent.is_dir() and not any(p.is_dir() for p in twin.parent.iterdir()):
                twin.parent.rmdir()


def _rmdir(path: Path, timeout: float) -> None:
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
