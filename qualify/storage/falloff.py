"""Where a sustained write falls off its cache: the first second from which bandwidth stays below a
share of the initial bandwidth (consumer/QLC/DRAM-less drives: 1 GB/s, then USB speeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

INITIAL_SECONDS = 3  # the initial bandwidth is the median of the first seconds (the very first is a ramp)
SUSTAIN_SECONDS = 3  # a dip shorter than this is noise, not a falloff


@dataclass(frozen=True)
class Second:
    t_s: float
    bytes_s: float
    written_bytes: int  # total written by the end of this second


@dataclass(frozen=True)
class Falloff:
    initial_bytes_s: float
    at_s: float | None  # None: bandwidth never fell below the share
    written_before_bytes: int | None
    after_bytes_s: float | None  # median bandwidth from the falloff on
    overall_bytes_s: float


def find_falloff(seconds: list[Second], share: float) -> Falloff | None:
    """None when there are too few seconds to say anything."""
    if len(seconds) < INITIAL_SECONDS + SUSTAIN_SECONDS:
        return None
    initial = median(s.bytes_s for s in seconds[:INITIAL_SECONDS])
    limit = initial * share
    overall = seconds[-1].written_bytes / seconds[-1].t_s if seconds[-1].t_s > 0 else 0.0
    for index in range(INITIAL_SECONDS, len(seconds) - SUSTAIN_SECONDS + 1):
        if all(s.bytes_s < limit for s in seconds[index:index + SUSTAIN_SECONDS]):
            previous = seconds[index - 1]
            return Falloff(initial_bytes_s=initial, at_s=previous.t_s, written_before_bytes=previous.written_bytes,
                           after_bytes_s=median(s.bytes_s for s in seconds[index:]), overall_bytes_s=overall)
    return Falloff(initial_bytes_s=initial, at_s=None, written_before_bytes=None, after_bytes_s=None,
                   overall_bytes_s=overall)
