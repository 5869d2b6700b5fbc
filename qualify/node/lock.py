"""The node's run lock: two runs of one node never write to it or load it at the same time.

The lock is an flock on a file on the node (`/run/qualify/node-<netns>-<key>.run`), held by a small
process there for as long as the lock is held; it runs under the tether, so the lock goes when the
run does, SIGKILL of the controller included. The file is named after the node's network namespace
and the tree its profile reads (`paths.sysfs`, /sys for every real node): one per machine whatever
name or address a profile reaches it by, one per lab node (the lab's nodes share this machine's
kernel but each has its own namespace), one per prepared tree. A waiting run blocks in flock(2),
so it gets the lock as soon as the holder lets go, before that run can take it again. The holder writes who it is into
the file, so a second run that waited `lock_wait` in vain names the first: what it was doing, its
pid, controller host, command line and since when.

The lock is taken around each load (a fio job, a stress-ng or stressapptest run, a device hold), and
re-entrant within a run: nested holds of one Node share one lock process. Every load also holds
`node-<netns>.load` shared for as long as it lives (its tether does), and a run that takes the lock
waits until it can take that one exclusively: a killed run's fio or stress-ng, which its tethers
end within seconds, is gone before the next run's first load starts.
"""

from __future__ import annotations

import math
import os
import shlex
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING

from qualify.errors import NodeError
from qualify.node.tether import LOCK_FILES

if TYPE_CHECKING:
    from qualify.node.base import Node, NodeProcess

LOAD_TOOLS = frozenset({"fio", "stress-ng", "stressapptest"})
EXIT_HELD = 75  # EX_TEMPFAIL: another run holds the lock

# $1 the node's lock key, $2 how long to wait (s), $3 who we are. The run lock taken, it waits (in the
# same time) until the load lock can be taken exclusively: no load of an earlier run (fio, stress-ng, a
# device hold, each holding it shared under its tether) is left on the node - a killed run's tethers are still ending
# them. Prints "waiting <owner>" once, then "locked <file>" or "held <owner>" (exit 75).
_SOURCE = r"""
use strict; use Fcntl qw(:flock O_RDWR O_CREAT);
$| = 1;
my ($lockkey, $wait, $owner) = @ARGV;
LOCKS
-d $lockdir && -o $lockdir or do { print "error $lockdir is not a folder of ours\n"; exit 1 };
my ($run, $load);
for (["run", \$run], ["load", \$load]) {
  sysopen(${$_->[1]}, "$lockbase.$_->[0]", O_RDWR | O_CREAT, 0600)
    or do { print "error $lockbase.$_->[0]: $!\n"; exit 1 };
}
sub owner { seek($run, 0, 0); my $text = <$run> // ''; chomp $text; $text || 'another run (starting)' }
my $what = '';
$SIG{ALRM} = sub { print 'held ', owner(), "$what\n"; exit 75 };
alarm($wait);
for ([$run, ''], [$load, ' (its loads are still ending)']) {
  my $fh = $_->[0]; $what = $_->[1];
  next if flock($fh, LOCK_EX | LOCK_NB);
  print 'waiting ', owner(), "$what\n";
  flock($fh, LOCK_EX);
}
alarm(0);
flock($load, LOCK_UN);
truncate($run, 0); seek($run, 0, 0); syswrite($run, "$owner, lock held by pid $$ on the node\n");
print "locked $lockbase.run\n";
sleep while 1;
""".replace("LOCKS", LOCK_FILES.strip())
SOURCE = " ".join(line.strip() for line in _SOURCE.strip().splitlines())


class NodeBusy(NodeError):
    """Another run holds the node's run lock."""


def is_load(argv: list[str]) -> bool:
    """A command that writes to or loads the node: it runs under the run lock."""
    return bool(argv) and argv[0].rsplit("/", 1)[-1] in LOAD_TOOLS


class NodeLock:
    """The run lock of one Node: taken on the first acquire, released with the last release."""

    def __init__(self, node: Node):
        self._node = node
        self._depth = 0
        self._holder: NodeProcess | None = None
        self._mutex = threading.RLock()

    @property
    def held(self) -> bool:
        return self._depth > 0

    def acquire(self, purpose: str) -> None:
        with self._mutex:
            if self._depth == 0:
                self._holder = _take(self._node, purpose)
            self._depth += 1

    def release(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth == 0 and self._holder is not None:
                holder, self._holder = self._holder, None
                holder.stop()


def _owner(node: Node, purpose: str) -> str:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    command = shlex.join(sys.argv)
    command = command if len(command) <= 160 else command[:157] + "..."
    return (f"{purpose} on {node.name} for pid {os.getpid()} on {socket.gethostname()} since {since} "
            f"({command})")


def _take(node: Node, purpose: str) -> NodeProcess:
    wait = node.profile.lock_wait
    holder = node.spawn(["perl", "-e", SOURCE, node.lock_key, str(max(1, math.ceil(wait))), _owner(node, purpose)])
    problem = ""
    for line in holder.lines():
        kind, _, text = line.partition(" ")
        if kind == "locked":
            return holder
        if kind == "waiting":
            print(f"{node.name}: waiting up to {wait:g} s for another run of this node to finish its load: {text}",
                  file=sys.stderr)
        elif kind == "held":
            holder.stop()
            raise NodeBusy(node.name, f"another run is writing to or loading this node: {text}; waited {wait:g} s "
                                      "(profile key lock_wait): let it finish or stop it, then run again")
        elif kind == "error":
            problem = text
    code = holder.stop()
    raise NodeError(node.name, f"cannot take the node's run lock (exit status {code}): "
                               f"{problem or holder.stderr().strip() or 'no error output'}")
