"""The measurements of runs lined up for pages that set runs side by side (compare, trend).

They read verdict.json's `checks[].measurements` only, so they know no check: whatever a check
measures (name, value, unit, outcome, subject) becomes a row or a column of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qualify.findings import format_value

Key = tuple[str, str, str]  # check, measurement name, subject ("" where the check measures one thing)
SENTENCES_ONLY = ("warning", "problem")  # findings.warning/problem without a figure of their own: no row


@dataclass(frozen=True)
class Figure:
    check: str
    name: str
    subject: str
    value: Any
    unit: str
    outcome: str
    sentence: str
    low: float | None = None
    high: float | None = None

    @property
    def key(self) -> Key:
        return self.check, self.name, self.subject

    @property
    def text(self) -> str:
        return format_value(self.value, self.unit)

    @property
    def numeric(self) -> bool:
        return isinstance(self.value, (int, float)) and not isinstance(self.value, bool)


def run_figures(verdict: dict[str, Any]) -> dict[Key, Figure]:
    """Every measurement of the run by (check, name, subject); a repeated key keeps the last one."""
    found: dict[Key, Figure] = {}
    for check in verdict.get("checks", []):
        for m in check.get("measurements") or []:
            figure = Figure(check["name"], m["name"], m.get("subject") or "", m.get("value"), m.get("unit") or "",
                            m.get("outcome", "info"), m.get("sentence", ""), _number(m.get("low")),
                            _number(m.get("high")))
            found[figure.key] = figure
    return found


def keys_of(runs: Iterable[dict[Key, Figure]], numeric_only: bool = False) -> list[Key]:
    """The keys of all runs in first-seen order (a figure only some runs have still gets its row)."""
    keys: dict[Key, None] = {}
    for figures in runs:
        keys.update((key, None) for key, figure in figures.items()
                    if figure.name not in SENTENCES_ONLY and (figure.numeric or not numeric_only))
    return list(keys)


def title(key: Key, unit: str = "") -> str:
    check, name, subject = key
    return f"{check}: {name}" + (f" [{subject}]" if subject else "") + (f" ({unit})" if unit else "")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
