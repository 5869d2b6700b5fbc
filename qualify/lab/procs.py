"""Stopping the lab's own processes: by pid, never by name."""

from __future__ import annotations

import os
import signal
import time


def alive(pid: int) -> bool:
    """True for a running (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # state is the field after the parenthesised comm, which may itself contain ") ".
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def net_ns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def terminate(pids: list[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM, wait, then SIGKILL what is left; returns pids still alive afterwards."""
    pids = [p for p in pids if p > 1 and p != os.getpid() and alive(p)]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pids = [p for p in pids if alive(p)]
            if not pids:
                return []
            time.sleep(0.05)
    return pids
