"""Kernel-log events on every real log of the corpus: old and new wordings, every prefix style."""

import json
from collections import Counter

import pytest

from qualify.errors import ParseError
from qualify.parsers.kernel_log import (KINDS, classify, parse_journal_line, parse_kernel_line, parse_kernel_log,
                                        split_prefix)

from corpus import corpus_path

# (kind, severity) -> count, for every file of the corpus folder.
EXPECTED = {
    "aer-correctable-new-wording-dmesg-T.txt": {("aer_corrected", "warning"): 2},
    "aer-corrected-data-link-layer-timeout-dmesg.txt": {("aer_corrected", "warning"): 4},
    "aer-corrected-physical-layer-rxerr-journal-ru-locale.txt": {("aer_corrected", "warning"): 3},
    "aer-old-format-receiver-id-multiple-corrected.txt": {("aer_corrected", "warning"): 4},
    "edac-old-format-ce-error-channel-dimm.txt": {("mce", "warning"): 1, ("edac_ce", "warning"): 7},
    "edac-sbridge-ce-overflow-dmesg-T.txt": {("edac_ce", "warning"): 1},
    "hung-task-120s-dmesg-sonic.txt": {("hung_task", "error"): 5},
    "hung-task-120s-syslog-calltrace-gluster.txt": {("hung_task", "error"): 1},
    "hung-task-122s-journal-new-format-sof.txt": {("hung_task", "error"): 1},
    "mce-edac-sbridge-ce-memory-scrubbing-error.txt": {("mce", "warning"): 1, ("edac_ce", "warning"): 1},
    "mce-hardware-error-bank4-nuc-j5005.txt": {("mce", "warning"): 1, ("mce", "error"): 1},
    "mce-machine-check-events-logged-dmesg.txt": {("mce", "warning"): 3},
    "netdev-watchdog-new-format-r8125.txt": {("netdev_watchdog", "error"): 7},
    "netdev-watchdog-old-format-igb-warning-calltrace.txt": {("warning", "warning"): 1,
                                                             ("netdev_watchdog", "error"): 1},
    "nvme-admin-timeout-reset-controller-removed.txt": {("nvme_timeout", "error"): 2, ("nvme_reset", "error"): 4,
                                                        ("nvme_removed", "critical"): 2},
    "nvme-io-timeout-aborting-abort-status.txt": {("nvme_timeout", "error"): 12},
    "soft-lockup-old-format-no-watchdog-prefix.txt": {("soft_lockup", "critical"): 1},
    "soft-lockup-syslog-frigate.txt": {("soft_lockup", "critical"): 1},
    "thermal-throttle-core-with-mce-events-logged-old.txt": {("mce", "warning"): 6, ("thermal_throttle", "warning"): 6},
    "thermal-throttle-dmesg-human-relative-timestamps.txt": {("thermal_throttle", "warning"): 10},
    "thermal-throttle-mce-prefix-dmesg.txt": {("thermal_throttle", "warning"): 10},
}


def test_every_corpus_file_is_covered():
    assert sorted(p.name for p in corpus_path("kernel-log").iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_the_right_events(name):
    events = parse_kernel_log(corpus_path("kernel-log", name).read_text())
    assert dict(Counter((e.kind, e.severity) for e in events)) == EXPECTED[name]
    assert all(e.stamp for e in events), "every corpus line carries a timestamp"
    assert all(not e.message.startswith(("[", "kernel:")) for e in events), "prefix left in the message"


@pytest.mark.parametrize("line, stamp, message", [
    ("[   41.670148] pcieport 0000:00:1c.1: AER: x", "41.670148", "pcieport 0000:00:1c.1: AER: x"),
    ("[Fri Aug 29 20:09:52 2025] ath10k_pci: y", "Fri Aug 29 20:09:52 2025", "ath10k_pci: y"),
    ("[Mon Oct  3 13:52:42 2022] EDAC MC1: z", "Mon Oct  3 13:52:42 2022", "EDAC MC1: z"),
    ("[Feb22 04:01] CPU5: a", "Feb22 04:01", "CPU5: a"),
    ("[  +0.000001] CPU1: b", "+0.000001", "CPU1: b"),
    ("May  7 06:45:12 errol kernel: [21584690.529862] mce: c", "21584690.529862", "mce: c"),
    ("Feb 23 03:28:16  kernel: EDAC MC1: d", "Feb 23 03:28:16", "EDAC MC1: d"),
    ("фев 12 00:48:02 kernel: pcieport e", "фев 12 00:48:02", "pcieport e"),
    ("[    4.502113] pve2 kernel: vmbr0: f", "4.502113", "vmbr0: f"),
    ("2026-11-30T02:13:07+0000 pve2 kernel: watchdog: g", "2026-11-30T02:13:07+0000", "watchdog: g"),
    ("<0>[43211.000001] Kernel panic - not syncing: h", "43211.000001", "Kernel panic - not syncing: h"),
])
def test_prefixes_are_split_off(line, stamp, message):
    assert split_prefix(line) == (stamp, message)


def test_other_programs_in_syslog_are_not_kernel_messages():
    assert parse_kernel_line("Sep 16 19:51:15 mcelog[987]: BUG: soft lockup - CPU#0 stuck for 23s!") is None


@pytest.mark.parametrize("message, kind, severity", [
    ("watchdog: Watchdog detected hard LOCKUP on cpu 3", "hard_lockup", "critical"),
    ("rcu: INFO: rcu_preempt self-detected stall on CPU", "rcu_stall", "critical"),
    ("INFO: rcu_sched detected stalls on CPUs/tasks:", "rcu_stall", "critical"),
    ("Kernel panic - not syncing: Fatal exception", "panic", "critical"),
    ("mce: [Hardware Error]: Machine Check Exception: 5 Bank 4: b200000000070f0f", "mce", "critical"),
    ("EDAC MC0: 1 UE memory read error on CPU_SrcID#0_Ha#0_Chan#0_DIMM#0", "edac_ue", "critical"),
    ("pcieport 0000:00:01.0: AER: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer",
     "aer_uncorrected", "critical"),
    ("pcieport 0000:00:01.0: PCIe Bus Error: severity=Uncorrected (Non-Fatal), type=Transaction Layer, (Requester ID)",
     "aer_uncorrected", "error"),
    ("nvme nvme0: controller is down; will reset: CSTS=0xffffffff, PCI_STATUS=0xffff", "nvme_removed", "critical"),
    ("nvme nvme0: I/O 5 (Write) QID 3 timeout, aborting", "nvme_timeout", "error"),
    ("EXT4-fs (dm-1): Remounting filesystem read-only", "fs_readonly", "critical"),
    ("I/O error, dev sda, sector 123456 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2", "io_error", "error"),
    ("blk_update_request: I/O error, dev sdb, sector 2048", "io_error", "error"),
    ("Buffer I/O error on dev sdb1, logical block 0, async page read", "io_error", "error"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000008", "oops", "critical"),
    ("Oops: 0000 [#1] PREEMPT SMP NOPTI", "oops", "critical"),
    ("BUG: Bad page state in process swapper/0  pfn:1a2b3", "bug", "error"),
    ("WARNING: CPU: 3 PID: 0 at kernel/rcu/tree.c:123 rcu_note+0x1/0x2", "warning", "warning"),
])
def test_wordings_not_in_the_corpus(message, kind, severity):
    event = classify(message)
    assert event is not None and (event.kind, event.severity) == (kind, severity)


@pytest.mark.parametrize("message", [
    "mce: CPU supports 7 MCE banks",
    "CPU2: Core temperature/speed normal",
    "nvme nvme0: Abort status: 0x0",
    "EDAC sbridge MC1: HANDLING MCE MEMORY ERROR",
    "pcieport 0000:00:1c.1: AER: Corrected error received: 0000:00:1c.1",
    "microcode: Current revision: 0x00000435",
])
def test_benign_and_detail_lines_are_not_events(message):
    assert classify(message) is None


def test_journal_json_records_including_byte_array_messages():
    record = {"__REALTIME_TIMESTAMP": "1764505200000000", "PRIORITY": "3",
              "MESSAGE": "watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [stress-ng:1234]"}
    event = parse_journal_line(json.dumps(record))
    assert (event.kind, event.stamp) == ("soft_lockup", "1764505200000000")
    as_bytes = {**record, "MESSAGE": list("INFO: task kworker/0:1:12 blocked for more than 120 seconds.\xff".encode("latin-1"))}
    assert parse_journal_line(json.dumps(as_bytes)).kind == "hung_task"
    assert parse_journal_line(json.dumps({"__CURSOR": "s=1"})) is None


@pytest.mark.parametrize("garbage", ["not json at all", "[1, 2]"])
def test_garbage_journal_output_names_the_tool(garbage):
    with pytest.raises(ParseError, match="journalctl -o json"):
        parse_journal_line(garbage)


def test_every_kind_is_named_once():
    assert len(KINDS) == len(set(KINDS)) and "soft_lockup" in KINDS
