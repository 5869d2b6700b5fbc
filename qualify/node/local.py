"""The machine qualify runs on (`host: localhost`)."""

from __future__ import annotations

from qualify.node.base import Node


class LocalNode(Node):
    def _popen_argv(self, argv: list[str]) -> list[str]:
        return argv
