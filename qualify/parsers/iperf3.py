"""`iperf3 -J` output (client side): per-interval throughput, totals, retransmits, CPU of both ends.

Formats handled: 3.1 (no `sender` flags, UDP totals only in `end.sum`), 3.6 (duplicate keys in
`start` with -P: the last one wins, as in json.load), 3.7+ (`sender` flags, `sum_sent`/`sum_received`
for UDP too), `--bidir` (`sum_bidir_reverse`, `*_bidir_reverse` totals; 3.7 to 3.10 wrote the reverse
flow's `sum`, `sum_sent`, `sum_received` a second time under the same keys, esnet/iperf#952: the second
one is read as the reverse flow, not left to overwrite the first), a run that failed (an
`error` key, empty `end`), noise before the document and text after it (iperf3 prints
"iperf3: error - ..." after the JSON when the control connection breaks: kept as `trailing`).
A document cut short is a ParseError that says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from qualify.errors import ParseError

SOURCE = "iperf3 -J output"
_DOCUMENT_START = re.compile(r"^\{", re.M)  # iperf3 prints its document from column 0
_KEYS = {"start", "intervals", "end", "error"}
_BIDIR_TWICE = ("sum", "sum_sent", "sum_received")  # keys 3.7-3.10 repeat for the reverse flow of --bidir


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a repeated sum key is --bidir's reverse flow (3.7-3.10), other repeats: the last wins."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in _BIDIR_TWICE and key in found and f"{key}_bidir_reverse" not in found:
            found[f"{key}_bidir_reverse"] = value
        else:
            found[key] = value
    return found


@dataclass(frozen=True)
class Interval:
    start_s: float
    end_s: float
    bytes: int
    bits_per_second: float
    retransmits: int | None  # only the sending end counts them (None on the receiving end, and for UDP)
    omitted: bool  # within the -O warm-up, not part of the totals


@dataclass(frozen=True)
class Totals:
    seconds: float
    bytes: int
    bits_per_second: float
    retransmits: int | None
    lost_percent: float | None  # UDP only
    jitter_ms: float | None  # UDP only


@dataclass(frozen=True)
class Flow:
    """Data moving one way between client and server; a --bidir test has two."""

    client_sends: bool
    intervals: tuple[Interval, ...]
    sent: Totals | None  # the sending end's totals (its retransmits)
    received: Totals | None  # the receiving end's totals: what arrived

    @property
    def bits_per_second(self) -> float | None:
        """What arrived; the sender's figure when the receiver's is missing (old UDP format)."""
        totals = self.received or self.sent
        return totals.bits_per_second if totals else None

    @property
    def retransmits(self) -> int | None:
        return self.sent.retransmits if self.sent else None


@dataclass(frozen=True)
class CpuUtilization:
    host_total: float  # the client's end (the node under test)
    remote_total: float  # the server's end


@dataclass(frozen=True)
class Iperf3Result:
    version: str | None
    protocol: str | None  # "TCP" or "UDP"; None when the run failed before the test started
    streams: int | None
    reverse: bool
    bidir: bool
    remote_host: str | None
    remote_port: int | None
    tcp_mss: int | None  # segment size, to turn retransmits into a share of the segments sent
    flows: tuple[Flow, ...]
    cpu: CpuUtilization | None
    error: str | None  # iperf3's own "error" key
    trailing: str  # non-JSON text after the document (an error line), stripped

    @property
    def failure(self) -> str | None:
        """Why the run gave no result: iperf3's error, else the text printed after the JSON."""
        return self.error or (self.trailing or None if not self.flows else None)


def parse_iperf3(text: str, source: str = SOURCE) -> Iperf3Result:
    document, trailing = _document(text, source)
    start = _mapping(document.get("start", {}), "start", source)
    test = _mapping(start.get("test_start", {}), "start.test_start", source)
    end = _mapping(document.get("end", {}), "end", source)
    intervals = document.get("intervals", [])
    if not isinstance(intervals, list):
        raise ParseError(source, "'intervals' is not a list")
    connecting = start.get("connecting_to") or {}
    reverse = bool(test.get("reverse", 0))
    bidir = bool(test.get("bidir", 0)) or "sum_sent_bidir_reverse" in end
    error = document.get("error")
    flows: list[Flow] = []
    if end:
        flows.append(_flow(not reverse, intervals, "sum", end, "", source))
        if bidir:
            flows.append(_flow(False, intervals, "sum_bidir_reverse", end, "_bidir_reverse", source))
    elif error is None and not trailing:
        raise ParseError(source, "'end' is empty and there is no 'error': the test did not finish")
    cpu = end.get("cpu_utilization_percent")
    return Iperf3Result(
        version=start.get("version"), protocol=test.get("protocol"), streams=test.get("num_streams"),
        reverse=reverse, bidir=bidir, remote_host=connecting.get("host"), remote_port=connecting.get("port"),
        tcp_mss=start.get("tcp_mss_default") or test.get("tcp_mss") or None, flows=tuple(flows),
        cpu=CpuUtilization(float(cpu["host_total"]), float(cpu["remote_total"])) if cpu else None,
        error=str(error) if error is not None else None, trailing=trailing)


def _document(text: str, source: str) -> tuple[dict[str, Any], str]:
    """The JSON object (skipping noise before it) and the text after it."""
    opening = _DOCUMENT_START.search(text)
    if opening is None:
        raise ParseError(source, "no JSON object starting a line; expected the output of `iperf3 -J`")
    begin = opening.start()
    try:
        document, stop = json.JSONDecoder(object_pairs_hook=_object).raw_decode(text, begin)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            problem = (f"the JSON document is cut short (ends at line {exc.lineno}); iperf3 was killed or its "
                       f"output truncated")
        else:
            problem = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise ParseError(source, problem) from None
    if not isinstance(document, dict) or not _KEYS & set(document):
        raise ParseError(source, f"a JSON document without any of {', '.join(sorted(_KEYS))}: not iperf3 -J output")
    return document, text[stop:].strip()


def _mapping(value: Any, key: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(source, f"'{key}' is not an object")
    return value


def _flow(client_sends: bool, intervals: list[Any], interval_key: str, end: dict[str, Any], suffix: str,
          source: str) -> Flow:
    rows = []
    for number, interval in enumerate(intervals):
        total = interval.get(interval_key) if isinstance(interval, dict) else None
        if not isinstance(total, dict):
            raise ParseError(source, f"interval {number} has no '{interval_key}'")
        try:
            rows.append(Interval(start_s=float(total["start"]), end_s=float(total["end"]), bytes=int(total["bytes"]),
                                 bits_per_second=float(total["bits_per_second"]),
                                 retransmits=total.get("retransmits"), omitted=bool(total.get("omitted", False))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(source, f"interval {number} lacks a number ({exc})") from None
    # UDP before 3.7 has only end.sum: one figure for both ends.
    sent = end.get(f"sum_sent{suffix}") or end.get(f"sum{suffix}")
    received = end.get(f"sum_received{suffix}") or end.get(f"sum{suffix}")
    return Flow(client_sends, tuple(rows), _totals(sent, source), _totals(received, source))


def _totals(data: Any, source: str) -> Totals | None:
    if data is None:
        return None
    try:
        return Totals(seconds=float(data["seconds"]), bytes=int(data["bytes"]),
                      bits_per_second=float(data["bits_per_second"]), retransmits=data.get("retransmits"),
                      lost_percent=data.get("lost_percent"), jitter_ms=data.get("jitter_ms"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(source, f"end totals lack a number ({exc})") from None
