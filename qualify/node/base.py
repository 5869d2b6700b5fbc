"""What every node backend offers; the checks use only this."""

from __future__ import annotations

import shlex
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterator

from qualify.errors import CommandFailed, CommandTimeout, ToolMissing
from qualify.node.packages import package_for
from qualify.profile import Profile

EXIT_TIMEOUT = 124  # coreutils `timeout` and our local runner
EXIT_NOT_FOUND = 127  # the shell's and `timeout`'s "command not found"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout_bytes: bytes
    stderr: str
    duration_s: float

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", errors="replace")

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


# Runs "$@" in the background and ends it when our stdin closes: when the controller stops the
# stream, or when the ssh connection drops, the command on the node does not outlive it.
_TIED_TO_STDIN = '"$@" </dev/null & child=$!; read -r _; kill "$child" 2>/dev/null; wait "$child"'


class NodeProcess:
    """A long-lived command on a node whose output streams back (a sampler, `journalctl -f`)."""

    def __init__(self, node_name: str, argv: list[str], popen_argv: list[str]):
        self.node_name = node_name
        self.argv = argv
        self._proc = subprocess.Popen(popen_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)

    def lines(self) -> Iterator[str]:
        """Lines of the command's stdout as they arrive, without the newline; ends when it exits."""
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            yield line.rstrip("\n")

    def poll(self) -> int | None:
        return self._proc.poll()

    def stop(self, timeout_s: float = 10) -> int:
        """End the command on the node (by closing its stdin) and return the exit status."""
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            return self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    def stderr(self) -> str:
        return self._proc.stderr.read() if self._proc.stderr and self._proc.poll() is not None else ""


class Node(ABC):
    """One machine under test. Commands are argv lists: profile values never reach a shell unquoted."""

    def __init__(self, name: str, profile: Profile):
        self.name = name
        self.profile = profile
        self.paths = profile.paths

    # -- backend

    def open(self) -> None:
        """Make sure the node answers; NodeUnreachable otherwise."""

    def close(self) -> None:
        pass

    @abstractmethod
    def _execute(self, argv: list[str], timeout_s: float, stdin: bytes | None) -> tuple[int, bytes, str]:
        """(returncode, stdout, stderr); returncode EXIT_TIMEOUT when the command ran out of time."""

    # -- commands

    def run(self, argv: list[str], *, timeout_s: float | None = None, check: bool = True,
            stdin: bytes | None = None) -> CommandResult:
        timeout_s = timeout_s or self.profile.command_timeout
        started = time.monotonic()
        code, out, err = self._execute(list(argv), timeout_s, stdin)
        result = CommandResult(tuple(argv), code, out, err, time.monotonic() - started)
        if code == EXIT_TIMEOUT:
            raise CommandTimeout(self.name, result.command, timeout_s)
        if code == EXIT_NOT_FOUND and _not_found(err, argv[0]):
            raise ToolMissing(self.name, argv[0], package_for(argv[0]), result.command)
        if check and code != 0:
            raise CommandFailed(self.name, result.command, code, err)
        return result

    def spawn(self, argv: list[str]) -> NodeProcess:
        """Start a long-lived command; its stdout streams back line by line. stop() ends it on the node."""
        return NodeProcess(self.name, list(argv), self._popen_argv(["sh", "-c", _TIED_TO_STDIN, "sh", *argv]))

    @abstractmethod
    def _popen_argv(self, argv: list[str]) -> list[str]:
        """The local command line that runs argv on the node."""

    def has_tool(self, tool: str) -> bool:
        return self.run(["sh", "-c", 'command -v "$1" >/dev/null', "sh", tool], check=False).returncode == 0

    def require(self, tool: str) -> None:
        if not self.has_tool(tool):
            raise ToolMissing(self.name, tool, package_for(tool))

    # -- files (paths are the node's own; use sys_path/proc_path for kernel interfaces)

    def sys_path(self, *parts: str) -> str:
        return str(PurePosixPath(self.paths.sysfs, *parts))

    def proc_path(self, *parts: str) -> str:
        return str(PurePosixPath(self.paths.procfs, *parts))

    def read_bytes(self, path: str) -> bytes | None:
        """Content of a file, None when it does not exist."""
        result = self.run(["sh", "-c", 'test -e "$1" || exit 3; cat -- "$1"', "sh", path], check=False)
        if result.returncode == 3:
            return None
        if result.returncode != 0:
            raise CommandFailed(self.name, result.command, result.returncode, result.stderr)
        return result.stdout_bytes

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def read_glob(self, directory: str, pattern: str) -> dict[str, str]:
        """{path relative to directory: first line} of every one-line kernel file matching `pattern`.

        One command for many small sysfs files; `pattern` is ours, `directory` may come from the profile
        and is passed as an argument, never spliced into the script.
        """
        script = 'cd "$1" 2>/dev/null || exit 0; for f in $2; do [ -f "$f" ] && printf "%s\\t%s\\n" "$f" "$(head -n1 "$f" 2>/dev/null)"; done; exit 0'
        out = self.run(["sh", "-c", script, "sh", directory, pattern]).stdout
        return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)

    def list_files(self, directory: str) -> list[str]:
        """Names of the regular files in `directory` ([] when it does not exist)."""
        script = 'cd "$1" 2>/dev/null || exit 0; for f in *; do [ -f "$f" ] && printf "%s\\n" "$f"; done; exit 0'
        return sorted(self.run(["sh", "-c", script, "sh", directory]).stdout.splitlines())

    def kernel_log(self) -> str:
        """This boot's kernel log: the profile's file when set (lab, tests), else journalctl or dmesg."""
        if self.paths.kernel_log:
            return self.read_text(self.paths.kernel_log) or ""
        journal = self.run(["journalctl", "-k", "-b", "0", "-o", "short-monotonic", "--no-pager", "-q"], check=False)
        if journal.returncode == 0 and journal.stdout.strip():
            return journal.stdout
        return self.run(["dmesg"]).stdout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, host={self.profile.host!r})"


def _not_found(stderr: str, tool: str) -> bool:
    return "not found" in stderr or "No such file" in stderr or tool in stderr
