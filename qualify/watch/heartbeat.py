"""The heartbeat a node sends while it is watched: one line per interval with boot id, uptime and a
sequence number, run at the highest priority the node allows, so that a node busy with stress-ng on
every CPU still beats on time.

Why Perl: it is on every node qualify runs on (the tether needs it), and one interpreter that keeps
both files open, re-reads them in place and sleeps in select() costs about a tenth of a shell loop,
whose `sleep` is a fork and an exec every beat (benchmarks/node_side_cpu.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.errors import ParseError
from qualify.node import Node, NodeProcess

TAG = "qualify-heartbeat"

# Arguments: TAG (what the process is, on its command line), the boot_id file, the uptime file, the
# interval. Both files are re-read every beat (a reboot shows as a new boot id; a prepared tree's
# files are rewritten in place); one that cannot be opened or read reads as unknown/-1, as an empty
# one does. A write that fails (the channel closed) ends the loop.
_LOOP = r"""
my (undef, $bootf, $upf, $interval) = @ARGV;
my ($boot_fd, $up_fd, $seq);
open($boot_fd, '<', $bootf);
open($up_fd, '<', $upf);
for ($seq = 0; ; $seq++) {
  my ($boot, $up, $text);
  $boot = (split(' ', $text))[0] if $boot_fd && sysseek($boot_fd, 0, 0) && sysread($boot_fd, $text, 128);
  $up = (split(' ', $text))[0] if $up_fd && sysseek($up_fd, 0, 0) && sysread($up_fd, $text, 128);
  $boot //= 'unknown'; $up //= -1;
  syswrite(STDOUT, "TAG $seq $boot $up\n") or exit 0;
  select(undef, undef, undef, $interval);
}
""".replace("TAG", TAG)
LOOP = " ".join(line.strip() for line in _LOOP.strip().splitlines())  # one line: shorter on the wire

# renice/chrt are best effort (without root the loop runs at normal priority); exec keeps the pid
# they raised. On the node the loop shows as `perl -e ... qualify-heartbeat <boot_id> <uptime> <interval>`.
_START = (f'renice -n -20 -p $$ >/dev/null 2>&1; chrt -f -p 50 $$ >/dev/null 2>&1; '
          f'exec perl -e "$1" {TAG} "$2" "$3" "$4"')


@dataclass(frozen=True)
class Heartbeat:
    seq: int
    boot_id: str
    uptime_s: float | None  # None when the node exposes no uptime


def start_heartbeat(node: Node, interval_s: float) -> NodeProcess:
    return node.spawn(["sh", "-c", _START, "sh", LOOP, node.proc_path("sys/kernel/random/boot_id"),
                       node.proc_path("uptime"), f"{interval_s:g}"])


def parse_heartbeat(line: str, source: str) -> Heartbeat:
    """One heartbeat line; ParseError for anything else (a foreign or damaged line)."""
    parts = line.split()
    if len(parts) != 4 or parts[0] != TAG:
        raise ParseError(source, f"not a heartbeat line: {line[:120]!r}")
    try:
        seq, uptime = int(parts[1]), float(parts[3])
    except ValueError:
        raise ParseError(source, f"heartbeat with a bad sequence number or uptime: {line[:120]!r}") from None
    return Heartbeat(seq, parts[2], uptime if uptime >= 0 else None)
