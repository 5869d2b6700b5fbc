"""The fio jobs qualify runs: the performance matrix, the sustained write, as fio command lines."""

from __future__ import annotations

from dataclasses import dataclass

from qualify.profile import StorageJob, StorageSettings

# What fio reports as completion-latency percentiles (the profile's limits use these names).
PERCENTILES = {"p50": 50.0, "p99": 99.0, "p99.9": 99.9, "p99.99": 99.99}


@dataclass(frozen=True)
class FioJobSpec:
    name: str  # the profile's job name: "seq_read", "sync_write", "sustained_write", ...
    title: str  # what a person reads: "sequential read 1 MiB QD32"
    writes: bool
    options: tuple[str, ...]  # fio options without the device, engine and run length
    whole_device: bool = False  # runs once over every LBA instead of for the job runtime

    def argv(self, device: str, runtime_s: float, ioengine: str, dsync: bool = True) -> list[str]:
        """The command line; without `dsync` (fio older than 3.28) sync writes use O_SYNC, which is stricter."""
        options = [option if dsync or option != "--sync=dsync" else "--sync=1" for option in self.options]
        length = [] if self.whole_device else ["--time_based", f"--runtime={max(1, round(runtime_s))}s"]
        return ["fio", f"--name={self.name}", f"--filename={device}", f"--ioengine={ioengine}", "--direct=1",
                *length, "--group_reporting", "--eta=never",
                f"--percentile_list={':'.join(f'{p:g}' for p in PERCENTILES.values())}",
                "--output-format=json", "--status-interval=1", *options]


def matrix_job(name: StorageJob, settings: StorageSettings) -> FioJobSpec:
    depth, jobs = settings.queue_depth, settings.random_jobs
    random = ("--bs=4k", f"--iodepth={depth}", f"--numjobs={jobs}", "--randrepeat=0", "--norandommap")
    specs = {
        "seq_read": FioJobSpec(name, f"sequential read 1 MiB QD{depth}", False,
                               ("--rw=read", "--bs=1M", f"--iodepth={depth}")),
        "seq_write": FioJobSpec(name, f"sequential write 1 MiB QD{depth}", True,
                                ("--rw=write", "--bs=1M", f"--iodepth={depth}")),
        "rand_read": FioJobSpec(name, f"random read 4 KiB QD{depth} x {jobs} jobs", False, ("--rw=randread", *random)),
        "rand_write": FioJobSpec(name, f"random write 4 KiB QD{depth} x {jobs} jobs", True,
                                 ("--rw=randwrite", *random)),
        "mixed": FioJobSpec(name, f"mixed 70/30 read/write 4 KiB QD{depth} x {jobs} jobs", True,
                            ("--rw=randrw", "--rwmixread=70", *random)),
        # What BlueStore's WAL does: 4 KiB writes at depth 1, each durable (O_DSYNC) before the next.
        "sync_write": FioJobSpec(name, "4 KiB sync write QD1 (O_DIRECT + O_DSYNC, as Ceph's WAL)", True,
                                 ("--rw=write", "--bs=4k", "--iodepth=1", "--numjobs=1", "--sync=dsync")),
        "surface_read": FioJobSpec(name, "full-surface read (every LBA)", False,
                                   ("--rw=read", "--bs=1M", f"--iodepth={depth}"), whole_device=True),
        # crc32c in every block, read back and checked after the write pass; the first mismatch fails fio.
        # No verify state file: fio would leave it in the current directory.
        "write_verify": FioJobSpec(name, "full-surface write and verify (every LBA)", True,
                                   ("--rw=write", "--bs=1M", f"--iodepth={depth}", "--verify=crc32c",
                                    "--do_verify=1", "--verify_fatal=1", "--verify_state_save=0"),
                                   whole_device=True),
    }
    return specs[name]


def sustained_write_job() -> FioJobSpec:
    """Sequential 1 MiB writes for a long time: where the drive's cache runs full, bandwidth falls."""
    return FioJobSpec("sustained_write", "sustained sequential write 1 MiB QD32", True,
                      ("--rw=write", "--bs=1M", "--iodepth=32"))
