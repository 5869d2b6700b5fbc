"""The machine qualify runs on (`host: localhost`)."""

from __future__ import annotations

import subprocess

from qualify.node.base import EXIT_NOT_FOUND, EXIT_TIMEOUT, Node


class LocalNode(Node):
    def _execute(self, argv: list[str], timeout_s: float, stdin: bytes | None) -> tuple[int, bytes, str]:
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout_s,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        except FileNotFoundError:
            return EXIT_NOT_FOUND, b"", f"{argv[0]}: command not found"
        except subprocess.TimeoutExpired:
            return EXIT_TIMEOUT, b"", f"timed out after {timeout_s:g} s"
        return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", errors="replace")

    def _popen_argv(self, argv: list[str]) -> list[str]:
        return argv
