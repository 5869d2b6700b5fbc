"""Profiles: what a node is, how to reach it and what it must meet.

`profiles/<node>.yaml` is found by node name and may `extends:` shared bases (a file or a list,
relative to the file itself or to the profiles folder). Bases are merged first, the file on top
(mappings merge key by key, everything else is replaced). The merged result is validated by
pydantic; errors name the file that set the key, the key and what was expected.
"""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from qualify.durations import parse_duration
from qualify.errors import ProfileError
from qualify.names import check_node_name

# ---------------------------------------------------------------- value types


def _duration(value: Any) -> float:
    # zero passes here (a wait may be skipped); each field's own bound (gt=0) refuses it where it means nothing
    return parse_duration(value, allow_zero=True)


def _hex_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a revision like 0x435")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*(0x)?[0-9a-fA-F]+\s*", value):
        return int(value, 16)
    raise ValueError(f"expected a hexadecimal revision like 0x435, got {value!r}")


_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKMGT]?)(?:bit(?:/s)?|bps)?\s*")
_RATE_FACTORS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _rate(value: Any) -> float:
    """Bits per second from 10G, 9.4Gbit/s, 940M or a plain number (decimal units, as iperf3 and ethtool)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    if isinstance(value, str) and len(value) < 40 and (m := _RATE.fullmatch(value)) and float(m[1]) > 0:
        return float(m[1]) * _RATE_FACTORS[m[2]]
    raise ValueError(f"expected a rate like 10G, 9.4Gbit/s or 940M, got {value!r}")


Seconds = Annotated[float, BeforeValidator(_duration)]
Revision = Annotated[int, BeforeValidator(_hex_int)]
BitsPerSecond = Annotated[float, BeforeValidator(_rate)]


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf/.nan are never a limit


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from None
    return value


def _absolute(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError(f"expected an absolute path, got {value!r}")
    return value


# ---------------------------------------------------------------- sections


class SshSettings(_Strict):
    config_file: str | None = Field(None, description="ssh_config file passed to ssh -F")
    user: str | None = Field(None, description="login name (ssh -l); default: ssh's own (its config, then yours)")
    port: int | None = Field(None, ge=1, le=65535, description="ssh port (ssh -p); default: ssh's own, 22")
    identity_file: str | None = Field(None, description="private key file (ssh -i)")
    known_hosts_file: str | None = Field(None, description="known_hosts file instead of ~/.ssh/known_hosts")
    strict_host_key_checking: bool = Field(True, description="refuse a host whose key is unknown or changed")
    connect_timeout: Seconds = Field(10.0, gt=0, description="ssh ConnectTimeout of every connection")

    _abs = field_validator("config_file", "identity_file", "known_hosts_file")(_absolute)


class Paths(_Strict):
    """Where the checks read the node's kernel interfaces; a prepared tree for tests and the lab."""

    sysfs: str = Field("/sys", description="absolute path of the node's sysfs")
    procfs: str = Field("/proc", description="absolute path of the node's procfs")
    firmware: str = Field("/lib/firmware", description="the node's microcode files (intel-ucode/, amd-ucode/)")
    kernel_log: str | None = Field(None, description="file to read the kernel log from instead of journalctl/dmesg")

    _abs = field_validator("sysfs", "procfs", "firmware", "kernel_log")(_absolute)


class MicrocodeSettings(_Strict):
    """Running microcode revision against the profile, the node's firmware files and the kernel log."""

    min_revision: Revision | None = Field(None, description="lowest acceptable running revision")
    require_early_load: bool = Field(False, description="fail when the kernel log shows no early (initramfs) "
                                                      "microcode update and the CPUs lack the newest offered revision")
    compare_firmware_files: bool = Field(True, description="compare the running revision with the newest the "
                                                          "node's firmware files offer (never in a VM)")
    engineering_sample: Literal["warn", "fail"] = Field("warn", description="an engineering-sample CPU: warn or fail")


class NetworkLink(_Strict):
    """One link of the node: tested with iperf3 against the peer node's end of it."""

    peer: str = Field(description="node name of the other end; its profile says how to reach it")
    interface: str = Field(description="this node's interface on the link, e.g. enp6s0f0")
    peer_address: str = Field(description="the peer's address on this link (cluster/Ceph network)")
    expected_rate: BitsPerSecond | None = Field(None, description="default: the negotiated speed (ethtool)")


class NetworkSettings(_Strict):
    """iperf3 over every link, each direction judged against its link's expected rate (see docs/checks/network.md)."""

    links: list[NetworkLink] = Field([], description="the node's links to test (default: found at run start from "
                                                     "the run's peers)")
    expected_rate: BitsPerSecond | None = Field(None, description="rate of every link whose entry names none "
                                                                  "(default: the link's negotiated speed)")
    streams: int = Field(4, ge=1, le=128, description="iperf3 -P")
    duration: Seconds = Field(10.0, gt=0, description="iperf3 -t, per direction")
    directions: list[Literal["forward", "reverse", "bidir"]] = Field(["forward", "reverse", "bidir"], min_length=1,
                                                                      description="iperf3 tests per link")
    min_share: float = Field(0.9, gt=0, le=1, description="share of the expected rate each direction must reach; "
                                                          "with no rate known the direction is unknown, not passed")
    port: int = Field(5201, ge=1, le=65535, description="iperf3 server port; the next free one of 10 is used")
    connect_timeout: Seconds = Field(10.0, gt=0, description="to reach the peer and its iperf3 server")
    max_retransmit_percent: float = Field(1.0, ge=0, description="retransmitted share of segments named as a cause")
    cpu_bound_percent: float = Field(90.0, gt=0, le=100, description="an end this busy is named as a cause")


class NicHealthSettings(_Strict):
    """Link state, PCIe link, module diagnostics, MTU, pings and error counters under load (docs/checks/nic_health.md)."""

    mtu: int | None = Field(None, ge=68, le=65535, description="expected MTU of every link (default: agree with the peer)")
    ping_count: int = Field(20, ge=1, description="pings per link while the link is loaded")
    max_ping_loss_percent: float = Field(0.0, ge=0, le=100, description="ping loss allowed under load, %")
    max_ping_rtt_ms: float = Field(5.0, gt=0, description="average round trip under load")
    load_duration: Seconds = Field(5.0, gt=0, description="iperf3 load while counters and ping are watched")


class SoakSettings(_Strict):
    duration: Seconds = Field(12 * 3600.0, gt=0, description="length of `qualify soak` unless DURATION= is given")
    idle_phase: Seconds = Field(1800.0, gt=0, description="idle phases: boards often freeze idle, in deep C-states")
    load_phase: Seconds = Field(1800.0, gt=0, description="stress-ng on all CPUs")
    progress_interval: Seconds = Field(60.0, gt=0, description="how often a plain progress line is printed")


class TelemetrySettings(_Strict):
    """The node-side sampler that runs during long checks (temperatures, clocks, power, load)."""

    interval: Seconds = Field(1.0, gt=0, description="time between samples")
    rename: dict[str, str] = Field({}, description="series name -> name to show, e.g. 'temp:acpitz/temp1': board")
    ignore: list[str] = Field([], description="series to drop, shell patterns like 'temp:nct6798/AUXTIN*'")


class ThermalSettings(_Strict):
    """Thermal soak: stress-ng on every CPU; defaults suit a laptop-class CPU in a 1U case."""

    method: str = Field("matrixprod", pattern=r"^[a-z0-9_-]+$", description="stress-ng --cpu-method")
    idle_lead_in: Seconds | None = Field(None, description="idle before the load (default 10% of duration, at most 5m)")
    cool_down: Seconds | None = Field(None, description="idle after the load (default 10% of duration, at most 5m)")
    slice: Seconds = Field(60.0, gt=0, description="stress-ng runs in slices this long: bogo ops/s over time")
    max_package_temp_c: float = Field(95.0, gt=0, lt=150)
    max_throttled_share: float = Field(0.02, ge=0, le=1, description="share of the load time spent throttling")
    min_sustained_clock_share: float = Field(
        0.9, ge=0, le=2, description="median all-core clock over the last part, as a share of the CPU's own "
                                     "nominal clock (base_frequency, amd-pstate/CPPC nominal, acpi-cpufreq P0)")
    min_sustained_clock_mhz: float | None = Field(None, ge=0, description="optional absolute floor for the same "
                                                                          "clock, MHz (e.g. what the workload needs)")
    sustained_window: float = Field(0.25, gt=0, le=1, description="last part of the load for sustained clock and slope")
    max_perf_drop_percent: float = Field(10.0, ge=0, le=100, description="bogo ops/s of the last slice vs the first")
    steady_slope_c_per_min: float = Field(1.0, gt=0, description="package temperature slope below which it is steady")
    require_steady_state: bool = False
    fan_hot_c: float = Field(60.0, gt=0, description="a fan that stops while the CPU is hotter than this fails")


class DriveSpec(_Strict):
    """Spec-sheet figures of a drive model; measured results must reach storage.min_share_of_spec of them."""

    seq_read_mb_s: float | None = Field(None, gt=0, description="1 MiB sequential read, MB/s")
    seq_write_mb_s: float | None = Field(None, gt=0, description="1 MiB sequential write, MB/s")
    rand_read_iops: float | None = Field(None, gt=0, description="4 KiB random read at depth")
    rand_write_iops: float | None = Field(None, gt=0, description="4 KiB random write at depth")
    pcie_gts: float | None = Field(None, gt=0, description="PCIe link speed the drive is built for, GT/s")
    pcie_width: int | None = Field(None, ge=1, le=32, description="PCIe lanes the drive is built for")


class StorageDrive(_Strict):
    """A drive of the node, named by serial or WWN (never by /dev name: those change between boots)."""

    serial: str | None = Field(None, min_length=1)
    wwn: str | None = Field(None, min_length=1)
    allow_destroy: bool = Field(False, description="write tests may destroy this drive's data")
    wipe: bool = Field(False, description="write even over a partition table or filesystem/RAID signature")
    spec: DriveSpec = DriveSpec()
    seller_power_on_hours: int | None = Field(None, ge=0, description="what the seller claimed")
    rated_endurance_tbw: float | None = Field(None, gt=0, description="rated TB written (spec sheet)")

    @model_validator(mode="after")
    def _one_identity(self) -> StorageDrive:
        if (self.serial is None) == (self.wwn is None):
            raise ValueError("expected exactly one of serial: or wwn:")
        return self

    @property
    def identity(self) -> str:
        return f"serial {self.serial}" if self.serial else f"WWN {self.wwn}"


# surface_read (every LBA read back) and write_verify (every LBA written and checked) cover the
# whole device and are not in the default matrix.
StorageJob = Literal["seq_read", "seq_write", "rand_read", "rand_write", "mixed", "sync_write", "surface_read",
                     "write_verify"]


class StorageSettings(_Strict):
    """The fio matrix and the sustained write (docs/checks/storage.md, docs/checks/storage_falloff.md)."""

    drives: list[StorageDrive] = Field([], description="drives to test, by serial or WWN (default: the node's "
                                                        "drives found at run start, read-only)")
    jobs: list[StorageJob] = Field(["seq_read", "seq_write", "rand_read", "rand_write", "mixed", "sync_write"],
                                   description="the fio matrix; write jobs run only on drives allowed to be destroyed")
    job_runtime: Seconds = Field(30.0, gt=0, description="length of each fio job of the matrix")
    queue_depth: int = Field(32, ge=1, le=4096, description="iodepth of the sequential and random jobs")
    random_jobs: int = Field(4, ge=1, le=256, description="numjobs of the random and mixed jobs")
    ioengine: Literal["io_uring", "libaio"] = Field("io_uring", description="fio --ioengine (io_uring needs fio 3.13)")
    min_share_of_spec: float = Field(0.7, gt=0, le=1, description="share of each spec figure a job must reach")
    # Ceph's BlueStore WAL writes 4 KiB with O_DSYNC at depth 1: drives with power-loss protection do
    # tens of thousands of these per second, consumer drives a few hundred.
    ceph_min_sync_write_iops: float = Field(5000.0, gt=0, description="4 KiB O_DSYNC writes at QD1 a drive must "
                                                                      "sustain to be fit for Ceph")
    sync_write_latency_us: dict[Literal["p50", "p99", "p99.9", "p99.99"], float] = Field(
        {"p99": 2000.0, "p99.99": 20000.0}, description="limits on the sync-write completion latency")
    sustained_duration: Seconds | None = Field(None, gt=0, description="sustained write length (default: duration)")
    falloff_share: float = Field(0.5, gt=0, lt=1, description="cache falloff: bandwidth below this share of the start; "
                                                              "a drive sustaining less than it fails")
    min_sustained_mb_s: float | None = Field(None, gt=0, description="steady bandwidth after the falloff must reach it")

    @field_validator("drives")
    @classmethod
    def _each_drive_once(cls, drives: list[StorageDrive]) -> list[StorageDrive]:
        # two entries of one drive would run two writers on it (and may disagree on allow_destroy)
        names = [d.identity.casefold() for d in drives]
        twice = sorted({d.identity for d in drives if names.count(d.identity.casefold()) > 1})
        if twice:
            raise ValueError(f"a drive is listed more than once: {', '.join(twice)}")
        return drives


class KnownDriveIssue(_Strict):
    """A published defect of a drive model/firmware (as in qualify/data/known_drive_issues.yaml)."""

    id: str = Field(min_length=1, description="short name of the issue")
    model: str = Field(min_length=1, description="regular expression searched in the drive's model")
    firmware: str = Field(".", description="regular expression searched in the drive's firmware revision")
    cliff_hours: int | None = Field(None, gt=0, description="power-on hours at which the defect strikes")
    cliff_margin: float = Field(0.1, ge=0, lt=1, description="share below the cliff that already rejects the drive")
    summary: str = Field(min_length=1, description="what goes wrong")
    advice: str = Field(min_length=1, description="what to do, as the source says")
    source: str = Field(min_length=1, description="the public source (bulletin, release notes, URL)")

    _patterns = field_validator("model", "firmware")(_regex)


class SsdHealthSettings(_Strict):
    max_percentage_used: float = Field(80.0, ge=0, description="NVMe percentage used / ATA wear-out")
    max_power_on_hours: int | None = Field(None, ge=0)
    seller_hours_tolerance: float = Field(0.1, ge=0, description="share above the seller's claim still accepted")
    max_media_errors: int = Field(0, ge=0, description="NVMe media errors, ATA 187, SAS uncorrected errors")
    max_reallocated_sectors: int = Field(0, ge=0, description="ATA 5 Reallocated_Sector_Ct")
    max_pending_sectors: int = Field(0, ge=0, description="ATA 197 Current_Pending_Sector, SAS pending defects")
    max_offline_uncorrectable: int = Field(0, ge=0, description="ATA 198 Offline_Uncorrectable")
    max_grown_defects: int = Field(0, ge=0, description="SAS elements in the grown defect list")
    max_failed_self_tests: int = Field(0, ge=0, description="failed entries anywhere in the drive's self-test log")
    max_unsafe_shutdowns: int | None = Field(None, ge=0)
    max_temperature_c: float = Field(70.0, gt=0)
    max_endurance_used: float = Field(0.8, gt=0, description="share of the rated TB written already used")
    known_issues: list[KnownDriveIssue] = Field([], description="published drive defects besides qualify's own list")


class DriveIdentitySettings(_Strict):
    """What an NVMe drive says it is: namespace, LBA format, cache, firmware (nvme id-ctrl / id-ns / list)."""

    min_namespace_share: float = Field(0.95, gt=0, le=1, description="namespace size / total NVM capacity below "
                                                                      "this is a shrunk namespace")


class SelftestSettings(_Strict):
    """The drives' own self-tests, started by qualify (read-only: a self-test does not write user data)."""

    extended: bool = Field(True, description="also run the extended test when the time it needs fits the budget")
    budget: Seconds | None = Field(None, gt=0, description="time for the tests of one drive (default: duration)")
    poll_interval: Seconds = Field(10.0, gt=0, description="time between progress reads")
    slack: float = Field(1.5, ge=1, description="a test may take this many times the drive's own estimate")
    short_minutes: float = Field(2.0, gt=0, description="short-test time assumed when the drive states none")


class DriveIntegritySettings(_Strict):
    """Every drive allowed to be destroyed: a fast fake-capacity probe, then every block written and read back."""

    probe: bool = Field(True, description="write and read back blocks at exponentially spaced offsets first")
    probe_per_octave: int = Field(4, ge=1, le=64, description="probe blocks per doubling of the offset")
    surface: bool = Field(True, description="write the whole surface (or `share` of it) and read it all back")
    share: float = Field(1.0, gt=0, le=1, description="share of the claimed capacity written and read back: the "
                                                      "length of the check (below 1: spread over `zones` stretches)")
    zones: int = Field(64, ge=1, le=4096, description="with share below 1: evenly spaced stretches tested")
    block_size: int = Field(4096, ge=4096, le=1 << 20, multiple_of=4096,
                            description="each block of this size carries its offset and the run's nonce")
    chunk_mib: int = Field(4, ge=1, le=64, description="size of each write and read")
    threads: int = Field(4, ge=1, le=64, description="writes or reads in flight at once")
    sample_interval: Seconds = Field(1.0, ge=0.1, le=3600, description="throughput over the surface sampled this often")
    slow_zone_share: float = Field(0.5, gt=0, lt=1, description="a stretch slower than this share of the pass's "
                                                                "median speed is a slow zone")
    slow_zones_fail: bool = Field(False, description="slow zones fail the drive (default: a warning)")
    progress_interval: Seconds = Field(30.0, ge=1, le=86400, description="how often progress with ETA is printed")

    @model_validator(mode="after")
    def _blocks_fit_chunks(self) -> DriveIntegritySettings:
        if (self.chunk_mib << 20) % self.block_size:
            raise ValueError(f"chunk_mib ({self.chunk_mib} MiB) must be a multiple of block_size ({self.block_size})")
        return self


class PowerLossProtectionSettings(_Strict):
    """4 KiB writes at queue depth 1 with and without O_DSYNC/fsync on the same drive: PLP, measured."""

    job_runtime: Seconds = Field(10.0, gt=0, le=3600, description="length of each of the two fio jobs")
    min_sync_share: float = Field(0.25, gt=0, le=1, description="sync-write IOPS below this share of plain-write "
                                                                "IOPS: no effective power-loss protection")
    sync: Literal["dsync", "fsync"] = Field("dsync", description="O_DSYNC on every write (Ceph's WAL) or an fsync "
                                                                  "after every write")


class MemorySettings(_Strict):
    """Memory burn-in: stress-ng --vm --verify (and stressapptest where installed) over most of the free memory."""

    duration: Seconds | None = Field(None, gt=0, description="length of the burn-in (default: the profile's duration)")
    share: float = Field(0.85, gt=0, le=0.95, description="share of MemAvailable to test; the rest is the OS's room")
    max_mib: int | None = Field(None, ge=16, description="upper bound of the tested size, MiB")
    min_mib: int = Field(256, ge=16, description="below this much testable memory the check cannot run")
    stressapptest: bool = Field(True, description="also run stressapptest where it is installed")
    expected_gib: float | None = Field(None, gt=0, description="installed memory the node must show (±5%)")
    expected_dimms: int | None = Field(None, ge=1, description="DIMMs dmidecode must list as populated")
    min_speed_mts: int | None = Field(None, gt=0, description="lowest acceptable configured DIMM speed, MT/s")


class IdlePowerSettings(_Strict):
    """Idle package power and C-state residency over a window after the load has settled."""

    settle: Seconds | None = Field(None, ge=0, description="wait before the window for earlier load to end "
                                                             "(default a quarter of the window, at most 30s)")
    window: Seconds | None = Field(None, gt=0, description="length of the idle measurement (default the profile's "
                                                            "duration, at most 3m)")
    interval: Seconds = Field(2.0, gt=0, description="time between C-state residency samples")
    max_package_w: float = Field(25.0, gt=0, description="highest acceptable average idle package power")
    max_busy_percent: float = Field(10.0, ge=0, le=100, description="above this CPU utilisation (/proc/stat) "
                                    "the node is not idle: idle power and residency are reported, not judged")
    min_deepest_residency: float = Field(0.5, ge=0, le=1,
                                         description="share of the window the CPUs must spend in their deepest C-state")


class PcieExpectation(_Strict):
    """What one PCIe function must reach, by its address or its vendor:device ids."""

    slot: str | None = Field(None, pattern=r"^[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$",
                             description="PCI address, e.g. 0000:03:00.0")
    ids: str | None = Field(None, pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$", description="vendor:device, e.g. 8086:10fb")
    min_speed_gts: float | None = Field(None, gt=0, description="lowest acceptable link speed, GT/s")
    min_width: int | None = Field(None, ge=1, le=32, description="fewest acceptable lanes")

    @model_validator(mode="after")
    def _names_a_device(self) -> PcieExpectation:
        if (self.slot is None) == (self.ids is None):
            raise ValueError("give either slot or ids")
        return self


class PcieSettings(_Strict):
    """Every PCIe link at idle and under load, and the AER counters across the run."""

    load: Seconds = Field(20.0, gt=0, description="length of the stress-ng load under which the links are read again")
    max_correctable_growth: int = Field(0, ge=0, description="corrected AER errors a device may gain during the run")
    expect: list[PcieExpectation] = Field([], description="per-device link expectations beyond what both ends can do")


class PlatformSettings(_Strict):
    """Facts an HA Proxmox/Ceph node needs: ECC, a hardware watchdog, IOMMU, the BIOS version."""

    ecc: Literal["required", "expected", "none"] = Field(
        "expected", description="required: no ECC fails; expected: no ECC is a warning; none: the board has none")
    watchdog: Literal["required", "expected", "off"] = Field(
        "expected", description="a hardware watchdog for HA fencing (softdog does not count)")
    iommu: Literal["required", "expected", "off"] = Field("expected", description="IOMMU/VT-d for passthrough")
    bios_version: str | None = Field(None, description="the BIOS version the node must run (dmi bios_version)")


class CpuCorrectnessSettings(_Strict):
    """Known-answer work pinned to each logical CPU in turn, then on all at once (silent data corruption)."""

    stressors: list[str] = Field(["cpu", "hash", "memcpy", "zlib", "qsort", "crypt"], min_length=1,
                                 description="stress-ng stressors that verify their results (--verify); those the "
                                 "node's stress-ng cannot verify are named and left out")
    cpu_method: str = Field("all", description="stress-ng --cpu-method: 'all' cycles every method")
    per_cpu: Seconds = Field(60.0, gt=0, le=86400, description="known-answer work on each logical CPU "
                             "(minutes per CPU for an acceptance run; OpenDCDiag-style fleets run longer)")
    all_cpus: Seconds = Field(120.0, gt=0, le=86400, description="then on every CPU at once (heat, power, shared caches)")
    retests: int = Field(2, ge=0, le=20, description="a CPU that fails is retested: reproducible fault or one-off")
    pin_sample_interval: Seconds = Field(0.5, ge=0.1, le=60, description="how often the workers' CPU is read back")


class Checks(_Strict):
    microcode: MicrocodeSettings = MicrocodeSettings()
    cpu_correctness: CpuCorrectnessSettings = CpuCorrectnessSettings()
    thermal: ThermalSettings = ThermalSettings()
    soak: SoakSettings = SoakSettings()
    network: NetworkSettings = NetworkSettings()
    nic_health: NicHealthSettings = NicHealthSettings()
    storage: StorageSettings = StorageSettings()
    ssd_health: SsdHealthSettings = SsdHealthSettings()
    selftest: SelftestSettings = SelftestSettings()
    drive_identity: DriveIdentitySettings = DriveIdentitySettings()
    drive_integrity: DriveIntegritySettings = DriveIntegritySettings()
    power_loss_protection: PowerLossProtectionSettings = PowerLossProtectionSettings()
    memory: MemorySettings = MemorySettings()
    idle_power: IdlePowerSettings = IdlePowerSettings()
    pcie: PcieSettings = PcieSettings()
    platform: PlatformSettings = PlatformSettings()


Severity = Literal["info", "warning", "error", "critical"]


class KernelLogSettings(_Strict):
    follow: bool = Field(True, description="follow the node's kernel log during the run")
    fail_on: list[Severity] = Field(["error", "critical"], description="event severities that fail the run")
    max_events_per_kind: int = Field(100, ge=1, description="further events of a kind are only counted")
    corrected_memory_errors: int = Field(
        0, ge=0, description="corrected memory errors (APEI/GHES corrected, EDAC CE) tolerated during a run; more "
                             "fail it (those logged before the run are reported, not judged)")
    fold_window: Seconds = Field(2.0, gt=0, description="lines of one fault (same kind and device) closer than this "
                                                         "are one event with a count")


class WatchSettings(_Strict):
    """The freeze watch that runs beside every check (qualify/watch)."""

    enabled: bool = Field(True, description="watch for freezes and reboots during every run")
    # below 0.2 s the controller's own scheduling jitter reads as a freeze of a healthy node
    heartbeat_interval: Seconds = Field(1.0, ge=0.2, description="time between the node's heartbeat lines")
    missed_heartbeats: int = Field(3, ge=2, description="a gap of this many intervals is a freeze")
    probe_interval: Seconds = Field(5.0, ge=0.2, description="independent reachability probe (new TCP connection)")
    last_lines: int = Field(50, ge=1, description="kernel-log/pstore lines attached to a freeze or reboot")
    netconsole: bool = Field(False, description="the node's kernel sends every message over UDP to the controller")
    netconsole_port: int = Field(6666, ge=0, le=65535, description="UDP port the controller listens on (0: any free)")
    kernel_log: KernelLogSettings = KernelLogSettings()


class ExportSettings(_Strict):
    """Results other tools read, written when a run (nightly, soak) finishes."""

    prometheus_textfile: str | None = Field(
        None, description="node_exporter textfile-collector file, e.g. /var/lib/prometheus/node-exporter/qualify.prom")

    _abs = field_validator("prometheus_textfile")(_absolute)


class ReportSettings(_Strict):
    refresh: Seconds = Field(60.0, ge=5, le=86400, description="report.html is re-rendered this often while a run "
                             "goes on, so a long soak can be opened at any time")


class HistorySettings(_Strict):
    """Each run against the node's own earlier runs of the same profile and checks (qualify/cluster/history.py)."""

    fail_on_regression: bool = Field(False, description="a measurement worse than its noise band fails the run")
    min_runs: int = Field(3, ge=2, le=1000, description="earlier runs needed before the band is known")
    last_runs: int = Field(10, ge=2, le=1000, description="the newest earlier runs the band comes from")
    sigmas: float = Field(3.0, gt=0, le=100, description="band half-width in standard deviations of those runs")
    min_band: float = Field(0.05, ge=0, le=1, description="the band is never narrower than this share of the mean")


class ClusterSettings(_Strict):
    tolerance: float = Field(0.10, gt=0, lt=10, description="siblings may differ from the median by this share "
                             "(Intel's cluster guidance keeps nodes within 10 %)")


CHECK_NAMES = tuple(sorted(p.stem for p in Path(__file__).with_name("checks").glob("[!_]*.py")))
# What a node with no profile of its own must qualify before it passes (see load_profile).
DEFAULT_REQUIRE = ("microcode", "thermal", "memory", "storage", "ssd_health", "network", "nic_health", "idle_power")


class Profile(_Strict):
    host: str = Field(description="localhost/local, or an SSH destination (~/.ssh/config aliases work)")
    description: str = Field("", description="free text about the node, for the reader of the profile")
    labels: dict[str, str] = Field({}, description="key: value recorded with every run (and --label on top)")
    duration: Seconds | None = Field(None, gt=0, description="overrides the length of long checks")
    require: list[str] | Literal["all"] = Field(
        [], description="checks that must run: one of them skipped ends the run incomplete (exit 2); `all`: every "
                        "check that ran")
    peers: list[str] = Field([], description="nodes at the far end of this node's links; with no checks.network.links "
                                             "the links to them are found at run start by asking them their addresses")
    command_timeout: Seconds = Field(120.0, gt=0, description="a node command that gives no own timeout is "
                                                             "stopped after this long")
    lock_wait: Seconds = Field(60.0, gt=0, description="how long a run waits for another run of the node to finish "
                                                       "its writes or load before it refuses (qualify/node/lock.py)")
    ssh: SshSettings = SshSettings()
    paths: Paths = Paths()
    checks: Checks = Checks()
    telemetry: TelemetrySettings = TelemetrySettings()
    watch: WatchSettings = WatchSettings()
    export: ExportSettings = ExportSettings()
    history: HistorySettings = HistorySettings()
    report: ReportSettings = ReportSettings()
    cluster: ClusterSettings = ClusterSettings()

    @field_validator("require")
    @classmethod
    def _known_checks(cls, value: list[str] | str) -> list[str] | str:
        unknown = [] if value == "all" else [name for name in value if name not in CHECK_NAMES]
        if unknown:  # a typo would otherwise require nothing
            raise ValueError(f"unknown check {', '.join(unknown)} (the checks are: {', '.join(CHECK_NAMES)}, or all)")
        return value

    @field_validator("host")
    @classmethod
    def _host_is_a_destination(cls, value: str) -> str:
        # A leading '-' would be read by ssh as an option; whitespace is never part of a host.
        if not value or value.startswith("-") or re.search(r"\s", value):
            raise ValueError(f"expected a host name, address or ssh alias, got {value!r}")
        return value

    @property
    def is_local(self) -> bool:
        return self.host in ("localhost", "local")


# ---------------------------------------------------------------- loading


class LoadedProfile(BaseModel):
    """A validated profile and the files it came from (most basic first)."""

    model_config = ConfigDict(frozen=True)
    node: str
    profile: Profile
    sources: tuple[str, ...]


def profiles_dir() -> Path:
    return Path(os.environ.get("QUALIFY_PROFILES", "profiles")).resolve()


def known_nodes(directory: Path | None = None) -> list[str]:
    """Node profiles: the top-level YAML files of the profiles folder."""
    directory = directory or profiles_dir()
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_profile(node: str, path: Path | None = None, overlays: list[Path] = (),
                 directory: Path | None = None) -> LoadedProfile:
    """Load `path` (default profiles/<node>.yaml) with its bases, then `overlays` on top."""
    check_node_name(node)  # profiles/<node>.yaml and reports/<node>/: a name, never a path
    directory = directory or profiles_dir()
    overlays = list(overlays)
    if path is None:
        path = directory / f"{node}.yaml"
        if not path.is_file() and overlays:  # a plug-in's node (the lab's) with no profile of its own
            path = overlays.pop(0)
        elif not path.is_file() and _is_destination(node):
            # No profile at all: the name is where to connect, and the core checks must run (see DEFAULT_REQUIRE).
            bare = Profile(host=node, require=list(DEFAULT_REQUIRE))
            return LoadedProfile(node=node, profile=bare, sources=(f"(no profile: {node} as an ssh destination)",))
        elif not path.is_file():
            known = ", ".join(known_nodes(directory)) or "none"
            raise ProfileError(f"no profile for node '{node}': {path} does not exist "
                               f"(known nodes: {known}; or give one with PROFILE=<file>, or use an ssh alias, "
                               f"a resolvable host name or localhost)")
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    sources: list[str] = []
    for file in [*_with_bases(Path(path), directory, (), []), *overlays]:
        data = _read_yaml(file)
        data.pop("extends", None)
        _merge(merged, data, origin, str(file), ())
        sources.append(str(file))
    try:
        profile = Profile.model_validate(merged)
    except ValidationError as exc:
        raise ProfileError(_explain(exc, origin, str(path))) from None
    return LoadedProfile(node=node, profile=profile, sources=tuple(sources))


def _is_destination(node: str) -> bool:
    """localhost, an ssh alias with a HostName (`ssh -G`), or a name that resolves: a node without a profile."""
    if node in ("localhost", "local"):
        return True
    try:
        shown = subprocess.run(["ssh", "-G", "--", node], check=False, capture_output=True, text=True,
                               timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        shown = ""
    if any(line.split()[1:2] not in ([], [node]) for line in shown.splitlines() if line.startswith("hostname ")):
        return True
    try:
        socket.getaddrinfo(node, 22)
    except (OSError, UnicodeError):
        return False
    return True


MAX_PROFILE_FILES = 32  # a file and its bases; more is a mistake (or extends: fanning out exponentially)


def _with_bases(path: Path, directory: Path, chain: tuple[Path, ...], seen: list[Path]) -> list[Path]:
    path = path.resolve()
    if path in chain:
        raise ProfileError(f"{path}: extends itself through {' -> '.join(map(str, chain))}")
    seen.append(path)
    if len(seen) > MAX_PROFILE_FILES:
        raise ProfileError(f"{chain[0] if chain else path}: extends: more than {MAX_PROFILE_FILES} files "
                           f"with their bases")
    bases = _read_yaml(path).get("extends") or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ProfileError(f"{path}: extends: expected a file name or a list of file names")
    files: list[Path] = []
    for base in bases:
        candidates = [path.parent / base, directory / base]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ProfileError(f"{path}: extends: {base} not found (looked in {path.parent} and {directory})")
        files += _with_bases(found, directory, (*chain, path), seen)
    return [*files, path]


# A profile is a few kilobytes, a handful of levels deep, with a few hundred values. These bounds
# keep a hostile or broken file (an alias bomb, 20,000 nested '[') to milliseconds and megabytes.
MAX_PROFILE_BYTES = 64 * 1024
MAX_YAML_DEPTH = 32
MAX_YAML_VALUES = 20_000  # every scalar and collection, counted once per alias that repeats it


class _Refused(yaml.YAMLError):
    """What the profile reader refuses on purpose (the message says why)."""


class _ProfileLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses duplicate keys, nesting deeper than MAX_YAML_DEPTH and more
    than MAX_YAML_VALUES values as written (_expanded_size counts them with aliases expanded)."""

    def __init__(self, text: str, name: str):
        super().__init__(text)
        self.name = name  # marks (line, column) name the file
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # composing is recursive: refuse before Python's recursion limit does, with a line number
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(f"line {self.peek_event().start_mark.line + 1}: nested deeper than "
                               f"{MAX_YAML_DEPTH} levels")
            self._nodes += 1
            if self._nodes > MAX_YAML_VALUES:
                raise _Refused(f"more than {MAX_YAML_VALUES} values: not a profile")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key, line = (key_node.tag, key_node.value), key_node.start_mark.line + 1
                if key in first:  # PyYAML would keep the last one silently
                    raise _Refused(f"line {line}: key '{_shorten(key_node.value)}' appears twice "
                                   f"(lines {first[key]} and {line})")
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, depth: int, memo: dict[int, tuple[int, int]], active: set[int]) -> tuple[int, int]:
    """(values, height) of `node` with every alias expanded, each shared node measured once.

    Aliases make the document a graph: a few hundred bytes can stand for billions of values, which
    the merge, the validation and an error message would each walk."""
    if id(node) in memo:
        size, height = memo[id(node)]
    elif id(node) in active:
        raise _Refused(f"line {node.start_mark.line + 1}: an alias refers to the collection it is part of")
    else:
        if depth > MAX_YAML_DEPTH:
            raise _Refused(f"line {node.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels "
                           f"(through aliases)")
        active.add(id(node))
        children = [] if isinstance(node, yaml.ScalarNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        size, height = 1, 0
        for child in children:
            child_size, child_height = _expanded_size(child, depth + 1, memo, active)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_YAML_VALUES:
                break
        active.discard(id(node))
        memo[id(node)] = (size, height)
    if depth + height > MAX_YAML_DEPTH:
        raise _Refused(f"line {node.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels (through aliases)")
    if size > MAX_YAML_VALUES:
        raise _Refused(f"more than {MAX_YAML_VALUES} values once anchors and aliases (&, *) are expanded")
    return size, height


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: larger than {MAX_PROFILE_BYTES // 1024} KiB: not a profile")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ProfileError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                           f"save the profile as UTF-8") from None
    try:
        loader = _ProfileLoader(text, str(path))
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML reads printable text only
        line = text[:exc.position].count("\n") + 1
        raise ProfileError(f"{path}: line {line}: character {exc.character:#06x} is not allowed in YAML") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, 0, {}, set())
        data = None if node is None else loader.construct_document(node)
    except _Refused as exc:
        raise ProfileError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more digits than Python converts
        raise ProfileError(f"{path}: not valid YAML: a value cannot be read: {_shorten(str(exc))}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping of keys (host:, paths:, checks: ...), "
                           f"got {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: where, what, and in what (no source snippet)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        text = f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}: {exc.problem}"
        if exc.context:
            text += f" ({exc.context}" + (f" at line {exc.context_mark.line + 1})" if exc.context_mark else ")")
        return _shorten(text, 300)
    return _shorten(str(exc), 300)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _merge(into: dict, data: dict, origin: dict, source: str, prefix: tuple[str, ...]) -> None:
    for key, value in data.items():
        loc = (*prefix, str(key))
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, origin, source, loc)
        else:
            into[key] = value
            origin[loc] = source
            for sub in _leaf_keys(value, loc):
                origin[sub] = source


def _leaf_keys(value: Any, loc: tuple[str, ...]):
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*loc, str(key))
            yield from _leaf_keys(sub, (*loc, str(key)))


MAX_ERROR_LINES = 20


def _explain(exc: ValidationError, origin: dict, default_file: str) -> str:
    lines = []
    errors = exc.errors()
    for error in errors[:MAX_ERROR_LINES]:
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        file = next((origin[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in origin), default_file)
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            what = "unknown key" + (f" (expected one of: {', '.join(allowed)})" if allowed else "")
        elif error["type"] == "missing":
            what = "required key is missing"
        else:
            what = error["msg"].removeprefix("Value error, ")
            value = error.get("input")
            # our own messages say what they got; collections would only repeat the file
            if "got " not in what and (value is None or isinstance(value, (str, int, float, bool))):
                what += f" (got {_shorten(repr(value))})"
        lines.append(f"{file}: {_shorten(key, 120)}: {what}")
    if len(errors) > MAX_ERROR_LINES:
        lines.append(f"... and {len(errors) - MAX_ERROR_LINES} more")
    return "invalid profile:\n  " + "\n  ".join(lines)


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    """The keys the section at `loc` takes; list indexes and mapping keys walk into the item type."""
    model: Any = Profile
    for part in loc:
        model = _unwrap(model)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                return []
            model = field.annotation
        elif get_origin(model) in (list, tuple, set, frozenset, dict) and get_args(model):
            model = get_args(model)[-1]  # the item type (a mapping's value type)
        else:
            return []
    model = _unwrap(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """X of Annotated[X, ...] and of X | None."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else annotation
    return annotation
