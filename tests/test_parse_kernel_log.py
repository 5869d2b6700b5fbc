"""Kernel-log events on every real log of the corpus: old and new wordings, every prefix style."""

import json
from collections import Counter

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.parsers.kernel_log import (
    KINDS,
    KernelLogReader,
    classify,
    parse_journal_line,
    parse_kernel_line,
    parse_kernel_log,
    split_prefix,
)

# (kind, severity) -> count, for every file of the corpus folder.
EXPECTED = {
    "aer-correctable-new-wording-dmesg-T.txt": {("aer_corrected", "warning"): 2},
    # DPC containment was no event at all: the new wording alone ("ERR_FATAL received from") left a run clean
    "dpc-containment-cmpltto-recovery-failed-pciehp-race-linux-pci-2021.txt": {
        ("pcie_containment", "error"): 1, ("aer_uncorrected", "error"): 1, ("aer_uncorrected", "critical"): 1},
    "dpc-containment-new-format-err-fatal-received-edr-recovered-indented.txt": {("pcie_containment", "error"): 1},
    # Zen: the UMC's CECC/UECC are DRAM errors (EDAC's echoes not counted again); the Load Store Unit's UECC
    # (poison consumed in the L1 data cache) is a CPU machine check, no longer "DRAM ECC"
    # 6.12: a UMC error whose address amd64_edac cannot decode is still one memory error; a 10 s hung task
    "zen-umc-cecc-edac-cannot-decode-hung-task-10s-6.12-dmesg.txt": {
        ("mce", "warning"): 1, ("memory_corrected", "warning"): 1, ("hung_task", "error"): 1},
    # the expedited-stall wording was missed: only the self-detected stall 18 s later was an event
    "rcu-expedited-stall-then-self-detected-stall-6.5-indented.txt": {("rcu_stall", "critical"): 2},
    # the OOM killer was no event at all; one per kill, its victim the subject
    "oom-kill-global-constraint-none-reaper-printk-caller-5.6-excerpt.txt": {("oom_kill", "warning"): 1},
    # neither the NMI the platform calls a PCI hardware problem nor die()'s "divide error: 0000 [#1]" was an event
    "nmi-unknown-reason-pci-hardware-problem-then-divide-error-oops-2.6.32-proliant.txt": {
        ("nmi", "warning"): 1, ("nmi", "error"): 1, ("oops", "critical"): 1},
    "zen-smca-umc-cecc-deferred-uecc-ls-poison-consumed-dmesg-homelab-doc.txt": {
        ("mce", "warning"): 3, ("memory_corrected", "warning"): 1, ("mce", "critical"): 3,
        ("memory_uncorrected", "critical"): 1, ("memory_poisoned", "critical"): 3},
    # AMD's decoder: the MC4_STATUS line with CECC is a corrected DRAM error, judged like EDAC's (by growth)
    "amd-fam10h-decoded-mc4-dram-ecc-corrected-syslogd-wall.txt": {("memory_corrected", "warning"): 2},
    # MCi_STATUS cc59dec000041152 ...: VAL and OVER set, UC (bit 61) clear: corrected
    "mce-intel-corrected-bank6-journal-short-host-homeassistant.txt": {("mce", "warning"): 4},
    "mce-bank9-zero-status-dmesg-tail-with-userspace-kmsg-lines.txt": {("mce", "warning"): 2},
    "mce-events-logged-proxmox-ryzen-dmesg-T-in-kernel-decoding.txt": {("mce", "warning"): 6},
    "thermal-critical-temperature-shutdown-syslogd-wall-kernel-no-space.txt": {("thermal_shutdown", "critical"): 2},
    # a NIC whose transmit ring hung (the register dump lines are detail); none was an event before
    "nic-hang-e1000e-hardware-unit-hang-register-dump-dmesg.txt": {("nic_hang", "error"): 2},
    "nic-hang-e1000e-openwrt-logread-kern-err-with-foreign-uucp-line.txt": {("nic_hang", "error"): 1},
    "nic-hang-e1000-tx-unit-hang-journal-iso-host-unprefixed-continuation.txt": {("nic_hang", "error"): 2},
    "nic-hang-e1000e-talosctl-kern-err-kmsg-subsystem-device-lines.txt": {("nic_hang", "error"): 1},
    # "AER: device recovery failed" (critical, was not an event) besides the PCIe Bus Error line
    "aer-uncorrected-nonfatal-cmplto-malftlp-device-recovery-failed-rpi5-dmesg.txt": {
        ("aer_uncorrected", "critical"): 2, ("aer_uncorrected", "error"): 1},
    "aer-corrected-data-link-layer-timeout-dmesg.txt": {("aer_corrected", "warning"): 4},
    "aer-corrected-physical-layer-rxerr-journal-ru-locale.txt": {("aer_corrected", "warning"): 3},
    "aer-old-format-receiver-id-multiple-corrected.txt": {("aer_corrected", "warning"): 4},
    "ata-eh-frozen-timeout-hard-reset-dmesg.txt": {("ata_error", "error"): 5, ("ata_reset", "error"): 1},
    "ata-hard-reset-limiting-3gbps-disabled-indented.txt": {("ata_reset", "error"): 4, ("ata_link_slow", "error"): 1,
                                                            ("ata_error", "critical"): 1},
    "ata-limiting-speed-link-down-kmsg-level-no-stamp.txt": {("ata_error", "error"): 3, ("ata_link_slow", "error"): 1,
                                                             ("ata_reset", "error"): 1, ("ata_link_down", "error"): 1},
    "ata-link-up-limited-sctl-310-after-resume-dmesg.txt": {("ata_link_slow", "error"): 1, ("ata_error", "error"): 1},
    "ata-media-error-unc-sense-medium-dmesg-T.txt": {("ata_error", "error"): 2, ("medium_error", "error"): 3,
                                                     ("io_error", "error"): 1},
    "btrfs-csum-failed-corrupt-errs-read-error-corrected-syslog.txt": {("fs_error", "error"): 2},
    "btrfs-direct-io-failed-bdev-errs-rd-dmesg-T.txt": {("fs_error", "error"): 9},
    "edac-old-format-ce-error-channel-dimm.txt": {("mce", "warning"): 1, ("edac_ce", "warning"): 7},
    "edac-sbridge-ce-overflow-dmesg-T.txt": {("edac_ce", "warning"): 1},
    "ext4-error-count-since-last-fsck-history-warning.txt": {("fs_error_count", "warning"): 1,
                                                             ("fs_warning", "warning"): 8},
    "ext4-error-find-entry-io-superblock-dmesg.txt": {("fs_error", "error"): 10, ("io_error", "error"): 1},
    "ghes-corrected-memory-fru-text-syslog-proxmox.txt": {("memory_corrected", "warning"): 1},
    # GHES PCIe sections (firmware-first AER): one event per record, the port's device_id its subject (the
    # fru_text "PcieError" named every port alike before); the AER status lines after a record are detail
    "ghes-corrected-pcie-root-port-fru-pcieerror-epyc-syslog.txt": {("aer_corrected", "warning"): 2},
    "ghes-recoverable-pcie-root-port-acsviol-device-recovery-failed-ice-dmesg.txt": {
        ("aer_uncorrected", "error"): 2, ("aer_uncorrected", "critical"): 1},
    "ghes-recoverable-memory-already-poisoned-iso-syslog.txt": {("memory_uncorrected", "error"): 1,
                                                                ("memory_poisoned", "critical"): 1},
    "ghes-recoverable-multibit-dimm-not-present-syslog.txt": {("memory_uncorrected", "error"): 1},
    "hung-task-120s-dmesg-sonic.txt": {("hung_task", "error"): 5},
    "hung-task-120s-syslog-calltrace-gluster.txt": {("hung_task", "error"): 1},
    "hung-task-122s-journal-new-format-sof.txt": {("hung_task", "error"): 1},
    "mce-edac-sbridge-ce-memory-scrubbing-error.txt": {("mce", "warning"): 1, ("edac_ce", "warning"): 1},
    # MCi_STATUS a600000000020408 has UC (bit 61) set: an uncorrected error left in bank 4 before boot
    "mce-hardware-error-bank4-nuc-j5005.txt": {("mce", "warning"): 1, ("mce", "critical"): 1},
    "mce-machine-check-events-logged-dmesg.txt": {("mce", "warning"): 3},
    "memory-failure-unhandlable-page-ignored-dmesg.txt": {("memory_poisoned", "critical"): 18},
    "netdev-watchdog-new-format-r8125.txt": {("netdev_watchdog", "error"): 7},
    "netdev-watchdog-old-format-igb-warning-calltrace.txt": {("warning", "warning"): 1,
                                                             ("netdev_watchdog", "error"): 1},
    "nvme-admin-timeout-reset-controller-removed.txt": {("nvme_timeout", "error"): 2, ("nvme_reset", "error"): 4,
                                                        ("nvme_removed", "critical"): 2},
    "nvme-io-tag-opcode-qid-timeout-new-wording-vmd.txt": {("nvme_timeout", "error"): 2},
    "nvme-io-timeout-aborting-abort-status.txt": {("nvme_timeout", "error"): 12},
    "nvme-timeout-completion-polled-printk-caller-id.txt": {("nvme_timeout", "error"): 3},
    "panic-fatal-machine-check-processor-context-corrupt.txt": {("mce", "critical"): 2, ("panic", "critical"): 1},
    "panic-hard-lockup-line-numbered-listing.txt": {("panic", "critical"): 1},
    "panic-hard-lockup-seastar-calltrace.txt": {("panic", "critical"): 1},
    "scsi-critical-medium-error-sense-medium-dmesg-T.txt": {("medium_error", "error"): 7},
    "scsi-critical-target-error-old-end-request-split-lines.txt": {("device_error", "error"): 3,
                                                                   ("io_error", "error"): 1},
    "soft-lockup-old-format-no-watchdog-prefix.txt": {("soft_lockup", "critical"): 1},
    "soft-lockup-syslog-frigate.txt": {("soft_lockup", "critical"): 1},
    "thermal-throttle-core-with-mce-events-logged-old.txt": {("mce", "warning"): 6, ("thermal_throttle", "warning"): 6},
    "thermal-throttle-dmesg-human-relative-timestamps.txt": {("thermal_throttle", "warning"): 10},
    "thermal-throttle-mce-prefix-dmesg.txt": {("thermal_throttle", "warning"): 10},
    "xfs-force-shutdown-corruption-kernel-prefix-no-stamp.txt": {("fs_error", "error"): 1,
                                                                 ("fs_shutdown", "critical"): 2},
    "xfs-log-io-error-shutdown-talosctl-dmesg-prefix.txt": {("fs_error", "error"): 1, ("fs_shutdown", "critical"): 1},
    "xfs-metadata-io-error-log-mount-failed-syslog.txt": {("fs_error", "error"): 3},
    "xfs-old-log-io-error-detected-journal-short.txt": {("fs_shutdown", "critical"): 1},
}
UNSTAMPED = {"ata-limiting-speed-link-down-kmsg-level-no-stamp.txt",
             "xfs-force-shutdown-corruption-kernel-prefix-no-stamp.txt",
             "amd-fam10h-decoded-mc4-dram-ecc-corrected-syslogd-wall.txt",  # the stamp is on syslogd's header line
             "thermal-critical-temperature-shutdown-syslogd-wall-kernel-no-space.txt",
             # quoted in patch mails without their stamps
             "dpc-containment-cmpltto-recovery-failed-pciehp-race-linux-pci-2021.txt",
             "dpc-containment-new-format-err-fatal-received-edr-recovered-indented.txt"}


def test_every_corpus_file_is_covered():
    assert sorted(p.name for p in corpus_path("kernel-log").iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_the_right_events(name):
    events = parse_kernel_log(corpus_path("kernel-log", name).read_text())
    assert dict(Counter((e.kind, e.severity) for e in events)) == EXPECTED[name]
    assert all(e.stamp for e in events) or name in UNSTAMPED, "the line's timestamp is kept"
    assert all(not e.message.removeprefix("[Hardware Error]: ").startswith(("[", "kernel:", "<", "1", " "))
               for e in events), "prefix left in the message"


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
    # shapes of the corpus files, one line each
    ("109.200.197.196: kern:   alert: [2024-05-13T15:13:11.99476118Z]: XFS (sdb6): log I/O error -5",
     "2024-05-13T15:13:11.99476118Z", "XFS (sdb6): log I/O error -5"),
    ("  11745 [46223316.649832] Kernel panic - not syncing: Hard LOCKUP", "46223316.649832",
     "Kernel panic - not syncing: Hard LOCKUP"),
    ("[   37.920588][  T117] nvme nvme0: I/O 457 QID 1 timeout", "37.920588", "nvme nvme0: I/O 457 QID 1 timeout"),
    ("2019-08-19T04:18:38.274652-04:00 linux-dgwd kernel: [ 261.273226] {1}[Hardware Error]: i", "261.273226",
     "{1}[Hardware Error]: i"),
    ("    [2333810.863007] ata1: hard resetting link", "2333810.863007", "ata1: hard resetting link"),
    ("<4>ata1: limiting SATA link speed to 1.5 Gbps", None, "ata1: limiting SATA link speed to 1.5 Gbps"),
    ("kernel: XFS (dm-4): Corruption detected.", None, "XFS (dm-4): Corruption detected."),
    # shapes no corpus file has (documented formats: logread, dmesg -x, dmesg -r via /dev/kmsg, RFC 5424,
    # journalctl -o short-full/short-unix, dmesg --time-format iso); the messages are the corpus's
    ("Mon Jan  1 00:00:00 2024 kern.err kernel: [   12.345678] ata1: hard resetting link", "12.345678",
     "ata1: hard resetting link"),
    ("kern  :err   : [   12.3] ata1: hard resetting link", "12.3", "ata1: hard resetting link"),
    ("3,1234,5678901,-;ata1: hard resetting link", "5.678901", "ata1: hard resetting link"),
    ("<3>1 2024-01-01T00:00:00.000Z pve1 kernel - - - ata1: hard resetting link", "2024-01-01T00:00:00.000Z",
     "ata1: hard resetting link"),
    ("Mon 2024-01-01 00:00:00 UTC pve1 kernel: ata1: x", "Mon 2024-01-01 00:00:00 UTC", "ata1: x"),
    ("1704067200.123456 pve1 kernel: ata1: x", "1704067200.123456", "ata1: x"),
    ("2024-01-01T00:00:00,123456+00:00 nvme nvme0: I/O 5 QID 3 timeout", "2024-01-01T00:00:00,123456+00:00",
     "nvme nvme0: I/O 5 QID 3 timeout"),
    ("[ 1.0] usb 1-1: the kernel: said", "1.0", "usb 1-1: the kernel: said"),  # "kernel:" inside the message
])
def test_prefixes_are_split_off(line, stamp, message):
    assert split_prefix(line) == (stamp, message)


@pytest.mark.parametrize("line", [
    "Sep 16 19:51:15 mcelog[987]: BUG: soft lockup - CPU#0 stuck for 23s!",
    "dez 07 19:32:41 edson-p6540br smartd[2977]: Device: /dev/sda [SAT], 1 Currently unreadable (pending) sectors",
    "Mar 17 03:01:44 server zed[88]: kernel: I/O error, dev sda, sector 1",
    json.dumps({"MESSAGE": "I/O error, dev sda, sector 1", "SYSLOG_IDENTIFIER": "smartd", "_TRANSPORT": "syslog"}),
])
def test_other_programs_are_not_kernel_messages(line):
    assert split_prefix(line) is None and parse_kernel_line(line) is None


def test_log_shipper_json_records_carry_the_kernel_message():
    """Synthetic wrappers (journal export, Docker/Vector-style JSON) around lines of the corpus."""
    journal = {"__REALTIME_TIMESTAMP": "1764505200000000", "_TRANSPORT": "kernel", "SYSLOG_IDENTIFIER": "kernel",
               "MESSAGE": "nvme nvme0: I/O tag 641 (c281) opcode 0x1 (I/O Cmd) QID 8 timeout, reset controller"}
    assert parse_kernel_line(json.dumps(journal)).kind == "nvme_timeout"
    shipped = {"log": "Dec 29 05:24:23 proxmox kernel: ata1: hard resetting link\n", "stream": "stdout"}
    assert split_prefix(json.dumps(shipped)) == ("Dec 29 05:24:23", "ata1: hard resetting link")
    assert split_prefix('{"message": "not json') == (None, '{"message": "not json')


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
    ("NMI watchdog: Watchdog detected hard LOCKUP on cpu 0", "hard_lockup", "critical"),
    ("---[ end Kernel panic - not syncing: Fatal exception ]---", "panic", "critical"),
    ("mce: [Hardware Error]: CPU 2: Machine Check: 0 Bank 7: 8c00004000010090", "mce", "warning"),  # UC clear
    ("mce: [Hardware Error]: Corrected error, no action required.", "mce", "warning"),
    ("mce: [Hardware Error]: Uncorrected, software restartable error.", "mce", "critical"),
    ("EDAC MC0: CE page 0x1a2b, offset 0x0, grain 0, syndrome 0x5c, row 0, channel 1", "edac_ce", "warning"),
    ("sd 2:0:0:0: [sdb] tag#3 Sense Key : Hardware Error [current]", "device_error", "error"),
    ("sd 9:0:1:0: [sde] tag#2799 Sense Key : 0x3 [current]", "medium_error", "error"),
    ("nvme0n1: Read(0x2) @ LBA 1310720, 256 blocks, Unrecovered Read Error (sct 0x2 / sc 0x81) DNR", "medium_error",
     "error"),
    ("nvme nvme1: I/O 24 QID 0 timeout, completion polled", "nvme_timeout", "error"),
    ("nvme nvme0: Disabling device after reset failure: -19", "nvme_removed", "critical"),
    ("ata3: COMRESET failed (errno=-16)", "ata_reset", "error"),
    ("ata3.00: NCQ disabled due to excessive errors", "ata_error", "error"),
    ("BTRFS info (device sda1): bdev /dev/sda1 errs: wr 0, rd 12, flush 0, corrupt 0, gen 0", "fs_error_count",
     "warning"),  # printed at mount: the counters of earlier errors
    ("BTRFS: error (device nvme0n1p2) in btrfs_commit_transaction:2564: errno=-5 IO failure", "fs_error", "error"),
    ("Aborting journal on device sda1-8.", "fs_shutdown", "critical"),
    ("XFS (sdb1): xfs_log_force: error -5 returned.", "fs_error", "error"),
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
    "ata1: SATA link up 6.0 Gbps (SStatus 133 SControl 300)",
    "ata1.00: configured for UDMA/133",
    "XFS (sdb6): Please unmount the filesystem and rectify the problem(s).",
    "EXT4-fs (sda1): mounted filesystem with ordered data mode. Quota mode: none.",
])
def test_benign_and_detail_lines_are_not_events(message):
    assert classify(message) is None


def test_journal_json_records_including_byte_array_messages():
    record = {"__REALTIME_TIMESTAMP": "1764505200000000", "PRIORITY": "3",
              "MESSAGE": "watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [stress-ng:1234]"}
    event = parse_journal_line(json.dumps(record))
    assert (event.kind, event.stamp) == ("soft_lockup", "1764505200000000")
    hung = "INFO: task kworker/0:1:12 blocked for more than 120 seconds.\xff"
    as_bytes = {**record, "MESSAGE": list(hung.encode("latin-1"))}
    assert parse_journal_line(json.dumps(as_bytes)).kind == "hung_task"
    assert parse_journal_line(json.dumps({"__CURSOR": "s=1"})) is None


@pytest.mark.parametrize("garbage", ["not json at all", "[1, 2]"])
def test_garbage_journal_output_names_the_tool(garbage):
    with pytest.raises(ParseError, match="journalctl -o json"):
        parse_journal_line(garbage)


def test_every_kind_is_named_once():
    assert len(KINDS) == len(set(KINDS)) and "soft_lockup" in KINDS


def test_a_ghes_record_is_one_event_with_its_section_and_location():
    events = parse_kernel_log(corpus_path("kernel-log", "ghes-recoverable-memory-already-poisoned-iso-syslog.txt")
                              .read_text())
    record, poison = events
    assert (record.kind, record.severity, record.stamp) == ("memory_uncorrected", "error", "261.273226")
    assert record.subject == "Card01, ChnA, DIMM0" and record.reason == "memory error"
    assert "DIMM location: CPU 1 DIMM 5" in record.message and "event severity: recoverable" in record.message
    assert len(record.detail) == 9 and record.detail[0].endswith("Generic Hardware Error Source: 4")
    assert (poison.kind, poison.subject) == ("memory_poisoned", "0xe16677")


def test_records_are_told_apart_by_their_sequence_number_and_ghes_edac_is_not_counted_twice():
    text = corpus_path("kernel-log", "ghes-corrected-memory-fru-text-syslog-proxmox.txt").read_text()
    second = text.replace("{35}", "{36}").replace("D2", "D3")
    # ghes_edac's copy of a record (the kernel's wording, with the GHES location) follows it: the same error.
    echo = ("Dec 29 05:24:23 proxmox kernel: EDAC MC0: 1 CE single-bit ECC on unknown memory (node:6 card:1 "
            "module:0 page:0x0 offset:0x0 grain:1 syndrome:0x0 - APEI location: node:6 card:1 module:0)\n")
    events = parse_kernel_log(text + second + echo)
    assert [(e.kind, e.subject) for e in events] == [("memory_corrected", "D2"), ("memory_corrected", "D3")]


def test_an_open_record_waits_for_its_end_or_a_flush():
    reader = KernelLogReader()
    lines = corpus_path("kernel-log", "ghes-corrected-memory-fru-text-syslog-proxmox.txt").read_text().splitlines()
    assert [e for line in lines for e in reader.feed(line)] == [] and reader.pending
    assert [e.kind for e in reader.flush()] == ["memory_corrected"] and not reader.pending


def test_a_link_that_comes_back_slower_than_before_is_an_event():
    reader = KernelLogReader()
    boot = "[    1.5] ata2: SATA link up 6.0 Gbps (SStatus 133 SControl 300)"
    after_reset = "[ 5000.1] ata2: SATA link up 3.0 Gbps (SStatus 123 SControl 300)"
    assert reader.feed(boot) == []
    (slow,) = reader.feed(after_reset)
    assert (slow.kind, slow.subject) == ("ata_link_slow", "ata2") and "down from 6 Gbps" in slow.message
    assert parse_kernel_line(after_reset) is None, "without the earlier speed a 3 Gbps link is not a fault"


def test_a_panic_keeps_its_reason():
    event = classify("Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu 3")
    assert (event.kind, event.reason) == ("panic", "Watchdog detected hard LOCKUP on cpu 3")
    assert classify("---[ end Kernel panic - not syncing: Fatal machine check ]---").reason == "Fatal machine check"


def test_edac_lines_count_their_errors():
    assert classify("EDAC MC1: 262 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0").count == 262


# Synthetic lines in the format of drivers/edac/mce_amd.c (Zen SMCA banks) and amd64_edac: no public log of
# these was found; the fields are those the kernel prints, the values made up.
AMD_UMC_CE = ("[  100.0] [Hardware Error]: CPU:2 (19:61:2) MC21_STATUS[Over|CE|MiscV|AddrV|-|-|SyndV|CECC|-|-|-]: "
              "0xdc2040000400011b")
AMD_EDAC_ECHO = ("[  100.0] EDAC MC0: 1 CE on mc#0csrow#2channel#0 (csrow:2 channel:0 page:0x7d41b7 offset:0x940 "
                 "grain:64 syndrome:0x1)")


@pytest.mark.parametrize("line, kind, severity, reason", [
    (AMD_UMC_CE, "memory_corrected", "warning", "DRAM ECC"),
    ("[1.0] [Hardware Error]: CPU:4 (19:1:1) MC17_STATUS[-|UE|MiscV|AddrV|-|-|SyndV|UECC|-|Poison|-]: "
     "0xbc00080001010135",
     "memory_uncorrected", "critical", "DRAM ECC"),
    ("[1.0] [Hardware Error]: CPU:0 (17:31:0) MC255_STATUS[-|CE|-|-|AddrV|-|-|-]: 0x9400000000000000",
     "mce", "warning", "corrected"),
    ("[1.0] [Hardware Error]: CPU:5 (17:71:0) MC5_STATUS[-|UE|MiscV|AddrV|PCC|-|-|-|-]: 0xbe00000000000000",
     "mce", "critical", "uncorrected"),
    ("[1.0] [Hardware Error]: CPU:8 (19:1:1) MC3_STATUS[-|-|MiscV|AddrV|-|-|-|Deferred|-|-]: 0x9c00000000000000",
     "mce", "critical", "deferred"),
])
def test_amd_decoded_bank_status(line, kind, severity, reason):
    [event] = parse_kernel_log(line)
    assert (event.kind, event.severity, event.reason) == (kind, severity, reason)


def test_amd64_edac_copy_of_a_decoded_dram_error_is_not_counted_twice():
    events = parse_kernel_log(AMD_UMC_CE + "\n" + AMD_EDAC_ECHO)
    assert [(e.kind, e.subject) for e in events] == [("memory_corrected", "CPU 2 MC21")]
    assert [e.kind for e in parse_kernel_log(AMD_EDAC_ECHO)] == ["edac_ce"], "alone it is still an event"


def test_kernel_ident_directly_before_the_message():
    # syslogd's wall message puts no space after "kernel:" (corpus file amd-fam10h-...-syslogd-wall.txt)
    assert split_prefix(" kernel:[Hardware Error]: MC4_ADDR: 0x1") == (None, "[Hardware Error]: MC4_ADDR: 0x1")
    assert split_prefix("Message from syslogd@hammer at Nov 10 08:58:06 ...")[1].startswith("Message")


def test_the_driver_s_pci_address_is_the_subject():
    event = parse_kernel_line("[ 58.3] pcieport 0000:00:00.0: AER: device recovery failed")
    assert (event.kind, event.subject) == ("aer_uncorrected", "0000:00:00.0")
    assert parse_kernel_line("[9.1] e1000e 0000:00:1f.6 eno1: Detected Hardware Unit Hang:").subject == "0000:00:1f.6"


def test_zen_bank_type_comes_from_the_lines_after_its_status():
    text = corpus_path("kernel-log", "zen-smca-umc-cecc-deferred-uecc-ls-poison-consumed-dmesg-homelab-doc.txt")
    events = [e for e in parse_kernel_log(text.read_text()) if e.subject]
    assert [(e.kind, e.subject, e.reason) for e in events[:3]] == [
        ("memory_corrected", "CPU 0 MC15", "DRAM ECC"), ("memory_uncorrected", "CPU 0 MC15", "DRAM ECC"),
        ("mce", "CPU 7 MC0", "uncorrected ECC error in the Load Store Unit")]
    # an IPID naming another block than a memory controller (hardware id 0xb0: Load Store) is enough
    lines = [line for line in text.read_text().splitlines() if "74536.9408" in line and "Ext. Error" not in line]
    [status] = [e for e in parse_kernel_log("\n".join(lines)) if e.subject]
    assert (status.kind, status.reason) == ("mce", "uncorrected ECC error in the bank with IPID hardware id 0xb0")


def test_a_zen_status_waits_for_its_bank_lines_until_flushed():
    reader = KernelLogReader()
    assert reader.feed("[1.0] [Hardware Error]: CPU:0 (19:21:0) MC17_STATUS[Over|CE|MiscV|AddrV|-|-|SyndV|CECC|-|-|-]: "
                       "0xdc2040000000011b") == [] and reader.pending
    assert reader.feed("[1.0] [Hardware Error]: IPID: 0x0000009600050f00, Syndrome: 0x33fa01000a800101") == []
    [event] = reader.flush()
    assert (event.kind, event.reason, reader.pending) == ("memory_corrected", "DRAM ECC", False)


def test_dpc_containment_is_one_event_of_the_port():
    text = corpus_path("kernel-log", "dpc-containment-new-format-err-fatal-received-edr-recovered-indented.txt")
    [event] = parse_kernel_log(text.read_text())
    assert (event.kind, event.subject) == ("pcie_containment", "0015:00:00.0")


def test_a_hung_task_names_its_command():
    text = corpus_path("kernel-log", "zen-umc-cecc-edac-cannot-decode-hung-task-10s-6.12-dmesg.txt").read_text()
    assert [e.subject for e in parse_kernel_log(text) if e.kind == "hung_task"] == ["cat"]


def test_an_oom_kill_names_its_victim():
    text = corpus_path("kernel-log", "oom-kill-global-constraint-none-reaper-printk-caller-5.6-excerpt.txt")
    [event] = parse_kernel_log(text.read_text())
    assert (event.kind, event.subject, event.stamp) == ("oom_kill", "normal-priority", "1630.161867")


def test_a_ghes_pcie_record_is_about_its_device_not_its_fru_label():
    text = corpus_path("kernel-log", "ghes-corrected-pcie-root-port-fru-pcieerror-epyc-syslog.txt").read_text()
    assert {(e.subject, e.reason) for e in parse_kernel_log(text)} == {("0000:60:03.1", "PCIe error")}
