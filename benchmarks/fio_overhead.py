"""What running fio through qualify costs: IOPS through qualify ÷ IOPS of plain fio, same loop device,
same job, same run, rounds interleaved (the machine is shared and noisy: only the ratio means something).

qualify adds a JSON report a second (--status-interval=1), parsed as it streams, and the wrapper
that ties fio to the controller. Goal: ratio >= 0.97. Needs root (makes and removes a loop device).

    .venv/bin/python benchmarks/fio_overhead.py [SECONDS_PER_RUN] [ROUNDS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from bench_loop import bench_loop

from qualify.node import LocalNode
from qualify.parsers.fio import parse_fio_json
from qualify.profile import Profile, StorageSettings
from qualify.storage.jobs import matrix_job
from qualify.storage.runner import run_fio

JOB = "rand_read"


def plain_fio_iops(argv: list[str]) -> float:
    plain = [arg for arg in argv if arg != "--status-interval=1"]
    result = parse_fio_json(subprocess.run(plain, capture_output=True, text=True, check=True).stdout)
    return sum(job.read.iops + job.write.iops for job in result.jobs)


def qualify_iops(node: LocalNode, argv: list[str], seconds: float) -> float:
    outcome = run_fio(node, argv, seconds, lambda progress: None)
    if outcome.failed or outcome.result is None:
        raise SystemExit(f"fio through qualify failed: {outcome.failed}")
    return sum(job.read.iops + job.write.iops for job in outcome.result.jobs)


def main(seconds: float = 5.0, rounds: int = 3) -> None:
    with bench_loop(256 << 20) as device:
        node = LocalNode("local", Profile(host="localhost"))
        argv = matrix_job(JOB, StorageSettings()).argv(device, seconds, "io_uring")
        ratios = []
        for round_ in range(rounds):
            plain = plain_fio_iops(argv)
            through = qualify_iops(node, argv, seconds)
            ratios.append(through / plain)
            print(f"round {round_ + 1}: plain fio {plain:,.0f} IOPS, through qualify {through:,.0f} IOPS, "
                  f"ratio {through / plain:.3f}")
    print(f"{JOB} on {device}, {seconds:g} s x {rounds} rounds: median ratio qualify/plain = "
          f"{statistics.median(ratios):.3f} (goal >= 0.97)")


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:2]), *(int(a) for a in sys.argv[2:3]))
