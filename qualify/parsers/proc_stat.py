"""/proc/stat's CPU line: how busy the node's CPUs were between two readings.

    cpu  74608 2520 24433 1117073 6176 4054 0 0 0 0
         user  nice system idle  iowait irq softirq steal guest guest_nice   (USER_HZ ticks since boot)

guest and guest_nice are already counted in user and nice (the kernel adds them there), so the total is
the first eight fields; idle time is idle + iowait.
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.errors import ParseError


@dataclass(frozen=True)
class CpuTimes:
    idle: int    # idle + iowait ticks
    total: int   # the first eight fields


def parse_cpu_line(text: str, source: str = "/proc/stat") -> CpuTimes:
    """The aggregate `cpu ` line (the first of the file)."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                numbers = [int(x) for x in fields[1:9]]
            except ValueError:
                break
            if len(numbers) >= 4:
                numbers += [0] * (8 - len(numbers))
                return CpuTimes(idle=numbers[3] + numbers[4], total=sum(numbers))
            break
    raise ParseError(source, "no 'cpu' line with at least four tick counts")


def busy_percent(before: CpuTimes, after: CpuTimes) -> float | None:
    """Share of CPU time not idle between the readings, in %; None when no tick passed."""
    total = after.total - before.total
    if total <= 0:
        return None
    return 100.0 * (1 - (after.idle - before.idle) / total)
