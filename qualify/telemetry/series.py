"""Stored telemetry as time series: what the thermal check, its plots and the comparison read.

Series names are `<kind>:<source>`: temp:coretemp/Package id 0, temp:nvme/Composite, zone:acpitz,
fan:nct6798/fan1, power:amdgpu/power1, rapl:package-0, freq:cpu3, throttle:core4,
throttle:package0, util:cpu, load:1m. Times are seconds from the first sample (node clock).

Each check samples into a stream of its own (`stream_for("thermal")` -> samples/telemetry-thermal.jsonl),
so a check's peak, idle power and plot span only its own window; runs stored before that have one shared
samples/telemetry.jsonl, read instead when a check's own stream is absent.

Readings no sensor can give are dropped on loading (NaN, with a count and the reason in `dropped`): a
temperature outside -40..150 °C, and a power above twice the highest power limit (RAPL
constraint_*_power_limit_uw, from the sampler's header) or above 2 kW where no limit is known — a
counter glitch, not a CPU.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qualify.store import read_samples
from qualify.telemetry.stream import STREAM, stream_for

# The sensor that stands for "the CPU package", best first.
# k10temp's temp1 is Tctl; kernels/lm-sensors that give it no label show "temp1" (EPYC 7252 seen so)
_PACKAGE_PATTERNS = (r"temp:coretemp[^/]*/Package id \d+", r"temp:k10temp[^/]*/Tctl", r"temp:k10temp[^/]*/Tdie",
                     r"temp:k10temp[^/]*/temp1",
                     r"zone:x86_pkg_temp.*", r"temp:zenpower[^/]*/Tdie", r"temp:cpu_thermal.*")
_CORE_PATTERN = re.compile(r"temp:(coretemp[^/]*/Core \d+|k10temp[^/]*/Tccd\d+)")
_NOT_CPU_ZONE = re.compile(r"zone:(iwlwifi|pch_|INT3400)")
TEMP_RANGE_C = (-40.0, 150.0)   # beyond any silicon sensor's range: a bad read (0xFFFF, 255.5, -273)
POWER_LIMIT_FACTOR = 2.0        # a package above twice its highest power limit is a counter glitch
NO_LIMIT_MAX_W = 2000.0         # ... and above 2 kW where the node states no limit
# how `combined` folds several series into one, ignoring the NaNs of series not read at a sample
_REDUCERS: dict[str, Callable[..., np.ndarray]] = {"min": np.nanmin, "max": np.nanmax, "sum": np.nansum,
                                                   "mean": np.nanmean}


def package_sensors(names: Iterable[str]) -> list[str]:
    """Of these series, the CPU package sensor(s); the cores, else the thermal zones that may be the CPU's
    (not a Wi-Fi card's, the chipset's or Intel's INT3400 policy zone); [] when none is the CPU's."""
    names = list(names)
    for pattern in _PACKAGE_PATTERNS:
        found = [n for n in names if re.fullmatch(pattern, n)]
        if found:
            return found
    return ([n for n in names if _CORE_PATTERN.fullmatch(n)] or
            [n for n in names if n.startswith("zone:") and not _NOT_CPU_ZONE.match(n)])


@dataclass(frozen=True)
class Dropped:
    """Readings of one series dropped as implausible."""

    series: str
    count: int
    why: str


@dataclass(frozen=True)
class Telemetry:
    """Columns of one run's samples: times and one array per series (NaN where not read)."""

    t: np.ndarray
    values: dict[str, np.ndarray]
    units: dict[str, str]
    gaps: list[tuple[float, float]]      # (start, seconds) on the same time axis
    epoch: float                        # node time of the first sample
    clock_offset: float = 0.0           # controller clock minus node clock (median, incl. latency)
    power_limits: dict[str, float] = field(default_factory=dict)  # series -> highest RAPL limit, W
    dropped: tuple[Dropped, ...] = ()

    def axis(self, controller_time: float) -> float:
        """A controller timestamp (time.time()) on this time axis."""
        return controller_time - self.clock_offset - self.epoch

    def names(self, kind: str) -> list[str]:
        return [n for n in self.values if n.startswith(kind + ":")]

    def package_temps(self) -> list[str]:
        """The CPU package sensor(s); the cores or thermal zones when there is none."""
        return package_sensors(self.values)

    def core_temps(self) -> list[str]:
        return [n for n in self.values if _CORE_PATTERN.fullmatch(n)]

    def package_power(self) -> list[str]:
        # psys (intel-rapl:1 on Skylake+ client parts) is the whole platform, package included: not summed
        return [n for n in self.names("rapl") if "/" not in n and n != "rapl:psys"] or self.names("power")

    def combined(self, names: list[str], how: str = "max") -> np.ndarray:
        """Per sample: min, max, mean or sum over `names` (NaN where none was read)."""
        if not names:
            return np.full(len(self.t), np.nan)
        stack = np.vstack([self.values[n] for n in names])
        read = ~np.isnan(stack).all(axis=0)
        out = np.full(len(self.t), np.nan)
        with np.errstate(all="ignore"):
            out[read] = _REDUCERS[how](stack[:, read], axis=0)
        return out

    def dropped_sentence(self) -> str | None:
        """'dropped 3 implausible readings: temp:k10temp/Tctl 2 (outside -40..150 °C), ...' or None."""
        if not self.dropped:
            return None
        listed = ", ".join(f"{d.series} {d.count} ({d.why})" for d in self.dropped)
        return f"dropped {sum(d.count for d in self.dropped)} implausible telemetry readings: {listed}"

    def throttle_events(self) -> np.ndarray:
        """Per sample: throttle events (all counters) since the previous reading."""
        events = np.zeros(len(self.t))
        for name in self.names("throttle"):
            column = self.values[name]
            read = np.flatnonzero(~np.isnan(column))
            if len(read) > 1:
                rises = np.diff(column[read])
                events[read[1:]] += np.where(rises > 0, rises, 0)  # a counter reset is not an event
        return events


def load_telemetry(run_dir: Path, stream: str = STREAM) -> Telemetry:
    """One stream's samples; a check's own stream falls back to the shared one of older runs."""
    if stream != STREAM and not (run_dir / "samples" / f"{stream}.jsonl").is_file():
        stream = STREAM
    return telemetry_from_records(read_samples(run_dir, stream))


def load_check_telemetry(run_dir: Path, check: str) -> Telemetry:
    return load_telemetry(run_dir, stream_for(check))


def telemetry_from_records(records: list[dict[str, Any]]) -> Telemetry:
    units: dict[str, str] = {}
    limits: dict[str, float] = {}
    samples = []
    for record in records:
        if "series" in record:
            units.update(record["series"])
            limits.update(record.get("power_limits") or {})
        elif "t" in record and isinstance(record.get("v"), dict):
            samples.append(record)
    epoch = samples[0]["t"] if samples else 0.0
    names = list(units) + sorted({k for s in samples for k in s["v"]} - set(units))
    matrix = _matrix(samples, tuple(names))
    values = {n: matrix[:, i] for i, n in enumerate(names)}
    kinds = {n: units.get(n, "") for n in names}
    dropped = _drop_implausible(values, kinds, limits)
    t = np.array([s["t"] - epoch for s in samples], dtype=float)
    gaps = [(s["t"] - epoch - s["gap_s"], s["gap_s"]) for s in samples if s.get("gap_s")]
    delays = sorted(s["rx"] - s["t"] for s in samples if "rx" in s)
    return Telemetry(t=t, values=values, units=kinds, gaps=gaps, epoch=epoch,
                     clock_offset=delays[len(delays) // 2] if delays else 0.0, power_limits=limits,
                     dropped=tuple(dropped))


def _drop_implausible(values: dict[str, np.ndarray], units: dict[str, str],
                      limits: dict[str, float]) -> list[Dropped]:
    """NaN where no sensor could have read the value (in place); what was dropped and why."""
    dropped = []
    low, high = TEMP_RANGE_C
    for name, column in values.items():
        if units[name] == "C":
            bad, why = (column < low) | (column > high), f"outside {low:g}..{high:g} °C"
        elif units[name] == "W":
            limit = limits.get(name)
            ceiling = POWER_LIMIT_FACTOR * limit if limit else NO_LIMIT_MAX_W
            why = (f"above {POWER_LIMIT_FACTOR:g}x its {limit:g} W power limit" if limit
                   else f"above {NO_LIMIT_MAX_W:g} W")
            bad = (column > ceiling) | (column < 0)
        else:
            continue
        count = int(np.count_nonzero(bad))
        if count:
            column[bad] = np.nan
            dropped.append(Dropped(name, count, why))
    return dropped


def _matrix(samples: list[dict[str, Any]], names: tuple[str, ...]) -> np.ndarray:
    """One row per sample, one column per series (NaN where a sample lacks one). Samples come in runs of the
    same keys in the same order (one sampler, one set of files), so each run of keys is converted as a block
    and its columns placed once: 72 h x 50 series in well under a second."""
    matrix = np.full((len(samples), len(names)), np.nan)
    column = {name: i for i, name in enumerate(names)}
    blocks: dict[tuple[str, ...], list[int]] = {}
    for row, sample in enumerate(samples):
        blocks.setdefault(tuple(sample["v"]), []).append(row)
    for keys, rows in blocks.items():
        values = [list(samples[row]["v"].values()) for row in rows]
        try:
            block = np.array(values, dtype=float).reshape(len(rows), len(keys))
        except (TypeError, ValueError):  # a hand-edited or foreign value: keep the numbers, drop the rest
            block = np.array([[x if isinstance(x, (int, float)) else np.nan for x in row] for row in values],
                             dtype=float).reshape(len(rows), len(keys))
        matrix[np.ix_(rows, [column[key] for key in keys])] = block
    return matrix


def window(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """Mask of the samples with start <= t < end."""
    return (t >= start) & (t < end)


def slope_per_minute(t: np.ndarray, values: np.ndarray) -> float | None:
    """Least-squares slope in units per minute (None with fewer than 3 readings)."""
    read = ~np.isnan(values)
    if read.sum() < 3 or np.ptp(t[read]) == 0:
        return None
    return float(60.0 * np.polyfit(t[read], values[read], 1)[0])


def envelope(t: np.ndarray, values: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """(bucket centre, min, mean, max) over at most `buckets` equal time buckets: a 72 h series plots
    as a few thousand points while every peak survives in the max line."""
    read = ~np.isnan(values)
    t, values = t[read], values[read]
    if len(t) == 0:
        empty = np.array([])
        return empty, empty, empty, empty
    width = (t[-1] - t[0]) / buckets or 1.0
    index = np.minimum(((t - t[0]) / width).astype(int), buckets - 1)
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])  # t is sorted: buckets are runs
    counts = np.diff(np.r_[starts, len(values)])
    centres = t[0] + (index[starts] + 0.5) * width
    return (centres, np.minimum.reduceat(values, starts), np.add.reduceat(values, starts) / counts,
            np.maximum.reduceat(values, starts))
