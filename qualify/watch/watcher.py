"""The freeze watch: heartbeat, independent probe and kernel log, in background threads of the controller.

Runs for the whole run (started by the plugin after connecting). It records
- `samples/heartbeat.jsonl`: every heartbeat (seq, boot id, uptime, gap since the previous one);
- `samples/probe.jsonl`: every independent probe of a remote node;
- `samples/netconsole.jsonl`: every line the node's netconsole sent (when `watch.netconsole` is on);
- `event` records in run.jsonl: freeze, recovery, unexpected reboot, kernel-log events. Events that
  must fail the run carry `fails_run: true` (the verdict reads only that), decided here from the profile.
  Kernel-log lines of one fault are folded into one event with a count (qualify/watch/kernel_events.py);
  what the log already said before the run is recorded once as `kernel_before_run`, not judged.
A freeze is recorded the moment it is detected (so a controller killed afterwards keeps it), with the
last netconsole lines; what the node's logs said last is collected when it answers again and recorded
with the recovery or reboot event.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from typing import Any

from qualify.errors import NodeError, ParseError, QualifyError
from qualify.node import Node, NodeProcess, SshNode
from qualify.parsers.kernel_log import KernelLogReader
from qualify.profile import WatchSettings
from qualify.store import RunStore, utc_now
from qualify.watch.heartbeat import Heartbeat, parse_heartbeat, start_heartbeat
from qualify.watch.kernel_events import (
    Fold,
    KernelFolds,
    KernelJudge,
    before_run_summary,
    describe,
    record_fields,
)
from qualify.watch.kernel_follow import FOLLOW_ENDED, LineParser, start_kernel_follow
from qualify.watch.last_words import LastWords, collect_last_words
from qualify.watch.netconsole import (
    NetconsoleListener,
    configure_netconsole,
    controller_address,
    remove_netconsole,
)
from qualify.watch.probe import ProbeResult, SshBannerProbe

TICK_S = 0.1  # how often the monitor looks at the heartbeat's age
MAX_LINE = 4096  # longer heartbeat lines are not ours: ignored and counted
KERNEL_FOLLOW_MIN_S = 10.0  # a kernel-log follower that ends sooner cannot run there: not restarted
RECORD_SETTLE_S = 0.5  # a multi-line kernel record (GHES) with no line for this long is complete


class Watcher:
    def __init__(self, node: Node, settings: WatchSettings, store: RunStore):
        self.node = node
        self.settings = settings
        self.store = store
        self.threshold_s = settings.heartbeat_interval * settings.missed_heartbeats
        self._lock = threading.Lock()  # one writer of our records at a time; guards the state below
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._heartbeat: NodeProcess | None = None
        self._kernel: NodeProcess | None = None
        self._last: Heartbeat | None = None
        # When the last heartbeat was seen; before the first one, starting ssh may take a connect timeout.
        self._last_at = time.monotonic() + _startup_grace(node)
        self._last_utc: str | None = None
        self._frozen_since: str | None = None  # UTC of the last heartbeat before a freeze
        self._probe = self._make_probe()
        self._probe_result: tuple[float, ProbeResult] | None = None  # (monotonic start, result) of the latest
        self._probe_now = threading.Event()
        self._netconsole: NetconsoleListener | None = None
        self._kernel_started = 0.0
        self._next_restart = 0.0
        self.ignored_lines = 0
        self.kernel_counts: Counter[str] = Counter()  # kernel-log lines per kind
        self.kernel_unrecorded: Counter[str] = Counter()  # lines of folds beyond max_events_per_kind
        self._kernel_lock = threading.Lock()  # the reader and the folds, shared by the follower and the closer
        self._reader = KernelLogReader()
        self._folds = KernelFolds(settings.kernel_log.fold_window)
        self._judge = KernelJudge(settings.kernel_log)
        self._kernel_line_at = 0.0
        self._kernel_followed = ""
        self._before_run_read = False
        self.freezes = 0
        self.reboots = 0

    # -- life cycle

    def start(self) -> Watcher:
        self._heartbeat = start_heartbeat(self.node, self.settings.heartbeat_interval)
        self._spawn_thread(self._read_heartbeats, self._heartbeat)
        if self.settings.kernel_log.follow:
            self._start_kernel_follow()
            self._spawn_thread(self._close_quiet_folds)
        if self.settings.netconsole:
            self._start_netconsole()
        if self._probe:
            self._spawn_thread(self._probe_loop, self._probe)
        self._spawn_thread(self._monitor)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._probe_now.set()
        for process in (self._heartbeat, self._kernel):
            if process:
                process.stop(timeout_s=5)
        for thread in self._threads:
            thread.join(timeout=10)
        ignored_packets = self._stop_netconsole()
        self._write_folds(final=True)
        summary = dict(self.kernel_unrecorded)
        if summary or self.ignored_lines or ignored_packets:
            self._event("info", "watch", "summary",
                        f"watch summary: {self.freezes} freeze(s), {self.reboots} reboot(s); "
                        f"kernel-log lines beyond the per-kind event limit only counted: {summary or 'none'}; "
                        f"{self.ignored_lines} foreign or oversized heartbeat line(s) ignored; "
                        f"netconsole packets ignored: {ignored_packets or 'none'}",
                        kernel_counts=dict(self.kernel_counts), ignored_heartbeat_lines=self.ignored_lines,
                        ignored_netconsole_packets=ignored_packets)

    def _spawn_thread(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"watch-{target.__name__}")
        thread.start()
        self._threads.append(thread)

    def _make_probe(self) -> SshBannerProbe | None:
        if not isinstance(self.node, SshNode):
            return None  # a local node freezes together with the controller: nothing to probe from outside
        # Answers within one interval, so an early probe decides before the threshold is reached.
        timeout_s = min(max(self.settings.heartbeat_interval, 0.5), 5.0)
        probe = SshBannerProbe.for_node(self.node, timeout_s)
        if isinstance(probe, str):
            self._event("info", "probe", "probe_unavailable", f"{self.node.name}: no independent probe: {probe}")
            return None
        return probe

    # -- heartbeat

    def _read_heartbeats(self, process: NodeProcess) -> None:
        for line in process.lines():
            if self._stop.is_set():
                return
            try:
                if len(line) > MAX_LINE:
                    raise ParseError("heartbeat", "oversized line")
                beat = parse_heartbeat(line, f"{self.node.name} heartbeat")
            except ParseError:
                self.ignored_lines += 1
                continue
            self._on_heartbeat(beat)

    def _on_heartbeat(self, beat: Heartbeat) -> None:
        now, now_utc = time.monotonic(), utc_now()
        with self._lock:
            previous = self._last
            gap = now - self._last_at if previous else 0.0  # before the first beat _last_at is a deadline
            self._last, self._last_at, self._last_utc = beat, now, now_utc
            frozen_since, self._frozen_since = self._frozen_since, None
            self.store.samples("heartbeat").append({"t": now_utc, "seq": beat.seq, "boot_id": beat.boot_id,
                                                    "uptime_s": beat.uptime_s, "gap_s": round(gap, 3)})
        if previous is not None and _rebooted(previous, beat):
            self._on_reboot(previous, beat, frozen_since)
        elif frozen_since:
            self._on_recovery(frozen_since, gap)

    def _on_reboot(self, before: Heartbeat, after: Heartbeat, frozen_since: str | None) -> None:
        self.reboots += 1
        why = (f"boot id changed from {before.boot_id} to {after.boot_id}" if before.boot_id != after.boot_id
               else f"uptime went back from {before.uptime_s:.0f} s to {after.uptime_s:.0f} s")
        last = frozen_since or self._last_utc
        words = self._last_words(previous_boot=True)
        self._event("critical", "heartbeat", "reboot",
                    f"{self.node.name} rebooted unexpectedly: {why}; last heartbeat of the previous boot at "
                    f"{last} (seq {before.seq}, uptime {_seconds(before.uptime_s)})"
                    + "".join(f"; {note}" for note in words.notes),
                    fails_run=True, last_heartbeat=last, **self._evidence(words))
        self._restart_kernel_follow()

    def _on_recovery(self, frozen_since: str, gap_s: float) -> None:
        words = self._last_words(previous_boot=False)
        self._event("info", "heartbeat", "recovered",
                    f"{self.node.name} answers again after {gap_s:.1f} s without heartbeat "
                    f"(frozen since {frozen_since}, same boot)",
                    frozen_since=frozen_since, frozen_for_s=round(gap_s, 1), **self._evidence(words))

    def _last_words(self, previous_boot: bool) -> LastWords:
        try:
            return collect_last_words(self.node, self.settings.last_lines, previous_boot)
        except QualifyError as exc:
            return LastWords(notes=[f"could not collect the kernel log: {exc}"])

    # -- monitor: freeze detection and restarting broken channels; probes in a thread of their own

    def _monitor(self) -> None:
        interval = self.settings.heartbeat_interval
        early = max(1.5 * interval, self.threshold_s - 1.5 * interval)  # silence that calls for a probe now
        probed_for = None  # the heartbeat an early probe was asked for
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            with self._lock:
                last_at, frozen = self._last_at, self._frozen_since is not None
            age = now - last_at
            if self._probe and age > early and probed_for != last_at:
                probed_for = last_at
                self._probe_now.set()  # its answer is in before the threshold: freeze or broken channel
            if age > self.threshold_s and not frozen:
                self._on_gap(age, last_at)
            elif frozen and self._answers_since(last_at + self.threshold_s) and now >= self._next_restart:
                # sshd answers new connections, yet no heartbeat: our channel is what is stuck.
                self._next_restart = now + self.settings.probe_interval
                self._restart_heartbeat()
            ended = self._heartbeat and self._heartbeat.poll() is not None
            if ended and now >= self._next_restart and not self._stop.is_set():
                # The channel ended (reboot, dropped connection): try again, at the probe's pace.
                self._next_restart = now + self.settings.probe_interval
                self._restart_heartbeat()

    def _probe_loop(self, probe: SshBannerProbe) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            result = probe()
            with self._lock:
                self._probe_result = (started, result)
            self._record_probe(result)
            self._probe_now.wait(self.settings.probe_interval)
            self._probe_now.clear()

    def _answers_since(self, moment: float) -> bool:
        with self._lock:
            started, result = self._probe_result or (0.0, None)
        return bool(result and result.ok and started > moment)

    def _on_gap(self, age: float, last_at: float) -> None:
        with self._lock:
            self._frozen_since = self._last_utc or "the start of the watch"
            started, probe = self._probe_result or (0.0, None)
        fresh = probe if started > last_at else None  # only a probe begun after the last heartbeat counts
        last = self._last
        where = f"seq {last.seq}, uptime {_seconds(last.uptime_s)}" if last else "no heartbeat yet"
        if fresh and fresh.ok:
            self._event("warning", "heartbeat", "heartbeat_lost",
                        f"no heartbeat from {self.node.name} for {age:.1f} s but it answers a new connection "
                        f"({fresh.detail}): the heartbeat channel broke, restarting it",
                        last_heartbeat=self._frozen_since)
            self._restart_heartbeat()
            return
        self.freezes += 1
        if fresh:
            probe_text = f"; the independent probe gets no answer either ({fresh.detail})"
        else:
            probe_text = "; the independent probe has no answer yet" if self._probe else ""
        self._event("critical", "heartbeat", "freeze",
                    f"{self.node.name} froze: no heartbeat for {age:.1f} s (threshold {self.threshold_s:g} s = "
                    f"{self.settings.missed_heartbeats} intervals); last heartbeat at {self._frozen_since} "
                    f"({where}){probe_text}",
                    fails_run=True, last_heartbeat=self._frozen_since, silent_for_s=round(age, 2),
                    **self._evidence(None))

    def _record_probe(self, result: ProbeResult) -> None:
        with self._lock:
            self.store.samples("probe").append({"t": utc_now(), "ok": result.ok, "latency_ms": result.latency_ms,
                                                **({} if result.ok else {"detail": result.detail})})

    def _restart_heartbeat(self) -> None:
        old = self._heartbeat
        if old:
            old.stop(timeout_s=2)
        try:
            self._heartbeat = start_heartbeat(self.node, self.settings.heartbeat_interval)
        except (OSError, QualifyError):
            return  # the monitor tries again on its next tick
        self._spawn_thread(self._read_heartbeats, self._heartbeat)

    # -- kernel log

    def _start_kernel_follow(self) -> None:
        self._kernel_started = time.monotonic()
        try:
            self._kernel, parse, what = start_kernel_follow(self.node)
        except QualifyError as exc:
            self._event("warning", "kernel", "kernel_log_unavailable",
                        f"{self.node.name}: cannot follow the kernel log: {exc}")
            return
        self._spawn_thread(self._read_kernel_log, self._kernel, parse, what)

    def _kernel_follow_ended(self, what: str, last_line: str) -> None:
        """Follow again, unless the follower cannot run there at all (it ended right after starting)."""
        if time.monotonic() - self._kernel_started > KERNEL_FOLLOW_MIN_S:
            self._restart_kernel_follow()
            return
        self._event("warning", "kernel", "kernel_log_unavailable",
                    f"{self.node.name}: following the kernel log ({what}) ended at once: "
                    f"{last_line or 'no output'}; kernel events are not watched")

    def _restart_kernel_follow(self) -> None:
        if self._kernel:
            self._kernel.stop(timeout_s=2)
        if self.settings.kernel_log.follow:
            self._start_kernel_follow()

    def _read_kernel_log(self, process: NodeProcess, parse: LineParser, what: str) -> None:
        self._kernel_followed = what
        self._read_before_run()
        last_line = ""
        for line in process.lines():
            if self._stop.is_set():
                return
            if line.startswith(FOLLOW_ENDED):
                if process is self._kernel:  # not one we replaced
                    self._kernel_follow_ended(what, last_line)
                return
            last_line = line
            try:
                split = parse(line)
            except ParseError:
                continue  # a line the tool printed that is not a record (its own warning or error)
            if split:
                self._on_kernel_message(*split)

    def _read_before_run(self) -> None:
        """What the log says before the run: reported once, not judged; it also tells the reader the link speeds."""
        if self._before_run_read:
            return
        self._before_run_read = True
        try:
            text = self.node.kernel_log()
        except QualifyError as exc:
            self._event("info", "kernel", "kernel_before_run",
                        f"{self.node.name}: the kernel log before the run could not be read ({exc})")
            return
        with self._kernel_lock:
            events = [event for line in text.splitlines() for event in self._reader.feed(line)] + self._reader.flush()
        if events:
            counts, listing = before_run_summary(events)
            self._event("info", "kernel", "kernel_before_run",
                        f"{self.node.name}: before the run the kernel log already states {listing} — not judged "
                        f"(the run judges what the kernel reports while it runs)", counts=counts)

    def _on_kernel_message(self, stamp: str | None, message: str) -> None:
        with self._kernel_lock:
            self._kernel_line_at = time.monotonic()
            for event in self._reader.feed_message(stamp, message):
                self.kernel_counts[event.kind] += 1
                for fold in self._folds.add(event, self._kernel_line_at, utc_now()):
                    self._write_fold(fold)

    def _close_quiet_folds(self) -> None:
        while not self._stop.wait(TICK_S):
            self._write_folds(final=False)

    def _write_folds(self, final: bool) -> None:
        with self._kernel_lock:
            now = time.monotonic()
            if self._reader.pending and (final or now - self._kernel_line_at >= RECORD_SETTLE_S):
                for event in self._reader.flush():
                    self.kernel_counts[event.kind] += 1
                    self._folds.add(event, now, utc_now())
            folds = self._folds.close_all() if final else self._folds.due(now)
            for fold in folds:
                self._write_fold(fold)

    def _write_fold(self, fold: Fold) -> None:
        fails = self._judge.fails_run(fold)
        if not self._judge.to_write(fold, fails):
            self.kernel_unrecorded[fold.kind] += fold.lines
            return
        self._event(fold.severity, "kernel", fold.kind, f"{self.node.name} kernel: {describe(fold)}",
                    fails_run=fails, followed=self._kernel_followed, **record_fields(fold))

    # -- netconsole: the kernel's messages over UDP, kept even when nothing reaches the node's disk

    def _start_netconsole(self) -> None:
        if not self._probe:
            self._event("warning", "netconsole", "netconsole_unavailable",
                        f"{self.node.name}: netconsole not possible: no direct network address of the node "
                        f"(a local node, or reached through a proxy)")
            return
        port = self.settings.netconsole_port
        try:
            node_ip = socket.gethostbyname(self._probe.address[0])
            listener = NetconsoleListener(self.store, ("0.0.0.0", port), node_ip, self.settings.last_lines)
        except OSError as exc:
            self._event("warning", "netconsole", "netconsole_unavailable",
                        f"{self.node.name}: netconsole not possible: cannot listen on UDP port {port} for "
                        f"{self._probe.address[0]}: {exc.strerror or exc} (another watch.netconsole_port?)")
            return
        try:
            target = configure_netconsole(self.node, controller_address(node_ip), listener.port)
        except NodeError as exc:
            listener.stop()
            self._event("warning", "netconsole", "netconsole_unavailable", str(exc))
            return
        self._netconsole = listener.start()
        self._event("info", "netconsole", "netconsole",
                    f"{self.node.name} sends its kernel messages to UDP port {listener.port} (via {target})")

    def _stop_netconsole(self) -> dict[str, int]:
        if not self._netconsole:
            return {}
        try:
            remove_netconsole(self.node)
        except QualifyError:
            pass  # the node does not answer: its target goes with its next boot
        self._netconsole.stop()
        ignored = {"foreign": self._netconsole.foreign, "oversized": self._netconsole.oversized}
        return {why: n for why, n in ignored.items() if n}

    # -- records

    def _evidence(self, words: LastWords | None) -> dict[str, Any]:
        """What the node said last, attached to freeze, recovery and reboot events."""
        fields: dict[str, Any] = {}
        if words:
            fields = {"last_words": words.kernel_log, "pstore": words.pstore, "notes": words.notes,
                      "kernel_events": [f"{e.severity} {e.kind}: {e.message}" for e in words.events]}
        if self._netconsole:
            fields["netconsole"] = list(self._netconsole.last_lines)
        return fields

    def _event(self, severity: str, source: str, kind: str, message: str, **fields: Any) -> None:
        with self._lock:
            self.store.append("event", severity=severity, source=source, event=kind, message=message, **fields)


def start_watch(node: Node, settings: WatchSettings, store: RunStore) -> Watcher | None:
    """A running watcher, or None when the profile turns the watch off."""
    return Watcher(node, settings, store).start() if settings.enabled else None


def _startup_grace(node: Node) -> float:
    return node.profile.ssh.connect_timeout if isinstance(node, SshNode) else 0.0


def _rebooted(before: Heartbeat, after: Heartbeat) -> bool:
    if before.boot_id != after.boot_id:
        return True
    return before.uptime_s is not None and after.uptime_s is not None and after.uptime_s + 1 < before.uptime_s


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} s"
