"""A remote node through the system ssh binary.

The system ssh (not a Python SSH library) so that ~/.ssh/config aliases, agents, jump hosts and
known_hosts work as the operator set them up. One multiplexed master connection per node is opened
once and reused by every command (a command then costs a channel, not a handshake). Host keys are
checked unless the profile turns it off. Each remote command runs under coreutils `timeout`, so a
hung tool is killed on the node, not only abandoned by the controller.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile

from qualify.errors import NodeUnreachable
from qualify.node.base import EXIT_TIMEOUT, Node

SSH_CONNECTION_ERROR = 255
KILL_GRACE_S = 5  # after the timeout, SIGKILL if SIGTERM was not enough


class SshNode(Node):
    def __init__(self, name, profile):
        super().__init__(name, profile)
        self._control_dir = tempfile.mkdtemp(prefix="qualify-ssh-")

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
            "ControlPath": os.path.join(self._control_dir, "%C"),
            "ControlMaster": "auto" if master else "no",
            "ControlPersist": "600",
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
        # The master forks into the background and keeps its stderr: give it a file, not a pipe,
        # or we would wait for it to exit.
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.run(
                    [*self.ssh_argv(master=True), "--", self.profile.host, "true"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                    timeout=self.profile.ssh.connect_timeout + 15,
                )
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
            errors.seek(0)
            detail = errors.read().decode("utf-8", errors="replace").strip()
        if code != 0:
            why = detail.splitlines()[-1] if detail else "no answer within the connect timeout"
            raise NodeUnreachable(self.name, f"cannot reach host '{self.profile.host}' over ssh: {why}")

    def close(self) -> None:
        subprocess.run([*self.ssh_argv(), "-O", "exit", "--", self.profile.host],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=15, check=False)
        shutil.rmtree(self._control_dir, ignore_errors=True)

    def _popen_argv(self, argv: list[str]) -> list[str]:
        return [*self.ssh_argv(), "--", self.profile.host, shlex.join(argv)]

    def _execute(self, argv: list[str], timeout_s: float, stdin: bytes | None) -> tuple[int, bytes, str]:
        local_limit = timeout_s + KILL_GRACE_S + self.profile.ssh.connect_timeout + 10
        try:
            proc = subprocess.run(self._popen_argv(["timeout", "-k", str(KILL_GRACE_S), f"{timeout_s:g}", *argv]),
                                  input=stdin, capture_output=True, timeout=local_limit,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return EXIT_TIMEOUT, b"", f"no answer from the node within {local_limit:g} s"
        err = proc.stderr.decode("utf-8", errors="replace")
        if proc.returncode == SSH_CONNECTION_ERROR and err.startswith(("ssh:", "Connection", "kex_", "Host key")):
            raise NodeUnreachable(self.name, f"lost the ssh connection to '{self.profile.host}': {err.strip()}",
                                  shlex.join(argv))
        return proc.returncode, proc.stdout, err
