"""The controller side of telemetry: start the sampler on the node, store its samples as they arrive.

    stream = start_telemetry(node, run_store, profile.telemetry)
    ...                                   # the check's load; samples go to samples/<stream>.jsonl
    summary = stream.stop()               # series, sample count, gaps

One sampler process per node for the length of a check, over the node's existing connection
(multiplexed ssh or local). A reader thread appends each sample to the run store the moment its
line arrives, so a frozen node or a killed run keeps every sample up to then.
"""

from __future__ import annotations

import fnmatch
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qualify.errors import QualifyError, ToolMissing
from qualify.node import Node
from qualify.node.base import NodeProcess
from qualify.profile import TelemetrySettings
from qualify.store import JsonLines, RunStore
from qualify.telemetry.sampler import Decoder

SAMPLER_SOURCE = Path(__file__).with_name("sampler.py")
STREAM = "telemetry"      # the shared stream of runs before each check had its own (and of ad-hoc sampling)
HEADER_TIMEOUT_S = 30.0   # discovery on a node with thousands of CPUs and sensors is still quick
GAP_FACTOR = 1.5          # a node timestamp this many intervals after the previous one is a gap
LATE_S = 2.0              # a sample arriving this much later than the fastest one did is late


def stream_for(check: str) -> str:
    """The samples stream of one check (samples/telemetry-<check>.jsonl): its window and nothing else."""
    return f"{STREAM}-{check}"


@dataclass(frozen=True)
class Gap:
    after_seq: int
    node_time: float
    seconds: float


@dataclass
class TelemetrySummary:
    series: dict[str, str]                 # name -> unit, after rename/ignore
    unreadable: list[str]                  # present on the node but not readable (permissions)
    samples: int = 0
    late: int = 0
    bad_reads: dict[str, int] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    exit_status: int | None = None
    error: str = ""

    def sentences(self, interval: float) -> list[str]:
        """What a reader of the verdict should know about the telemetry itself."""
        out = [f"telemetry: {self.samples} samples of {len(self.series)} series every {interval:g} s"]
        if self.gaps:
            longest = max(self.gaps, key=lambda g: g.seconds)
            out.append(f"telemetry: {len(self.gaps)} gaps in the samples, the longest {longest.seconds:.1f} s "
                       f"after sample {longest.after_seq}")
        if self.late:
            out.append(f"telemetry: {self.late} samples arrived late (more than {LATE_S:g} s)")
        for name, count in sorted(self.bad_reads.items()):
            out.append(f"telemetry: {name} could not be read {count} times (file vanished or held garbage)")
        if self.unreadable:
            out.append(f"telemetry: not readable on the node: {', '.join(self.unreadable)} (run as root?)")
        if self.error:
            out.append(f"telemetry: {self.error}")
        return out


class TelemetryStream:
    """A running sampler; stop() ends it and returns the summary."""

    def __init__(self, node: Node, process: NodeProcess, writer: JsonLines, settings: TelemetrySettings):
        self.node = node
        self.settings = settings
        self._process = process
        self._writer = writer
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read_lines, name=f"telemetry-{node.name}", daemon=True)
        self._pump.start()
        header = self._header()
        self._decode = Decoder(header)
        self.summary = TelemetrySummary(series=self._rename_series(header.get("series", {})),
                                        unreadable=list(header.get("unreadable", [])))
        limits = {new: watts for name, watts in (header.get("power_limits") or {}).items()
                  if (new := self._name(name)) is not None}
        writer.append({"series": self.summary.series, "interval": settings.interval, "node": node.name,
                       "unreadable": self.summary.unreadable, "power_limits": limits})
        self._writer_thread = threading.Thread(target=self._store_samples, name=f"telemetry-store-{node.name}",
                                               daemon=True)
        self._writer_thread.start()

    @property
    def series(self) -> dict[str, str]:
        return self.summary.series

    def _read_lines(self) -> None:
        for line in self._process.lines():
            self._lines.put(line)
        self._lines.put(None)

    def _header(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=HEADER_TIMEOUT_S)
        except queue.Empty:
            line = None  # the tie to stdin keeps the pipe open even when the sampler died at once
        try:
            header = json.loads(line) if line else None
        except json.JSONDecodeError:
            header = None
        if isinstance(header, dict) and "series" in header:
            return header
        status = self._process.stop()
        detail = (self._process.stderr().strip().splitlines() or [line or "no output"])[-1]
        raise QualifyError(f"{self.node.name}: the telemetry sampler (python3) did not start within "
                           f"{HEADER_TIMEOUT_S:g} s (exit status {status}): {detail}")

    def _name(self, name: str) -> str | None:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.settings.ignore):
            return None
        return self.settings.rename.get(name, name)

    def _rename_series(self, series: dict[str, str]) -> dict[str, str]:
        return {new: unit for name, unit in series.items() if (new := self._name(name)) is not None}

    def _store_samples(self) -> None:
        previous: float | None = None
        fastest: float | None = None
        while (line := self._lines.get()) is not None:
            received = time.time()
            parts = line.split(" ")  # seq, node time and monotonic time in ns, one token per series (sampler.py)
            try:
                seq, node_time, node_monotonic = int(parts[0]), round(int(parts[1]) / 1e9, 3), int(parts[2]) / 1e9
            except (ValueError, IndexError):
                continue  # a torn line when the sampler was stopped
            if len(parts) != 3 + len(self._decode.names):
                continue
            values, unread = self._decode(parts[3:], node_monotonic)
            record: dict[str, Any] = {"seq": seq, "t": node_time, "rx": round(received, 3),
                                      "v": {new: v for k, v in values.items() if (new := self._name(k)) is not None}}
            bad = [new for k in unread if (new := self._name(k)) is not None]
            if bad:
                record["bad"] = bad
                for name in bad:
                    self.summary.bad_reads[name] = self.summary.bad_reads.get(name, 0) + 1
            if previous is not None and node_time - previous > GAP_FACTOR * self.settings.interval:
                gap = Gap(after_seq=seq - 1, node_time=previous, seconds=node_time - previous)
                self.summary.gaps.append(gap)
                record["gap_s"] = round(gap.seconds, 3)
            delay = received - node_time  # includes the clock offset between node and controller
            fastest = delay if fastest is None else min(fastest, delay)
            if delay - fastest > LATE_S:
                record["late_s"] = round(delay - fastest, 3)
                self.summary.late += 1
            previous = node_time
            self._writer.append(record)
            self.summary.samples += 1

    def stop(self) -> TelemetrySummary:
        """End the sampler on the node; every sample it sent is stored when this returns."""
        status = self._process.stop()
        self._pump.join(timeout=10)
        self._writer_thread.join(timeout=10)
        self.summary.exit_status = status
        if status not in (0, None, -15, 143):  # ended by us: SIGTERM through the tie to stdin
            self.summary.error = f"the sampler ended with exit status {status}: {self._process.stderr().strip()}"
        return self.summary


def start_telemetry(node: Node, run_store: RunStore, settings: TelemetrySettings,
                    stream: str = STREAM) -> TelemetryStream:
    """Start sampling `node` into samples/<stream>.jsonl of the run (a check passes stream_for(its name));
    returns once the series are known."""
    if not node.has_tool("python3"):
        raise ToolMissing(node.name, "python3", "python3-minimal")
    config = json.dumps({"sysfs": node.paths.sysfs, "procfs": node.paths.procfs, "interval": settings.interval})
    process = node.spawn(["python3", "-c", SAMPLER_SOURCE.read_text(), config])
    return TelemetryStream(node, process, run_store.samples(stream), settings)
