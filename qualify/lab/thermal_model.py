"""A small thermal model of a lab node, driven by the CPU its own processes use.

Heat goes in from the load (package power grows with load and with the square of the clock),
and out through the cooler's thermal resistance to the air around it, buffered by the heatsink's
capacity. Above the throttle point the clocks drop and the thermal_throttle counters rise, as on
real hardware. The model writes what the node's kernel would show into its prepared tree:
coretemp/nvme/acpitz hwmon, thermal zones, cpufreq, RAPL energy and throttle counters, cpuidle residency
(an Intel node); k10temp Tctl/Tccd, amd-pstate or acpi-cpufreq and no throttle counters (an AMD node,
`amd_spec()`), plus /proc/stat, /proc/loadavg and /proc/meminfo.

The load is the node's own: the CPU time of the lab node's cgroup (its sshd and everything started over
ssh, `cgroup.cpu_usage_us`), so another process busy on this machine does not heat the node, and the
tree's /proc/stat shows the same load. Without a cgroup (a local test tree) the machine's load drives the
model and /proc/stat is this machine's copy. Free memory is always the real one (the node's stress-ng
runs here).

The cooler is read from <tree>/thermal_model.json ({"preset": ..., "speedup": ...}) at every step:
tests switch coolers by rewriting it. `speedup` scales the model's time constants so that a soak
of seconds in tests behaves like one of many minutes.

    python -m qualify.lab.thermal_model <tree>      # what the lab starts per node (pidfile in <tree>)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from qualify.errors import LabError
from qualify.lab import cgroup, procs
from qualify.lab.tree import NodeSpec
from qualify.parsers.sensors import SensorsChip, SensorsFeature, feature_prefix, sysfs_value

CONTROL = "thermal_model.json"
PIDFILE = "thermal_model.pid"
STEP_S = 0.25               # real time between writes
MAX_SUBSTEP_S = 1.0         # model time per integration step
TJ_MAX_C = 100.0            # i5-12650H: PROCHOT / throttle point
AMD_TJ_MAX_C = 95.0         # Zen 4 Tctl limit: the clocks come down there (no throttle counters)
RAPL_RANGE_UJ = 262143328850  # max_energy_range_uj of a real Alder Lake package
IDLE_MHZ = 800.0


@dataclass(frozen=True)
class Cooler:
    description: str
    resistance_k_per_w: float   # heatsink to air
    time_constant_s: float      # how fast the heatsink fills up (R * C)
    ambient_c: float            # the air the cooler breathes (hot under a closed 1U lid)


COOLERS: dict[str, Cooler] = {
    "19mm-lid-closed": Cooler("19 mm low-profile cooler, 1U lid closed: recirculates hot air and throttles",
                              1.3, 300.0, 38.0),
    "19mm-lid-open": Cooler("19 mm low-profile cooler, lid open: hot but holds", 0.95, 240.0, 26.0),
    "tall-lid-open": Cooler("tall tower cooler, lid open: holds with margin", 0.45, 120.0, 25.0),
}
DEFAULT_COOLER = "tall-lid-open"
DEFAULT_SPEEDUP = 30.0      # the lab's short profiles: a 20 s soak is ~10 min of heatsink time

IDLE_W = 6.0                      # package power idle
# all cores busy at full clock: i5-12650H PL1-ish 60 W; Ryzen 5 7600 PPT 88 W (65 W TDP). Under the closed lid
# the 19 mm cooler holds ~44 W at the limit, so the Ryzen settles near 80 % of nominal, well under the 90 % bar.
FULL_LOAD_W = {"intel": 60.0, "amd": 88.0}
MIN_CLOCK_FACTOR = 0.3
THROTTLE_STEP_PER_S = 0.05        # how fast clocks drop (and recover) around the throttle point
# intel_idle's states on Alder Lake (name, exit latency us, target residency us); idle time goes to the deepest
# allowed one, a tenth of it to the shallow C1E on the way in and out.
CSTATES = (("POLL", 0, 0), ("C1E", 2, 4), ("C6", 170, 340), ("C8", 200, 400), ("C10", 230, 460))
AMD_CSTATES = (("POLL", 0, 0), ("C1", 1, 2), ("C2", 18, 36), ("C3", 350, 700))  # acpi_idle on Zen 4
SHALLOW_SHARE = 0.1
# all-core clock under load as a share of cpuinfo_max_freq (the boost clock): Alder Lake-H ~70%, Zen 4 ~85%
ALL_CORE_SHARE = {"intel": 0.7, "amd": 0.85}
USER_HZ = 100              # /proc/stat counts in these ticks
SSHD_PIDFILE = "sshd.pid"   # where the lab keeps the node's sshd pid (its cgroup holds the node's processes)
AMD_RYZEN_7600_FLAGS = tuple(
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
    "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good amd_lbr_v2 nopl nonstop_tsc cpuid "
    "extd_apicid aperfmperf rapl pni pclmulqdq monitor ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes "
    "xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw "
    "ibs skinit wdt tce topoext perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate "
    "ssbd mba perfmon_v2 ibrs ibpb stibp ibrs_enhanced vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid cqm "
    "rdt_a avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl "
    "xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local avx512_bf16 clzero "
    "irperf xsaveerptr rdpru wbnoinvd cppc arat npt lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid "
    "decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif x2avic v_spec_ctrl vnmi avx512vbmi umip "
    "pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid "
    "overflow_recov succor smca fsrm flush_l1d".split())


def amd_spec(driver: str = "amd-pstate-epp", **fields: object) -> NodeSpec:
    """An AMD Ryzen 5 7600 node (6 cores, 12 threads, nominal 3.8 GHz, boost 5.17 GHz) with amd-pstate-epp
    or acpi-cpufreq: k10temp, no thermal_throttle counters (what issue 10 saw pass while throttled)."""
    spec: dict[str, object] = dict(
        vendor_id="AuthenticAMD", model_name="AMD Ryzen 5 7600 6-Core Processor", family=0x19, model=0x61,
        stepping=2, cpus=12, cores=6, microcode=0xA601206, firmware_revision=0xA601206, early_update_from=None,
        mhz=3800.0, cache_kb=1024, flags=AMD_RYZEN_7600_FLAGS, bugs=("sysret_ss_attrs", "spectre_v1", "spectre_v2",
                                                                    "spec_store_bypass", "srso"),
        sensors=True, cpufreq_driver=driver)
    return NodeSpec(**{**spec, **fields})  # type: ignore[arg-type]


# ---------------------------------------------------------------- the files, as the kernel lays them out


def core_ids(spec: NodeSpec) -> list[int]:
    """coretemp's core numbering on hybrid Intel parts: P-cores 0, 4, 8 ..., then E-cores one by one."""
    p_cores = spec.cpus - spec.cores
    return [4 * k for k in range(p_cores)] + [4 * p_cores + k for k in range(spec.cores - p_cores)]


def is_amd(spec: NodeSpec) -> bool:
    return spec.vendor_id == "AuthenticAMD"


def idle_chips(spec: NodeSpec) -> list[SensorsChip]:
    """coretemp (package + cores) or k10temp (Tctl + one Tccd per CCD), one NVMe drive and acpitz, at idle."""
    limits = {"max": 100.0, "crit": 100.0, "crit_alarm": 0.0}

    def temp(label: str, index: int, value: float, extra: dict[str, float]) -> SensorsFeature:
        return SensorsFeature(label, {f"temp{index}_input": value, **{f"temp{index}_{k}": v for k, v in extra.items()}})

    if is_amd(spec):  # k10temp on Zen 4: temp1 Tctl, temp3.. Tccd1.. (one CCD per 8 cores), no limits
        ccds = [temp(f"Tccd{n + 1}", n + 3, 43.0, {}) for n in range(max(1, (spec.cores + 7) // 8))]
        cpu = SensorsChip("k10temp-pci-00c3", "PCI adapter", (temp("Tctl", 1, 45.0, {}), *ccds))
    else:
        cores = [temp(f"Core {core}", core + 2, 42.0, limits) for core in core_ids(spec)]
        cpu = SensorsChip("coretemp-isa-0000", "ISA adapter", (temp("Package id 0", 1, 45.0, limits), *cores))
    return [
        SensorsChip("acpitz-acpi-0", "ACPI interface", (temp("temp1", 1, 40.0, {"crit": 105.0}),)),
        SensorsChip("nvme-pci-0100", "PCI adapter",
                    (temp("Composite", 1, 38.85, {"max": 82.85, "min": -0.15, "crit": 84.85, "alarm": 0.0}),)),
        cpu,
    ]


def write_hwmon(sys_dir: Path, chips: list[SensorsChip]) -> list[Path]:
    """class/hwmon/hwmonN per chip, files and units as the kernel has them; returns the hwmon dirs."""
    dirs = []
    for number, chip in enumerate(chips):
        hwmon = sys_dir / "class/hwmon" / f"hwmon{number}"
        hwmon.mkdir(parents=True, exist_ok=True)
        (hwmon / "name").write_text(chip.driver + "\n")
        for feature in chip.features:
            prefix = feature_prefix(feature)
            if prefix and feature.label != prefix:
                (hwmon / f"{prefix}_label").write_text(feature.label + "\n")
            for name, value in feature.values.items():
                (hwmon / name).write_text(f"{sysfs_value(name, value)}\n")
        dirs.append(hwmon)
    return dirs


def write_sensor_files(sys_dir: Path, spec: NodeSpec) -> None:
    """Everything the telemetry sampler and the nominal clock read on a real node of this spec, at idle."""
    write_hwmon(sys_dir, idle_chips(spec))
    zones = (("acpitz", 40000),) if is_amd(spec) else (("acpitz", 40000), ("x86_pkg_temp", 45000))
    for number, (kind, temp) in enumerate(zones):
        zone = sys_dir / "class/thermal" / f"thermal_zone{number}"
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{temp}\n")
    cpu_dir = sys_dir / "devices/system/cpu"
    ids = core_ids(spec) if not is_amd(spec) else list(range(spec.cores))
    p_threads = 2 * (spec.cpus - spec.cores)
    for cpu, (core, _thread) in enumerate(spec.topology()):
        files: dict[str, object] = {"topology/physical_package_id": 0, "topology/core_id": ids[core]}
        if not is_amd(spec):  # AMD has no thermal_throttle directory
            files |= {"thermal_throttle/core_throttle_count": 0, "thermal_throttle/package_throttle_count": 0}
        policy = _cpufreq_files(spec, p_core=cpu < p_threads)
        if spec.cpufreq_driver == "amd-pstate-epp":  # CPPC: nominal in MHz, perf levels unitless
            files |= {"acpi_cppc/nominal_freq": 3800, "acpi_cppc/nominal_perf": 120, "acpi_cppc/highest_perf": 166,
                      "acpi_cppc/lowest_freq": 400, "acpi_cppc/lowest_perf": 18, "acpi_cppc/reference_perf": 120,
                      "acpi_cppc/lowest_nonlinear_perf": 41}
        for name, value in files.items():
            (cpu_dir / f"cpu{cpu}" / name).parent.mkdir(parents=True, exist_ok=True)
            (cpu_dir / f"cpu{cpu}" / name).write_text(f"{value}\n")
        # the kernel's layout: cpufreq/policyN holds the files, cpuN/cpufreq links to it
        for name, value in policy.items():
            (cpu_dir / "cpufreq" / f"policy{cpu}").mkdir(parents=True, exist_ok=True)
            (cpu_dir / "cpufreq" / f"policy{cpu}" / name).write_text(f"{value}\n")
        link = cpu_dir / f"cpu{cpu}" / "cpufreq"
        if link.is_dir() and not link.is_symlink():  # a tree written before the policy layout
            shutil.rmtree(link)
        if not link.is_symlink():
            link.symlink_to(f"../cpufreq/policy{cpu}")
    if spec.cpufreq_driver == "acpi-cpufreq":
        (cpu_dir / "cpufreq/boost").write_text("1\n")
    rapl = [("intel-rapl:0", "package-0")] + ([] if is_amd(spec) else [("intel-rapl:0:0", "core")])
    for zone_name, name in rapl:
        base = sys_dir / "class/powercap" / zone_name
        base.mkdir(parents=True, exist_ok=True)
        files = {"name": name, "energy_uj": 0, "max_energy_range_uj": RAPL_RANGE_UJ}
        if not is_amd(spec):  # AMD's RAPL zones carry no power-limit constraints
            files["constraint_0_power_limit_uw"] = 45000000
        for file, value in files.items():
            (base / file).write_text(f"{value}\n")
    write_cpuidle_and_edac(sys_dir, spec)


def _cpufreq_files(spec: NodeSpec, p_core: bool) -> dict[str, object]:
    """One policy's files as each driver exposes them, at idle (kHz)."""
    idle = int(IDLE_MHZ * 1000)
    if spec.cpufreq_driver == "intel_pstate":
        top = 4700000 if p_core else 3500000
        return {"scaling_driver": "intel_pstate", "scaling_cur_freq": idle, "scaling_min_freq": 400000,
                "scaling_max_freq": top, "cpuinfo_max_freq": top, "cpuinfo_min_freq": 400000,
                "base_frequency": 2300000 if p_core else 1700000, "scaling_governor": "powersave"}
    if spec.cpufreq_driver == "amd-pstate-epp":  # Ryzen 5 7600 on 6.8: boost 5.17 GHz, nominal 3.8 GHz (CPPC)
        return {"scaling_driver": "amd-pstate-epp", "scaling_cur_freq": idle, "scaling_min_freq": 400000,
                "scaling_max_freq": 5170000, "cpuinfo_max_freq": 5170000, "cpuinfo_min_freq": 400000,
                "amd_pstate_max_freq": 5170000, "amd_pstate_lowest_nonlinear_freq": 1500000,
                "amd_pstate_highest_perf": 166, "scaling_governor": "powersave",
                "energy_performance_preference": "balance_performance"}
    if spec.cpufreq_driver == "acpi-cpufreq":  # the same CPU without CPPC: P0 3.8 GHz, P1 3.0 GHz, boost on
        return {"scaling_driver": "acpi-cpufreq", "scaling_cur_freq": idle, "scaling_min_freq": 3000000,
                "scaling_max_freq": 3800000, "cpuinfo_max_freq": 5170000, "cpuinfo_min_freq": 3000000,
                "scaling_available_frequencies": "3800000 3000000 ", "bios_limit": 3800000,
                "scaling_governor": "schedutil"}
    raise ValueError(f"NodeSpec.cpufreq_driver: expected intel_pstate, amd-pstate-epp or acpi-cpufreq, "
                     f"got {spec.cpufreq_driver!r}")


def write_cpuidle_and_edac(sys_dir: Path, spec: NodeSpec) -> None:
    """cpuidle states per CPU, the ASPM policy and an EDAC memory controller with two DIMMs (no errors)."""
    for cpu in range(spec.cpus):
        for index, (name, latency, residency) in enumerate(AMD_CSTATES if is_amd(spec) else CSTATES):
            state = sys_dir / "devices/system/cpu" / f"cpu{cpu}/cpuidle/state{index}"
            state.mkdir(parents=True, exist_ok=True)
            desc = ("CPUIDLE CORE POLL IDLE" if not index else f"ACPI FFH MWAIT 0x{index - 1:x}" if is_amd(spec)
                    else f"MWAIT {name}")
            for file, value in (("name", name), ("desc", desc),
                                ("latency", latency), ("residency", residency), ("time", 0), ("usage", 0),
                                ("disable", 0)):
                (state / file).write_text(f"{value}\n")
    aspm = sys_dir / "module/pcie_aspm/parameters/policy"
    aspm.parent.mkdir(parents=True, exist_ok=True)
    aspm.write_text("[default] performance powersave powersupersave \n")
    mc = sys_dir / "devices/system/edac/mc/mc0"
    half = spec.mem_kb // 1024 // 2
    files: list[tuple[str, object]] = [("mc_name", "F19h_M60h" if is_amd(spec) else "Alder Lake-H"),
                                       ("size_mb", 2 * half), ("ce_count", 0),
                                       ("ue_count", 0)]
    for n in (0, 1):
        files += [(f"dimm{n}/dimm_label", f"MC#0_Chan#{n}_DIMM#0"), (f"dimm{n}/size", half),
                  (f"dimm{n}/dimm_mem_type", "Unbuffered-DDR4"), (f"dimm{n}/dimm_ce_count", 0),
                  (f"dimm{n}/dimm_ue_count", 0)]
    for rel, content in files:
        (mc / rel).parent.mkdir(parents=True, exist_ok=True)
        (mc / rel).write_text(f"{content}\n")


# ---------------------------------------------------------------- the model


class _File:
    """A tree file rewritten in place (same inode), so a sampler's open descriptor sees new values."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY)

    def write(self, value: int | str) -> None:
        data = f"{value}\n".encode()
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))


def _hwmon_files(sys_dir: Path, driver: str) -> dict[str, Path]:
    """label (or tempN) -> tempN_input of the hwmon chip named `driver`."""
    for hwmon in sorted(sys_dir.glob("class/hwmon/hwmon*")):
        if (hwmon / "name").read_text().strip() == driver:
            out = {}
            for path in sorted(hwmon.glob("temp*_input")):
                prefix = path.name.removesuffix("_input")
                label = hwmon / f"{prefix}_label"
                out[label.read_text().strip() if label.exists() else prefix] = path
            return out
    return {}


def _cpu_number(path: Path) -> int:
    found = re.search(r"/cpu(\d+)/", str(path))
    if found is None:
        raise ValueError(f"{path}: not below a cpuN directory")
    return int(found[1])


class NodeLoad:
    """Busy share of the node since the last call: its cgroup's CPU time over this machine's CPUs, or this
    machine's /proc/stat where the node has no cgroup of its own (a local test tree)."""

    def __init__(self, root: Path, proc_stat: Path = Path("/proc/stat")):
        self.pidfile = root / SSHD_PIDFILE
        self.proc_stat = proc_stat
        self.host_cpus = os.cpu_count() or 1
        self._last_usage: tuple[int, float] | None = None
        self._last_demand: dict[int, int] = {}
        self._last_busy: tuple[int, int] | None = None

    def _group(self) -> Path | None:
        try:
            return cgroup.accounting_group(int(self.pidfile.read_text()))
        except (OSError, ValueError):
            return None

    def share(self) -> tuple[float, bool]:
        """(load 0..1, whether it is the node's own). The node's own: the larger of the CPU time its group used
        and the time its tasks ran or waited for a CPU, over this machine's CPUs, so a node whose stress-ng waits
        behind other work on a shared machine is still fully loaded, as it would be on hardware of its own."""
        group = self._group()
        usage = cgroup.cpu_usage_us(group) if group is not None else None
        if group is not None and usage is not None:
            now = time.monotonic()
            demand = cgroup.demand_ns(group)
            last, self._last_usage = self._last_usage, (usage, now)
            previous, self._last_demand = self._last_demand, demand
            if last is None or now <= last[1]:
                return 0.0, True
            used = (usage - last[0]) / 1e6
            wanted = sum(ns - previous.get(pid, ns) for pid, ns in demand.items()) / 1e9  # new tasks: from now on
            return max(0.0, min(1.0, max(used, wanted) / (now - last[1]) / self.host_cpus)), True
        fields = [int(x) for x in self.proc_stat.read_text().split("\n", 1)[0].split()[1:9]]
        idle, total = fields[3] + fields[4], sum(fields)
        last_busy, self._last_busy = self._last_busy, (idle, total)
        if last_busy is None or total <= last_busy[1]:
            return 0.0, False
        return max(0.0, min(1.0, 1 - (idle - last_busy[0]) / (total - last_busy[1]))), False


class ProcStat:
    """The node's own /proc/stat: per-CPU jiffies advanced by the modelled load (the kernel's field order:
    user nice system idle iowait irq softirq steal guest guest_nice)."""

    def __init__(self, cpus: int):
        self.busy = [0.0] * cpus
        self.idle = [0.0] * cpus
        self.boot = int(time.time() - 43200)

    def advance(self, real_dt: float, load: float) -> str:
        for cpu in range(len(self.busy)):
            self.busy[cpu] += load * real_dt * USER_HZ
            self.idle[cpu] += (1 - load) * real_dt * USER_HZ
        lines = [_stat_row("cpu ", sum(self.busy), sum(self.idle))]
        lines += [_stat_row(f"cpu{n}", b, i) for n, (b, i) in enumerate(zip(self.busy, self.idle, strict=True))]
        lines += ["intr 0", "ctxt 0", f"btime {self.boot}", "processes 1", "procs_running 1", "procs_blocked 0"]
        return "\n".join(lines)


def _stat_row(name: str, busy: float, idle: float) -> str:
    return f"{name} {round(busy * 0.9)} 0 {round(busy * 0.1)} {round(idle)} 0 0 0 0 0 0"


class ThermalModel:
    def __init__(self, root: Path, proc_stat: Path = Path("/proc/stat")):
        self.root = root
        sys_dir = root / "sys"
        k10temp = _hwmon_files(sys_dir, "k10temp")
        self.amd = bool(k10temp)
        cpu_temps = k10temp or _hwmon_files(sys_dir, "coretemp")
        self.package = _File(cpu_temps.pop("Tctl" if self.amd else "Package id 0"))
        self.cores = [_File(path) for _, path in sorted(cpu_temps.items(), key=lambda kv: _number(kv[0]))]
        self.tj_max = AMD_TJ_MAX_C if self.amd else TJ_MAX_C
        self.full_load_w = FULL_LOAD_W["amd" if self.amd else "intel"]
        self.acpitz = [_File(p) for p in _hwmon_files(sys_dir, "acpitz").values()]
        zones = {(z / "type").read_text().strip(): z / "temp" for z in sys_dir.glob("class/thermal/thermal_zone*")}
        self.pkg_zone = _File(zones["x86_pkg_temp"]) if "x86_pkg_temp" in zones else None
        self.acpi_zone = _File(zones["acpitz"]) if "acpitz" in zones else None
        cpu = sys_dir / "devices/system/cpu"
        freq_paths = sorted(cpu.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"), key=_cpu_number)
        share = ALL_CORE_SHARE["amd" if self.amd else "intel"]
        self.freqs = [(_File(p), _top_khz(p.parent) / 1000 * share) for p in freq_paths]
        self.throttle = [_File(p) for p in sorted(cpu.glob("cpu[0-9]*/thermal_throttle/*_throttle_count"))]
        self.rapl = [(_File(sys_dir / "class/powercap" / zone / "energy_uj"), share)
                     for zone, share in (("intel-rapl:0", 1.0), ("intel-rapl:0:0", 0.8))
                     if (sys_dir / "class/powercap" / zone / "energy_uj").exists()]
        cpu_dirs = sorted(cpu.glob("cpu[0-9]*"), key=lambda p: int(p.name[3:]))
        states = sorted(cpu_dirs[0].glob("cpuidle/state[0-9]*"), key=lambda p: int(p.name[5:])) if cpu_dirs else []
        self.cstates = [((s / "name").read_text().strip(), int((s / "residency").read_text())) for s in states]
        self.cstate_files = [[(_File(state / "time"), _File(state / "usage"))
                              for state in sorted(cpu_dir.glob("cpuidle/state[0-9]*"), key=lambda p: int(p.name[5:]))]
                             for cpu_dir in cpu_dirs]
        self.cstate_us = [0.0] * len(self.cstates)
        self.cstate_limit: int | None = None
        self.node_load = NodeLoad(root, proc_stat)
        self.own_stat = ProcStat(len(cpu_dirs))
        self.proc_copies = []
        for name in ("stat", "loadavg", "meminfo"):  # meminfo: the memory burn-in sizes itself from real free memory
            (root / "proc" / name).touch(exist_ok=True)
            self.proc_copies.append((Path("/proc") / name, _File(root / "proc" / name)))
        self.cooler_name = ""
        self.reset(DEFAULT_COOLER, DEFAULT_SPEEDUP)

    def reset(self, cooler: str, speedup: float) -> None:
        self.cooler_name, self.cooler, self.speedup = cooler, COOLERS[cooler], speedup
        self.temp_c = self.cooler.ambient_c + IDLE_W * self.cooler.resistance_k_per_w
        self.clock_factor = 1.0
        self.throttle_count = 0
        self.energy_uj = 0.0

    def load(self) -> tuple[float, bool]:
        """(busy share since the last call, whether it is the node's own load)."""
        return self.node_load.share()

    def step(self, real_dt: float, load: float, own: bool = False) -> None:
        self._idle(real_dt, load)
        model_dt = real_dt * self.speedup
        cooler = self.cooler
        capacity = cooler.time_constant_s / cooler.resistance_k_per_w
        power = IDLE_W
        while model_dt > 0:
            dt = min(model_dt, MAX_SUBSTEP_S)
            model_dt -= dt
            power = IDLE_W + load * self.full_load_w * self.clock_factor ** 2
            self.temp_c += dt * (power - (self.temp_c - cooler.ambient_c) / cooler.resistance_k_per_w) / capacity
            if self.temp_c >= self.tj_max and load > 0.05:
                self.clock_factor = max(MIN_CLOCK_FACTOR, self.clock_factor - THROTTLE_STEP_PER_S * dt)
                self.throttle_count += 1
                self.temp_c = min(self.temp_c, self.tj_max + 1)  # PROCHOT holds the die at the limit
            elif self.temp_c < self.tj_max - 3:
                self.clock_factor = min(1.0, self.clock_factor + THROTTLE_STEP_PER_S * dt)
            # energy in real time: RAPL readers divide by their own clock
            self.energy_uj = (self.energy_uj + power * dt / self.speedup * 1e6) % RAPL_RANGE_UJ
        self._write(load, self.own_stat.advance(real_dt, load) if own else None)

    def _idle(self, real_dt: float, load: float) -> None:
        """Residency in real time: the idle share of each CPU in its deepest allowed state (and some C1E)."""
        last = len(self.cstates) - 1
        deepest = last if self.cstate_limit is None else max(1, min(self.cstate_limit, last))
        idle_us = (1 - load) * real_dt * 1e6
        self.cstate_us[1] += idle_us * (SHALLOW_SHARE if deepest > 1 else 1)
        if deepest > 1:
            self.cstate_us[deepest] += idle_us * (1 - SHALLOW_SHARE)

    def _write(self, load: float, own_stat: str | None) -> None:
        package = round(self.temp_c * 1000)
        self.package.write(package)
        for index, core in enumerate(self.cores):
            core.write(package - 1000 * (index % 4) - (2000 if index >= 6 or self.amd else 0))
        ambient = round((self.cooler.ambient_c + 0.15 * (self.temp_c - self.cooler.ambient_c)) * 1000)
        for file in [*self.acpitz, *filter(None, [self.acpi_zone])]:
            file.write(ambient)
        if self.pkg_zone:
            self.pkg_zone.write(package)
        for file, all_core_mhz in self.freqs:
            mhz = IDLE_MHZ + load * (all_core_mhz * self.clock_factor - IDLE_MHZ)
            file.write(round(max(mhz, 400.0) * 1000))
        for file in self.throttle:
            file.write(self.throttle_count)
        for file, share in self.rapl:
            file.write(round(self.energy_uj * share) % RAPL_RANGE_UJ)
        for source, file in self.proc_copies:
            file.write(own_stat if own_stat is not None and source.name == "stat" else source.read_text().rstrip("\n"))
        for states in self.cstate_files:
            for (time_file, usage_file), micros, (_, residency) in zip(states, self.cstate_us, self.cstates,
                                                                       strict=False):
                time_file.write(round(micros))
                usage_file.write(round(micros / max(residency * 4, 100)))

    def follow_control(self) -> None:
        """Switch cooler or speedup when the control file says so (state restarts from idle)."""
        try:
            wanted = json.loads((self.root / CONTROL).read_text())
        except (OSError, ValueError):
            return
        cooler, speedup = wanted.get("preset", DEFAULT_COOLER), float(wanted.get("speedup", DEFAULT_SPEEDUP))
        self.cstate_limit = wanted.get("cstate_limit")
        if cooler in COOLERS and (cooler, speedup) != (self.cooler_name, self.speedup):
            self.reset(cooler, speedup)


def _number(label: str) -> int:
    """'Core 12' -> 12, 'Tccd2' -> 2."""
    return int(re.search(r"(\d+)$", label)[1])  # type: ignore[index]


def _top_khz(policy: Path) -> int:
    """The policy's highest clock (cpuinfo_max_freq, the boost clock), else scaling_max_freq."""
    for name in ("cpuinfo_max_freq", "scaling_max_freq"):
        if (policy / name).exists():
            return int((policy / name).read_text())
    return int(IDLE_MHZ * 1000)


def run(root: Path) -> None:
    """Step the model until the tree disappears or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    model = ThermalModel(root)
    model.follow_control()
    model.step(0.0, *model.load())
    last = time.monotonic()
    while (root / "sys").is_dir():
        time.sleep(STEP_S)
        now = time.monotonic()
        model.follow_control()
        model.step(now - last, *model.load())
        last = now


# ---------------------------------------------------------------- control (lab and tests)


def set_cooler(root: Path, preset: str, speedup: float = DEFAULT_SPEEDUP) -> None:
    if preset not in COOLERS:
        raise LabError(f"unknown cooler preset {preset!r} (known: {', '.join(COOLERS)})")
    _update_control(root, preset=preset, speedup=speedup)


def limit_cstates(root: Path, deepest: int | None) -> None:
    """Idle CPUs reach at most cpuidle state `deepest` (1 = C1E), as when ASPM or the BIOS blocks deep
    package C-states; None lifts the limit."""
    _update_control(root, cstate_limit=deepest)


def _update_control(root: Path, **values: object) -> None:
    try:
        control = json.loads((root / CONTROL).read_text())
    except (OSError, ValueError):
        control = {}
    tmp = root / (CONTROL + ".tmp")
    tmp.write_text(json.dumps({**control, **values}) + "\n")
    os.replace(tmp, root / CONTROL)


def start_model(root: Path, preset: str = DEFAULT_COOLER, speedup: float = DEFAULT_SPEEDUP) -> int:
    """Start the model for the tree at root (pidfile root/thermal_model.pid); returns its pid."""
    set_cooler(root, preset, speedup)
    with open(root / "thermal_model.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "qualify.lab.thermal_model", str(root)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    (root / PIDFILE).write_text(f"{proc.pid}\n")
    return proc.pid


def stop_model(root: Path) -> None:
    """Stop the model of this tree, by its pidfile, only if that pid is still our model of this tree."""
    pidfile = root / PIDFILE
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    if "qualify.lab.thermal_model" in procs.cmdline(pid) and str(root) in procs.cmdline(pid):
        left = procs.terminate([pid])
        if left:
            raise LabError(f"thermal model of {root} (pid {pid}) did not stop")
    pidfile.unlink(missing_ok=True)


if __name__ == "__main__":
    run(Path(sys.argv[1]).absolute())
