"""The run store: one directory per run, records appended as they happen.

Format: line-per-record JSON (`run.jsonl`), plus `raw/` for tool outputs and `samples/<stream>.jsonl`
for time series. Chosen over SQLite because
- an append of one line is the whole transaction: a run killed at any moment leaves every complete
  line readable, and a torn last line is simply skipped on reading;
- several writers (the controller, later a sampler) never contend for a lock;
- it is readable with `tail -f`, grep, jq and pandas.read_json(lines=True) while the run is going.
Each record is flushed to the kernel at once (survives SIGKILL of qualify) and fsync'ed at most
a second later (survives a crash of the controller machine).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from qualify.errors import UsageError
from qualify.names import check_node_name

RECORDS = "run.jsonl"
SAMPLES = "samples"
# Left in every reports folder a run was created in: pages covering several runs (index.html) are
# written only into such a folder (or QUALIFY_REPORTS), never next to a run directory copied elsewhere.
REPORTS_MARK = ".qualify-reports"
FSYNC_INTERVAL_S = 1.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(now: datetime | None = None) -> str:
    """Sorts by time, as the contract asks: 20261130T130400Z."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def reports_dir() -> Path:
    return Path(os.environ.get("QUALIFY_REPORTS", "reports")).resolve()


def is_reports_root(path: Path) -> bool:
    """A folder qualify keeps runs in: the configured one, or one a run was created in."""
    path = path.resolve()
    return path == reports_dir() or (path / REPORTS_MARK).is_file()


class JsonLines:
    """An append-only JSONL file: each line reaches the kernel at once, the disk within a second."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        self._last_sync = 0.0
        self._lock = threading.Lock()  # the watcher's and telemetry's threads write beside the main one

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            now = time.monotonic()
            if now - self._last_sync >= FSYNC_INTERVAL_S:
                os.fsync(self._file.fileno())
                self._last_sync = now

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()


class RunStore:
    """Appends records of one run; every write reaches the kernel before append() returns."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._records = JsonLines(run_dir / RECORDS)
        self._streams: dict[str, JsonLines] = {}

    @classmethod
    def create(cls, node: str, base: Path | None = None) -> RunStore:
        base = base or reports_dir()
        node_dir = base / check_node_name(node)  # a name, never a path: runs stay under `base`
        node_dir.mkdir(parents=True, exist_ok=True)
        (base / REPORTS_MARK).write_text("runs of qualify: reports/<node>/<run-id>/ (see README)\n")
        run_id = new_run_id()
        while True:  # two runs of one node in the same second: wait for the next run id
            try:
                (node_dir / run_id).mkdir()
                break
            except FileExistsError:
                time.sleep(0.2)
                run_id = new_run_id()
        run_dir = node_dir / run_id
        (run_dir / "raw").mkdir()
        return cls(run_dir)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        record = {"t": utc_now(), "kind": kind, **fields}
        self._records.append(record)
        return record

    def samples(self, stream: str) -> JsonLines:
        """samples/<stream>.jsonl, for time series (telemetry, heartbeats, per-second bandwidth)."""
        if stream not in self._streams:
            (self.run_dir / SAMPLES).mkdir(exist_ok=True)
            self._streams[stream] = JsonLines(self.run_dir / SAMPLES / f"{stream}.jsonl")
        return self._streams[stream]

    def save_raw(self, name: str, content: str | bytes) -> Path:
        """Keep a tool's output as evidence, under raw/."""
        path = self.run_dir / "raw" / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._records.close()


def is_run_dir(path: Path) -> bool:
    return (path / RECORDS).is_file()


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    if not is_run_dir(run_dir):
        raise UsageError(f"{run_dir} is not a run directory (it has no {RECORDS}); "
                         f"runs are under reports/<node>/<run-id>/")
    return list(_parse_lines(run_dir / RECORDS))


def read_samples(run_dir: Path, stream: str) -> list[dict[str, Any]]:
    """The samples of one stream ([] when the run has none)."""
    path = run_dir / SAMPLES / f"{stream}.jsonl"
    return list(_parse_lines(path, require_kind=False, loads=_fast_loads)) if path.is_file() else []


def _fast_loads(line: str) -> Any:
    """orjson reads a 72 h sample file three times faster. It refuses NaN/Infinity, which Python's json writes,
    so those lines go to json; it reads integers beyond 64 bits as floats, which is what samples become anyway
    (the run's records, where a counter must stay exact, are read by json)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _parse_lines(path: Path, require_kind: bool = True,
                 loads: Callable[[str], Any] = json.loads) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = loads(line)
            except ValueError:
                continue  # the torn last line of a killed run
            if isinstance(record, dict) and ("kind" in record or not require_kind):
                yield record


def list_runs(base: Path | None = None) -> list[Path]:
    """Every run directory of every node, newest first."""
    base = base or reports_dir()
    runs = [p.parent for p in base.glob(f"*/*/{RECORDS}")]
    return sorted(runs, key=lambda p: (p.name, p.parent.name), reverse=True)
