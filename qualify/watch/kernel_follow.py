"""Following a node's kernel log live: the profile's file (lab, tests), else journald, else dmesg."""

from __future__ import annotations

from collections.abc import Callable

from qualify.node import Node, NodeProcess
from qualify.parsers.kernel_log import journal_message, split_prefix

# One streamed line -> (stamp, kernel message), or None for a line that is not a kernel message.
LineParser = Callable[[str], "tuple[str | None, str] | None"]
FOLLOW_ENDED = "qualify-follow-ended"  # the last line when the follower exits (it should not)


def _reported(argv: list[str]) -> list[str]:
    """argv with its errors on stdout and a last line when it ends by itself, so the controller learns why.

    Stopping the stream (SIGTERM to this shell) ends the follower with it, without that last line.
    """
    script = (f'trap "kill \\$pid 2>/dev/null; exit 143" TERM; '
              f'"$@" 2>&1 & pid=$!; wait $pid; echo "{FOLLOW_ENDED} status $?"')
    return ["sh", "-c", script, "sh", *argv]


def start_kernel_follow(node: Node) -> tuple[NodeProcess, LineParser, str]:
    """(stream, parser of its lines, what is followed). Only messages from now on are streamed."""
    if node.paths.kernel_log:
        path = node.paths.kernel_log
        return node.spawn(_reported(["tail", "-n", "0", "-F", path])), split_prefix, path
    if _journal_has_kernel_messages(node):
        argv = ["journalctl", "-k", "-f", "-o", "json", "-n", "0", "--no-pager"]
        return node.spawn(_reported(argv)), journal_message, "journalctl -k -f"
    return node.spawn(_reported(["dmesg", "--follow-new"])), split_prefix, "dmesg --follow-new"


def _journal_has_kernel_messages(node: Node) -> bool:
    """journald runs and keeps this boot's kernel messages (not so in containers or minimal systems)."""
    if not node.has_tool("journalctl"):
        return False
    probe = node.run(["journalctl", "-k", "-b", "0", "-n", "1", "-q", "--no-pager"], check=False)
    return probe.returncode == 0 and bool(probe.stdout.strip())
