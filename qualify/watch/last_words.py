"""What a node said last before it froze or rebooted: the previous boot's kernel log and pstore records."""

from __future__ import annotations

from dataclasses import dataclass, field

from qualify.node import Node
from qualify.parsers.kernel_log import KernelEvent, parse_kernel_log

# journalctl's words for a journal kept only in memory (Storage=volatile/auto without /var/log/journal).
_NOT_PERSISTENT = ("no persistent journal", "not available", "Specifying boot ID or boot offset has no effect")
ENABLE_PERSISTENT = ("previous-boot kernel logs are unavailable: the node's journal is not persistent; "
                     "enable it with `mkdir -p /var/log/journal && systemctl restart systemd-journald` "
                     "(or Storage=persistent in /etc/systemd/journald.conf)")


@dataclass(frozen=True)
class LastWords:
    kernel_log: list[str] = field(default_factory=list)  # last lines, oldest first
    pstore: dict[str, list[str]] = field(default_factory=dict)  # record file -> last lines
    events: list[KernelEvent] = field(default_factory=list)  # what those lines state
    notes: list[str] = field(default_factory=list)  # why something could not be collected


def collect_last_words(node: Node, lines: int, previous_boot: bool) -> LastWords:
    """The kernel log's last lines (of the previous boot after a reboot) and every pstore record's."""
    notes: list[str] = []
    if node.paths.kernel_log:
        text = node.read_text(node.paths.kernel_log) or ""
    elif previous_boot:
        result = node.run(["journalctl", "-k", "-b", "-1", "-n", str(lines), "-o", "short-iso", "--no-pager"],
                          check=False)
        text = result.stdout if result.returncode == 0 else ""
        if result.returncode != 0 or not text.strip() or any(w in result.stderr for w in _NOT_PERSISTENT):
            notes.append(ENABLE_PERSISTENT)
    else:
        text = node.kernel_log()
    tail = text.splitlines()[-lines:]
    pstore_dir = node.sys_path("fs/pstore")
    pstore = {}
    for name in node.list_files(pstore_dir):
        content = node.read_text(f"{pstore_dir}/{name}") or ""
        pstore[name] = content.splitlines()[-lines:]
    events = parse_kernel_log("\n".join(tail + [line for record in pstore.values() for line in record]))
    return LastWords(tail, pstore, events, notes)
