"""The tether: every command qualify starts on a node lives no longer than the controller.

Each command runs under a small Perl watchdog on the node (Perl is Essential on Debian, Python is
not). The watchdog starts the command in a process group of its own and then watches its own
stdin, which is the controller's end of the channel: a pipe held by the controller (local node) or
the ssh session (remote node). When the controller exits or is killed (SIGKILL included: the kernel
closes its pipes), the ssh master dies, or the connection drops, that stdin reaches end-of-file and
the watchdog ends everything the command started (its process group, and whatever it forked even
into a session of its own): SIGTERM, SIGKILL after the grace. The same happens on a time limit
(exit 124, as coreutils `timeout`) and on SIGTERM/SIGINT/SIGHUP to the watchdog. When the command
ends by itself, what is left of it (a worker it forked) is ended too.

The command's stdin is /dev/null, its signals at their defaults (whatever the caller ignored); its
stdout and stderr are the channel's, untouched. Its exit status comes back as a shell reports it
(128 + signal number when a signal ended it); 127 with "<tool>: No such file or directory" when it
cannot be started.
"""

from __future__ import annotations

TETHER_TAG = "qualify-tether"
EXIT_TIMEOUT = 124
EXIT_STOPPED = 143  # stopped by the tether (end of the channel or a signal): as if by SIGTERM

# Where the node's lock files live (qualify/node/lock.py): named after its network namespace and
# $lockkey (from the tree the profile reads: /sys for every real node), so one per machine, one per
# lab node, one per prepared tree. As root in /run, else in a private folder of ours.
LOCK_FILES = r"""
my ($net) = (readlink('/proc/self/ns/net') // '') =~ /(\d+)/;
my $lockdir = -w '/run' ? '/run/qualify' : ($ENV{TMPDIR} || '/tmp') . "/qualify-lock-$<";
mkdir($lockdir, 0700);
$lockkey =~ s/[^0-9a-f]//g;
my $lockbase = "$lockdir/node-" . ($net // 0) . "-$lockkey";
"""

# $1 time limit in seconds (0: none), $2 grace between SIGTERM and SIGKILL, $3 the node's lock key
# for a load, else empty (a load holds the node's load lock shared while it lives: a new run waits
# for the end of the loads of the run before it, see lock.py), then the command.
# What is ours: the command's process group, and every process below the tether - which is a child
# subreaper (prctl PR_SET_CHILD_SUBREAPER, where the syscall number is known), so what a command
# forked stays below it even after setsid() and the death of its parent (fio's job processes do
# both). Zombies do not count. The tether leaves only once all of it is gone, SIGKILLed processes
# stuck in I/O included (up to a bound), so a load's lock is let go only when the load has stopped.
# POSIX.pm is not loaded: it alone would take most of the tether's start-up (1 is WNOHANG).
# While the command runs the tether sleeps in select(), woken by what it waits for: its stdin (data
# or end-of-file) and the command's pidfd (pidfd_open, Linux 5.3+: readable once the command has
# exited, so no race with SIGCHLD; used once, should that exit not be reapable yet, as under a
# tracer). A SIGCHLD (a forked worker ended) or a signal to the tether interrupts select (no
# SA_RESTART under Perl's safe signals). A signal that lands in the microsecond between Perl's check
# and the select call is only seen at the next wake-up: every 30 s, or every second without a
# pidfd (an older kernel: there a SIGCHLD can land in that gap too). Each wake-up costs the node
# ~75 µs of CPU: polling four times a second cost more than the rest of the watch together. Perl's time() counts whole
# seconds: the limit is never early, up to a second late. A command whose channel is already gone is
# not started (a load spawned just before the controller died must not begin after the next run
# checked). A command that ended leaving no child and no group member behind needs no look through
# /proc.
_SOURCE = r"""
use strict; use Config;
my ($limit, $grace, $lockkey, @cmd) = @ARGV;
my $loadlock;
if ($lockkey ne '') {
  require Fcntl;
LOCKS
  -o $lockdir and sysopen($loadlock, "$lockbase.load", Fcntl::O_RDWR() | Fcntl::O_CREAT(), 0600)
    and flock($loadlock, Fcntl::LOCK_SH());
}
my %prctl = (x86_64 => 157, aarch64 => 167, riscv64 => 167, ppc64le => 171, s390x => 172);
my ($arch) = $Config{archname} =~ /^([^-]+)/;
my $prctl = $prctl{$arch};
syscall($prctl, 36, 1, 0, 0, 0) if $prctl;
my $tie = ''; vec($tie, 0, 1) = 1;
exit 143 if select(my $gone = $tie, undef, undef, 0) > 0 && !sysread(STDIN, my $nothing, 4096);
my $pid = fork;
defined $pid or do { print STDERR "TAG: fork: $!\n"; exit 126 };
if (!$pid) {
  setpgrp(0, 0);
  $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP PIPE);
  open(STDIN, '<', '/dev/null');
  $ENV{LC_ALL} = 'C';
  exec { $cmd[0] } @cmd;
  print STDERR "$cmd[0]: $!\n";
  exit 127;
}
setpgrp($pid, $pid);
my ($why, $status) = ('', undef);
$SIG{CHLD} = sub {};
$SIG{$_} = sub { $why ||= 'signal' } for qw(TERM INT HUP);
$SIG{PIPE} = 'IGNORE';
my $pidfd = $prctl ? syscall(434, $pid, 0) : -1;
my $watch = $tie; vec($watch, $pidfd, 1) = 1 if $pidfd >= 0;
sub reap { while ((my $k = waitpid(-1, 1)) > 0) { $status = $? if $k == $pid } }
my $until = $limit > 0 ? time() + int($limit + 0.999) + 1 : 0;
while (1) {
  reap();
  last if defined $status || $why;
  my $wait = $pidfd < 0 ? 1 : 30;
  if ($until) { my $left = $until - time(); if ($left <= 0) { $why = 'timeout'; last } $wait = $left if $left < $wait }
  next if select(my $ready = $watch, undef, undef, $wait) <= 0;
  $why = 'channel' if vec($ready, 0, 1) && !sysread(STDIN, my $buffer, 4096);
  ($pidfd, $watch) = (-1, $tie) if $pidfd >= 0 && vec($ready, $pidfd, 1);
}
sub left {
  my (%parent, %live, %below);
  opendir(my $proc, '/proc') or return ();
  for my $p (grep { /^\d+$/ } readdir $proc) {
    open(my $f, '<', "/proc/$p/stat") or next;
    my $line = <$f> // next;
    my ($state, $ppid, $group) = split ' ', substr($line, rindex($line, ')') + 2);
    $parent{$p} = $ppid;
    $live{$p} = 1 if $state ne 'Z' && $p != $$;
    $below{$p} = 1 if $group == $pid;
  }
  for my $p (keys %parent) {
    my ($q, $n) = ($p, 0);
    $q = $parent{$q} while defined $q && $q != $$ && $q > 1 && $n++ < 64;
    $below{$p} = 1 if defined $q && $q == $$;
  }
  return grep { $live{$_} } keys %below;
}
sub signal_all { my $sig = shift; kill($sig, -$pid); my @left = left(); kill($sig, @left) if @left; }
sub wait_left {
  my $end = time() + shift;
  while (left() && time() <= $end) { reap(); select(undef, undef, undef, 0.05) }
}
reap();
my $clean = defined $status && $prctl && !kill(0, -$pid) && waitpid(-1, 1) == -1;
if (!$clean && (!defined $status || left())) {
  signal_all('TERM');
  wait_left($grace);
  if (left()) { signal_all('KILL'); wait_left(60) }
}
reap();
print STDERR "TAG: timed out after $limit s\n" if $why eq 'timeout';
exit 124 if $why eq 'timeout';
exit 143 if !defined $status;
exit(($status & 127) ? 128 + ($status & 127) : $status >> 8);
""".replace("TAG", TETHER_TAG).replace("LOCKS", LOCK_FILES.strip())
SOURCE = " ".join(line.strip() for line in _SOURCE.strip().splitlines())  # one line: shorter on the wire


def tethered(argv: list[str], time_limit_s: float = 0, grace_s: float = 5, lock_key: str = "") -> list[str]:
    """argv run under the tether on the node: ended with the channel, or after time_limit_s (0: never).
    It runs with LC_ALL=C: every tool prints in one language and one number format, the one parsers read.

    With the node's lock_key it is a load: it holds the node's load lock (shared) while it lives.
    """
    return ["perl", "-e", SOURCE, f"{time_limit_s:g}", f"{grace_s:g}", lock_key, *argv]
