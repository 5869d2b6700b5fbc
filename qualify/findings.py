"""What a check found: measurements (value, unit, limits, outcome), sentences, and what it could not qualify.

The measurement contract (read by the verdict, the report, the Prometheus export, compare, cluster and
trend pages — none of them knows a check's keys):

    findings.measure("max_package_temperature_celsius", 93.4, unit="°C", high=95,
                     because="Intel parts throttle at 100 °C; 95 leaves headroom")

declares a figure with its unit and limits and decides it: `passed` inside the limits, `failed` outside
(`warn=True`: `warning` instead, the check still passes), `info` without limits, `unknown` when the value
could not be read — an unknown judged figure is said in the reasons and listed as not qualified, never
passed over. Names carry their unit as node_exporter's do (`_celsius`, `_watts`, `_bytes_per_second`,
`_ratio`, `_seconds`, `_iops`); `subject` names what was measured when a check measures several things
(a drive serial, a link direction, a CPU): one row per subject. A pure judge may return the same
declaration as data, a `Figure`, which the check then records with `findings.record(figure, subject)`.

`note` records a sentence, `problem` a failure without a figure, `skip` ends the check as not applicable
(`how` says what would make it apply), `not_qualified` lists a part left untested with how to test it.
Checks decide; the plugin only records.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, NoReturn

import pytest

Outcome = Literal["passed", "failed", "warning", "info", "unknown"]
Value = float | int | str | bool | None


@dataclass(frozen=True)
class _Figure:
    name: str
    value: Value
    unit: str = ""
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Figure(_Figure):
    """A measurement declared and not yet recorded: what a pure judge can return (`Findings.record`)."""

    text: str | None = None
    detail: str = ""
    because: str | None = None
    warn: bool = False

    @property
    def outcome(self) -> Outcome:
        return decide(self.value, self.low, self.high, self.warn)


@dataclass(frozen=True)
class Measurement(_Figure):
    """A recorded measurement: a row of verdict.json's `measurements`."""

    outcome: Outcome = "info"
    subject: str | None = None
    because: str | None = None
    sentence: str = ""

    def as_record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("value", "low", "high")}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Measurement:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in fields})


def decide(value: Value, low: float | None, high: float | None, warn: bool = False) -> Outcome:
    """passed/failed (or warning) against the limits; info without limits; unknown without a number."""
    judged = low is not None or high is not None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown" if judged else "info"
    if not judged or isinstance(value, str):
        return "info"
    inside = (low is None or value >= low) and (high is None or value <= high)
    return "passed" if inside else ("warning" if warn else "failed")


# units shown with a prefix: rates decimal (as iperf3, ethtool and fio print them), sizes binary (as free and lsblk)
_SCALED = {"bit/s": (1000, ("", "k", "M", "G", "T")), "B/s": (1000, ("", "k", "M", "G", "T")),
           "B": (1024, ("", "Ki", "Mi", "Gi", "Ti", "Pi"))}


_HIGHER_IS_BETTER = ("iops", "bytes_per_second", "bits_per_second", "ops_per_second", "mhz", "ratio_of_nominal")
_LOWER_IS_BETTER = ("seconds", "celsius", "watts", "errors", "percent_used")


def better_direction(name: str, low: float | None = None, high: float | None = None) -> int:
    """+1 when a larger value is better, -1 when a smaller one is, 0 when nothing says.

    A minimum alone means larger is better, a maximum alone smaller; otherwise the unit in the name.
    """
    if low is not None and high is None:
        return 1
    if high is not None and low is None:
        return -1
    if name.endswith(_HIGHER_IS_BETTER):
        return 1
    if name.endswith(_LOWER_IS_BETTER):
        return -1
    return 0


def format_value(value: Value, unit: str = "") -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "hex" and isinstance(value, int):  # a revision: 0x435
        return hex(value)
    if unit in _SCALED and isinstance(value, (int, float)) and abs(value) >= 1000:
        step, prefixes = _SCALED[unit]
        power = 0
        while abs(value) >= step and power < len(prefixes) - 1:
            value, power = value / step, power + 1
        text = f"{value:.3g}" if abs(value) < 99.95 else f"{value:.0f}"
        return f"{text} {prefixes[power]}{unit}"
    if isinstance(value, float):
        if unit in ("%",):
            text = f"{value:.1f}"
        elif value != 0 and abs(value) < 0.01:
            text = f"{value:.3g}"
        elif abs(value) >= 1000:
            text = f"{value:,.0f}"
        else:
            text = f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}".removesuffix(".0")
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "°C") else f"{text} {unit}"


def limit_text(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and low == high:
        return f"expected {format_value(low, unit)}"
    if low is not None and high is not None:
        return f"limits {format_value(low, unit)}..{format_value(high, unit)}"
    if high is not None:
        return f"limit ≤ {format_value(high, unit)}"
    if low is not None:
        return f"minimum {format_value(low, unit)}"
    return ""


def _label(name: str) -> str:
    """max_package_temperature_celsius -> max package temperature (the sentence's subject)."""
    words = name.split("_")
    units = {"celsius", "watts", "seconds", "ratio", "percent", "bytes", "per", "second", "iops", "mhz", "hours",
             "bits", "total", "rpm", "mib", "gib", "count", "volts", "dbm", "milliwatts", "ms", "us", "mts"}
    while len(words) > 1 and words[-1] in units:
        words.pop()
    return " ".join(words)


class Findings:
    def __init__(self, name: str):
        self.name = name
        self.reasons: list[str] = []
        self.problems: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.measurements: list[Measurement] = []
        self.not_qualified_parts: list[dict[str, str]] = []

    # -- figures

    def measure(self, name: str, value: Value, *, unit: str = "", low: float | None = None,
                high: float | None = None, subject: str | None = None, because: str | None = None,
                warn: bool = False, text: str | None = None, detail: str = "") -> Measurement:
        """Record a figure and decide it against its limits; the sentence is made from the same data.

        text: what the figure is, for the sentence (default: the name without its unit words);
        detail: what follows the value in the sentence (where, when, the likely cause).
        """
        return self.record(Figure(name, value, unit, low, high, text, detail, because, warn), subject)

    def record(self, figure: Figure, subject: str | None = None) -> Measurement:
        """`measure` of a figure a judge declared."""
        name, unit, low, high = figure.name, figure.unit, figure.low, figure.high
        value = None if isinstance(figure.value, float) and math.isnan(figure.value) else figure.value
        because, detail = figure.because, figure.detail
        outcome = decide(value, low, high, figure.warn)
        what = figure.text or _label(name)
        if subject:
            what = f"{subject}: {what}"
        limits = limit_text(low, high, unit)
        if isinstance(value, bool) and (low is not None or high is not None):  # a yes/no fact with an expectation
            limits = f"expected {'yes' if (low or 0) >= 1 else 'no'}"
        if outcome == "unknown":
            sentence = f"{what} could not be read{': ' + detail if detail else ''} ({limits}: not judged)"
        else:
            sentence = f"{what} {format_value(value, unit)}"
            if detail:
                sentence += f" {detail}"
            if limits:
                sentence += f" ({limits})"
            if outcome == "warning":
                sentence = f"warning: {sentence}"
        if because and outcome in ("failed", "warning"):
            sentence += f" — {because}"
        m = Measurement(name, value, unit, low, high, outcome, subject, because, sentence)
        self.measurements.append(m)
        if subject:
            self.metrics.setdefault(name, {})
            if isinstance(self.metrics[name], dict):
                self.metrics[name][subject] = value
        else:
            self.metrics[name] = value
        self.reasons.append(sentence)
        if outcome == "failed":
            self.problems.append(sentence)
        elif outcome == "unknown":
            self.not_qualified(sentence, f"make {what} readable on the node, or drop its limit from the profile")
        return m

    def metric(self, name: str, value: Any) -> None:
        """Context kept in verdict.json's `metrics` that is no figure to judge (a sensor's name, a list)."""
        self.metrics[name] = value

    # -- sentences

    def note(self, sentence: str) -> None:
        self.reasons.append(sentence)

    def warning(self, sentence: str) -> None:
        """Worth the owner's attention, does not fail the check."""
        self.measurements.append(Measurement("warning", None, outcome="warning", sentence=sentence))
        self.reasons.append(f"warning: {sentence}")

    def problem(self, sentence: str, name: str = "problem", subject: str | None = None) -> None:
        """Something the node must fix that has no figure of its own; the check fails."""
        self.measurements.append(Measurement(name, None, outcome="failed", subject=subject, sentence=sentence))
        self.problems.append(sentence)
        self.reasons.append(sentence)

    # -- what was not tested

    def not_qualified(self, reason: str, how: str) -> None:
        """A part of this check that was not tested, and the step that would test it."""
        self.not_qualified_parts.append({"check": self.name, "reason": reason, "how": how})

    def skip(self, sentence: str, how: str = "") -> NoReturn:
        """The check cannot apply to this node; says why (and, with `how`, what would make it apply)."""
        self.reasons.append(sentence)
        if how:
            self.not_qualified_parts.append({"check": self.name, "reason": sentence, "how": how})
        pytest.skip(sentence)

    @property
    def failed(self) -> bool:
        return bool(self.problems)
