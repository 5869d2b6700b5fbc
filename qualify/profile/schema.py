"""What the checks require: each check's settings and limits, the watch, exports and the whole
`Profile` (the root of the schema; docs/profile-reference.md is generated from it by qualify/docs.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from qualify.profile.types import (
    BitsPerSecond,
    NetworkLink,
    Paths,
    PcieExpectation,
    Revision,
    Seconds,
    SshSettings,
    StorageDrive,
    Strict,
    absolute_path,
    regular_expression,
)


class MicrocodeSettings(Strict):
    """Running microcode revision against the profile, the node's firmware files and the kernel log."""

    min_revision: Revision | None = Field(None, description="lowest acceptable running revision")
    require_early_load: bool = Field(False, description="fail when the kernel log shows no early (initramfs) "
                                                      "microcode update and the CPUs lack the newest offered revision")
    compare_firmware_files: bool = Field(True, description="compare the running revision with the newest the "
                                                          "node's firmware files offer (never in a VM)")
    engineering_sample: Literal["warn", "fail"] = Field("warn", description="an engineering-sample CPU: warn or fail")


class NetworkSettings(Strict):
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


class NicHealthSettings(Strict):
    """Link state, PCIe link, module diagnostics, MTU, pings and error counters under load
    (docs/checks/nic_health.md)."""

    mtu: int | None = Field(None, ge=68, le=65535,
                            description="expected MTU of every link (default: agree with the peer)")
    ping_count: int = Field(20, ge=1, description="pings per link while the link is loaded")
    max_ping_loss_percent: float = Field(0.0, ge=0, le=100, description="ping loss allowed under load, %")
    max_ping_rtt_ms: float = Field(5.0, gt=0, description="average round trip under load")
    load_duration: Seconds = Field(5.0, gt=0, description="iperf3 load while counters and ping are watched")


class SoakSettings(Strict):
    duration: Seconds = Field(12 * 3600.0, gt=0, description="length of `qualify soak` unless DURATION= is given")
    idle_phase: Seconds = Field(1800.0, gt=0, description="idle phases: boards often freeze idle, in deep C-states")
    load_phase: Seconds = Field(1800.0, gt=0, description="stress-ng on all CPUs")
    progress_interval: Seconds = Field(60.0, gt=0, description="how often a plain progress line is printed")


class TelemetrySettings(Strict):
    """The node-side sampler that runs during long checks (temperatures, clocks, power, load)."""

    interval: Seconds = Field(1.0, gt=0, description="time between samples")
    rename: dict[str, str] = Field({}, description="series name -> name to show, e.g. 'temp:acpitz/temp1': board")
    ignore: list[str] = Field([], description="series to drop, shell patterns like 'temp:nct6798/AUXTIN*'")


class ThermalSettings(Strict):
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


# surface_read (every LBA read back) and write_verify (every LBA written and checked) cover the
# whole device and are not in the default matrix.
StorageJob = Literal["seq_read", "seq_write", "rand_read", "rand_write", "mixed", "sync_write", "surface_read",
                     "write_verify"]


class StorageSettings(Strict):
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


class KnownDriveIssue(Strict):
    """A published defect of a drive model/firmware (as in qualify/data/known_drive_issues.yaml)."""

    id: str = Field(min_length=1, description="short name of the issue")
    model: str = Field(min_length=1, description="regular expression searched in the drive's model")
    firmware: str = Field(".", description="regular expression searched in the drive's firmware revision")
    cliff_hours: int | None = Field(None, gt=0, description="power-on hours at which the defect strikes")
    cliff_margin: float = Field(0.1, ge=0, lt=1, description="share below the cliff that already rejects the drive")
    summary: str = Field(min_length=1, description="what goes wrong")
    advice: str = Field(min_length=1, description="what to do, as the source says")
    source: str = Field(min_length=1, description="the public source (bulletin, release notes, URL)")

    _patterns = field_validator("model", "firmware")(regular_expression)


class SsdHealthSettings(Strict):
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


class DriveIdentitySettings(Strict):
    """What an NVMe drive says it is: namespace, LBA format, cache, firmware (nvme id-ctrl / id-ns / list)."""

    min_namespace_share: float = Field(0.95, gt=0, le=1, description="namespace size / total NVM capacity below "
                                                                      "this is a shrunk namespace")


class SelftestSettings(Strict):
    """The drives' own self-tests, started by qualify (read-only: a self-test does not write user data)."""

    extended: bool = Field(True, description="also run the extended test when the time it needs fits the budget")
    budget: Seconds | None = Field(None, gt=0, description="time for the tests of one drive (default: duration)")
    poll_interval: Seconds = Field(10.0, gt=0, description="time between progress reads")
    slack: float = Field(1.5, ge=1, description="a test may take this many times the drive's own estimate")
    short_minutes: float = Field(2.0, gt=0, description="short-test time assumed when the drive states none")


class DriveIntegritySettings(Strict):
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


class PowerLossProtectionSettings(Strict):
    """4 KiB writes at queue depth 1 with and without O_DSYNC/fsync on the same drive: PLP, measured."""

    job_runtime: Seconds = Field(10.0, gt=0, le=3600, description="length of each of the two fio jobs")
    min_sync_share: float = Field(0.25, gt=0, le=1, description="sync-write IOPS below this share of plain-write "
                                                                "IOPS: no effective power-loss protection")
    sync: Literal["dsync", "fsync"] = Field("dsync", description="O_DSYNC on every write (Ceph's WAL) or an fsync "
                                                                  "after every write")


class MemorySettings(Strict):
    """Memory burn-in: stress-ng --vm --verify (and stressapptest where installed) over most of the free memory."""

    duration: Seconds | None = Field(None, gt=0, description="length of the burn-in (default: the profile's duration)")
    share: float = Field(0.85, gt=0, le=0.95, description="share of MemAvailable to test; the rest is the OS's room")
    max_mib: int | None = Field(None, ge=16, description="upper bound of the tested size, MiB")
    min_mib: int = Field(256, ge=16, description="below this much testable memory the check cannot run")
    stressapptest: bool = Field(True, description="also run stressapptest where it is installed")
    expected_gib: float | None = Field(None, gt=0, description="installed memory the node must show (±5%)")
    expected_dimms: int | None = Field(None, ge=1, description="DIMMs dmidecode must list as populated")
    min_speed_mts: int | None = Field(None, gt=0, description="lowest acceptable configured DIMM speed, MT/s")


class IdlePowerSettings(Strict):
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


class PcieSettings(Strict):
    """Every PCIe link at idle and under load, and the AER counters across the run."""

    load: Seconds = Field(20.0, gt=0, description="length of the stress-ng load under which the links are read again")
    max_correctable_growth: int = Field(0, ge=0, description="corrected AER errors a device may gain during the run")
    expect: list[PcieExpectation] = Field([], description="per-device link expectations beyond what both ends can do")


class PlatformSettings(Strict):
    """Facts an HA Proxmox/Ceph node needs: ECC, a hardware watchdog, IOMMU, the BIOS version."""

    ecc: Literal["required", "expected", "none"] = Field(
        "expected", description="required: no ECC fails; expected: no ECC is a warning; none: the board has none")
    watchdog: Literal["required", "expected", "off"] = Field(
        "expected", description="a hardware watchdog for HA fencing (softdog does not count)")
    iommu: Literal["required", "expected", "off"] = Field("expected", description="IOMMU/VT-d for passthrough")
    bios_version: str | None = Field(None, description="the BIOS version the node must run (dmi bios_version)")


class CpuCorrectnessSettings(Strict):
    """Known-answer work pinned to each logical CPU in turn, then on all at once (silent data corruption)."""

    stressors: list[str] = Field(["cpu", "hash", "memcpy", "zlib", "qsort", "crypt"], min_length=1,
                                 description="stress-ng stressors that verify their results (--verify); those the "
                                 "node's stress-ng cannot verify are named and left out")
    cpu_method: str = Field("all", description="stress-ng --cpu-method: 'all' cycles every method")
    per_cpu: Seconds = Field(60.0, gt=0, le=86400, description="known-answer work on each logical CPU "
                             "(minutes per CPU for an acceptance run; OpenDCDiag-style fleets run longer)")
    all_cpus: Seconds = Field(120.0, gt=0, le=86400,
                              description="then on every CPU at once (heat, power, shared caches)")
    retests: int = Field(2, ge=0, le=20, description="a CPU that fails is retested: reproducible fault or one-off")
    pin_sample_interval: Seconds = Field(0.5, ge=0.1, le=60, description="how often the workers' CPU is read back")


class Checks(Strict):
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


class KernelLogSettings(Strict):
    follow: bool = Field(True, description="follow the node's kernel log during the run")
    fail_on: list[Severity] = Field(["error", "critical"], description="event severities that fail the run")
    max_events_per_kind: int = Field(100, ge=1, description="further events of a kind are only counted")
    corrected_memory_errors: int = Field(
        0, ge=0, description="corrected memory errors (APEI/GHES corrected, EDAC CE) tolerated during a run; more "
                             "fail it (those logged before the run are reported, not judged)")
    fold_window: Seconds = Field(2.0, gt=0, description="lines of one fault (same kind and device) closer than this "
                                                         "are one event with a count")


class WatchSettings(Strict):
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


class ExportSettings(Strict):
    """Results other tools read, written when a run (nightly, soak) finishes."""

    prometheus_textfile: str | None = Field(
        None, description="node_exporter textfile-collector file, e.g. /var/lib/prometheus/node-exporter/qualify.prom")

    _abs = field_validator("prometheus_textfile")(absolute_path)


class ReportSettings(Strict):
    refresh: Seconds = Field(60.0, ge=5, le=86400, description="report.html is re-rendered this often while a run "
                             "goes on, so a long soak can be opened at any time")


class HistorySettings(Strict):
    """Each run against the node's own earlier runs of the same profile and checks (qualify/cluster/history.py)."""

    fail_on_regression: bool = Field(False, description="a measurement worse than its noise band fails the run")
    min_runs: int = Field(3, ge=2, le=1000, description="earlier runs needed before the band is known")
    last_runs: int = Field(10, ge=2, le=1000, description="the newest earlier runs the band comes from")
    sigmas: float = Field(3.0, gt=0, le=100, description="band half-width in standard deviations of those runs")
    min_band: float = Field(0.05, ge=0, le=1, description="the band is never narrower than this share of the mean")


class ClusterSettings(Strict):
    tolerance: float = Field(0.10, gt=0, lt=10, description="siblings may differ from the median by this share "
                             "(Intel's cluster guidance keeps nodes within 10 %)")


CHECK_NAMES = tuple(sorted(p.stem for p in Path(__file__).parent.parent.joinpath("checks").glob("[!_]*.py")))
# What a node with no profile of its own must qualify before it passes (see load_profile).
DEFAULT_REQUIRE = ("microcode", "thermal", "memory", "storage", "ssd_health", "network", "nic_health", "idle_power")


class Profile(Strict):
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
