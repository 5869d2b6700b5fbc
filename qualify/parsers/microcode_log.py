"""Microcode lines of a kernel log: was microcode loaded early, from which revision to which.

Works on any log shape (dmesg, dmesg -T, journalctl, syslog): each wording is searched for
anywhere in the line, so the timestamp/host prefix does not matter. Pass the log of one boot
(`journalctl -k -b 0`, `dmesg`): when several boots are mixed, later lines win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEX = r"(0x[0-9a-f]+)"


def _wording(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("HEX", _HEX), re.IGNORECASE)


# Early loading, by kernel generation:
#   3.x:        "CPU0 microcode updated early to revision 0x1c, date = ..."
#   4.x-6.3:    "microcode: microcode updated early to revision 0x42c, date = ..." (Intel)
#               "microcode: microcode updated early to new patch_level=0x0800820d" (AMD)
#   6.4-6.6:    "microcode: updated early: 0x42a -> 0x42c, date = ..."
#   6.7+:       "microcode: Current revision: 0x1a" then "microcode: Updated early from: 0xe"
_EARLY_TO = _wording(r"microcode updated early to (?:new patch_level=|revision )HEX")
_EARLY_ARROW = _wording(r"microcode: updated early: HEX -> HEX")
_EARLY_FROM = _wording(r"microcode: updated early from: HEX")
_CURRENT = _wording(r"microcode: current revision: HEX")
# Intel, at driver start: per CPU before 4.16 ("CPU3 sig=..."), once for the boot CPU after.
_SIGNATURE = _wording(r"microcode: (?:CPU(\d+):? )?sig=HEX, pf=HEX, revision=HEX")
# AMD before 6.7, per CPU. ("CPU0: update failed for patch_level=..." must not match.)
_PATCH_LEVEL = _wording(r"microcode: CPU(\d+): patch_level=HEX")
# Late loading: Intel per CPU/once, AMD per CPU, then the summaries of 5.x-6.6 and 6.7+.
_LATE = _wording(r"microcode: (?:CPU\d+:? )?(?:updated to revision |new patch_level=)HEX")
_RELOAD = _wording(r"microcode: (?:reload (?:completed|succeeded), microcode )?revision: HEX(?: -> HEX)?")


@dataclass(frozen=True)
class MicrocodeLog:
    """What the kernel said about microcode; None/empty where it said nothing."""

    early_updated: bool
    early_from: int | None  # revision before the early update, when the kernel prints it
    early_to: int | None  # revision after the early update
    current_revision: int | None  # "Current revision" (6.7+) or the boot CPU's "sig=, pf=, revision="
    late_updates: list[int]  # revisions loaded late, distinct, in log order
    cpu_revisions: dict[int, int]  # per-CPU lines of older kernels, CPU number -> revision
    cpu_signatures: dict[int, tuple[int, int]]  # Intel per-CPU lines: CPU number -> (signature, pf)
    lines: list[str]  # the log lines the values came from, verbatim


@dataclass
class _Collected:
    early_from: int | None = None
    early_to: int | None = None
    early_from_current: bool = False  # 6.7+: the revision after the early update is "Current revision"
    current_revision: int | None = None
    late_updates: list[int] = field(default_factory=list)
    cpu_revisions: dict[int, int] = field(default_factory=dict)
    cpu_signatures: dict[int, tuple[int, int]] = field(default_factory=dict)

    def take(self, line: str) -> bool:
        """Record what a line says; False when it is not a microcode line we know."""
        if m := _EARLY_TO.search(line):
            self.early_to = _hex(m[1])
        elif m := _EARLY_ARROW.search(line):
            self.early_from, self.early_to = _hex(m[1]), _hex(m[2])
        elif m := _EARLY_FROM.search(line):
            self.early_from, self.early_from_current = _hex(m[1]), True
        elif m := _CURRENT.search(line):
            self.current_revision = _hex(m[1])
        elif m := _SIGNATURE.search(line):
            self._signature(m[1], _hex(m[2]), _hex(m[3]), _hex(m[4]))
        elif m := _PATCH_LEVEL.search(line):
            self.cpu_revisions[int(m[1])] = _hex(m[2])
        elif m := _LATE.search(line):
            self._late(_hex(m[1]))
        elif m := _RELOAD.search(line):
            self._late(_hex(m[2] or m[1]))
        else:
            return False
        return True

    def _signature(self, cpu: str | None, signature: int, pf: int, revision: int) -> None:
        if cpu is None:
            self.current_revision = revision
        else:
            self.cpu_revisions[int(cpu)] = revision
            self.cpu_signatures[int(cpu)] = (signature, pf)

    def _late(self, revision: int) -> None:
        if revision not in self.late_updates:  # per-CPU lines repeat the same revision
            self.late_updates.append(revision)


def _hex(text: str) -> int:
    return int(text, 16)


def parse_microcode_log(text: str) -> MicrocodeLog:
    """Microcode facts of a kernel log; lines about anything else are ignored."""
    found = _Collected()
    lines = [line for line in text.splitlines() if found.take(line)]
    early_to = found.current_revision if found.early_from_current else found.early_to
    return MicrocodeLog(
        early_updated=found.early_to is not None or found.early_from is not None,
        early_from=found.early_from,
        early_to=early_to,
        current_revision=found.current_revision,
        late_updates=found.late_updates,
        cpu_revisions=found.cpu_revisions,
        cpu_signatures=found.cpu_signatures,
        lines=lines,
    )
