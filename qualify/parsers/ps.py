"""`ps -eo pid=,psr=,args=` (pure): which processor each process last ran on (/proc/<pid>/stat field 39)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    psr: int
    args: str


def parse_ps_psr(text: str) -> list[ProcessCpu]:
    rows = []
    for line in text.splitlines():
        fields = line.split(None, 2)
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].lstrip("-").isdigit():
            rows.append(ProcessCpu(int(fields[0]), int(fields[1]), fields[2] if len(fields) > 2 else ""))
    return rows
