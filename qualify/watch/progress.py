"""Progress of a soak for the operator: a live line on a terminal (rich), plain lines in logs and cron.

Shows elapsed/remaining time, the phase, the age of the last heartbeat and the hottest temperature
sensor (read back from the run's heartbeat and telemetry samples: what was recorded, not what the
display believes).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from qualify.store import SAMPLES

if TYPE_CHECKING:  # rich is imported only when there is a terminal to draw on
    from rich.live import Live

TAIL_BYTES = 4096


class SoakProgress:
    def __init__(self, node: str, run_dir: Path, duration_s: float, plain_interval_s: float):
        self.node = node
        self.heartbeats = run_dir / SAMPLES / "heartbeat.jsonl"
        self.telemetry = run_dir / SAMPLES / "telemetry-soak.jsonl"  # the soak check's own stream
        self.duration_s = duration_s
        self.plain_interval_s = plain_interval_s
        self.started = time.monotonic()
        self._next_plain = 0.0
        self._live: Live | None = None
        self._out = sys.stderr

    def __enter__(self) -> SoakProgress:
        self._out = sys.stderr  # entered with pytest's capture disabled: the real terminal or log
        if self._out.isatty():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(file=self._out), refresh_per_second=2, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live:
            self._live.__exit__(kind, exc, tb)

    def line(self, phase: str) -> str:
        elapsed = time.monotonic() - self.started
        return (f"{self.node}: soak {_hms(elapsed)} elapsed, {_hms(max(0.0, self.duration_s - elapsed))} left, "
                f"phase {phase}, last heartbeat {self._heartbeat_age()}{self._hottest()}")

    def update(self, phase: str) -> None:
        if self._live:
            self._live.update(self.line(phase))
        elif time.monotonic() >= self._next_plain:
            self._next_plain = time.monotonic() + self.plain_interval_s
            print(self.line(phase), file=self._out, flush=True)

    def _heartbeat_age(self) -> str:
        try:
            moment = datetime.fromisoformat(_last_record(self.heartbeats)["t"].replace("Z", "+00:00"))
        except (OSError, IndexError, ValueError, KeyError, TypeError, AttributeError):
            return "none yet"
        return f"{(datetime.now(UTC) - moment).total_seconds():.1f} s ago"

    def _hottest(self) -> str:
        try:
            values = _last_record(self.telemetry)["v"]
            name, value = max(((k, v) for k, v in values.items() if k.startswith("temp:") and v is not None),
                              key=lambda item: item[1])
        except (OSError, IndexError, ValueError, KeyError, TypeError, AttributeError):
            return ""  # no telemetry (yet), or no temperature sensor on this node
        return f", hottest {name.removeprefix('temp:')} {value:.0f} °C"


def _last_record(path: Path) -> dict:
    """The last complete JSON line of a growing samples file (only its tail is read)."""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, 2) - TAIL_BYTES))
        return json.loads(f.read().splitlines()[-1])


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
