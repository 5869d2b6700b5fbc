"""The loop device a storage benchmark measures on: made over a new file, detached and removed afterwards."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qualify.storage import mark_loop_backing_file


@contextmanager
def bench_loop(size: int, *, preallocated: bool = False, serial: str | None = None) -> Iterator[str]:
    """A loop device over a `size`-byte file: sparse, or (`preallocated`) allocated in /var/tmp with direct I/O
    so that both sides of a ratio measure the disk, not the page cache; `serial`: its QLAB- marker."""
    if os.geteuid() != 0:
        raise SystemExit("needs root: it makes a loop device")
    with tempfile.TemporaryDirectory(dir="/var/tmp" if preallocated else None) as folder:
        backing = Path(folder) / "bench.img"
        if preallocated:
            subprocess.run(["fallocate", "-l", str(size), str(backing)], check=True)
        else:
            with open(backing, "wb") as f:
                f.truncate(size)
        if serial:
            mark_loop_backing_file(backing, serial)
        direct = ["--direct-io=on"] if preallocated else []
        device = subprocess.run(["losetup", "--find", "--show", *direct, str(backing)], capture_output=True,
                                text=True, check=True).stdout.strip()
        try:
            yield device
        finally:
            subprocess.run(["losetup", "-d", device], check=False)
