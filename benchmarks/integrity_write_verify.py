"""What the full-surface write-verify costs against the drive: its write pass ÷ plain fio's sequential
write (1 MiB, QD32, O_DIRECT, once over the device), same loop device, same run, rounds interleaved (the
machine is shared and noisy: only the ratio means something). Its read-back ÷ fio's sequential read too.

The write-verify runs as drive_integrity runs it: through the node layer (tether, run lock), the guard and
the device hold, with its own per-block headers and read-back compare. The loop device does direct I/O
onto a preallocated file, so both measure the same disk, not the page cache. Goal: write ratio >= 0.9.
Needs root (makes and removes a loop device).

    .venv/bin/python benchmarks/integrity_write_verify.py [SIZE_MIB] [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from bench_loop import bench_loop

from qualify.node import LocalNode
from qualify.parsers.fio import parse_fio_json
from qualify.profile import DriveIntegritySettings, Profile
from qualify.storage.integrity import Geometry, run_surface, surface_regions

SERIAL = f"QLAB-bench-integrity-{os.getpid()}"


def plain_fio(device: str, size: int, rw: str) -> float:
    """Bytes per second of one sequential pass of plain fio over the device."""
    argv = ["fio", "--name=plain", f"--filename={device}", f"--rw={rw}", "--bs=1M", "--iodepth=32", "--direct=1",
            "--ioengine=libaio", f"--size={size}", "--output-format=json"]
    result = parse_fio_json(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    direction = result.jobs[0].write if rw == "write" else result.jobs[0].read
    return direction.bandwidth_bytes_s


def write_verify(node: LocalNode, device: str, size: int) -> tuple[float, float]:
    """(write, read-back) bytes per second of one drive_integrity surface pass over the device."""
    settings = DriveIntegritySettings()
    geometry = Geometry(nonce=int.from_bytes(os.urandom(7), "little"), block=settings.block_size,
                        chunk=settings.chunk_mib << 20, threads=settings.threads, interval_s=1.0)
    outcome = run_surface(node, device, geometry, surface_regions(size, 1.0, geometry.block, geometry.chunk, 1),
                          lambda rate: None)
    if outcome.failed or outcome.mismatch or outcome.io_error:
        raise SystemExit(f"the write-verify failed: {outcome.failed or outcome.mismatch or outcome.io_error}")
    (written, write_s), (read, read_s) = outcome.done["write"], outcome.done["read"]
    return written / write_s, read / read_s


def main(size_mib: int = 1024, rounds: int = 3) -> None:
    size = size_mib << 20
    with bench_loop(size, preallocated=True, serial=SERIAL) as device:
        profile = Profile.model_validate({"host": "localhost", "checks": {"storage": {"drives": [
            {"serial": SERIAL, "allow_destroy": True}]}}})
        node = LocalNode("local", profile)
        writes, reads = [], []
        for round_ in range(rounds):
            fio_write = plain_fio(device, size, "write")
            ours_write, ours_read = write_verify(node, device, size)
            fio_read = plain_fio(device, size, "read")
            writes.append(ours_write / fio_write)
            reads.append(ours_read / fio_read)
            print(f"round {round_ + 1}: write {ours_write / 1e6:,.0f} MB/s vs plain fio {fio_write / 1e6:,.0f} MB/s "
                  f"(ratio {writes[-1]:.3f}); read-back {ours_read / 1e6:,.0f} MB/s vs fio {fio_read / 1e6:,.0f} "
                  f"MB/s (ratio {reads[-1]:.3f})")
    print(f"drive_integrity write-verify on {device} ({size_mib} MiB, {rounds} rounds): median write ratio "
          f"{statistics.median(writes):.3f} (goal >= 0.9), read-back ratio {statistics.median(reads):.3f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
