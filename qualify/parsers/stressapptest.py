"""stressapptest's verdict: the closing "Status: PASS|FAIL" line and its error reports.

    Log: Seconds remaining: 10
    Report Error: miscompare : DIMM Unknown : 1 : 144s
    Stats: Completed: 1284920.00M in 20.00s 64245.66MB/s, with 2 hardware incidents, 0 errors
    Status: FAIL - test discovered HW problems
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import ParseError

_STATUS = re.compile(r"^Status: (PASS|FAIL)\b")
_INCIDENTS = re.compile(r"with (\d+) hardware incidents?, (\d+) errors?")


@dataclass(frozen=True)
class StressapptestResult:
    passed: bool
    hardware_incidents: int
    errors: tuple[str, ...]   # the "Report Error:" lines


def parse_stressapptest(text: str, source: str = "stressapptest output") -> StressapptestResult:
    status = next((m[1] for line in text.splitlines() if (m := _STATUS.match(line.strip()))), None)
    if status is None:
        raise ParseError(source, "no 'Status: PASS' or 'Status: FAIL' line (did stressapptest end early?)")
    incidents = _INCIDENTS.search(text)
    errors = tuple(line.strip().removeprefix("Report Error: ") for line in text.splitlines()
                   if line.strip().startswith("Report Error:"))
    return StressapptestResult(passed=status == "PASS", hardware_incidents=int(incidents[1]) if incidents else 0,
                               errors=errors)
