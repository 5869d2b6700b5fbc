"""stress-ng on a node: one description of the load, its command line, the run through the node and
its figures (parsed by qualify/parsers/stress_ng.py). Thermal, soak and memory all load the node this way.

    job = StressJob("cpu", timeout_s=60, method="matrixprod")        # --cpu 0: one worker per online CPU
    run = run_stress(node, job)                                       # waits; never raises for stress-ng itself
    run.check(node.name, what="slice")                                # QualifyError naming exit status and output
    [cpu] = run.metrics(node.name)                                    # bogo ops/s of the stressor

    process = spawn_stress(node, StressJob("cpu", 1800, quiet=True, metrics=False))   # background load
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from qualify.errors import QualifyError
from qualify.node import Node, NodeProcess
from qualify.parsers.stress_ng import StressorMetrics, parse_stress_ng, stress_ng_failures

GRACE_S = 60.0  # beyond its timeout: stress-ng may take this long to start and stop (or unmap) its workers
# stress-ng's own exit statuses (its manual, EXIT STATUS)
_EXIT_MEANING = {1: "bad options or a fatal error in stress-ng", 2: "a stressor failed",
                 3: "a stressor lacked resources such as memory", 4: "a stressor is not implemented here",
                 5: "a stressor was killed by an unexpected signal", 6: "a stressor exited unexpectedly",
                 7: "the bogo-ops metrics may be untrustworthy"}


class StressNgFailed(QualifyError):
    """stress-ng ended with a non-zero status: names the node, the status and the last lines it printed."""


@dataclass(frozen=True)
class StressJob:
    """One stress-ng invocation. workers 0 = one per online CPU (stress-ng's own rule)."""

    stressor: str                           # cpu, vm, matrix, ... (stress-ng --<stressor> N)
    timeout_s: float
    workers: int = 0
    method: str | None = None               # --<stressor>-method (cpu: matrixprod, vm: all ...)
    verify: bool = False                    # --verify: the stressor checks its results (memory errors)
    cpus: Sequence[int] | str | None = None  # --taskset: pin the workers to these CPUs ("0-3,8" or [0, 1])
    metrics: bool = True                    # --metrics-brief: bogo ops/s to judge throughput by
    quiet: bool = False
    extra: tuple[str, ...] = field(default=())  # further options, e.g. ("--vm-bytes", "512m", "--vm-keep")

    @property
    def seconds(self) -> int:
        return max(1, round(self.timeout_s))

    def argv(self) -> list[str]:
        argv = ["stress-ng", f"--{self.stressor}", str(self.workers)]
        if self.method:
            argv += [f"--{self.stressor}-method", self.method]
        if self.verify:
            argv.append("--verify")
        if self.cpus is not None:
            argv += ["--taskset", cpu_list(self.cpus)]
        argv += [*self.extra, "--timeout", f"{self.seconds}s"]
        if self.metrics:
            argv.append("--metrics-brief")
        if self.quiet:
            argv.append("--quiet")
        return argv


@dataclass(frozen=True)
class StressRun:
    """What one finished stress-ng run left: status, output (stdout + stderr), wall-clock span."""

    job: StressJob
    command: str
    returncode: int
    output: str
    started: float   # time.time()
    ended: float

    @property
    def failures(self) -> list[str]:
        """stress-ng's "fail:" messages (how --verify reports a bad bit)."""
        return stress_ng_failures(self.output)

    def metrics(self, node_name: str) -> list[StressorMetrics]:
        """The bogo-ops table; ParseError naming the node and command when stress-ng printed none."""
        return parse_stress_ng(self.output, f"{node_name}: {self.command}")

    def check(self, node_name: str, what: str = "run") -> None:
        """StressNgFailed unless stress-ng exited 0: '... ended early with exit status 137 (killed by SIGKILL)
        after 3 s of a 60 s slice: <its last two lines>'."""
        if self.returncode == 0:
            return
        tail = "; ".join(self.output.strip().splitlines()[-2:]) or "no output"
        raise StressNgFailed(f"{node_name}: stress-ng ended early with {exit_status(self.returncode)} after "
                             f"{self.ended - self.started:.0f} s of a {self.job.seconds} s {what}: {tail}")


def run_stress(node: Node, job: StressJob, grace_s: float = GRACE_S) -> StressRun:
    """Run the job to its end on the node (a command timeout past timeout + grace is the node's error)."""
    started = time.time()
    result = node.run(job.argv(), timeout_s=job.seconds + grace_s, check=False)
    return StressRun(job=job, command=result.command, returncode=result.returncode,
                     output=result.stdout + result.stderr, started=started, ended=time.time())


def spawn_stress(node: Node, job: StressJob) -> NodeProcess:
    """Start the job in the background (a load phase); stop() ends it early."""
    return node.spawn(job.argv())


def cpu_list(cpus: Sequence[int] | str) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (stress-ng's --taskset and taskset -c syntax); a string is passed as given."""
    if isinstance(cpus, str):
        return cpus
    numbers = sorted(set(cpus))
    if not numbers:
        raise ValueError("stress-ng --taskset: no CPUs given")
    ranges: list[tuple[int, int]] = []
    start = previous = numbers[0]
    for number in numbers[1:]:
        if number != previous + 1:
            ranges.append((start, previous))
            start = number
        previous = number
    ranges.append((start, previous))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def exit_status(code: int) -> str:
    """'exit status 137 (killed by SIGKILL)': locally a signal shows as -9, through ssh/sh as 128+9;
    stress-ng's own statuses are named too ('exit status 3 (a stressor lacked resources such as memory)')."""
    number = -code if code < 0 else code - 128 if 128 < code < 160 else None
    if number:
        try:
            return f"exit status {code} (killed by {signal.Signals(number).name})"
        except ValueError:
            pass
    meaning = _EXIT_MEANING.get(code)
    return f"exit status {code} ({meaning})" if meaning else f"exit status {code}"
