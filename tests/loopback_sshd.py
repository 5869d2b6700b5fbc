"""An sshd of the test's own on 127.0.0.1 (a free port, keys in the test's folder), stopped by its pid.

Lighter than the lab: one node that is this machine, reached over real ssh, for what only ssh shows
(the master connection, the node's sshd sessions, a dropped channel).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from qualify.lab.sshd import PRIVSEP_DIR, SSHD, gen_key, sshd_config_text
from qualify.profile import Profile


@dataclass
class LoopbackSshd:
    pid: int
    port: int
    folder: Path

    def profile(self, **settings: object) -> Profile:
        return Profile.model_validate({"host": "127.0.0.1", "ssh": {
            "user": "root", "port": self.port, "identity_file": str(self.folder / "id"),
            "known_hosts_file": str(self.folder / "known_hosts"), "connect_timeout": 5}, **settings})

    def sessions(self) -> list[int]:
        """pids of this sshd's children: one per connection (and its session processes below it)."""
        return [int(p) for p in _children(self.pid)]


def _children(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def loopback_sshd(folder: Path) -> Iterator[LoopbackSshd]:
    if os.geteuid() != 0 or not Path(SSHD).exists():
        pytest.skip("a loopback sshd needs root and openssh-server")
    folder.mkdir(parents=True, exist_ok=True)
    host_pub = gen_key(folder / "host_key", "qualify-test-host")
    (folder / "authorized_keys").write_text(gen_key(folder / "id", "qualify-test-client") + "\n")
    port = _free_port()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_pub.split()[:2])}\n")
    config = folder / "sshd_config"
    config.write_text(sshd_config_text(f"127.0.0.1:{port}", folder / "host_key", folder / "sshd.pid",
                                       folder / "authorized_keys"))
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    with open(folder / "sshd.log", "wb") as log:  # sshd has its own copy
        sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or sshd.poll() is not None:
                    pytest.fail(f"the test sshd did not start: {(folder / 'sshd.log').read_text()[-500:]}")
                time.sleep(0.05)
        yield LoopbackSshd(sshd.pid, port, folder)
    finally:
        sshd.terminate()
        try:
            sshd.wait(10)
        except subprocess.TimeoutExpired:
            sshd.kill()
            sshd.wait()
