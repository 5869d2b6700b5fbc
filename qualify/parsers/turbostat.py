"""turbostat's interval tables: per-CPU and summary rows, package C-states and package power.

    5.030216 sec                                   <- interval line (with --interval / -i, or a wrapped command)
    Package Core CPU Avg_MHz Busy% ... Pkg%pc2 Pkg%pc6 PkgWatt RAMWatt     <- header (tab-separated)
    -       -    -   51      1.49  ... 59.79   0.00    205.38  30.23       <- summary row ("-" columns)
    0       0    0   7       0.52  ... 80.47   0.00    45.69   6.78        <- first CPU of a package: all columns
    0       0    64  1       0.04  ... 99.99   6.06                        <- sibling rows stop early

Columns vary with the CPU and version (Package or Node; PkgWatt or Pkg_J with --Joules; Intel
Pkg%pcN or none on AMD), so rows are read by the header's names. Also accepted: a Python list
literal of the lines (how hwbench stores turbostat output in its fixtures).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass

from qualify.errors import ParseError

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?) sec\s*$")
_TOPOLOGY = ("Package", "Node", "Die", "Core", "CPU")
_PACKAGE_CSTATE = re.compile(r"^Pkg%(pc\d+)$")


@dataclass(frozen=True)
class TurbostatRow:
    cpu: str                          # "-" on the summary row
    values: Mapping[str, float]       # column name -> number, only the columns this row has


@dataclass(frozen=True)
class TurbostatInterval:
    seconds: float | None             # the interval line before the table, when printed
    summary: TurbostatRow | None
    cpus: tuple[TurbostatRow, ...]

    @property
    def package_cstates(self) -> dict[str, float]:
        """{"pc2": 59.79, "pc6": 0.0, ...}: percent of the interval the package spent in each state."""
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
    """Every interval table in order; ParseError when there is no header line with a CPU column."""
    intervals: list[TurbostatInterval] = []
    header: list[str] | None = None
    seconds: float | None = None
    summary: TurbostatRow | None = None
    cpus: list[TurbostatRow] = []

    def finish() -> None:
        if header is not None and (summary or cpus):
            intervals.append(TurbostatInterval(seconds, summary, tuple(cpus)))

    for number, line in enumerate(_lines(text, source), 1):
        if not line.strip():
            continue
        if m := _INTERVAL.match(line):
            finish()
            header, seconds, summary, cpus = None, float(m[1]), None, []
            continue
        fields = line.split()
        if "CPU" in fields or "Busy%" in fields:
            if header is not None:
                finish()
                seconds, summary, cpus = None, None, []
            header = fields
            continue
        if header is None:
            continue  # the wrapped command's own output before turbostat's table
        row = _row(header, fields, source, number)
        if row.cpu == "-":
            summary = row
        else:
            cpus.append(row)
    finish()
    if not intervals:
        raise ParseError(source, "no turbostat table found (expected a header line with 'CPU' or 'Busy%' columns, "
                                 "as `turbostat --quiet --interval N` prints)")
    return intervals


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


def _row(header: list[str], fields: list[str], source: str, number: int) -> TurbostatRow:
    if len(fields) > len(header):
        raise ParseError(source, f"line {number} has {len(fields)} columns, the header only {len(header)}")
    values: dict[str, float] = {}
    cpu = "-"
    for name, field in zip(header, fields):
        if name == "CPU":
            cpu = field
        if name in _TOPOLOGY or field == "-":
            continue
        try:
            values[name] = float(field)
        except ValueError:
            raise ParseError(source, f"line {number}: column {name} is {field!r}, expected a number") from None
    return TurbostatRow(cpu=cpu, values=values)
