"""A remote node through the system ssh binary.

The system ssh (not a Python SSH library) so that ~/.ssh/config aliases, agents, jump hosts and
known_hosts work as the operator set them up. One multiplexed master connection per node is opened
once and reused by every command (a command then costs a channel, not a handshake). Host keys are
checked unless the profile turns it off.

Nothing of it outlives the controller: the master runs in the foreground (ControlPersist=no) under
the tether on this machine, so it ends when the controller ends, SIGKILL included; with it go the
connection, the node's sshd session and, through their own tethers, the commands on the node. Its
control folder (/tmp/qualify-ssh-*) is removed when the master ends and when a connection fails.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time

from qualify.errors import NodeUnreachable
from qualify.node.base import KILL_GRACE_S, Node
from qualify.node.tether import tethered

SSH_CONNECTION_ERROR = 255
# Runs the tethered master, then removes its control folder ($0) however the master ended. Ctrl-C
# is the controller's to handle (it closes the node); the tether resets signals for ssh itself.
_MASTER = 'trap "" INT HUP; "$@"; rm -rf -- "$0"'


class SshNode(Node):
    def __init__(self, name, profile):
        super().__init__(name, profile)
        self._control_dir: str | None = None
        self._master: subprocess.Popen | None = None
        self._master_tie: int | None = None  # our end of the master's tether

    def ssh_argv(self, *, master: bool = False) -> list[str]:
        """ssh with our options, ending before the destination (`--`, host and command follow)."""
        s = self.profile.ssh
        argv = ["ssh"]
        if s.config_file:
            argv += ["-F", s.config_file]
        options = {
            "BatchMode": "yes",  # never prompt: a run is unattended
            "ConnectTimeout": str(max(1, round(s.connect_timeout))),
            "ServerAliveInterval": "15",
            "ServerAliveCountMax": "4",
            "ControlPath": os.path.join(self._control_dir, "%C") if self._control_dir else "none",
            "ControlMaster": "yes" if master else "no",
            "ControlPersist": "no",  # the master stays in the foreground, tied to us
            "StrictHostKeyChecking": "yes" if s.strict_host_key_checking else "no",
        }
        if s.known_hosts_file:
            options["UserKnownHostsFile"] = s.known_hosts_file
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        if s.user:
            argv += ["-l", s.user]
        if s.port:
            argv += ["-p", str(s.port)]
        if s.identity_file:
            argv += ["-i", s.identity_file]
        return argv

    def open(self) -> None:
        self._control_dir = tempfile.mkdtemp(prefix="qualify-ssh-")
        tie, self._master_tie = os.pipe()
        # The master keeps its stderr: give it a file, not a pipe nobody reads.
        with tempfile.TemporaryFile() as errors:
            master = [*tethered([*self.ssh_argv(master=True), "-N", "--", self.profile.host], 0, KILL_GRACE_S)]
            try:
                self._master = subprocess.Popen(["sh", "-c", _MASTER, self._control_dir, *master], stdin=tie,
                                                stdout=subprocess.DEVNULL, stderr=errors)
            finally:
                os.close(tie)
            ready = self._wait_for_master(self.profile.ssh.connect_timeout + 15)
            if not ready:
                self.close()
                errors.seek(0)
                detail = errors.read().decode("utf-8", errors="replace").strip()
                why = detail.splitlines()[-1] if detail else "no answer within the connect timeout"
                raise NodeUnreachable(self.name, f"cannot reach host '{self.profile.host}' over ssh: {why}")

    def _wait_for_master(self, limit_s: float) -> bool:
        """True once the master listens on its control socket (it does after logging in)."""
        assert self._master is not None and self._control_dir is not None
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self._master.poll() is None:
            if os.listdir(self._control_dir):
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        if self._master_tie is not None:
            os.close(self._master_tie)  # the tether ends the master, the shell removes its folder
            self._master_tie = None
        if self._master is not None:
            try:
                self._master.wait(KILL_GRACE_S + 5)
            except subprocess.TimeoutExpired:
                self._master.kill()
                self._master.wait()
            self._master = None
        if self._control_dir:
            shutil.rmtree(self._control_dir, ignore_errors=True)
            self._control_dir = None

    def _popen_argv(self, argv: list[str]) -> list[str]:
        return [*self.ssh_argv(), "--", self.profile.host, shlex.join(argv)]

    def _slack_s(self) -> float:
        return self.profile.ssh.connect_timeout + 10

    def _transport_failed(self, code: int, err: str, argv: list[str]) -> None:
        if code == SSH_CONNECTION_ERROR and err.startswith(("ssh:", "Connection", "kex_", "Host key")):
            raise NodeUnreachable(self.name, f"lost the ssh connection to '{self.profile.host}': {err.strip()}",
                                  shlex.join(argv))
