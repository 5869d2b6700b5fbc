"""stressapptest's verdict: the closing "Status: PASS|FAIL" line, its incident count and its error reports.

Since 1.0.7 every line (stdout and the -l log file) starts with a stamp; older builds print none:

    2022/12/28-08:08:25(UTC) Report Error: miscompare : DIMM Unknown : 1 : 6s
    2022/12/28-08:08:54(UTC) Stats: Completed: 2278756.00M in 30.00s 75952.34MB/s, with 15 hardware incidents, 0 errors
    2022/12/28-08:08:54(UTC) Status: FAIL - test discovered HW problems

A FAIL is either hardware ("discovered HW problems": miscompares) or procedural ("encountered procedural
errors": the run itself broke, with `Process Error:` lines saying why, and no figure of the memory).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import ParseError

_STAMP = re.compile(r"^\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d\(\w*\)\s?")
_STATUS = re.compile(r"^Status: (?P<status>PASS|FAIL)\b(?:\s*-\s*(?P<why>.*))?")
# "Stats: Completed: ... with 2 hardware incidents, 0 errors"; "Stats: Found 15 hardware incidents"
_INCIDENTS = re.compile(r"^Stats: (?:Completed: .*with (\d+) hardware incidents?|Found (\d+) hardware incidents?)")
_ERROR_LINES = ("Report Error: ", "Process Error: ")


@dataclass(frozen=True)
class StressapptestResult:
    passed: bool
    hardware_incidents: int | None  # None: the run printed no count (it broke before its summary)
    errors: tuple[str, ...]   # the "Report Error:" lines (without the prefix), then "Process Error: ..." ones
    status: str = ""          # the status line's words: "test discovered HW problems", ...


def parse_stressapptest(text: str, source: str = "stressapptest output") -> StressapptestResult:
    lines = [_STAMP.sub("", line.strip(), count=1).strip() for line in text.splitlines()]
    status = next((m for line in lines if (m := _STATUS.match(line))), None)
    if status is None:
        raise ParseError(source, "no 'Status: PASS' or 'Status: FAIL' line (did stressapptest end early?)")
    incidents = next((int(m[1] or m[2]) for line in lines if (m := _INCIDENTS.match(line))), None)
    reports = tuple(line.removeprefix(_ERROR_LINES[0]) for line in lines if line.startswith(_ERROR_LINES[0]))
    process = tuple(line for line in lines if line.startswith(_ERROR_LINES[1]))
    return StressapptestResult(passed=status["status"] == "PASS", hardware_incidents=incidents,
                               errors=reports + process, status=(status["why"] or "").strip())
