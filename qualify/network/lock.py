"""One link test at a time across the qualify processes of a mesh run.

`qualify run "pve1 pve2 pve3"` runs one process per node in parallel; two iperf3 tests at once
would share links (pve1-pve2 and pve2-pve3 both load pve2) and the CPUs, and each would measure
less than the link can do. Every process takes the same flock on a file in the reports folder
around each test. The kernel drops the lock when its holder dies, so a killed run never leaves
the mesh locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

from qualify.errors import QualifyError

LOCK_NAME = ".network-test.lock"
_POLL_S = 0.2


@contextlib.contextmanager
def link_test_lock(reports_base: Path, timeout_s: float) -> Iterator[float]:
    """Hold the mesh-wide lock; yields how long it took to get it (seconds)."""
    reports_base.mkdir(parents=True, exist_ok=True)
    path = reports_base / LOCK_NAME
    started = time.monotonic()
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started > timeout_s:
                    raise QualifyError(f"another qualify run held {path} for more than {timeout_s:.0f} s; "
                                       f"is a network test of another run stuck? (the lock is released "
                                       f"when that process ends)") from None
                time.sleep(_POLL_S)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
