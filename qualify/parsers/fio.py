"""fio `--output-format=json` and `json+` (fio 2.x and 3.x); with --status-interval, one document per report.

Units are keyed on fio's version string ("fio-2.2.10", "fio-3.33"): fio 2.x writes "io_bytes" in KiB (sic),
"bw" in KiB/s and its latencies as "clat"/"lat" in microseconds; fio 3.x writes "io_bytes" in bytes and
"clat_ns"/"lat_ns" in nanoseconds. Read as 3.x, a 2.x result is 1024x too small and has no latency. Without a
version string, the latency keys decide.

Quirks of real outputs handled here:
- non-JSON lines before the document ("note: both iodepth >= 1 and synchronous I/O engine ...") or
  after it (an error fio prints on exit);
- fio 2.x and 3.1 write unused percentile slots as duplicate "0.00" keys; fio < 3.3 has no "bw_bytes" (only "bw"
  in KiB/s); fio 2.1 has no "total_ios" (0 here: not counted);
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
    total_ios: int  # 0 when this fio version does not count them (fio 2.1)
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
    messages: tuple[str, ...] = ()  # fio's own "fio: ..." lines around the document (I/O errors, notes)


@dataclass(frozen=True)
class _Units:
    """How one fio version writes its figures."""

    io_bytes_scale: int  # multiplier from "io_bytes" to bytes
    latency_key: str  # "clat_ns" (3.x) or "clat" (2.x)
    latency_scale: int  # multiplier from that key's numbers to nanoseconds


_FIO3 = _Units(io_bytes_scale=1, latency_key="clat_ns", latency_scale=1)
_FIO2 = _Units(io_bytes_scale=1024, latency_key="clat", latency_scale=1000)
_DOCUMENT_START = re.compile(r"^\{", re.MULTILINE)
_FIO_MESSAGE = re.compile(r"^fio: .*\n", re.MULTILINE)
_VERSION = re.compile(r"^fio-(\d+)\.")


def parse_fio_json(text: str, source: str = "fio") -> FioResult:
    start = _DOCUMENT_START.search(text)
    if start is None:
        raise ParseError(source, f"no JSON document (output starts with {text.strip()[:80]!r}); "
                                 "expected the output of fio --output-format=json")
    # fio writes its error messages to the same stream as the document, even in the middle of it (fio issue
    # #1685): whole lines starting with "fio: " are never JSON.
    messages = tuple(m.strip() for m in _FIO_MESSAGE.findall(text))
    body = _FIO_MESSAGE.sub("", text[start.start():])
    said = f"; fio said: {messages[-1]}" if messages else ""
    try:
        data, _ = json.JSONDecoder(object_pairs_hook=_without_empty_percentiles).raw_decode(body)
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"JSON cut short or damaged at character {exc.pos} ({exc.msg}); "
                                 f"it starts with {body[:60]!r}{said}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ParseError(source, "JSON without a 'jobs' list; expected the output of fio --output-format=json")
    version = str(data.get("fio version", ""))
    units = _units(version, data["jobs"], source)
    try:
        jobs = [_job(job, units) for job in data["jobs"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(source, f"a job lacks or mangles {exc}; expected fio 2.x or 3.x JSON") from None
    return FioResult(version=version, global_options=data.get("global options", {}), jobs=jobs,
                     messages=messages)


def _units(version: str, jobs: list, source: str) -> _Units:
    if m := _VERSION.match(version):
        major = int(m[1])
        if major < 2:
            raise ParseError(source, f"{version} is older than fio 2; its JSON is not read (install fio >= 2)")
        return _FIO2 if major == 2 else _FIO3
    # No (or an odd) version string: the 2.x latency key without its 3.x twin says 2.x.
    first = jobs[0].get("read", {}) if jobs and isinstance(jobs[0], dict) else {}
    return _FIO2 if "clat" in first and "clat_ns" not in first else _FIO3


def _direction_units(data: dict, units: _Units) -> _Units:
    """The keys a direction carries outrank the version: "io_kbytes" came with io_bytes in bytes and "clat_ns"
    with nanoseconds (fio 2.99, the 3.0 pre-release, already wrote both)."""
    return _Units(io_bytes_scale=1 if "io_kbytes" in data else units.io_bytes_scale,
                  latency_key="clat_ns" if "clat_ns" in data else ("clat" if "clat" in data else units.latency_key),
                  latency_scale=1 if "clat_ns" in data else (1000 if "clat" in data else units.latency_scale))


def _without_empty_percentiles(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # fio 3.1 pads percentile lists with several "0.00" keys; drop them instead of keeping "the last".
    return {key: value for key, value in pairs if key != "0.00"}


def _job(job: dict, units: _Units) -> FioJob:
    read, write = _direction(job["read"], units), _direction(job["write"], units)
    runtime = job.get("job_runtime", max(read.runtime_ms, write.runtime_ms))  # fio < 3.9 has no job_runtime
    return FioJob(name=job["jobname"], error=int(job.get("error", 0)), options=job.get("job options", {}),
                  runtime_ms=int(runtime), read=read, write=write)


def _direction(data: dict, units: _Units) -> Direction:
    units = _direction_units(data, units)
    bandwidth = data["bw_bytes"] if "bw_bytes" in data else data["bw"] * 1024  # fio < 3.3: KiB/s only
    return Direction(io_bytes=int(data["io_bytes"]) * units.io_bytes_scale, bandwidth_bytes_s=float(bandwidth),
                     iops=float(data["iops"]), runtime_ms=int(data["runtime"]),
                     total_ios=int(data.get("total_ios", 0)),
                     completion_latency=_latency(data.get(units.latency_key), units.latency_scale))


def _latency(clat: dict | None, scale: int) -> Latency | None:
    if not clat or clat.get("N") == 0 or not clat.get("max"):
        return None
    # json+ "bins" exist only in fio 3.x (nanoseconds already).
    return Latency(mean_ns=float(clat["mean"]) * scale, max_ns=int(clat["max"]) * scale,
                   percentiles_ns={float(k): int(v) * scale for k, v in clat.get("percentile", {}).items()},
                   histogram_ns={int(k): int(v) for k, v in clat.get("bins", {}).items()})
