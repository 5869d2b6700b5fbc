"""Kernel-log lines that mean trouble: lockups, panics, machine checks, memory, PCIe, disk, filesystem faults.

The kernel's message is found by its content, whatever comes before it: `dmesg` (`[  41.670135] ...`,
`-T`, `-H`, `-x`, printk caller ids `[  T117]`), syslog RFC 3164 and ISO stamps (`May  7 06:45:12 host
kernel: ...`, any month language), RFC 5424 (`<3>1 2024-... host kernel - - - ...`), journalctl short
formats, `journalctl -o json` records and log shippers' JSON (`MESSAGE`/`message`/`log`), pstore and
console records (`<6>[ 0.1] ...`, `<3>ata1: ...`), OpenWrt/busybox (`kern.err kernel: ...`), talosctl
(`10.0.0.1: kern: alert: [2024-...Z]: ...`), line-numbered listings and indented quotes. Lines of
another program (`smartd[12]: ...`) are not kernel messages.

Old and new kernel wordings are both matched (soft lockup with and without `watchdog:`, AER
`severity=Corrected|Correctable`, NVMe `I/O 12 QID 5 timeout` and `I/O tag 641 (c281) opcode 0x1 ...`,
XFS `Log I/O Error Detected` and `log I/O error`, SCSI `Sense Key : Medium Error` and `0x3`), and AMD's
decoded bank status (`[Hardware Error]: CPU:18 (10:9:1) MC4_STATUS[Over|CE|...|CECC]: 0x...`, family 10h to Zen).

A multi-line APEI/GHES record (`{N}[Hardware Error]: ...`, firmware-first servers) is one event: its
severity line, section type and location (fru_text, DIMM location, device_id) are read together;
`KernelLogReader` keeps that state, and the ATA link speeds seen, across lines. Detail lines around a
fault (register dumps, call traces, `configured for UDMA/133`) are not events.
Severity ladder: info < warning < error < critical; the watch folds and judges them (qualify/watch).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from qualify.errors import ParseError

SEVERITIES = ("info", "warning", "error", "critical")
MAX_RECORD_LINES = 64  # of one GHES record kept as detail; firmware records are a dozen lines


@dataclass(frozen=True)
class KernelEvent:
    kind: str          # soft_lockup, panic, memory_corrected, ata_reset, fs_error, ... (see KINDS)
    severity: str      # one of SEVERITIES
    message: str       # the kernel's message, without timestamp/host prefixes
    stamp: str | None  # the timestamp as the log printed it (monotonic seconds, date, relative)
    subject: str | None = None  # what the fault is about: device, DIMM, CPU, page (repeats fold on it)
    reason: str | None = None   # a panic's reason, a GHES record's section type
    count: int = 1              # errors the line states ("EDAC MC1: 262 CE ...", sections of a record)
    detail: tuple[str, ...] = ()  # the lines of a multi-line record (APEI/GHES)


@dataclass(frozen=True)
class _Rule:
    kind: str
    severity: str
    pattern: re.Pattern[str]


def _rule(kind: str, severity: str, pattern: str) -> _Rule:
    return _Rule(kind, severity, re.compile(pattern, re.IGNORECASE))


_DEV = r"\([^)]*\)"  # "(device sda1)", "(sdb6)"

# First match wins: specific wordings before the generic BUG/WARNING/I/O error ones.
_RULES: tuple[_Rule, ...] = (
    # "Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu 3" (the reason is kept), and its
    # "---[ end Kernel panic - not syncing: ... ]---" trailer, which folds into the same event.
    _rule("panic", "critical", r"Kernel panic - not syncing"),
    # "watchdog: BUG: soft lockup - CPU#0 stuck for 23s!" (>= 4.x) / "BUG: soft lockup - CPU#10 stuck" (3.x)
    _rule("soft_lockup", "critical", r"BUG: soft lockup - CPU#\d+ stuck for \d+s"),
    # "Watchdog detected hard LOCKUP on cpu 3" / "NMI watchdog: ..." / "Watchdog CPU:59 Hard LOCKUP" (powerpc)
    _rule("hard_lockup", "critical", r"hard LOCKUP"),
    # "rcu: INFO: rcu_preempt self-detected stall on CPU", "INFO: rcu_sched detected stalls on CPUs/tasks"
    # "rcu: INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 14-.... } 24533 jiffies" (expedited GP)
    _rule("rcu_stall", "critical", r"\brcu_\w+ (?:self-)?detected (?:expedited )?stalls?\b"),
    _rule("hung_task", "error", r"INFO: task \S+ blocked for more than \d+ seconds"),
    # The OOM killer: "Out of memory: Killed process 23173 (normal-priority) total-vm:..." (>= 5.x),
    # "Memory cgroup out of memory: Killed process ...", old "Out of memory: Kill process 19961 (python) score 17";
    # one event per kill (the "invoked oom-killer" header and the Mem-Info dump are detail). The load's, not
    # the hardware's: reported; a check whose worker was killed fails on its own.
    _rule("oom_kill", "warning", r"\bout of memory: Kill(?:ed)? process \d+"),
    # Thermal events come through the mce driver on many kernels ("mce: CPU2: Core temperature ...").
    # thermal_core's emergency power-off: "thermal thermal_zone0: gpu-thermal: critical temperature reached,
    # shutting down", "reboot: HARDWARE PROTECTION shutdown (Temperature too high)"
    _rule("thermal_shutdown", "critical", r"critical temperature reached|HARDWARE PROTECTION (?:shutdown|reboot)"),
    _rule("thermal_throttle", "warning", r"CPU\d+: (?:Core|Package) temperature above threshold, cpu clock throttled"),
    _rule("mce", "critical", r"Machine Check Exception|Fatal machine check|Machine check: Processor context corrupt|"
                             r"\[Hardware Error\]: (?:Uncorrected|Deferred)\b"),
    # "mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 4: a600000000020408": severity from the UC bit
    _rule("mce", "error", r"\[Hardware Error\]: CPU \d+: Machine Check"),
    # AMD's decoder (edac_mce_amd, family 10h to Zen): "[Hardware Error]: CPU:18 (10:9:1)
    # MC4_STATUS[Over|CE|MiscV|-|AddrV|CECC]: 0xdc5c410004080a13"; kind and severity from its flags (_refine)
    _rule("mce", "error", r"\[Hardware Error\]: CPU:\d+ \([0-9a-f:]+\) MC\d+_STATUS\["),
    # Only says records are waiting for mcelog/rasdaemon (often corrected errors, or throttling on old kernels).
    _rule("mce", "warning", r"Machine check events logged|\[Hardware Error\]: Corrected error, no action required"),
    # "EDAC MC1: 262 CE memory read error on ...", "EDAC MC0: 4 CE error on CPU#0Channel#2_DIMM#0",
    # 2.6: "EDAC MC0: CE page"
    _rule("edac_ue", "critical", r"EDAC MC\d+: (?:\d+ )?UE\b"),
    _rule("edac_ce", "warning", r"EDAC MC\d+: (?:\d+ )?CE\b"),
    # "Memory failure: 0xe16677: already hardware poisoned", "...: recovery action for dirty LRU page: Recovered",
    # "Memory failure: 0x30a6a90: unhandlable page.", old kernels "MCE 0x1234: Killing ... hardware memory corruption"
    _rule("memory_poisoned", "critical", r"Memory failure: |hardware memory corruption|"
                                         r"Uncorrected hardware memory error|Memory error not recovered"),
    # Downstream Port Containment: the port cut the link to stop an uncorrectable error spreading; the devices
    # below it were gone until the port was reset. "DPC: containment event, status:0x1f01 source:0x0000"
    # (<= 6.x, then "DPC: unmasked uncorrectable error detected"), "..., status:0x200d, ERR_FATAL received from
    # 0015:01:00.0" (newer): one event per containment, its reason line is detail.
    _rule("pcie_containment", "error", r"\bDPC: containment event\b"),
    # AER: one event per "PCIe Bus Error" line, not per "error received" header, so nothing counts twice.
    _rule("aer_uncorrected", "critical", r"PCIe Bus Error: severity=Uncorrect\w+ \(Fatal\)|"
                                         r"AER: device recovery failed"),  # the device stays broken
    _rule("aer_uncorrected", "error", r"PCIe Bus Error: severity=Uncorrect"),
    _rule("aer_corrected", "warning", r"PCIe Bus Error: severity=Correct(?:ed|able)"),
    # "NETDEV WATCHDOG: eth2 (igb): transmit queue 5 timed out",
    # "eth4: NETDEV WATCHDOG: CPU: 3: transmit queue 0 timed out 5010 ms"
    # An NMI the kernel could not attribute: "Uhhuh. NMI received for unknown reason b1 on CPU 0." (often perf on
    # AMD: a warning); with the platform's word that it is hardware (PCI SERR, IOCHK): an error.
    _rule("nmi", "error", r"You have some hardware problem, likely on the PCI bus|NMI: PCI system error \(SERR\)|"
                          r"NMI: IOCK error"),
    _rule("nmi", "warning", r"NMI received for unknown reason"),
    _rule("netdev_watchdog", "error", r"NETDEV WATCHDOG: .*transmit queue \d+ timed out"),
    # Intel NICs whose transmit ring stopped (the driver then resets the adapter): e1000e "eth0: Detected Hardware
    # Unit Hang:", e1000/igb/ixgbe "Detected Tx Unit Hang"; the register dump lines after it are detail.
    _rule("nic_hang", "error", r"Detected (?:Hardware|Tx) Unit Hang|Reset adapter unexpectedly"),
    _rule("nvme_removed", "critical", r"nvme\d+: (?:Removing after probe failure|controller is down|"
                                      r"Disabling device after reset failure)"),
    # "nvme nvme0: I/O 12 QID 5 timeout, aborting" (<= 6.1), "I/O 457 QID 1 timeout, completion polled",
    # "nvme nvme0: I/O tag 641 (c281) opcode 0x1 (I/O Cmd) QID 8 timeout, aborting req_op:WRITE(1) size:4096" (>= 6.3)
    _rule("nvme_timeout", "error", r"nvme\d+: I/O (?:tag )?\d+ (?:\(\w+\) )?(?:opcode 0x\w+ \([^)]*\) )?"
                                   r"QID \d+ timeout"),
    _rule("nvme_reset", "error", r"nvme\d+: (?:Device not ready; aborting reset|resetting controller|"
                                 r"Failure status: |failed to set APST)"),
    # A medium the drive cannot read back: SCSI/SAS sense, libata's UNC bit, the block layer's status, NVMe status.
    _rule("medium_error", "error", r"critical medium error|Sense Key : (?:Medium Error|0x3)\b|"
                                   r"\berror: \{[^}]*\bUNC\b|Unrecovered Read Error"),
    _rule("device_error", "error", r"critical target error|Sense Key : (?:Hardware Error|0x4)\b|"
                                   r"rejecting I/O to offline device"),
    # libata error handling: "ata3.00: exception Emask 0x0 SAct 0x1 SErr 0x0 action 0x6 frozen", "failed command: ..."
    _rule("ata_error", "critical", r"\bata\d+(?:\.\d+)?: disabled\b"),
    _rule("ata_link_slow", "error", r"\bata\d+: limiting SATA link speed to"),
    _rule("ata_link_down", "error", r"\bata\d+(?:\.\d+)?: SATA link down\b"),
    _rule("ata_reset", "error", r"\bata\d+(?:\.\d+)?: (?:(?:hard|soft) resetting link|COMRESET failed)"),
    _rule("ata_error", "error", r"\bata\d+(?:\.\d+)?: (?:exception Emask|failed command: )|"
                                r"NCQ disabled due to excessive errors"),
    # Counters of errors found before (at mount, every 24 h): history, not a fault of this run.
    _rule("fs_error_count", "warning", rf"EXT4-fs {_DEV}: error count since last fsck|"
                                       rf"BTRFS info {_DEV}: bdev \S+ errs:"),
    _rule("fs_readonly", "critical", r"Remounting filesystem read-only|forced readonly|remounting read-only"),
    # XFS "Filesystem has been shut down due to log error (0x2)." (>= 5.x), "Log I/O Error Detected.  Shutting
    # down filesystem" (older), ext4 "Aborting journal on device sda1-8."
    _rule("fs_shutdown", "critical", r"Filesystem has been shut down|Shutting down filesystem|"
                                     r"xfs_do_force_shutdown|Aborting journal on device"),
    _rule("fs_error", "error", r"EXT4-fs error|"
                               rf"EXT4-fs {_DEV}: (?:I/O error while writing superblock|"
                               r"delayed block allocation failed|previous I/O error)|JBD2: .*\bI/?O error|"
                               rf"XFS {_DEV}: (?:log I/O error|metadata I/O error|Log I/O Error|Corruption detected|"
                               r"Metadata corruption detected|log mount(?:/recovery)? failed|xfs_log_force: error)|"
                               rf"BTRFS(?: error| critical|: error) |"
                               rf"BTRFS warning {_DEV}: (?:csum failed|direct IO failed)|"
                               r"\bbdev \S+ errs: wr \d+, rd \d+"),
    _rule("fs_warning", "warning", rf"EXT4-fs warning {_DEV}: .*\berror\b"),
    # "I/O error, dev sda, sector 123" (block layer),
    # "nvme0n1: Read(0x2) @ LBA 1310720, 256 blocks, ... (sct 0x2 / sc 0x81)"
    _rule("io_error", "error", r"\bI/O error, dev \S+|Buffer I/O error on dev|nvme\d+n\d+: .*@ LBA \d+, \d+ blocks, "),
    # die()'s header names the trap with the oops counter: "divide error: 0000 [#1] SMP", "invalid opcode: 0000 [#1]"
    _rule("oops", "critical", r"\bOops: |general protection fault|BUG: unable to handle|"
                              r"BUG: kernel NULL pointer dereference|kernel BUG at |"
                              r"^[a-z][a-z ]*: [0-9a-f]{4} \[#\d+\]"),
    _rule("bug", "error", r"\bBUG: "),
    # "WARNING: CPU: 6 PID: 0 at net/sched/sch_generic.c:264 dev_watchdog+0x154/0x20a()"
    _rule("warning", "warning", r"^WARNING: (?:CPU: \d+ PID: \d+ at|at )"),
)

_GHES_KINDS = ("memory_corrected", "memory_uncorrected", "hardware_error")
KINDS = tuple(dict.fromkeys([r.kind for r in _RULES] + list(_GHES_KINDS)))

# -- where the kernel's message starts

_ISO = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
# "May  7 06:45:12", "фев 12 00:48:02", "Mon Jan  1 00:00:00 2024" (logread), "Jan 01 00:00:00.123456" (short-precise)
_SYSLOG_STAMP = r"(?:[A-Z][a-z]{1,2} )?[^\W\d_]{3,}\.? {1,2}\d{1,2},? \d\d:\d\d:\d\d(?:\.\d+)?(?: \d{4}\b)?"
_ANY_STAMP = re.compile(rf"(?:[A-Z][a-z]{{2}} )?{_ISO}(?: [A-Z]{{3,4}}\b)?|{_SYSLOG_STAMP}|\b\d{{10}}\.\d+\b")
# dmesg: "[  41.67]", "[  +0.000001]", "[ +18,993611]", "[Feb22 04:01]", "[Fri Aug 29 20:09:52 2025]",
# talosctl "[2024-...Z]"
_BRACKET = re.compile(r"\[(?P<stamp>\s*(?:\+?\d+[.,]\d+|\w{3} ?\d{1,2} \d\d:\d\d(?::\d\d)?|"
                      rf"\w{{2,3}} \w{{3}}\s+\d{{1,2}} [\d:]+ \d{{4}}|{_ISO})\s*)\]:?\s?")
_CALLER = re.compile(r"^\[\s*[TC]\d+\]\s?")  # CONFIG_PRINTK_CALLER: "[  T117]", "[    C3]"
# "kernel:", "kernel[0]:", RFC 5424 "kernel - - - " / "kernel - - [meta ...] "
_KERNEL_IDENT = re.compile(r"(?:^|(?<=[\s|,;\]]))kernel(?:\[\d*\])?:(?:\s|$|(?=[\[\w]))|"
                           r"(?<=\s)kernel (?:-|\d+) \S+ (?:-|(?:\[[^\]]*\])+) ")
_FOREIGN_IDENT = re.compile(r"[\w.\-/@]+\[\d+\]: ")  # "smartd[2977]: ": a program's syslog ident with its pid
_FOREIGN_LINE = re.compile(rf"^(?:<\d+>\d? ?)?(?:{_ANY_STAMP.pattern})\s+(?:\S+\s+)?[\w.\-/@]+\[\d+\]: ")
_LEADING = re.compile(r"^(?:<\d{1,3}>\d? ?|\d+,\d+,(?P<usec>\d+),[^;]*;|"  # log level, /dev/kmsg record
                      r"kern(?:\.\w+|\s*:\s*\w+\s*:) ?)")  # logread "kern.err ", dmesg -x "kern  :err   : "
_IDENT_SCAN = 160  # where a prefix can end: past that, "kernel:" or a stamp is part of the message

_JSON_MESSAGE = ("MESSAGE", "message", "msg", "log")
_JSON_STAMP = ("__REALTIME_TIMESTAMP", "@timestamp", "timestamp", "time")
_JSON_IDENT = ("SYSLOG_IDENTIFIER", "_TRANSPORT", "ident", "program", "appname", "app_name")


def split_prefix(line: str) -> tuple[str | None, str] | None:
    """(timestamp, message) of one log line; None for a line of another program than the kernel."""
    line = line.rstrip("\r\n")
    if line.lstrip().startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return _split_record(record)
    rest, stamp = line.strip(), None
    ident = _KERNEL_IDENT.search(rest, 0, _IDENT_SCAN)
    if ident:
        head = rest[:ident.start()]
        if _FOREIGN_IDENT.search(head):
            return None  # "kernel:" inside another program's message
        if _prefix_like(head):
            stamp, rest = _stamp_in(head), rest[ident.end():]
        else:
            ident = None  # the word "kernel:" in a kernel message
    elif _FOREIGN_LINE.match(rest):
        return None
    while leading := _LEADING.match(rest):
        stamp = str(int(leading["usec"]) / 1e6) if leading["usec"] else stamp
        rest = rest[leading.end():]
    bracket = _BRACKET.search(rest, 0, _IDENT_SCAN)
    if bracket and not _words(rest[:bracket.start()]):
        stamp, rest = bracket["stamp"].strip(), rest[bracket.end():]
        rest = _CALLER.sub("", rest, count=1)
        host_ident = _KERNEL_IDENT.search(rest, 0, _IDENT_SCAN)  # journalctl -o short-monotonic: "[ 1.2] host kernel:"
        if host_ident and len(rest[:host_ident.start()].split()) <= 1:
            rest = rest[host_ident.end():]
    elif not ident and (lead := _ANY_STAMP.match(rest)):
        stamp, rest = lead.group().strip(), rest[lead.end():]
    return stamp, rest.strip()


def _words(head: str) -> bool:
    """Whether text before a stamp reads as a message (words), not a prefix (addresses, numbers, levels)."""
    return bool(re.search(r"[^\W\d_]{3,}(?![\w.:-]*:)", re.sub(r"\bkern\b|\b(?:emerg|alert|crit|err|warning|warn|"
                                                              r"notice|info|debug)\b", "", head)))


def _prefix_like(head: str) -> bool:
    """Stamps, then at most a host and a facility ("May  7 06:45:12 errol", "Mon Jan  1 ... 2024 kern.err")."""
    rest = _ANY_STAMP.sub(" ", _BRACKET.sub(" ", re.sub(r"^\s*<\d{1,3}>\d?", "", head)))
    return len(rest.split()) <= 2


def _stamp_in(head: str) -> str | None:
    bracket = _BRACKET.search(head)
    if bracket:
        return bracket["stamp"].strip()
    found = _ANY_STAMP.search(head)
    return found.group().strip() if found else None


def _split_record(record: dict) -> tuple[str | None, str] | None:
    """A journal or log-shipper JSON record: its message, if the kernel wrote it."""
    message = next((record[k] for k in _JSON_MESSAGE if k in record), None)
    if isinstance(message, list):  # journald stores a MESSAGE that is not valid UTF-8 as an array of bytes
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    if not isinstance(message, str):
        return None
    idents = [str(record[k]) for k in _JSON_IDENT if k in record]
    if idents and "kernel" not in idents:
        return None
    stamp = next((str(record[k]) for k in _JSON_STAMP if k in record), None)
    inner = split_prefix(message)  # a shipper may keep the whole syslog line in its message
    if inner is None:
        return None if not idents else (stamp, message.strip())
    return inner[0] or stamp, inner[1]


def journal_message(line: str) -> tuple[str | None, str] | None:
    """(realtime microseconds, MESSAGE) of one `journalctl -o json` record; None for a record without one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ParseError("journalctl -o json", f"not a JSON record ({exc.msg}): {line[:80]!r}") from None
    if not isinstance(record, dict):
        raise ParseError("journalctl -o json", f"expected one JSON object per line, got {line[:80]!r}")
    return _split_record(record)


# -- what a message states

_SUBJECTS = tuple(re.compile(p) for p in (
    r"INFO: task (\S+):\d+ blocked for",         # the hung task's command
    r"[Oo]ut of memory: Kill(?:ed)? process \d+ \(([^)]+)\)",  # the OOM killer's victim
    r"\bbdev (\S+) errs:",                        # BTRFS: the device whose counters rose
    r"\b(nvme\d+)(?:n\d+)?\b",                    # nvme0n1 -> the controller nvme0
    r"\b(ata\d+)(?:\.\d+)?:",                     # ata3.00 -> the port ata3
    r"\[(sd[a-z]+|sr\d+)\]",
    r"^\S+ ([0-9a-f]{4,5}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): ",  # the driver's device: "pcieport 0000:00:00.0: ..."
    r"\bdev(?:ice)? (\w[\w\-]*)",                 # "I/O error, dev sda", "Buffer I/O error on device sdc1"
    r"\(device ([^)\s]+)\)",
    r"\b(?:EXT4-fs|XFS) \(([^)]+)\)",
    r"\b([0-9a-f]{4,5}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\b",  # PCI address
    r"\b(CPU_SrcID#\d+\S*?_DIMM#\d+|CPU#\d+Channel#\d+_DIMM#\d+)",
    r"EDAC (MC\d+)",
    r"Memory failure: (0x[0-9a-f]+)",
    r"\b(CPU#?\s?\d+)\b",
    r"\b(eth\d+|en[a-z]\w*\d)\b",
))
_PANIC = re.compile(r"Kernel panic - not syncing: (?P<reason>.*?)(?:\s*\]---)?\s*$")
_MCE_STATUS = re.compile(r"Machine Check(?: Exception)?: \S+ Bank \d+: (?P<status>[0-9a-f]{16})\b", re.IGNORECASE)
_EDAC_COUNT = re.compile(r"EDAC MC\d+: (\d+) [CU]E\b")
_AMD_STATUS = re.compile(r"CPU:(?P<cpu>\d+) \((?P<family>[0-9a-f]+):[0-9a-f:]+\) "
                         r"MC(?P<bank>\d+)_STATUS\[(?P<flags>[^\]]*)\]"
                         r"(?::\s*0x(?P<status>[0-9a-f]{16}))?", re.IGNORECASE)
_LINK_UP = re.compile(r"\b(?P<port>ata\d+(?:\.\d+)?): SATA link up (?P<gbps>[\d.]+) Gbps "
                      r"\(SStatus \w+ SControl (?P<sctl>[0-9A-Fa-f]+)\)")


def classify(message: str, stamp: str | None = None) -> KernelEvent | None:
    """The event one kernel message states, if any (without the context of the lines around it)."""
    for rule in _RULES:
        if rule.pattern.search(message):
            return _refine(KernelEvent(rule.kind, rule.severity, message, stamp, subject=_subject(message)))
    return None


def _subject(message: str) -> str | None:
    for pattern in _SUBJECTS:
        found = pattern.search(message)
        if found:
            return found.group(1)
    return None


def _refine(event: KernelEvent) -> KernelEvent:
    """What the rule alone cannot say: a panic's reason, a machine check's UC bit, EDAC's error count."""
    if event.kind == "panic" and (panic := _PANIC.search(event.message)):
        return replace(event, reason=panic["reason"], subject=panic["reason"])
    if event.kind == "mce" and (amd := _AMD_STATUS.search(event.message)):
        return _amd_status(event, amd)
    if event.kind == "mce" and (status := _MCE_STATUS.search(event.message)):
        uncorrected = int(status["status"], 16) >> 61 & 1  # MCi_STATUS.UC
        return replace(event, severity="critical" if uncorrected else "warning",
                       reason="uncorrected" if uncorrected else "corrected")
    if event.kind in ("edac_ce", "edac_ue") and (count := _EDAC_COUNT.search(event.message)):
        return replace(event, count=max(1, int(count[1])))
    return event


def _amd_status(event: KernelEvent, amd: re.Match[str]) -> KernelEvent:
    """AMD's decoded bank status: UE/CE and Deferred flags (or the UC bit, 61), CECC/UECC for a DRAM ECC error."""
    flags = set(amd["flags"].split("|"))
    uncorrected = "UE" in flags or bool(amd["status"] and int(amd["status"], 16) >> 61 & 1)
    subject = f"CPU {amd['cpu']} MC{amd['bank']}"
    if flags & {"CECC", "UECC"}:  # a DRAM ECC error the memory controller saw: judged as memory, like EDAC's
        kind = "memory_uncorrected" if uncorrected or "UECC" in flags else "memory_corrected"
        return replace(event, kind=kind, severity="critical" if kind == "memory_uncorrected" else "warning",
                       subject=subject, reason="DRAM ECC")
    if uncorrected or "Deferred" in flags:
        return replace(event, severity="critical", subject=subject,
                       reason="uncorrected" if uncorrected else "deferred")
    return replace(event, severity="warning", subject=subject, reason="corrected")


# -- multi-line records and state across lines

_GHES_LINE = re.compile(r"^(?:\{(?P<seq>\d+)\})?\[Hardware Error\]:\s?(?P<body>.*)$")
_GHES_START = re.compile(r"Hardware error from APEI Generic Hardware Error Source|APEI generic hardware error status")
_GHES_SEVERITY = re.compile(r"^\s*(?:event )?severity: (?:\d+, )?(?P<sev>corrected|recoverable|fatal|info)\b")
_GHES_FIELD = re.compile(r"^\s*(?P<key>section_type|fru_text|DIMM location|device_id|error_type|physical_address"
                         r"|Error \d+, type): ?(?P<value>.*?)\s*$")
_GHES_SEVERITIES = {"corrected": "warning", "recoverable": "error", "fatal": "critical", "info": "info"}
# Zen and later (SMCA): a bank's number does not say what it is; the lines after its status do:
# "IPID: 0x0000009600050f00" (hardware id, bits 43:32; 0x96 a Unified Memory Controller) and
# "Load Store Unit Ext. Error Code: 12, ..." — a CECC/UECC flag alone is any ECC-protected array, L1 to DRAM.
_SMCA_FAMILY = 0x17
_UMC = "Unified Memory Controller"
_UMC_HWID = 0x96
_IPID = re.compile(r"\bIPID: 0x(?P<ipid>[0-9a-f]{1,16})\b", re.IGNORECASE)
_SMCA_BLOCK = re.compile(r"^\s*(?P<block>[A-Z][\w/ .-]*?) Ext\. Error Code:")


class KernelLogReader:
    """Kernel messages in, events out, in order; keeps what spans lines (GHES records, ATA link speeds).

    feed() a line (any shape) or feed_message() an already split one; call flush() at the end, or when
    no line came for a while, to get a record still open.
    """

    def __init__(self) -> None:
        self._record: list[tuple[str | None, str]] = []  # (stamp, body) of the open GHES record
        self._record_seq: str | None = None
        self._after_memory_record = False  # the last event was a GHES/AMD memory record: EDAC echoes it
        self._link_gbps: dict[str, float] = {}  # fastest link seen per ATA port (at boot, before the run)
        self._smca: KernelEvent | None = None  # a Zen ECC status line waiting for the lines naming its bank
        self._smca_block: str | None = None

    @property
    def pending(self) -> bool:
        return bool(self._record) or self._smca is not None

    def feed(self, line: str) -> list[KernelEvent]:
        split = split_prefix(line)
        return self.feed_message(*split) if split else []

    def feed_message(self, stamp: str | None, message: str) -> list[KernelEvent]:
        message = message.strip()
        ghes = _GHES_LINE.match(message)
        if ghes and self._continues_record(ghes):
            if len(self._record) < MAX_RECORD_LINES:
                self._record.append((stamp, ghes["body"]))
            return []
        if self._smca and ghes and ghes["seq"] is None and not classify(message):
            self._smca_detail(ghes["body"])  # "Error Addr:", "IPID:", "... Ext. Error Code:", "cache level:"
            return []
        events = self.flush()
        if ghes and (ghes["seq"] is not None or _GHES_START.search(ghes["body"])):
            self._record, self._record_seq = [(stamp, ghes["body"])], ghes["seq"]
            return events
        event = self._link_event(message, stamp) or classify(message, stamp)
        if event and event.kind in ("edac_ce", "edac_ue") and self._after_memory_record \
                and ("APEI location" in message or " on mc#" in message):
            # ghes_edac's copy of the GHES record just read, or amd64_edac's of the AMD decoder's DRAM ECC
            # status ("EDAC MC0: 1 CE on mc#0csrow#2channel#0 ..."): the same error, counted once
            return events
        if event and event.reason == "DRAM ECC" and (amd := _AMD_STATUS.search(message)) \
                and int(amd["family"], 16) >= _SMCA_FAMILY:
            self._smca, self._smca_block = event, None  # DRAM or a cache: the next lines say
            return events
        if event:
            self._after_memory_record = event.kind.startswith("memory_") and event.reason == "DRAM ECC"
            events.append(event)
        return events

    def flush(self) -> list[KernelEvent]:
        """The records still open (a GHES record, a Zen bank status), as events."""
        events = []
        if self._record:
            events.append(_ghes_event(self._record))
            self._record, self._record_seq = [], None
        if self._smca:
            events.append(self._smca_event())
            self._smca = None
        if events:
            self._after_memory_record = events[-1].kind.startswith("memory_")
        return events

    def _smca_detail(self, body: str) -> None:
        if block := _SMCA_BLOCK.match(body):
            self._smca_block = block["block"]
        elif (ipid := _IPID.search(body)) and self._smca_block is None:
            hwid = int(ipid["ipid"], 16) >> 32 & 0xFFF
            self._smca_block = _UMC if hwid == _UMC_HWID else f"bank with IPID hardware id {hwid:#x}"

    def _smca_event(self) -> KernelEvent:
        """A Zen ECC error: a memory error when its bank is a memory controller (or nothing says otherwise),
        else a machine check of the CPU block the kernel named (an L1/L2/L3 cache is not a DIMM)."""
        event, block = self._smca, self._smca_block
        assert event is not None
        if block is None or block.startswith(_UMC):
            return event
        uncorrected = event.kind == "memory_uncorrected"
        return replace(event, kind="mce", severity="critical" if uncorrected else "warning",
                       reason=f"{'uncorrected' if uncorrected else 'corrected'} ECC error in the {block}")

    def _continues_record(self, ghes: re.Match[str]) -> bool:
        if not self._record:
            return False
        if self._record_seq is not None:
            return ghes["seq"] == self._record_seq
        return ghes["seq"] is None and not _GHES_START.search(ghes["body"])

    def _link_event(self, message: str, stamp: str | None) -> KernelEvent | None:
        """A link up at a lower speed than the port had, or with the speed limited by the kernel (SControl SPD)."""
        link = _LINK_UP.search(message)
        if not link:
            return None
        port, gbps, limit = link["port"], float(link["gbps"]), int(link["sctl"], 16) >> 4 & 0xF
        fastest = self._link_gbps.get(port, 0.0)
        self._link_gbps[port] = max(fastest, gbps)
        if gbps < fastest or limit:
            why = f"down from {fastest:g} Gbps" if gbps < fastest else f"speed limited (SControl SPD={limit})"
            return KernelEvent("ata_link_slow", "error", f"{message} — link {why}", stamp, subject=port.split(".")[0])
        return None


def _ghes_event(lines: list[tuple[str | None, str]]) -> KernelEvent:
    """One event of an APEI/GHES record: kind from its section types, severity from its event severity."""
    severity_word, fields = "info", dict[str, str]()
    sections: list[str] = []
    for _, body in lines:
        if (sev := _GHES_SEVERITY.match(body)) and severity_word == "info":
            severity_word = sev["sev"]
        if field := _GHES_FIELD.match(body):
            if field["key"] == "section_type":
                sections.append(field["value"])
            fields.setdefault(field["key"], field["value"])
    memory = any("memory" in s for s in sections)
    pcie = any("PCIe" in s for s in sections)
    if memory:
        kind = "memory_corrected" if severity_word == "corrected" else "memory_uncorrected"
    elif pcie:
        kind = "aer_corrected" if severity_word == "corrected" else "aer_uncorrected"
    else:
        kind = "hardware_error"
    location = fields.get("DIMM location") or fields.get("fru_text") or fields.get("device_id")
    # A memory section's fru_text names the DIMM; a PCIe section's is a label ("PcieError"): its device_id is
    # the port or device at fault.
    subject = (fields.get("device_id") if pcie and not memory else None) or fields.get("fru_text") \
        or fields.get("DIMM location") or fields.get("device_id") or fields.get("physical_address")
    words = [f"APEI/GHES hardware error, event severity: {severity_word}"]
    words += [f"section_type: {', '.join(dict.fromkeys(sections))}"] if sections else []
    words += [f"{key}: {fields[key]}" for key in ("fru_text", "DIMM location", "device_id", "error_type")
              if key in fields]
    if not location and "physical_address" in fields:
        words.append(f"physical_address: {fields['physical_address']}")
    return KernelEvent(kind, _GHES_SEVERITIES[severity_word], "; ".join(words), lines[0][0], subject=subject,
                       reason=", ".join(dict.fromkeys(sections)) or None,
                       count=max(1, sum(1 for _, b in lines if re.match(r"\s*Error \d+, type", b))),
                       detail=tuple(f"[Hardware Error]: {body}" for _, body in lines))


def parse_kernel_line(line: str) -> KernelEvent | None:
    """The event of one text line of dmesg/syslog/journalctl output, if it states one (no cross-line state)."""
    reader = KernelLogReader()
    events = reader.feed(line) + reader.flush()
    return events[0] if events else None


def parse_kernel_log(text: str) -> list[KernelEvent]:
    """Every event of a kernel log in text form, in order (GHES records read whole)."""
    reader = KernelLogReader()
    events = [event for line in text.splitlines() for event in reader.feed(line)]
    return events + reader.flush()


def parse_journal_line(line: str) -> KernelEvent | None:
    """The event of one `journalctl -k -o json` record, if it states one."""
    found = journal_message(line)
    if not found:
        return None
    reader = KernelLogReader()
    events = reader.feed_message(*found) + reader.flush()
    return events[0] if events else None
