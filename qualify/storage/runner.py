"""Running fio on a node: what its fio can do, and one job streamed report by report.

fio runs with `--status-interval=1 --output-format=json`: one complete JSON document a second.
Consecutive documents give the bandwidth and IOPS of each second (stored as they arrive), and the
last document is kept whatever happens: fio killed mid-job still leaves its last report.

Every job runs under the node's run lock, and a job that writes to a block device runs only on a
drive the profile names and allows, with the device held for the whole job (qualify/storage/hold.py).
fio runs under the tether: it stops within seconds of the controller, however the controller ends.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

from qualify.errors import ParseError, QualifyError
from qualify.node import Node
from qualify.parsers.fio import FioJob, FioResult, parse_fio_json
from qualify.storage.hold import drive_at, held_for_writing

MIN_FIO = (3, 0)  # clat_ns and the JSON layout parsed here
IO_URING_SINCE = (3, 13)
GRACE_S = 30.0  # beyond its runtime, before a job that does not end (drive gone) is stopped
_EXIT_MARKER = "qualify-fio-exit-status"
# The node's stream stays open until stopped, so a marker line tells fio's end and status. Stopping
# the stream sends TERM to this shell, which passes it on: fio then prints its last report and exits.
_REPORT_EXIT = (f'"$@" & fio=$!; trap \'kill "$fio" 2>/dev/null\' TERM; wait "$fio"; status=$?; '
                f'if kill -0 "$fio" 2>/dev/null; then wait "$fio"; status=$?; fi; echo "{_EXIT_MARKER} $status"')


@dataclass(frozen=True)
class FioCapabilities:
    version: str  # "fio-3.33"
    engines: frozenset[str]
    dsync: bool  # --sync=dsync (O_DSYNC); older fio only knows --sync=1 (O_SYNC)


def fio_capabilities(node: Node, ioengine: str) -> FioCapabilities:
    """What the node's fio offers; QualifyError when it is too old or lacks the profile's engine."""
    node.require("fio")
    version = node.run(["fio", "--version"]).stdout.strip()
    found = re.match(r"fio-(\d+)\.(\d+)", version)
    if not found or (int(found[1]), int(found[2])) < MIN_FIO:
        raise QualifyError(f"{node.name}: {version or 'fio without a version'} is too old: qualify needs fio "
                           f"{'.'.join(map(str, MIN_FIO))} or newer (JSON with clat_ns); upgrade fio")
    engines = frozenset(node.run(["fio", "--enghelp"]).stdout.split()[3:])  # after "Available IO engines:"
    if ioengine not in engines:
        since = f" (io_uring came with fio {'.'.join(map(str, IO_URING_SINCE))})" if ioengine == "io_uring" else ""
        has = ", ".join(sorted(engines & {"io_uring", "libaio"})) or "none"
        raise QualifyError(f"{node.name}: {version} has no '{ioengine}' I/O engine{since}; set "
                           f"checks.storage.ioengine to one it has ({has}) or upgrade fio")
    dsync = "dsync" in node.run(["fio", "--cmdhelp=sync"], check=False).stdout
    return FioCapabilities(version=version, engines=engines, dsync=dsync)


@dataclass(frozen=True)
class Progress:
    """One second of a job: rates over the last report interval, totals so far."""

    t_s: float
    read_bytes_s: float
    write_bytes_s: float
    read_iops: float
    write_iops: float
    read_bytes: int
    written_bytes: int


@dataclass(frozen=True)
class FioOutcome:
    result: FioResult | None  # the last complete report; the final one when fio finished
    report_text: str  # that report as fio printed it (evidence for the run store)
    exit_status: int
    stderr: str
    timed_out: bool

    @property
    def failed(self) -> str | None:
        """Why the job's result cannot be trusted, or None."""
        if self.timed_out:
            return "fio did not finish in time and was stopped (the drive may have stopped answering)"
        errors = [f"job {job.name} ended with error {job.error}" for job in self.result.jobs if job.error] \
            if self.result else []
        if self.exit_status != 0 or errors or self.result is None:
            detail = "; ".join(errors + self.stderr.strip().splitlines()[-3:]) or "no error output"
            return f"fio exited with status {self.exit_status}: {detail}"
        return None


# fio's --rw modes that write (fio's own default, read, does not)
_WRITING = frozenset({"write", "randwrite", "rw", "readwrite", "randrw", "trim", "randtrim", "trimwrite",
                      "randtrimwrite"})


def written_device(argv: list[str]) -> str | None:
    """The block device a fio command line writes to, or None when it only reads (or writes no device)."""
    options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    target = options.get("filename", "")
    return target if options.get("rw", "read") in _WRITING and target.startswith("/dev/") else None


def run_fio(node: Node, argv: list[str], runtime_s: float, on_progress: Callable[[Progress], None]) -> FioOutcome:
    """Run one fio job on the node, calling on_progress for each second as it arrives.

    A job that writes to a device holds it for its whole length (WriteRefused when the guard says no).
    """
    device = written_device(argv)
    held = held_for_writing(node, *drive_at(node, device)) if device else nullcontext()
    with node.exclusive(f"fio writing to {device}" if device else "fio"), held:
        return _stream(node, argv, runtime_s, on_progress)


def _stream(node: Node, argv: list[str], runtime_s: float, on_progress: Callable[[Progress], None]) -> FioOutcome:
    process = node.spawn(["sh", "-c", _REPORT_EXIT, "sh", *argv], load=True)
    timed_out = threading.Event()

    def stop_hung_job() -> None:
        timed_out.set()
        process.stop()

    watchdog = threading.Timer(runtime_s + GRACE_S, stop_hung_job)
    watchdog.start()
    last: FioResult | None = None
    last_text = ""
    status: int | None = None
    document: list[str] = []
    try:
        for line in process.lines():
            if line.startswith(_EXIT_MARKER):
                status = int(line.split()[-1])
                break
            if line == "{":
                document = [line]
            elif document:
                document.append(line)
                if line == "}":
                    text = "\n".join(document)
                    document = []
                    report = _report(text, node.name)
                    if report is not None:
                        if point := _progress(last, report):
                            on_progress(point)
                        last, last_text = report, text
    finally:
        watchdog.cancel()
        stopped = process.stop()
    return FioOutcome(result=last, report_text=last_text, exit_status=stopped if status is None else status,
                      stderr=process.stderr(), timed_out=timed_out.is_set())


def _report(text: str, node_name: str) -> FioResult | None:
    try:
        return parse_fio_json(text, f"{node_name}: fio")
    except ParseError:
        return None  # a report torn by a killed fio: the previous one stands


def _progress(previous: FioResult | None, report: FioResult) -> Progress | None:
    now = _totals(report)
    before = _totals(previous) if previous else (0, 0, 0, 0, 0)
    seconds = (now[0] - before[0]) / 1000
    if seconds <= 0:
        return None
    rates = [(a - b) / seconds for a, b in zip(now[1:], before[1:], strict=True)]
    return Progress(t_s=now[0] / 1000, read_bytes_s=rates[0], write_bytes_s=rates[1], read_iops=rates[2],
                    write_iops=rates[3], read_bytes=now[1], written_bytes=now[2])


def _totals(result: FioResult) -> tuple[float, int, int, int, int]:
    """(runtime ms, read bytes, written bytes, read ios, write ios) over all jobs of a report."""
    jobs = result.jobs
    return (max((_wall_ms(job, result) for job in jobs), default=0),
            sum(job.read.io_bytes for job in jobs), sum(job.write.io_bytes for job in jobs),
            sum(job.read.total_ios for job in jobs), sum(job.write.total_ios for job in jobs))


def _wall_ms(job: FioJob, result: FioResult) -> float:
    # With group_reporting, fio adds up the runtimes of the group's numjobs clones.
    clones = job.options.get("numjobs") or result.global_options.get("numjobs") or 1
    return job.runtime_ms / max(1, int(clones))


def kernel_events(node: Node, device_name: str, lines: int = 8) -> list[str]:
    """The last kernel-log lines of trouble with the device (why a job failed or hung)."""
    device = re.compile(re.escape(re.sub(r"n\d+$", "", device_name)))  # nvme0n1 -> nvme0: the controller too
    return [line for line in node.kernel_log().splitlines()
            if device.search(line) and _TROUBLE.search(line)][-lines:]


# I/O errors, timeouts, controller resets and removal, a capacity that dropped to 0 (drive gone)
_TROUBLE = re.compile(r"error|timeout|reset|fail|abort|remov|offline|capacity change from \d+ to 0\b", re.IGNORECASE)
