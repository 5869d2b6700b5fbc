"""An independent probe of a remote node: a new TCP connection to its sshd, answered with the SSH banner.

It shares nothing with the heartbeat's multiplexed ssh connection, so it tells "the node is frozen"
(no banner: sshd does not run) from "the heartbeat's channel broke" (banner arrives). The address
is what ssh itself would use (`ssh -G`, so ~/.ssh/config aliases resolve).
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass

from qualify.node import SshNode


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float | None
    detail: str


class SshBannerProbe:
    def __init__(self, address: tuple[str, int], timeout_s: float):
        self.address = address
        self.timeout_s = timeout_s

    @classmethod
    def for_node(cls, node: SshNode, timeout_s: float) -> SshBannerProbe | str:
        """The probe, or why there can be none (a node behind a jump host or proxy command)."""
        try:
            out = subprocess.run([*node.ssh_argv(), "-G", "--", node.profile.host], capture_output=True,
                                 text=True, timeout=15, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return "ssh -G did not answer"
        config = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
        for key in ("proxyjump", "proxycommand"):
            if config.get(key, "none") != "none":
                return f"{node.profile.host} is reached through {key} {config[key]}: no direct address to probe"
        if out.returncode != 0 or "hostname" not in config:
            return f"ssh -G {node.profile.host} failed: {out.stderr.strip()[:200]}"
        return cls((config["hostname"], int(config.get("port", "22"))), timeout_s)

    def __call__(self) -> ProbeResult:
        started = time.monotonic()
        try:
            with socket.create_connection(self.address, timeout=self.timeout_s) as sock:
                sock.settimeout(max(0.1, self.timeout_s - (time.monotonic() - started)))
                banner = sock.recv(256)
        except TimeoutError:
            return ProbeResult(False, None, f"{self.address[0]}:{self.address[1]}: no connection or no SSH banner "
                                            f"within {self.timeout_s:g} s")
        except OSError as exc:
            return ProbeResult(False, None, f"{self.address[0]}:{self.address[1]}: {exc.strerror or exc}")
        if not banner.startswith(b"SSH-"):
            return ProbeResult(False, None, f"{self.address[0]}:{self.address[1]}: answered without an SSH banner "
                                            f"({banner[:40]!r})")
        return ProbeResult(True, round((time.monotonic() - started) * 1000, 1),
                           banner.split(b"\r")[0].decode(errors="replace"))
