"""Each node against its own history: a measurement that moved beyond its noise band is a finding.

ReFrame compares performance with references and tolerances, and with stored earlier sessions; here
the reference is the node's own earlier runs of the same profile and checks. The band is the spread
of those runs (mean ± `sigmas` standard deviations), never narrower than `min_band` of the mean (so
three identical runs do not make every later wobble a regression). Fewer than `min_runs` earlier runs:
said, not judged.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qualify.findings import better_direction

MIN_RUNS = 3


@dataclass(frozen=True)
class Shift:
    check: str
    measurement: str
    subject: str | None
    value: float
    mean: float
    band: float                # half-width of the noise band, same unit as the value
    runs: int                  # earlier runs the band comes from
    ratio: float               # (value - mean) / mean
    worse: bool | None         # None: no limit says which way is better
    unit: str
    sentence: str


def _key(verdict: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Runs are comparable when they used the same profile files and ran the same checks."""
    return (tuple(verdict.get("profile_sources") or ()),
            tuple(sorted(c.get("name", "") for c in verdict.get("checks") or [])))


def _values(verdict: Mapping[str, Any]) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    out = {}
    for check in verdict.get("checks") or []:
        for m in check.get("measurements") or []:
            value = m.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[(check.get("name", "?"), m.get("name", "?"), m.get("subject"))] = m
    return out


def comparable_history(current: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The earlier finished runs of the same node with the same profile and checks, oldest first."""
    key = _key(current)
    return [v for v in earlier if v.get("finished") and v.get("node") == current.get("node") and _key(v) == key]


def shifts(current: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]], sigmas: float = 3.0,
           min_band: float = 0.05, min_runs: int = MIN_RUNS, last: int = 10) -> tuple[list[Shift], list[str]]:
    """(measurements outside their band, notes); `earlier` oldest first, the newest `last` are used."""
    history = comparable_history(current, earlier)[-last:]
    notes: list[str] = []
    if len(history) < min_runs:
        notes.append(f"history: {len(history)} earlier comparable run(s) of {current.get('node')}; at least "
                     f"{min_runs} are needed to know its noise band — not judged")
        return [], notes
    past = [_values(v) for v in history]
    found = []
    for key, m in sorted(_values(current).items(), key=lambda kv: str(kv[0])):
        series = [float(p[key]["value"]) for p in past if key in p]
        if len(series) < min_runs:
            continue
        mean = statistics.fmean(series)
        if mean == 0:
            continue
        spread = statistics.stdev(series) if len(series) > 1 else 0.0
        band = max(sigmas * spread, min_band * abs(mean))
        value = float(m["value"])
        if abs(value - mean) <= band:
            continue
        ratio = (value - mean) / abs(mean)
        worse = _worse(m, ratio)
        check, name, subject = key
        where = f" {subject}" if subject else ""
        sentence = (f"{check} {name}{where} {abs(ratio):.0%} {'below' if ratio < 0 else 'above'} the node's last "
                    f"{len(series)} runs ({value:.4g} vs {mean:.4g}{' ' + m.get('unit', '') if m.get('unit') else ''}"
                    f", band ±{band:.3g})")
        found.append(Shift(check, name, subject, value, mean, band, len(series), round(ratio, 4), worse,
                           m.get("unit", ""), sentence))
    return found, notes


def _worse(m: Mapping[str, Any], ratio: float) -> bool | None:
    """A fall of a figure where larger is better (or a rise where smaller is) is a regression."""
    direction = better_direction(m.get("name", ""), m.get("low"), m.get("high"))
    return None if direction == 0 else ratio * direction < 0


def as_data(items: Sequence[Shift]) -> list[dict[str, Any]]:
    return [asdict(i) for i in items]
