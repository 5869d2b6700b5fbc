"""fio `--output-format=json` and `json+` (fio 3.x); with --status-interval, one document per report.

Quirks of real outputs handled here:
- non-JSON lines before the document ("note: both iodepth >= 1 and synchronous I/O engine ...") or
  after it (an error fio prints on exit);
- fio 3.1 writes unused percentile slots as duplicate "0.00" keys, and has no "bw_bytes" (only "bw" in KiB/s);
- with gtod_reduce (or no I/O in a direction) every latency is 0 with "N": 0: no latency, not a 0 ns one;
- json+ adds "bins" (completion-latency histogram, ns -> count) to clat_ns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from qualify.errors import ParseError


@dataclass(frozen=True)
class Latency:
    """Completion latency (fio's clat) of one direction, in nanoseconds."""

    mean_ns: float
    max_ns: int
    percentiles_ns: dict[float, int]  # {99.9: 5408, ...}; empty when fio computed none
    histogram_ns: dict[int, int]  # json+ "bins": latency -> count; empty in plain json

    def percentile(self, share: float) -> int | None:
        return self.percentiles_ns.get(share)


@dataclass(frozen=True)
class Direction:
    """What one job did in one direction (read or write)."""

    io_bytes: int
    bandwidth_bytes_s: float
    iops: float
    runtime_ms: int
    total_ios: int
    completion_latency: Latency | None  # None when fio measured none (gtod_reduce, no I/O)


@dataclass(frozen=True)
class FioJob:
    name: str
    error: int  # errno of the job's first I/O error, 0 when none
    options: dict[str, str]  # the job's own options (global ones are on FioResult)
    runtime_ms: int  # time the job has run (grows from one --status-interval report to the next)
    read: Direction
    write: Direction


@dataclass(frozen=True)
class FioResult:
    version: str  # "fio-3.33"
    global_options: dict[str, str]
    jobs: list[FioJob]


_DOCUMENT_START = re.compile(r"^\{", re.MULTILINE)


def parse_fio_json(text: str, source: str = "fio") -> FioResult:
    start = _DOCUMENT_START.search(text)
    if start is None:
        raise ParseError(source, f"no JSON document (output starts with {text.strip()[:80]!r}); "
                                 "expected the output of fio --output-format=json")
    try:
        data, _ = json.JSONDecoder(object_pairs_hook=_without_empty_percentiles).raw_decode(text, start.start())
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"JSON cut short or damaged at character {exc.pos} ({exc.msg}); "
                                 f"it starts with {text[start.start():start.start() + 60]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ParseError(source, "JSON without a 'jobs' list; expected the output of fio --output-format=json")
    try:
        jobs = [_job(job) for job in data["jobs"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(source, f"a job lacks or mangles {exc}; expected fio 3.x JSON") from None
    return FioResult(version=str(data.get("fio version", "")), global_options=data.get("global options", {}),
                     jobs=jobs)


def _without_empty_percentiles(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # fio 3.1 pads percentile lists with several "0.00" keys; drop them instead of keeping "the last".
    return {key: value for key, value in pairs if key != "0.00"}


def _job(job: dict) -> FioJob:
    read, write = _direction(job["read"]), _direction(job["write"])
    runtime = job.get("job_runtime", max(read.runtime_ms, write.runtime_ms))  # fio < 3.9 has no job_runtime
    return FioJob(name=job["jobname"], error=int(job.get("error", 0)), options=job.get("job options", {}),
                  runtime_ms=int(runtime), read=read, write=write)


def _direction(data: dict) -> Direction:
    bandwidth = data["bw_bytes"] if "bw_bytes" in data else data["bw"] * 1024  # fio < 3.3: KiB/s only
    return Direction(io_bytes=int(data["io_bytes"]), bandwidth_bytes_s=float(bandwidth), iops=float(data["iops"]),
                     runtime_ms=int(data["runtime"]), total_ios=int(data.get("total_ios", 0)),
                     completion_latency=_latency(data.get("clat_ns")))


def _latency(clat: dict | None) -> Latency | None:
    if not clat or clat.get("N") == 0 or not clat.get("max"):
        return None
    return Latency(mean_ns=float(clat["mean"]), max_ns=int(clat["max"]),
                   percentiles_ns={float(k): int(v) for k, v in clat.get("percentile", {}).items()},
                   histogram_ns={int(k): int(v) for k, v in clat.get("bins", {}).items()})
