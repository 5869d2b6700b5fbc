"""What every node backend offers; the checks use only this.

Every command runs under the tether (qualify/node/tether.py): it ends when the controller does,
however the controller ends. Load tools (fio, stress-ng, stressapptest) run under the node's run
lock (qualify/node/lock.py): two runs of one node never load it at the same time.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shlex
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import PurePosixPath

from qualify.errors import CommandFailed, CommandTimeout, ToolMissing
from qualify.node.lock import NodeLock, is_load
from qualify.node.packages import package_for
from qualify.node.tether import EXIT_TIMEOUT, tethered
from qualify.profile import Profile

EXIT_NOT_FOUND = 127  # the shell's and the tether's "command not found"
KILL_GRACE_S = 5  # after a time limit or the end of the channel, SIGKILL if SIGTERM was not enough


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


class NodeProcess:
    """A long-lived command on a node whose output streams back (a sampler, `journalctl -f`)."""

    def __init__(self, node_name: str, argv: list[str], popen_argv: list[str],
                 on_stop: Callable[[], None] | None = None):
        self.node_name = node_name
        self.argv = argv
        self._on_stop = on_stop
        # stdin is the tether: nothing is written to it, closing it (or dying) ends the command
        self._proc = subprocess.Popen(popen_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)

    def lines(self) -> Iterator[str]:
        """Lines of the command's stdout as they arrive, without the newline; ends when it exits."""
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            yield line.rstrip("\n")

    def poll(self) -> int | None:
        return self._proc.poll()

    @property
    def pid(self) -> int:
        """The local process (the ssh client, or the tether on this machine)."""
        return self._proc.pid

    def stop(self, timeout_s: float = KILL_GRACE_S + 5) -> int:
        """End the command on the node (by closing its tether) and return the exit status."""
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
        finally:
            on_stop, self._on_stop = self._on_stop, None
            if on_stop:
                on_stop()

    def stderr(self) -> str:
        return self._proc.stderr.read() if self._proc.stderr and self._proc.poll() is not None else ""


class Node(ABC):
    """One machine under test. Commands are argv lists: profile values never reach a shell unquoted."""

    def __init__(self, name: str, profile: Profile):
        self.name = name
        self.profile = profile
        self.paths = profile.paths
        self._lock = NodeLock(self)

    # -- backend

    def open(self) -> None:  # noqa: B027 - a hook: most backends need none
        """Make sure the node answers; NodeUnreachable otherwise."""

    def close(self) -> None:  # noqa: B027 - a hook: most backends need none
        pass

    @abstractmethod
    def _popen_argv(self, argv: list[str]) -> list[str]:
        """The local command line that runs argv on the node."""

    def _slack_s(self) -> float:
        """How much longer than a command's own limit the controller waits for its answer."""
        return 5.0

    def _transport_failed(self, code: int, err: str, argv: list[str]) -> None:  # noqa: B027 - a hook: most backends need none
        """Raise when the answer came from the transport (ssh), not from the command."""

    # -- commands

    def run(self, argv: list[str], *, timeout_s: float | None = None, check: bool = True) -> CommandResult:
        timeout_s = timeout_s or self.profile.command_timeout
        started = time.monotonic()
        load = is_load(argv)
        with self.exclusive(argv[0]) if load else nullcontext():
            code, out, err = self._execute(list(argv), timeout_s, self.lock_key if load else "")
        result = CommandResult(tuple(argv), code, out, err, time.monotonic() - started)
        if code == EXIT_TIMEOUT:
            raise CommandTimeout(self.name, result.command, timeout_s)
        if code == EXIT_NOT_FOUND:
            tool = "perl" if _PERL_MISSING.search(err) else argv[0]  # the tether's own interpreter
            if tool == "perl" or _not_found(err, tool):
                raise ToolMissing(self.name, tool, package_for(tool), result.command)
        if check and code != 0:
            raise CommandFailed(self.name, result.command, code, err)
        return result

    def _execute(self, argv: list[str], timeout_s: float, lock_key: str) -> tuple[int, bytes, str]:
        """(returncode, stdout, stderr) of argv run on the node under the tether (a load with the lock key)."""
        tie, ours = os.pipe()  # the tether's stdin: closed by us when done, or by the kernel when we die
        try:
            proc = subprocess.Popen(self._popen_argv(tethered(argv, timeout_s, KILL_GRACE_S, lock_key)), stdin=tie,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError as missing:  # no perl/ssh on this machine
            os.close(ours)
            tool = str(missing.filename)
            raise ToolMissing(self.name, tool, package_for(tool), shlex.join(argv)) from None
        finally:
            os.close(tie)
        limit = timeout_s + KILL_GRACE_S + self._slack_s()
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.close(ours)
            ours = -1
            try:
                proc.communicate(timeout=KILL_GRACE_S + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            return EXIT_TIMEOUT, b"", f"no answer from the node within {limit:g} s"
        finally:
            if ours >= 0:
                os.close(ours)
        text = err.decode("utf-8", errors="replace")
        self._transport_failed(proc.returncode, text, argv)
        return proc.returncode, out, text

    def spawn(self, argv: list[str], *, load: bool | None = None) -> NodeProcess:
        """Start a long-lived command; its stdout streams back line by line. stop() ends it on the node.

        A load (by default: a load tool, see lock.py) holds the node's run lock until stopped.
        """
        load = is_load(argv) if load is None else load
        release = None
        if load:
            self._lock.acquire(argv[0])
            release = self._lock.release
        try:
            command = self._popen_argv(tethered(list(argv), 0, KILL_GRACE_S, self.lock_key if load else ""))
            return NodeProcess(self.name, list(argv), command, release)
        except BaseException:
            if release:
                release()
            raise

    @property
    def lock_key(self) -> str:
        """Which node's run lock is ours: its tree, with the node's network namespace (lock.py)."""
        tree = "/" + posixpath.normpath(self.paths.sysfs).lstrip("/")  # /sys/, //sys and /sys/. are one tree
        return hashlib.sha256(tree.encode()).hexdigest()[:12]

    @contextmanager
    def exclusive(self, purpose: str) -> Iterator[None]:
        """Hold the node's run lock (re-entrant): no other run writes to or loads the node meanwhile."""
        self._lock.acquire(purpose)
        try:
            yield
        finally:
            self._lock.release()

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
        # sh builtins only (read, printf): no process per file, so sampling cpuidle does not itself busy the node
        script = ('cd "$1" 2>/dev/null || exit 0; for f in $2; do [ -f "$f" ] || continue; l=; '
                  '{ IFS= read -r l || :; } < "$f" 2>/dev/null; printf "%s\\t%s\\n" "$f" "$l"; done; exit 0')
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


_PERL_MISSING = re.compile(r"(^|[\s:])perl: (command )?not found", re.MULTILINE)  # from the node's shell
