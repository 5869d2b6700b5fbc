"""Link tests that share a node take turns across the qualify processes of a mesh run; others run at once.

`qualify run "pve1 pve2 pve3 pve4"` runs one process per node in parallel. Two iperf3 tests that load
the same node would share its NIC and CPUs, and each would measure less than the link can do; two
tests of disjoint pairs (pve1–pve2 and pve3–pve4: on a switchless mesh, different cables) do not
disturb each other. Each test holds an flock per node it loads (a file in the reports folder, taken
in name order so two tests never wait for each other), and each process tests its links in the
order of the mesh's round-robin rounds (qualify/cluster/schedule.py), so the tests of one round
run side by side. The kernel drops a lock when its holder dies, so a killed run never leaves the
mesh locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from qualify.errors import QualifyError

LOCK_NAME = ".network-test.lock"
_POLL_S = 0.2


@contextlib.contextmanager
def link_test_lock(reports_base: Path, timeout_s: float, nodes: Sequence[str] = ()) -> Iterator[float]:
    """Hold the locks of `nodes` (every node the test loads; none given: one lock for the whole mesh);
    yields how long it took to get them (seconds)."""
    reports_base.mkdir(parents=True, exist_ok=True)
    names = [f".network-{node}.lock" for node in sorted(set(nodes))] or [LOCK_NAME]
    started = time.monotonic()
    with contextlib.ExitStack() as held:
        for name in names:
            path = reports_base / name
            handle = held.enter_context(open(path, "a"))
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - started > timeout_s:
                        raise QualifyError(f"another qualify run held {path} for more than {timeout_s:.0f} s; is a "
                                           f"network test of another run stuck? (the lock is released when that "
                                           f"process ends)") from None
                    time.sleep(_POLL_S)
            held.callback(fcntl.flock, handle, fcntl.LOCK_UN)
        yield time.monotonic() - started
