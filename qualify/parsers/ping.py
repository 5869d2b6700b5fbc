"""The summary of iputils/busybox `ping`: packets sent and received, loss and round-trip times."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import ParseError


@dataclass(frozen=True)
class PingSummary:
    transmitted: int
    received: int
    errors: int  # "+N errors": ICMP errors, or "message too long" for a don't-fragment frame above the MTU
    loss_percent: float
    rtt_min_ms: float | None  # None when nothing came back
    rtt_avg_ms: float | None
    rtt_max_ms: float | None


_COUNTS = re.compile(r"^(\d+) packets transmitted, (\d+) (?:packets )?received,(?: \+(\d+) errors,)?"
                     r"(?: \+\d+ duplicates,)? ([\d.]+)% packet loss", re.M)
# iputils prints "rtt min/avg/max/mdev", busybox and older ones "round-trip min/avg/max"
_RTT = re.compile(r"^(?:rtt|round-trip) min/avg/max(?:/mdev)? = ([\d.]+)/([\d.]+)/([\d.]+)", re.M)


def parse_ping(text: str, source: str = "ping") -> PingSummary:
    counts = _COUNTS.search(text)
    if counts is None:
        raise ParseError(source, "no 'N packets transmitted, M received' line; expected the end of `ping -c N` "
                                 "(the address may be invalid or unreachable)")
    rtt = _RTT.search(text)
    low, avg, high = (float(value) for value in rtt.groups()) if rtt else (None, None, None)
    return PingSummary(transmitted=int(counts[1]), received=int(counts[2]), errors=int(counts[3] or 0),
                       loss_percent=float(counts[4]), rtt_min_ms=low, rtt_avg_ms=avg, rtt_max_ms=high)
