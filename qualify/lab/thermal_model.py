"""A small thermal model of a lab node, driven by this machine's real CPU load.

Heat goes in from the load (package power grows with load and with the square of the clock),
and out through the cooler's thermal resistance to the air around it, buffered by the heatsink's
capacity. Above the throttle point the clocks drop and the thermal_throttle counters rise, as on
real hardware. The model writes what the node's kernel would show into its prepared tree:
coretemp/nvme/acpitz hwmon, thermal zones, cpufreq, RAPL energy and throttle counters, cpuidle residency,
plus a copy of this machine's /proc/stat, /proc/loadavg and /proc/meminfo (utilisation and free memory
are the real ones: a lab node's stress-ng runs here).

The cooler is read from <tree>/thermal_model.json ({"preset": ..., "speedup": ...}) at every step:
tests switch coolers by rewriting it. `speedup` scales the model's time constants so that a soak
of seconds in tests behaves like one of many minutes.

    python -m qualify.lab.thermal_model <tree>      # what the lab starts per node (pidfile in <tree>)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from qualify.errors import LabError
from qualify.lab import procs
from qualify.lab.tree import NodeSpec
from qualify.parsers.sensors import SensorsChip, SensorsFeature, feature_prefix, sysfs_value

CONTROL = "thermal_model.json"
PIDFILE = "thermal_model.pid"
STEP_S = 0.25               # real time between writes
MAX_SUBSTEP_S = 1.0         # model time per integration step
TJ_MAX_C = 100.0            # i5-12650H: PROCHOT / throttle point
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

IDLE_W, FULL_LOAD_W = 6.0, 60.0   # package power idle and all cores busy at full clock
MIN_CLOCK_FACTOR = 0.3
THROTTLE_STEP_PER_S = 0.05        # how fast clocks drop (and recover) around the throttle point
# intel_idle's states on Alder Lake (name, exit latency us, target residency us); idle time goes to the deepest
# allowed one, a tenth of it to the shallow C1E on the way in and out.
CSTATES = (("POLL", 0, 0), ("C1E", 2, 4), ("C6", 170, 340), ("C8", 200, 400), ("C10", 230, 460))
SHALLOW_SHARE = 0.1


# ---------------------------------------------------------------- the files, as the kernel lays them out


def core_ids(spec: NodeSpec) -> list[int]:
    """coretemp's core numbering on hybrid Intel parts: P-cores 0, 4, 8 ..., then E-cores one by one."""
    p_cores = spec.cpus - spec.cores
    return [4 * k for k in range(p_cores)] + [4 * p_cores + k for k in range(spec.cores - p_cores)]


def idle_chips(spec: NodeSpec) -> list[SensorsChip]:
    """coretemp (package + cores), one NVMe drive and acpitz, at idle temperatures."""
    limits = {"max": 100.0, "crit": 100.0, "crit_alarm": 0.0}

    def temp(label: str, index: int, value: float, extra: dict[str, float]) -> SensorsFeature:
        return SensorsFeature(label, {f"temp{index}_input": value, **{f"temp{index}_{k}": v for k, v in extra.items()}})

    cores = [temp(f"Core {core}", core + 2, 42.0, limits) for core in core_ids(spec)]
    return [
        SensorsChip("acpitz-acpi-0", "ACPI interface", (temp("temp1", 1, 40.0, {"crit": 105.0}),)),
        SensorsChip("nvme-pci-0100", "PCI adapter",
                    (temp("Composite", 1, 38.85, {"max": 82.85, "min": -0.15, "crit": 84.85, "alarm": 0.0}),)),
        SensorsChip("coretemp-isa-0000", "ISA adapter", (temp("Package id 0", 1, 45.0, limits), *cores)),
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
    """Everything the telemetry sampler reads on a real node of this spec, at idle."""
    write_hwmon(sys_dir, idle_chips(spec))
    for number, (kind, temp) in enumerate((("acpitz", 40000), ("x86_pkg_temp", 45000))):
        zone = sys_dir / "class/thermal" / f"thermal_zone{number}"
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{temp}\n")
    ids = core_ids(spec)
    p_threads = 2 * (spec.cpus - spec.cores)
    for cpu, (core, _thread) in enumerate(spec.topology()):
        base = sys_dir / "devices/system/cpu" / f"cpu{cpu}"
        p_core = cpu < p_threads
        files = {
            "topology/physical_package_id": 0, "topology/core_id": ids[core],
            "cpufreq/scaling_cur_freq": int(IDLE_MHZ * 1000), "cpufreq/scaling_min_freq": 400000,
            "cpufreq/scaling_max_freq": 4700000 if p_core else 3500000,
            "cpufreq/base_frequency": 2300000 if p_core else 1700000,
            "thermal_throttle/core_throttle_count": 0, "thermal_throttle/package_throttle_count": 0,
        }
        for name, value in files.items():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_text(f"{value}\n")
    for zone, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core")):
        base = sys_dir / "class/powercap" / zone
        base.mkdir(parents=True, exist_ok=True)
        for file, value in (("name", name), ("energy_uj", 0), ("max_energy_range_uj", RAPL_RANGE_UJ),
                            ("constraint_0_power_limit_uw", 45000000)):
            (base / file).write_text(f"{value}\n")
    write_cpuidle_and_edac(sys_dir, spec)


def write_cpuidle_and_edac(sys_dir: Path, spec: NodeSpec) -> None:
    """cpuidle states per CPU, the ASPM policy and an EDAC memory controller with two DIMMs (no errors)."""
    for cpu in range(spec.cpus):
        for index, (name, latency, residency) in enumerate(CSTATES):
            state = sys_dir / "devices/system/cpu" / f"cpu{cpu}/cpuidle/state{index}"
            state.mkdir(parents=True, exist_ok=True)
            for file, value in (("name", name), ("desc", f"MWAIT {name}" if index else "CPUIDLE CORE POLL IDLE"),
                                ("latency", latency), ("residency", residency), ("time", 0), ("usage", 0),
                                ("disable", 0)):
                (state / file).write_text(f"{value}\n")
    aspm = sys_dir / "module/pcie_aspm/parameters/policy"
    aspm.parent.mkdir(parents=True, exist_ok=True)
    aspm.write_text("[default] performance powersave powersupersave \n")
    mc = sys_dir / "devices/system/edac/mc/mc0"
    half = spec.mem_kb // 1024 // 2
    files: list[tuple[str, object]] = [("mc_name", "Alder Lake-H"), ("size_mb", 2 * half), ("ce_count", 0),
                                       ("ue_count", 0)]
    for n in (0, 1):
        files += [(f"dimm{n}/dimm_label", f"MC#0_Chan#{n}_DIMM#0"), (f"dimm{n}/size", half),
                  (f"dimm{n}/dimm_mem_type", "Unbuffered-DDR4"), (f"dimm{n}/dimm_ce_count", 0),
                  (f"dimm{n}/dimm_ue_count", 0)]
    for rel, value in files:
        (mc / rel).parent.mkdir(parents=True, exist_ok=True)
        (mc / rel).write_text(f"{value}\n")


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
    return int(re.search(r"/cpu(\d+)/", str(path))[1])


class ThermalModel:
    def __init__(self, root: Path, proc_stat: Path = Path("/proc/stat")):
        self.root = root
        self.proc_stat = proc_stat
        sys_dir = root / "sys"
        coretemp = _hwmon_files(sys_dir, "coretemp")
        self.package = _File(coretemp.pop("Package id 0"))
        self.cores = [_File(path) for _, path in sorted(coretemp.items(), key=lambda kv: int(kv[0].split()[-1]))]
        self.acpitz = [_File(p) for p in _hwmon_files(sys_dir, "acpitz").values()]
        zones = {(z / "type").read_text().strip(): z / "temp" for z in sys_dir.glob("class/thermal/thermal_zone*")}
        self.pkg_zone = _File(zones["x86_pkg_temp"]) if "x86_pkg_temp" in zones else None
        self.acpi_zone = _File(zones["acpitz"]) if "acpitz" in zones else None
        cpu = sys_dir / "devices/system/cpu"
        freq_paths = sorted(cpu.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"), key=_cpu_number)
        self.freqs = [(_File(p), int((p.parent / "scaling_max_freq").read_text()) / 1000 * 0.7) for p in freq_paths]
        self.throttle = [_File(p) for p in sorted(cpu.glob("cpu[0-9]*/thermal_throttle/*_throttle_count"))]
        self.rapl = [(_File(sys_dir / "class/powercap" / zone / "energy_uj"), share)
                     for zone, share in (("intel-rapl:0", 1.0), ("intel-rapl:0:0", 0.8))]
        self.cstate_files = [[(_File(state / "time"), _File(state / "usage"))
                              for state in sorted(cpu_dir.glob("cpuidle/state[0-9]*"), key=lambda p: p.name)]
                             for cpu_dir in sorted(cpu.glob("cpu[0-9]*"), key=lambda p: int(p.name[3:]))]
        self.cstate_us = [0.0] * len(CSTATES)
        self.cstate_limit: int | None = None
        self.proc_copies = []
        for name in ("stat", "loadavg", "meminfo"):  # meminfo: the memory burn-in sizes itself from real free memory
            (root / "proc" / name).touch(exist_ok=True)
            self.proc_copies.append((Path("/proc") / name, _File(root / "proc" / name)))
        self.cooler_name = ""
        self.reset(DEFAULT_COOLER, DEFAULT_SPEEDUP)
        self._last_busy: tuple[int, int] | None = None

    def reset(self, cooler: str, speedup: float) -> None:
        self.cooler_name, self.cooler, self.speedup = cooler, COOLERS[cooler], speedup
        self.temp_c = self.cooler.ambient_c + IDLE_W * self.cooler.resistance_k_per_w
        self.clock_factor = 1.0
        self.throttle_count = 0
        self.energy_uj = 0.0

    def load(self) -> float:
        """Busy share of this machine's CPUs since the last call (the real load drives the model)."""
        fields = [int(x) for x in self.proc_stat.read_text().split("\n", 1)[0].split()[1:9]]
        idle, total = fields[3] + fields[4], sum(fields)
        last, self._last_busy = self._last_busy, (idle, total)
        if last is None or total <= last[1]:
            return 0.0
        return max(0.0, min(1.0, 1 - (idle - last[0]) / (total - last[1])))

    def step(self, real_dt: float, load: float) -> None:
        self._idle(real_dt, load)
        model_dt = real_dt * self.speedup
        cooler = self.cooler
        capacity = cooler.time_constant_s / cooler.resistance_k_per_w
        power = IDLE_W
        while model_dt > 0:
            dt = min(model_dt, MAX_SUBSTEP_S)
            model_dt -= dt
            power = IDLE_W + load * FULL_LOAD_W * self.clock_factor ** 2
            self.temp_c += dt * (power - (self.temp_c - cooler.ambient_c) / cooler.resistance_k_per_w) / capacity
            if self.temp_c >= TJ_MAX_C and load > 0.05:
                self.clock_factor = max(MIN_CLOCK_FACTOR, self.clock_factor - THROTTLE_STEP_PER_S * dt)
                self.throttle_count += 1
                self.temp_c = min(self.temp_c, TJ_MAX_C + 1)  # PROCHOT holds the die at the limit
            elif self.temp_c < TJ_MAX_C - 3:
                self.clock_factor = min(1.0, self.clock_factor + THROTTLE_STEP_PER_S * dt)
            # energy in real time: RAPL readers divide by their own clock
            self.energy_uj = (self.energy_uj + power * dt / self.speedup * 1e6) % RAPL_RANGE_UJ
        self._write(load)

    def _idle(self, real_dt: float, load: float) -> None:
        """Residency in real time: the idle share of each CPU in its deepest allowed state (and some C1E)."""
        deepest = len(CSTATES) - 1 if self.cstate_limit is None else max(1, min(self.cstate_limit, len(CSTATES) - 1))
        idle_us = (1 - load) * real_dt * 1e6
        self.cstate_us[1] += idle_us * (SHALLOW_SHARE if deepest > 1 else 1)
        if deepest > 1:
            self.cstate_us[deepest] += idle_us * (1 - SHALLOW_SHARE)

    def _write(self, load: float) -> None:
        package = round(self.temp_c * 1000)
        self.package.write(package)
        for index, core in enumerate(self.cores):
            core.write(package - 1000 * (index % 4) - (2000 if index >= 6 else 0))
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
            file.write(source.read_text().rstrip("\n"))
        for states in self.cstate_files:
            for (time_file, usage_file), micros, (_, _, residency) in zip(states, self.cstate_us, CSTATES):
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


def run(root: Path) -> None:
    """Step the model until the tree disappears or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    model = ThermalModel(root)
    model.follow_control()
    model.step(0.0, 0.0)
    last = time.monotonic()
    while (root / "sys").is_dir():
        time.sleep(STEP_S)
        now = time.monotonic()
        model.follow_control()
        model.step(now - last, model.load())
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
