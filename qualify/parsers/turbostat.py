"""turbostat's interval tables: per-CPU and summary rows, package C-states and package power.

    5.030216 sec                                   <- interval line (with --interval / -i, or a wrapped command)
    Package Core CPU Avg_MHz Busy% ... Pkg%pc2 Pkg%pc6 PkgWatt RAMWatt     <- header (tab-separated)
    -       -    -   51      1.49  ... 59.79   0.00    205.38  30.23       <- summary row ("-" columns)
    0       0    0   7       0.52  ... 80.47   0.00    45.69   6.78        <- first CPU of a package: all columns
    0       0    64  1       0.04  ... 99.99   6.06                        <- sibling rows stop early

Columns vary with the CPU and version (Package or Node; PkgWatt or Pkg_J with --Joules; Intel
Pkg%pcN or none on AMD), so rows are read by the header's names. Also accepted: a Python list
literal of the lines (how hwbench stores turbostat output in its fixtures).

A malformed row (more fields than the header, a field that is no number) does not reject the table: the
rows that parse are kept and the others listed in `rejected`, line by line. Some turbostat versions print two
column names run together in the header ("CPU%c6CoreTmp"); such a name is split where both halves are
turbostat column names, and said so in `rejected` too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass

from qualify.errors import ParseError

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?) sec\s*$")
# turbostat >= 2024 prints the interval once, in its preamble, and no interval line before each table
_MEASUREMENT = re.compile(r"^Measurement interval: (\d+(?:\.\d+)?) seconds\s*$")
_TOPOLOGY = ("Package", "Node", "Die", "Core", "CPU")
_PACKAGE_CSTATE = re.compile(r"^Pkg?%(pc\d+)$")  # turbostat names package C10 "Pk%pc10" (7 characters)
# turbostat's column names (tools/power/x86/turbostat, 2017..2025), to split two that run together.
_COLUMN_NAME = re.compile(
    r"^(?:Package|Node|Die|Core|CPU|APIC|X2APIC|Time_Of_Day_Seconds|usec|Avg_MHz|Busy%|Bzy_MHz|TSC_MHz|IPC|IRQ|"
    r"NMI|SMI|POLL%?|C\d+[ESs]?%?|CPU%c\d+|Mod%c\d+|Die%c\d+|CoreTmp|CoreThr|PkgTmp|GFX%rc6|GFXMHz|GFXAMHz|"
    r"SAM%mc6|SAMMHz|SAMAMHz|Totl%C0|Any%C0|GFX%C0|CPUGFX%|Pkg%pc\d+|Pk%pc10|CPU%LPI|SYS%LPI|UncMHz|"
    r"(?:Pkg|Cor|GFX|RAM|Sys)(?:Watt|_J)|PKG_%|RAM_%)$")


@dataclass(frozen=True)
class TurbostatRow:
    cpu: str                          # "-" on the summary row
    values: Mapping[str, float]       # column name -> number, only the columns this row has


@dataclass(frozen=True)
class TurbostatInterval:
    seconds: float | None             # the interval line before the table, else the preamble's "Measurement interval"
    summary: TurbostatRow | None
    cpus: tuple[TurbostatRow, ...]
    rejected: tuple[str, ...] = ()    # "line 7: 29 columns, the header only 28", one per row not read

    @property
    def package_cstates(self) -> dict[str, float]:
        """{"pc2": 59.79, "pc6": 0.0, ..., "pc10": 0.0}: percent of the interval the package spent in each state."""
        values = self.summary.values if self.summary else {}
        return {m[1]: value for name, value in values.items() if (m := _PACKAGE_CSTATE.match(name))}

    @property
    def package_watts(self) -> float | None:
        """PkgWatt, or Pkg_J over the interval (--Joules output)."""
        values = self.summary.values if self.summary else {}
        if "PkgWatt" in values:
            return values["PkgWatt"]
        if "Pkg_J" in values and self.seconds:
            return values["Pkg_J"] / self.seconds
        return None


def parse_turbostat(text: str, source: str = "turbostat output") -> list[TurbostatInterval]:
    """Every interval table in order; ParseError when there is no header line with a CPU column, or no row of
    any table could be read."""
    intervals: list[TurbostatInterval] = []
    header: list[str] | None = None
    seconds: float | None = None
    summary: TurbostatRow | None = None
    cpus: list[TurbostatRow] = []
    rejected: list[str] = []
    all_rejected: list[str] = []
    measured: float | None = None  # the preamble's "Measurement interval", for tables without an interval line

    def finish() -> None:
        all_rejected.extend(rejected)
        if header is not None and (summary or cpus):
            intervals.append(TurbostatInterval(seconds, summary, tuple(cpus), tuple(rejected)))

    for number, line in enumerate(_lines(text, source), 1):
        if not line.strip():
            continue
        if m := _INTERVAL.match(line):
            finish()
            header, seconds, summary, cpus, rejected = None, float(m[1]), None, [], []
            continue
        if m := _MEASUREMENT.match(line):
            measured = float(m[1])
            continue
        fields = line.split()
        if any(name == "CPU" or name.startswith("Busy%") for name in fields):
            if header is not None:
                finish()
                seconds, summary, cpus, rejected = None, None, [], []
            header = _split_run_together(fields, number, rejected)
            seconds = seconds if seconds is not None else measured
            continue
        if header is None:
            continue  # the wrapped command's own output before turbostat's table
        try:
            row = _row(header, fields, number)
        except ValueError as exc:
            rejected.append(str(exc))
            continue
        if row.cpu == "-":
            summary = row
        else:
            cpus.append(row)
    finish()
    if not intervals:
        if all_rejected:
            raise ParseError(source, "no row of the turbostat table could be read: " + "; ".join(all_rejected[:3]))
        raise ParseError(source, "no turbostat table found (expected a header line with 'CPU' or 'Busy%' columns, "
                                 "as `turbostat --quiet --interval N` prints)")
    return intervals


def _split_run_together(names: list[str], number: int, notes: list[str]) -> list[str]:
    """Split a header name that is two turbostat column names without the tab between them."""
    header: list[str] = []
    for name in names:
        splits = [(name[:i], name[i:]) for i in range(1, len(name))
                  if _COLUMN_NAME.match(name[:i]) and _COLUMN_NAME.match(name[i:])]
        if not _COLUMN_NAME.match(name) and len(splits) == 1:
            header.extend(splits[0])
            notes.append(f"line {number}: header column {name!r} read as {splits[0][0]!r} and {splits[0][1]!r} "
                         "(two names run together)")
        else:
            header.append(name)
    return header


def _lines(text: str, source: str) -> list[str]:
    if text.lstrip().startswith("["):
        try:
            items = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError) as exc:
            raise ParseError(source, f"starts with '[' but is not a list of lines: {exc}") from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ParseError(source, "starts with '[' but is not a list of strings")
        return items
    return text.splitlines()


def _row(header: list[str], fields: list[str], number: int) -> TurbostatRow:
    """One table row; ValueError naming the line when it does not fit the header."""
    if len(fields) > len(header):
        raise ValueError(f"line {number} has {len(fields)} columns, the header only {len(header)}")
    values: dict[str, float] = {}
    cpu = "-"
    for name, field in zip(header, fields, strict=False):  # HT-sibling rows stop before the package columns
        if name == "CPU":
            cpu = field
        if name in _TOPOLOGY or field == "-":
            continue
        try:
            values[name] = float(field)
        except ValueError:
            raise ValueError(f"line {number}: column {name} is {field!r}, expected a number") from None
    return TurbostatRow(cpu=cpu, values=values)
