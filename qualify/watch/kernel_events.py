"""Kernel-log events of a run, folded and judged (pure: the watcher feeds them with its clock).

Folding: the lines of one fault — same kind and subject (device, DIMM, CPU, page), or the same message
with its numbers blanked when there is no subject — become one event with a count and the first and
last time. A fold is written once its fault has been quiet for the profile's `fold_window`, at the latest
FOLD_MAX_S after its first line (a storm still shows up while it lasts), and when the watch ends. At
most MAX_OPEN_FOLDS are open; the oldest is written when another fault starts (bounded memory).

Judging (docs/kernel-log.md says why): a fold fails the run when its severity is one of the profile's
`fail_on` severities, except corrected memory errors (GHES corrected, EDAC CE), which fail when the
run's total of them exceeds `corrected_memory_errors` (0: any that appears during the run) — the
EDAC-counter rule; errors logged before the run are reported, not judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.parsers.kernel_log import SEVERITIES, KernelEvent
from qualify.profile import KernelLogSettings

FOLD_MAX_S = 60.0
MAX_OPEN_FOLDS = 256
CORRECTED_MEMORY = frozenset({"memory_corrected", "edac_ce"})
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


def fold_key(event: KernelEvent) -> tuple[str, str]:
    return event.kind, event.subject or _NUMBERS.sub("#", event.message)[:160]


@dataclass
class Fold:
    first: KernelEvent
    first_at: float  # monotonic
    first_t: str     # UTC when the first line was seen
    last: KernelEvent = None  # type: ignore[assignment]
    worst: KernelEvent = None  # type: ignore[assignment]
    last_at: float = 0.0
    last_t: str = ""
    lines: int = 0
    errors: int = 0

    def add(self, event: KernelEvent, now: float, utc: str) -> None:
        if self.worst is None or SEVERITIES.index(event.severity) > SEVERITIES.index(self.worst.severity):
            self.worst = event
        self.last, self.last_at, self.last_t = event, now, utc
        self.lines += 1
        self.errors += event.count

    @property
    def kind(self) -> str:
        return self.first.kind

    @property
    def severity(self) -> str:
        return self.worst.severity


class KernelFolds:
    def __init__(self, quiet_s: float):
        self.quiet_s = quiet_s
        self._open: dict[tuple[str, str], Fold] = {}  # in order of their first line

    def add(self, event: KernelEvent, now: float, utc: str) -> list[Fold]:
        """Fold one event in; returns the folds written out to stay within MAX_OPEN_FOLDS."""
        key = fold_key(event)
        fold = self._open.get(key)
        evicted: list[Fold] = []
        if fold is None:
            if len(self._open) >= MAX_OPEN_FOLDS:
                evicted.append(self._open.pop(next(iter(self._open))))
            fold = self._open[key] = Fold(event, now, utc)
        fold.add(event, now, utc)
        return evicted

    def due(self, now: float) -> list[Fold]:
        """Folds whose fault went quiet, or that have been open for FOLD_MAX_S."""
        keys = [k for k, f in self._open.items() if now - f.last_at >= self.quiet_s or now - f.first_at >= FOLD_MAX_S]
        return [self._open.pop(k) for k in keys]

    def close_all(self) -> list[Fold]:
        folds, self._open = list(self._open.values()), {}
        return folds


class KernelJudge:
    """Whether a fold fails the run, and what is left to say about the ones only counted."""

    def __init__(self, settings: KernelLogSettings):
        self.settings = settings
        self.corrected_memory = 0  # corrected memory errors reported during the run so far
        self.written: dict[str, int] = {}  # events written per kind
        self.failing_kinds: set[str] = set()

    def fails_run(self, fold: Fold) -> bool:
        if fold.kind in CORRECTED_MEMORY:
            self.corrected_memory += fold.errors
            return self.corrected_memory > self.settings.corrected_memory_errors
        return fold.severity in self.settings.fail_on

    def to_write(self, fold: Fold, fails: bool) -> bool:
        """Beyond max_events_per_kind a kind is only counted — unless this is its first failing event."""
        if self.written.get(fold.kind, 0) >= self.settings.max_events_per_kind and \
                not (fails and fold.kind not in self.failing_kinds):
            return False
        self.written[fold.kind] = self.written.get(fold.kind, 0) + 1
        if fails:
            self.failing_kinds.add(fold.kind)
        return True


def describe(fold: Fold) -> str:
    """The event's sentence: the fault's most severe line, and how often it repeated."""
    text = fold.worst.message
    if fold.kind in CORRECTED_MEMORY:
        text += f" ({fold.errors} corrected error(s) during the run)" if fold.errors > 1 else ""
    if fold.lines > 1:
        span = f", first {fold.first.stamp}, last {fold.last.stamp}" if fold.first.stamp and fold.last.stamp else ""
        text += f" [{fold.lines} lines of this fault{span}]"
    return text


def record_fields(fold: Fold) -> dict:
    fields: dict[str, object] = {"count": fold.lines, "stamp": fold.first.stamp, "first_t": fold.first_t}
    if fold.lines > 1:
        fields.update(last_stamp=fold.last.stamp, last_t=fold.last_t)
    if fold.errors != fold.lines:
        fields["errors"] = fold.errors
    for name in ("subject", "reason"):
        if value := getattr(fold.worst, name):
            fields[name] = value
    if fold.worst.detail:
        fields["detail"] = list(fold.worst.detail)
    return fields


def before_run_summary(events: list[KernelEvent]) -> tuple[dict[str, int], str]:
    """Counts by kind and a sentence for the faults the log states before the run (reported, not judged)."""
    counts: dict[str, int] = {}
    subjects: dict[str, list[str]] = {}
    for event in events:
        counts[event.kind] = counts.get(event.kind, 0) + event.count
        if event.subject and event.subject not in subjects.setdefault(event.kind, []) and len(subjects[event.kind]) < 3:
            subjects[event.kind].append(event.subject)
    parts = [f"{n} {kind}" + (f" ({', '.join(subjects[kind])})" if subjects.get(kind) else "")
             for kind, n in counts.items()]
    return counts, ", ".join(parts)
