"""Kernel-log lines that mean trouble: lockups, hung tasks, machine checks, PCIe/NVMe/NIC faults.

Takes any log shape qualify meets: `dmesg` (`[  41.670135] ...`), `dmesg -T` (`[Fri Aug 29 20:09:52
2025] ...`), `dmesg -H` (`[Feb22 04:01]`, `[  +0.000001]`), syslog and `journalctl -k` short formats
(`May  7 06:45:12 host kernel: [21584690.5] ...`, any month language: `фев 12 00:48:02 kernel: ...`)
`journalctl -o short-iso`, pstore dmesg records (`<6>[ 0.1] ...`) and `journalctl -o json` records. Old and new kernel wordings are both matched (e.g. soft lockup with
and without the `watchdog:` prefix, AER `severity=Corrected` and `severity=Correctable`).

One event per line that states a fault; the detail lines around it (register dumps, call traces,
"temperature/speed normal") are not events. Severity ladder: info < warning < error < critical.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from qualify.errors import ParseError

SEVERITIES = ("info", "warning", "error", "critical")

# Timestamp/host prefixes, outermost first; what follows is the kernel's own message.
_SYSLOG = re.compile(r"^(?P<stamp>\S+\s+\d{1,2}\s+\d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*)\s+(?:(?P<host>\S+)\s+)??"
                     r"(?P<ident>[^\s:\[]+)(?:\[\d+\])?:\s?(?P<rest>.*)$")
_BRACKET = re.compile(r"^\[(?P<stamp>[^\]]*)\]\s?(?P<rest>.*)$")
_BRACKET_STAMP = re.compile(r"\s*(?:\+?\d+\.\d+|\w{3} ?\d{1,2} \d\d:\d\d(?::\d\d)?|\w{3} \w{3}\s+\d{1,2} [\d:]+ \d{4})\s*")

_LEVEL = re.compile(r"^<\d+>")  # the log level pstore's dmesg records keep: "<6>[    0.1] ..."
_JOURNAL_HOST = re.compile(r"^\S+ kernel: ")


@dataclass(frozen=True)
class KernelEvent:
    kind: str          # soft_lockup, hung_task, mce, aer_corrected, nvme_timeout, ... (see _RULES)
    severity: str      # one of SEVERITIES
    message: str       # the kernel's message, without timestamp/host prefixes
    stamp: str | None  # the timestamp as the log printed it (monotonic seconds, date, relative)


@dataclass(frozen=True)
class _Rule:
    kind: str
    severity: str
    pattern: re.Pattern[str]


def _rule(kind: str, severity: str, pattern: str) -> _Rule:
    return _Rule(kind, severity, re.compile(pattern, re.IGNORECASE))


# First match wins: specific wordings before the generic BUG/WARNING/Hardware Error ones.
_RULES: tuple[_Rule, ...] = (
    # "watchdog: BUG: soft lockup - CPU#0 stuck for 23s!" (>= 4.x) / "BUG: soft lockup - CPU#10 stuck" (3.x)
    _rule("soft_lockup", "critical", r"BUG: soft lockup - CPU#\d+ stuck for \d+s"),
    # "Watchdog detected hard LOCKUP on cpu 3" / "NMI watchdog: hard LOCKUP"
    _rule("hard_lockup", "critical", r"hard LOCKUP"),
    # "rcu: INFO: rcu_preempt self-detected stall on CPU", "INFO: rcu_sched detected stalls on CPUs/tasks"
    _rule("rcu_stall", "critical", r"\brcu_\w+ (?:self-)?detected stalls?\b"),
    _rule("hung_task", "error", r"INFO: task \S+ blocked for more than \d+ seconds"),
    _rule("panic", "critical", r"Kernel panic - not syncing"),
    # Thermal events come through the mce driver on many kernels ("mce: CPU2: Core temperature ...").
    _rule("thermal_throttle", "warning", r"CPU\d+: (?:Core|Package) temperature above threshold, cpu clock throttled"),
    _rule("mce", "critical", r"Machine Check Exception|Fatal machine check"),
    # "mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 4: a600000000020408" (the record itself)
    _rule("mce", "error", r"\[Hardware Error\]: CPU \d+: Machine Check"),
    # Only says records are waiting for mcelog/rasdaemon (often corrected errors, or throttling on old kernels).
    _rule("mce", "warning", r"Machine check events logged"),
    # "EDAC MC1: 262 CE memory read error on ...", "EDAC MC0: 4 CE error on CPU#0Channel#2_DIMM#0"
    _rule("edac_ue", "critical", r"EDAC MC\d+: \d+ UE\b"),
    _rule("edac_ce", "warning", r"EDAC MC\d+: \d+ CE\b"),
    # AER: one event per "PCIe Bus Error" line, not per "error received" header, so nothing counts twice.
    _rule("aer_uncorrected", "critical", r"PCIe Bus Error: severity=Uncorrect\w+ \(Fatal\)"),
    _rule("aer_uncorrected", "error", r"PCIe Bus Error: severity=Uncorrect"),
    _rule("aer_corrected", "warning", r"PCIe Bus Error: severity=Correct(?:ed|able)"),
    # "NETDEV WATCHDOG: eth2 (igb): transmit queue 5 timed out" / "eth4: NETDEV WATCHDOG: CPU: 3: transmit queue 0 timed out 5010 ms"
    _rule("netdev_watchdog", "error", r"NETDEV WATCHDOG: .*transmit queue \d+ timed out"),
    _rule("nvme_removed", "critical", r"nvme\d+: Removing after probe failure|nvme\d+: controller is down"),
    _rule("nvme_reset", "error", r"nvme\d+: (?:Device not ready; aborting reset|resetting controller|"
                                 r"Failure status: |failed to set APST)"),
    _rule("nvme_timeout", "error", r"nvme\d+: I/O \d+ (?:\(\w+\) )?QID \d+ timeout"),
    _rule("fs_readonly", "critical", r"Remounting filesystem read-only|forced readonly|"
                                     r"Shutting down filesystem|remounting read-only"),
    _rule("io_error", "error", r"\bI/O error, dev \S+|Buffer I/O error on dev"),
    _rule("oops", "critical", r"\bOops: |general protection fault|BUG: unable to handle|"
                              r"BUG: kernel NULL pointer dereference|kernel BUG at "),
    _rule("bug", "error", r"\bBUG: "),
    # "WARNING: CPU: 6 PID: 0 at net/sched/sch_generic.c:264 dev_watchdog+0x154/0x20a()"
    _rule("warning", "warning", r"^WARNING: (?:CPU: \d+ PID: \d+ at|at )"),
)

KINDS = tuple(dict.fromkeys(r.kind for r in _RULES))


def split_prefix(line: str) -> tuple[str | None, str] | None:
    """(timestamp, message) of one log line; None for a syslog line of another program than the kernel."""
    line = _LEVEL.sub("", line.rstrip("\r\n"), count=1)
    stamp = None
    syslog = _SYSLOG.match(line)
    if syslog:
        if syslog["ident"] != "kernel":
            return None
        stamp, line = syslog["stamp"], syslog["rest"]
    bracket = _BRACKET.match(line.lstrip())
    if bracket and _BRACKET_STAMP.fullmatch(bracket["stamp"]):
        stamp, line = bracket["stamp"].strip(), bracket["rest"]
        line = _JOURNAL_HOST.sub("", line, count=1)  # journalctl -o short-monotonic: "[  1.2] host kernel: ..."
    return stamp, line.strip()


def classify(message: str, stamp: str | None = None) -> KernelEvent | None:
    """The event a kernel message states, if any."""
    for rule in _RULES:
        if rule.pattern.search(message):
            return KernelEvent(rule.kind, rule.severity, message, stamp)
    return None


def parse_kernel_line(line: str) -> KernelEvent | None:
    """The event of one text line of dmesg/syslog/journalctl output, if it states one."""
    split = split_prefix(line)
    return classify(split[1], split[0]) if split else None


def parse_kernel_log(text: str) -> list[KernelEvent]:
    """Every event of a kernel log in text form, in order."""
    return [event for line in text.splitlines() if (event := parse_kernel_line(line))]


def journal_message(line: str) -> tuple[str | None, str] | None:
    """(realtime microseconds, MESSAGE) of one `journalctl -o json` record; None for a record without one.

    journald stores a MESSAGE that is not valid UTF-8 as an array of bytes.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ParseError("journalctl -o json", f"not a JSON record ({exc.msg}): {line[:80]!r}") from None
    if not isinstance(record, dict):
        raise ParseError("journalctl -o json", f"expected one JSON object per line, got {line[:80]!r}")
    message = record.get("MESSAGE")
    if isinstance(message, list):
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    if not isinstance(message, str):
        return None
    return record.get("__REALTIME_TIMESTAMP"), message


def parse_journal_line(line: str) -> KernelEvent | None:
    """The event of one `journalctl -k -o json` record, if it states one."""
    found = journal_message(line)
    return classify(found[1].strip(), found[0]) if found else None
