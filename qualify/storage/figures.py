"""A drive's judged figures as data, so a pure judge can return them and the buyer's one-line verdict
("accept" / "reject: <first reason>" / "unknown: <what could not be checked>") can be made from them
before they are recorded with findings.measure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from qualify import findings as measured
from qualify.findings import Findings, format_value, limit_text

_WORDS = {"celsius", "percent", "total", "hours", "minutes", "gts", "lanes", "ratio", "count"}


@dataclass(frozen=True)
class Figure(measured.Figure):
    """findings' Figure, named for a drive: `what` drops the unit words, `short` is the buyer's reason."""

    @property
    def what(self) -> str:
        return self.text or " ".join(w for w in self.name.split("_") if w not in _WORDS)

    def short(self) -> str:
        """The reason as the buyer's line gives it: what, the value, the limit."""
        limits = limit_text(self.low, self.high, self.unit)
        if self.outcome == "unknown":
            return f"{self.what} could not be read"
        return f"{self.what} {format_value(self.value, self.unit)}" + (f" ({limits})" if limits else "")


@dataclass
class DriveJudgement:
    subject: str
    model: str | None = None
    figures: list[Figure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        """accept / reject: <first failed figure> / unknown: <every figure that could not be read>."""
        failed = [f for f in self.figures if f.outcome == "failed"]
        if failed:
            return f"reject: {failed[0].short()}"
        unknown = [f.what for f in self.figures if f.outcome == "unknown"]
        return f"unknown: {', '.join(unknown)} could not be checked" if unknown else "accept"

    def record(self, findings: Findings, verdict_name: str) -> None:
        """The verdict line first (the report shows it first), then every figure, warning and note."""
        findings.measure(verdict_name, self.line, subject=self.subject, text="buyer's verdict")
        for note in self.notes:
            findings.note(f"{self.subject}: {note}")
        for f in self.figures:
            findings.record(replace(f, text=f.what), self.subject)
        for warning in self.warnings:
            findings.warning(f"{self.subject}: {warning}")
