"""The freeze watch on this machine (a prepared tree as the node): heartbeats, simulated reboots,
kernel messages appended to the node's log, foreign heartbeat lines, and the verdict it drives."""

import os
import time

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.lab import NodeSpec, build_node_tree
from qualify.node import connect
from qualify.profile import Profile
from qualify.store import RunStore, read_records, read_samples
from qualify.verdict import build_verdict
from qualify.watch import start_watch
from qualify.watch.heartbeat import parse_heartbeat

INTERVAL = 0.2


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def events(store, kind=None):
    return [r for r in read_records(store.run_dir) if r["kind"] == "event" and kind in (None, r.get("event"))]


@pytest.fixture
def watched(tmp_path):
    tree = tmp_path / "tree"
    build_node_tree(tree, NodeSpec(boot_id="11111111-2222-3333-4444-555555555555", uptime_s=1000))
    profile = Profile.model_validate({
        "host": "localhost",
        "paths": {"sysfs": f"{tree}/sys", "procfs": f"{tree}/proc", "kernel_log": f"{tree}/kernel.log"},
        "watch": {"heartbeat_interval": INTERVAL, "kernel_log": {"max_events_per_kind": 3, "fold_window": 0.3}}})
    node = connect("local1", profile)
    store = RunStore.create("local1", tmp_path / "reports")
    store.append("run_started", node="local1", run_id=store.run_id)
    watcher = start_watch(node, profile.watch, store)
    wait_for(lambda: len(read_samples(store.run_dir, "heartbeat")) >= 2, what="heartbeats")
    yield tree, store, watcher
    watcher.stop()
    store.close()


def test_heartbeats_carry_boot_id_uptime_and_sequence(watched):
    _, store, _ = watched
    beats = wait_for(lambda: (b := read_samples(store.run_dir, "heartbeat")) and len(b) >= 4 and b, what="4 beats")
    assert [b["seq"] for b in beats[:4]] == [0, 1, 2, 3]
    assert {b["boot_id"] for b in beats} == {"11111111-2222-3333-4444-555555555555"}
    assert beats[-1]["uptime_s"] == 1000.0
    assert not events(watched[1], "freeze")


def test_changed_boot_id_is_an_unexpected_reboot_that_fails_the_run(watched):
    tree, store, _ = watched
    (tree / "proc/sys/kernel/random/boot_id").write_text("99999999-2222-3333-4444-555555555555\n")
    (tree / "proc/uptime").write_text("35.20 100.00\n")
    reboot = wait_for(lambda: events(store, "reboot"), what="reboot event")[0]
    assert reboot["fails_run"] and reboot["severity"] == "critical"
    assert "boot id changed from 11111111-2222-3333-4444-555555555555 to 99999999" in reboot["message"]
    assert reboot["last_words"][-1].endswith("vmbr0: port 1(enp3s0f0) entered forwarding state")
    store.append("run_finished")
    verdict = build_verdict(read_records(store.run_dir))
    assert verdict["verdict"] == "fail" and "rebooted unexpectedly" in verdict["notes"][0]
    from qualify.report import render_run

    html = render_run(store.run_dir, index=False).read_text()
    assert "last words: last" in html and "entered forwarding state" in html


def test_smaller_uptime_with_the_same_boot_id_is_a_reboot(watched):
    tree, store, _ = watched
    (tree / "proc/uptime").write_text("12.00 30.00\n")
    reboot = wait_for(lambda: events(store, "reboot"), what="reboot event")[0]
    assert "uptime went back from 1000 s to 12 s" in reboot["message"]


def test_kernel_messages_become_events_with_the_profiles_severities(watched):
    tree, store, watcher = watched
    with open(tree / "kernel.log", "a") as log:
        log.write("[43210.123456] watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [stress-ng:4242]\n"
                  "[43211.000001] mce: CPU2: Core temperature above threshold, cpu clock throttled "
                  "(total events = 7)\n")
        # one device's repeated lines: one event with a count
        log.writelines(f"[43212.00000{n}] pcieport 0000:00:1c.1: PCIe Bus Error: severity=Corrected, "
                       f"type=Data Link Layer, (Transmitter ID)\n" for n in range(5))
        # five devices: five faults, beyond max_events_per_kind (3) only counted
        log.writelines(f"[43213.00000{n}] pcieport 0000:00:1d.{n}: PCIe Bus Error: severity=Corrected, "
                       f"type=Physical Layer, (Receiver ID)\n" for n in range(5))
    wait_for(lambda: len(events(store, "aer_corrected")) >= 3 and events(store, "thermal_throttle"), what="events")
    lockup = events(store, "soft_lockup")[0]
    assert lockup["severity"] == "critical" and lockup["fails_run"] and lockup["stamp"] == "43210.123456"
    assert "CPU#3 stuck for 22s" in lockup["message"] and lockup["subject"] == "CPU#3"
    throttle = events(store, "thermal_throttle")[0]
    assert throttle["severity"] == "warning" and not throttle["fails_run"]
    folded = events(store, "aer_corrected")[0]
    assert folded["count"] == 5 and (folded["stamp"], folded["last_stamp"]) == ("43212.000000", "43212.000004")
    assert "[5 lines of this fault, first 43212.000000, last 43212.000004]" in folded["message"]
    wait_for(lambda: watcher.kernel_counts["aer_corrected"] == 10, what="all AER lines counted")
    watcher.stop()
    assert len(events(store, "aer_corrected")) == 3, "beyond max_events_per_kind only counted"
    assert "'aer_corrected': 3" in events(store, "summary")[0]["message"]


def test_a_ghes_record_appended_to_the_log_is_one_event_naming_its_dimm(watched):
    tree, store, _ = watched
    record = corpus_path("kernel-log", "ghes-recoverable-memory-already-poisoned-iso-syslog.txt").read_text()
    with open(tree / "kernel.log", "a") as log:
        log.write(record)
    ghes = wait_for(lambda: events(store, "memory_uncorrected"), what="GHES event")[0]
    assert ghes["fails_run"] and ghes["subject"] == "Card01, ChnA, DIMM0" and len(ghes["detail"]) == 9
    assert "DIMM location: CPU 1 DIMM 5" in ghes["message"]
    assert wait_for(lambda: events(store, "memory_poisoned"), what="poison event")[0]["fails_run"]


def test_tolerated_kernel_events_do_not_fail_the_run(watched):
    tree, store, _ = watched
    with open(tree / "kernel.log", "a") as log:
        log.write("[1.0] CPU5: Package temperature above threshold, cpu clock throttled (total events = 1)\n")
    wait_for(lambda: events(store, "thermal_throttle"), what="throttle event")
    store.append("check_result", name="x", outcome="passed")
    store.append("run_finished")
    assert build_verdict(read_records(store.run_dir))["verdict"] == "pass"


def test_foreign_and_oversized_heartbeat_lines_are_ignored_and_counted(watched):
    _, _, watcher = watched

    class Stream:
        def lines(self):
            yield "qualify-heartbeat 7 abc 12.5 extra"
            yield "hello from someone else"
            yield "qualify-heartbeat 1 " + "x" * 5000 + " 1.0"

    before = watcher.ignored_lines
    watcher._read_heartbeats(Stream())
    assert watcher.ignored_lines == before + 3


@pytest.mark.parametrize("line", ["qualify-heartbeat x boot 1.0", "qualify-heartbeat 1 boot", ""])
def test_bad_heartbeat_lines_name_the_source(line):
    with pytest.raises(ParseError, match="pve2 heartbeat"):
        parse_heartbeat(line, "pve2 heartbeat")


def test_node_without_uptime_still_beats(tmp_path):
    assert parse_heartbeat("qualify-heartbeat 3 b00t -1", "x").uptime_s is None


def test_previous_boot_log_unavailable_says_how_to_enable_it(tmp_path):
    from qualify.node import LocalNode
    from qualify.watch.last_words import ENABLE_PERSISTENT, collect_last_words

    class VolatileJournal(LocalNode):
        def _execute(self, argv, *args):
            if argv[0] == "journalctl":  # journalctl's words on a node with Storage=volatile
                return 1, b"", "Specifying boot ID or boot offset has no effect, no persistent journal was found.\n"
            return super()._execute(argv, *args)

    tree = tmp_path / "tree"
    build_node_tree(tree)
    (tree / "sys/fs/pstore").mkdir(parents=True)
    (tree / "sys/fs/pstore/dmesg-ramoops-0").write_text(
        "Panic#1 Part1\n<6>[43199.1] ixgbe 0000:03:00.0: link up\n"
        "<0>[43200.5] watchdog: BUG: soft lockup - CPU#4 stuck for 26s! [kworker/4:1:99]\n")
    node = VolatileJournal("vol", Profile(host="localhost", paths={"sysfs": f"{tree}/sys"}))
    words = collect_last_words(node, lines=20, previous_boot=True)
    assert words.notes == [ENABLE_PERSISTENT] and words.kernel_log == []
    assert words.pstore["dmesg-ramoops-0"][-1].endswith("stuck for 26s! [kworker/4:1:99]")
    assert [(e.kind, e.stamp) for e in words.events] == [("soft_lockup", "43200.5")]


@pytest.mark.skipif(not os.access("/dev/kmsg", os.W_OK), reason="writing to the kernel log needs root")
def test_follows_this_machines_real_kernel_log_through_dmesg(tmp_path):
    """No kernel_log file: journald if it keeps kernel messages, else `dmesg --follow-new` (this VM)."""
    store = RunStore.create("host", tmp_path)
    profile = Profile.model_validate({"host": "localhost", "watch": {"heartbeat_interval": INTERVAL}})
    node = connect("host", profile)
    watcher = start_watch(node, profile.watch, store)
    try:
        time.sleep(1.5)  # the follower runs and has skipped the existing messages
        # A warning-level line of our own (thermal wording, so it is an event but fails nobody's run).
        marker = f"qualify-test-{time.time_ns()}"
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(f"<4>{marker}: CPU0: Core temperature above threshold, cpu clock throttled (total events = 1)\n")
        found = wait_for(lambda: [e for e in events(store, "thermal_throttle") if marker in e["message"]],
                         what="the injected kernel message")
        assert found[0]["followed"] in ("journalctl -k -f", "dmesg --follow-new") and not found[0]["fails_run"]
    finally:
        watcher.stop()
        store.close()


@pytest.mark.parametrize("yaml_text, message", [
    ("watch:\n  heartbeat_intervall: 1s\n", "watch.heartbeat_intervall: unknown key (expected one of: enabled, "
                                             "heartbeat_interval, missed_heartbeats"),
    ("watch:\n  kernel_log:\n    fail_on: [fatal]\n", "watch.kernel_log.fail_on.0: Input should be 'info', 'warning', "
                                                       "'error' or 'critical'"),
    ("watch:\n  missed_heartbeats: 1\n", "watch.missed_heartbeats: Input should be greater than or equal to 2"),
    ("checks:\n  soak:\n    idle_phase: soon\n", "checks.soak.idle_phase:"),
])
def test_bad_watch_and_soak_settings_name_the_file_and_key(workspace, yaml_text, message):
    from qualify.errors import ProfileError
    from qualify.profile import load_profile

    (workspace.profiles / "n1.yaml").write_text("host: localhost\n" + yaml_text)
    with pytest.raises(ProfileError) as error:
        load_profile("n1", directory=workspace.profiles)
    assert f"{workspace.profiles / 'n1.yaml'}: {message}" in str(error.value)


def test_failing_event_fails_an_otherwise_passing_run_but_a_killed_run_stays_incomplete():
    started = {"t": "2026-11-30T01:00:00.000Z", "kind": "run_started", "node": "n1", "run_id": "r"}
    passed = {"t": "2026-11-30T01:00:01.000Z", "kind": "check_result", "name": "soak", "outcome": "passed"}
    freeze = {"t": "2026-11-30T01:00:02.000Z", "kind": "event", "severity": "critical", "source": "heartbeat",
              "event": "freeze", "fails_run": True, "message": "n1 froze: no heartbeat for 3.1 s"}
    finished = {"t": "2026-11-30T01:00:03.000Z", "kind": "run_finished"}
    verdict = build_verdict([started, passed, freeze, finished])
    assert verdict["verdict"] == "fail" and verdict["exit_code"] == 1
    assert verdict["notes"] == ["1 event(s) fail the run, first: n1 froze: no heartbeat for 3.1 s"]
    assert build_verdict([started, passed, freeze])["verdict"] == "incomplete"
    assert build_verdict([started, passed, {**freeze, "fails_run": False}, finished])["verdict"] == "pass"


@pytest.mark.parametrize("greeting, ok, detail", [
    (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", True, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
    (None, False, "no connection or no SSH banner within 0.5 s"),  # accepts, says nothing: a frozen sshd
    (b"HTTP/1.1 400 Bad Request\r\n", False, "answered without an SSH banner"),
])
def test_banner_probe_tells_a_running_sshd_from_a_silent_one(greeting, ok, detail):
    import socket
    import threading

    from qualify.watch.probe import SshBannerProbe

    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        conn, _ = server.accept()
        accepted.append(conn)
        if greeting:
            conn.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = SshBannerProbe(server.getsockname(), timeout_s=0.5)()
    finally:
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()
    assert result.ok is ok and detail in result.detail


def test_kernel_log_follower_that_cannot_run_is_reported_once(watched, monkeypatch):
    _, store, watcher = watched
    from qualify.parsers.kernel_log import parse_kernel_line
    from qualify.watch.kernel_follow import _reported

    failing = ["sh", "-c", "echo 'dmesg: read kernel buffer failed: Operation not permitted' >&2; exit 1"]
    monkeypatch.setattr("qualify.watch.watcher.start_kernel_follow",
                        lambda node: (node.spawn(_reported(failing)), parse_kernel_line, "dmesg --follow-new"))
    watcher._restart_kernel_follow()
    event = wait_for(lambda: events(store, "kernel_log_unavailable"), what="unavailable event")[0]
    assert "ended at once: dmesg: read kernel buffer failed: Operation not permitted" in event["message"]
    time.sleep(1)
    assert len(events(store, "kernel_log_unavailable")) == 1, "not restarted in a loop"


def test_stop_leaves_no_process_behind(watched):
    import subprocess

    tree, _, watcher = watched
    mine = ["pgrep", "-f", f"{tree}/(kernel.log|proc/sys/kernel/random/boot_id)"]
    assert subprocess.run(mine, capture_output=True).stdout, "the heartbeat and the follower run"
    watcher.stop()
    wait_for(lambda: not subprocess.run(mine, capture_output=True).stdout, timeout=10, what="no process left")


# -- folding and judging kernel events (pure: the watcher's clock is passed in)

def _fold_settings(**kernel_log):
    return Profile.model_validate({"host": "localhost", "watch": {"kernel_log": kernel_log}}).watch.kernel_log


def test_lines_of_one_fault_fold_until_it_goes_quiet():
    from qualify.parsers.kernel_log import parse_kernel_log
    from qualify.watch.kernel_events import KernelFolds

    folds = KernelFolds(quiet_s=2.0)
    lines = parse_kernel_log(corpus_path("kernel-log", "nvme-io-timeout-aborting-abort-status.txt").read_text())
    for n, event in enumerate(lines):
        assert folds.add(event, now=n * 0.01, utc="t") == []
    assert folds.due(now=1.0) == [], "still within the fold window"
    (fold,) = folds.due(now=3.0)
    assert (fold.kind, fold.lines, fold.first.stamp, fold.last.stamp) == ("nvme_timeout", 12, "384589.758045",
                                                                        "384590.444758")


def test_a_fault_that_never_pauses_is_still_written_and_open_folds_are_bounded(monkeypatch):
    from qualify.parsers.kernel_log import classify
    from qualify.watch import kernel_events
    from qualify.watch.kernel_events import FOLD_MAX_S, KernelFolds

    folds = KernelFolds(quiet_s=2.0)
    storm = classify("pcieport 0000:00:1c.1: AER: PCIe Bus Error: severity=Corrected, type=Physical Layer")
    for n in range(int(FOLD_MAX_S) + 1):
        folds.add(storm, now=float(n), utc="t")
    assert [f.lines for f in folds.due(now=FOLD_MAX_S + 0.5)] == [int(FOLD_MAX_S) + 1]
    monkeypatch.setattr(kernel_events, "MAX_OPEN_FOLDS", 2)
    for device in ("sda", "sdb"):
        folds.add(classify(f"I/O error, dev {device}, sector 8"), now=100.0, utc="t")
    (evicted,) = folds.add(classify("I/O error, dev sdc, sector 8"), now=100.0, utc="t")
    assert evicted.first.subject == "sda"


def test_corrected_memory_errors_fail_when_they_grow_beyond_the_profiles_allowance():
    from qualify.parsers.kernel_log import classify
    from qualify.watch.kernel_events import KernelFolds, KernelJudge

    def judge(allowed, *messages):
        folds, verdicts = KernelFolds(quiet_s=1.0), KernelJudge(_fold_settings(corrected_memory_errors=allowed))
        for n, message in enumerate(messages):
            folds.add(classify(message), now=n * 10.0, utc="t")
        return [verdicts.fails_run(f) for f in folds.close_all()]

    ce = "EDAC MC0: {} CE memory read error on CPU_SrcID#0_Ha#0_Chan#{}_DIMM#0 (channel:1 slot:0)"
    assert judge(0, ce.format(1, 1)) == [True], "any corrected error during the run, by default"
    assert judge(5, ce.format(2, 1), ce.format(3, 2)) == [False, False]
    assert judge(5, ce.format(2, 1), ce.format(4, 2)) == [False, True], "the total grew past the allowance"


def test_a_kind_over_its_limit_still_records_its_first_failing_event():
    from qualify.parsers.kernel_log import classify
    from qualify.watch.kernel_events import KernelFolds, KernelJudge

    folds, verdicts = KernelFolds(quiet_s=1.0), KernelJudge(_fold_settings(max_events_per_kind=1))
    folds.add(classify("mce: [Hardware Error]: CPU 2: Machine Check: 0 Bank 7: 8c00004000010090"), 0.0, "t")
    folds.add(classify("mce: [Hardware Error]: CPU 3: Machine Check: 0 Bank 7: 8c00004000010090"), 0.0, "t")
    folds.add(classify("mce: [Hardware Error]: CPU 4: Machine Check: 0 Bank 4: b200000000070f0f"), 0.0, "t")
    written = [(f.first.subject, fails) for f in folds.close_all()
               if verdicts.to_write(f, fails := verdicts.fails_run(f))]
    assert written == [("CPU 2", False), ("CPU 4", True)]


# -- end to end: `qualify soak`/`qualify run` on a prepared tree, lines appended to its kernel log

E2E_PROFILE = """watch:
  heartbeat_interval: 0.2s
  kernel_log:
    fold_window: 0.3s
checks:
  soak:
    idle_phase: 10s
    load_phase: 10s
    progress_interval: 10s
"""


def _soak_while_appending(workspace, corpus_file):
    """A 2 s soak (idle only) of a local node; the real excerpt is appended once the watch follows the log."""
    import json
    import subprocess
    import sys

    tree = workspace.local_node("n1", extra=E2E_PROFILE)
    proc = subprocess.Popen([sys.executable, "-m", "qualify", "soak", "n1", "--duration", "2s"], env=workspace.env(),
                            cwd=workspace.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_dir = wait_for(lambda: workspace.runs("n1"), timeout=60, what="run directory")[0]
        wait_for(lambda: len(read_samples(run_dir, "heartbeat")) >= 2, timeout=60, what="heartbeats")
        time.sleep(0.3)  # the follower (tail -F, started with the heartbeat) has opened the file
        with open(tree / "kernel.log", "a") as log:
            log.write(corpus_path("kernel-log", corpus_file).read_text())
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, json.loads((run_dir / "verdict.json").read_text())


def _causes(verdict):
    """What the verdict says failed: its notes and the checks' problems (the soak judges the watch's events)."""
    return " | ".join(verdict["notes"] + [p for check in verdict["checks"] for p in check["problems"]])


def test_ata_errors_during_a_run_fail_its_verdict_naming_the_port(workspace):
    code, verdict = _soak_while_appending(workspace, "ata-eh-frozen-timeout-hard-reset-dmesg.txt")
    assert code == 1 and verdict["verdict"] == "fail"
    assert "first: n1 kernel: ata1.00: exception Emask 0x0 SAct 0x1 SErr 0x0 action 0x6 frozen [5 lines" in \
        _causes(verdict)
    kernel = [e for e in verdict["events"] if e["source"] == "kernel"]
    assert {(e["event"], e["count"]) for e in kernel} == {("ata_error", 5), ("ata_reset", 1)}
    assert all(e["fails_run"] and e["subject"] == "ata1" for e in kernel)


def test_corrected_memory_errors_appearing_during_a_run_fail_it(workspace):
    code, verdict = _soak_while_appending(workspace, "ghes-corrected-memory-fru-text-syslog-proxmox.txt")
    assert code == 1 and verdict["verdict"] == "fail"
    (ghes,) = [e for e in verdict["events"] if e["source"] == "kernel"]
    assert ghes["event"] == "memory_corrected" and ghes["fails_run"] and ghes["subject"] == "D2"
    assert "APEI/GHES hardware error, event severity: corrected; section_type: memory error; fru_text: D2" in \
        _causes(verdict)


def test_a_corrected_error_logged_before_the_run_is_reported_not_judged(workspace):
    import json

    tree = workspace.local_node("n1", extra=E2E_PROFILE)
    with open(tree / "kernel.log", "a") as log:
        log.write(corpus_path("kernel-log", "ghes-corrected-memory-fru-text-syslog-proxmox.txt").read_text())
    proc = workspace.qualify("run", "n1", "--checks", "microcode")
    verdict = json.loads((workspace.runs("n1")[0] / "verdict.json").read_text())
    assert proc.returncode == 0 and verdict["verdict"] == "pass", proc.stderr
    (before,) = [e for e in verdict["events"] if e["source"] == "kernel"]
    assert before["event"] == "kernel_before_run" and not before.get("fails_run")
    assert before["counts"] == {"memory_corrected": 1} and "1 memory_corrected (D2)" in before["message"]
