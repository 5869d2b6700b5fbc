"""The node-side telemetry sampler: standard library only, sent to the node as `python3 -c <this file>`.

    python3 -c "$(cat sampler.py)" '{"sysfs": "/sys", "procfs": "/proc", "interval": 1.0}'

Discovers the node's sensors once, keeps every file open and re-reads it with os.pread (no process
and no open() per sample), and prints one JSON line per sample on stdout:

    {"series": {"temp:coretemp/Package id 0": "C", ...}, "order": [...], "scale": {...},
     "power_limits": {"rapl:package-0": 45.0}}                     first line: what will be sampled
    {"seq":0,"t":1764500000.123,"r":[45000,null,...],"bad":[3]}    then one line per interval

Lighter on the node: each pass only preads and parses integers and writes them raw, in the header's
order, as the kernel gave them (millidegrees, kHz, µW); the controller scales them (`decode`). Only the
few derived series (RAPL watts, CPU busy %, load) are computed here. `t` is the node's own clock; `bad`
lists the positions whose file vanished or held garbage in this pass (recorded, never fatal). Units after
decoding: C, rpm, W, MHz, %, count. Counters (throttle) are cumulative.
"""

import glob
import json
import os
import re
import sys
import time

RECHECK_PASSES = 10  # every so many passes, look whether a file vanished or was replaced


def _read_line(path):
    try:
        with open(path, "rb") as f:
            return f.readline().decode("utf-8", "replace").strip()
    except OSError:
        return None


def _natural(path):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path)]


def _sorted(pattern):
    return sorted(glob.glob(pattern), key=_natural)


class Source:
    """One kernel file, kept open; value() turns its first line into the series' unit."""

    def __init__(self, name, unit, path, scale=1.0):
        self.name, self.unit, self.path, self.scale = name, unit, path, scale
        self.fd = os.open(path, os.O_RDONLY)
        self.inode = os.fstat(self.fd).st_ino

    def raw(self):
        return os.pread(self.fd, 64, 0).split(b"\n", 1)[0]

    def value(self, now):
        """What this pass sends: the file's integer as the kernel wrote it (scaled by the controller)."""
        return int(os.pread(self.fd, 64, 0))  # int() takes the bytes, newline and all

    def recheck(self):
        """Reopen a replaced file; raise OSError when it is gone."""
        inode = os.stat(self.path).st_ino
        if inode != self.inode:
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_RDONLY)
            self.inode = inode


class Energy(Source):
    """RAPL energy_uj turned into watts; the counter wraps at max_energy_range_uj. limit_w: the zone's
    highest constraint_*_power_limit_uw (a reading far above it is a glitch, judged by the controller)."""

    def __init__(self, name, path, max_range_uj, limit_w=None):
        super().__init__(name, "W", path)
        self.max_range_uj = max_range_uj
        self.limit_w = limit_w
        self.last = None

    def value(self, now):
        energy = int(self.raw())
        last, self.last = self.last, (energy, now)
        if last is None or now <= last[1]:
            return None
        delta = energy - last[0]
        if delta < 0:
            delta += self.max_range_uj
        return round(delta / 1e6 / (now - last[1]), 3)


class CpuBusy(Source):
    """Busy share of all CPUs from the first line of /proc/stat, between two passes."""

    def __init__(self, name, path):
        super().__init__(name, "%", path)
        self.last = None

    def raw(self):
        return os.pread(self.fd, 512, 0).split(b"\n", 1)[0]

    def value(self, now):
        fields = [int(x) for x in self.raw().split()[1:9]]
        idle, total = fields[3] + fields[4], sum(fields)
        last, self.last = self.last, (idle, total)
        if last is None or total <= last[1]:
            return None
        return round(100.0 * (1 - (idle - last[0]) / (total - last[1])), 1)


class Load(Source):
    def __init__(self, name, path):
        super().__init__(name, "", path)

    def value(self, now):
        return float(self.raw().split()[0])


def _unique(names, name):
    """chip, chip#2, chip#3 ...: two nvme drives are two series."""
    count = names.get(name, 0) + 1
    names[name] = count
    return name if count == 1 else f"{name}#{count}"


def _hwmon(sysfs):
    chips = {}
    for hwmon in _sorted(f"{sysfs}/class/hwmon/hwmon*"):
        base = hwmon if glob.glob(f"{hwmon}/*_input") else f"{hwmon}/device"  # very old kernels
        chip = _unique(chips, _read_line(f"{hwmon}/name") or os.path.basename(hwmon))
        for kind, unit, scale, suffixes in (("temp", "C", 0.001, ("input",)), ("fan", "rpm", 1.0, ("input",)),
                                            ("power", "W", 1e-6, ("input", "average"))):
            seen = set()
            for path in _sorted(f"{base}/{kind}*_*"):
                match = re.fullmatch(rf"({kind}\d+)_(\w+)", os.path.basename(path))
                if not match or match[2] not in suffixes or match[1] in seen:
                    continue
                seen.add(match[1])
                label = _read_line(f"{base}/{match[1]}_label") or match[1]
                yield f"{kind}:{chip}/{label}", unit, path, scale


def _cpus(sysfs):
    """(cpu number, its directory) of every CPU."""
    for path in _sorted(f"{sysfs}/devices/system/cpu/cpu[0-9]*"):
        yield int(os.path.basename(path)[3:]), path


def discover(sysfs, procfs):
    candidates = list(_hwmon(sysfs))
    zones = {}
    for zone in _sorted(f"{sysfs}/class/thermal/thermal_zone*"):
        kind = _unique(zones, _read_line(f"{zone}/type") or os.path.basename(zone))
        candidates.append((f"zone:{kind}", "C", f"{zone}/temp", 0.001))
    packages, cores = set(), set()
    for cpu, path in _cpus(sysfs):
        candidates.append((f"freq:cpu{cpu}", "MHz", f"{path}/cpufreq/scaling_cur_freq", 0.001))
        package = _read_line(f"{path}/topology/physical_package_id") or "0"
        core = _read_line(f"{path}/topology/core_id") or str(cpu)
        if (package, core) not in cores:  # SMT siblings share their core's counter
            cores.add((package, core))
            label = f"core{core}" if package == "0" else f"package{package}/core{core}"
            candidates.append((f"throttle:{label}", "count", f"{path}/thermal_throttle/core_throttle_count", 1.0))
        if package not in packages:
            packages.add(package)
            candidates.append((f"throttle:package{package}", "count",
                               f"{path}/thermal_throttle/package_throttle_count", 1.0))
    sources, unreadable = [], []
    for name, unit, path, scale in candidates:
        try:
            sources.append(Source(name, unit, path, scale))
        except OSError:
            if os.path.exists(path):
                unreadable.append(name)
    for zone in _sorted(f"{sysfs}/class/powercap/intel-rapl:*"):
        parent = os.path.basename(zone).rsplit(":", 1)[0]
        name = _read_line(f"{zone}/name") or os.path.basename(zone)
        if parent != "intel-rapl":  # a subzone (core, uncore, dram) of a package
            name = f"{_read_line(f'{os.path.dirname(zone)}/{parent}/name') or parent}/{name}"
        limits = [int(v) for v in map(_read_line, glob.glob(f"{zone}/constraint_*_power_limit_uw"))
                  if v and v.isdigit()]
        try:
            sources.append(Energy(f"rapl:{name}", f"{zone}/energy_uj",
                                  int(_read_line(f"{zone}/max_energy_range_uj") or 2**32),
                                  max(limits) / 1e6 if limits and max(limits) > 0 else None))
        except (OSError, ValueError):
            unreadable.append(f"rapl:{name}")  # energy_uj is root-only on recent kernels
    for cls, name, path in ((CpuBusy, "util:cpu", f"{procfs}/stat"), (Load, "load:1m", f"{procfs}/loadavg")):
        try:
            sources.append(cls(name, path))
        except OSError:
            pass
    return sources, unreadable


def sample_raw(sources, now):
    """(one value per source in order, None where nothing to send; positions that could not be read)."""
    values, bad = [], []
    for index, source in enumerate(sources):
        try:
            values.append(source.value(now))
        except (OSError, ValueError, IndexError):
            values.append(None)
            bad.append(index)
    return values, bad


def decode(names, scales, values, bad=()):
    """The controller's side of a pass: {series: value in its unit}, [names not read]."""
    out = {}
    for name, value in zip(names, values):  # noqa: B905 — the node's python3 may predate strict=
        if value is not None:
            scale = scales.get(name)
            out[name] = round(value * scale, 3) if scale else (round(value, 3) if isinstance(value, float) else value)
    return out, [names[i] for i in bad]


def sample(sources, now):
    """One pass decoded at once (tests, benchmarks)."""
    values, bad = sample_raw(sources, now)
    return decode([s.name for s in sources], scales(sources), values, bad)


def scales(sources):
    return {s.name: s.scale for s in sources if s.scale != 1.0}


def _number(value):
    return "null" if value is None else str(value)


def recheck(sources):
    gone = []
    for source in sources:
        try:
            source.recheck()
        except OSError:
            gone.append(source.name)
    return gone


def main(argv):
    config = json.loads(argv[1])
    interval = float(config.get("interval", 1.0))
    sources, unreadable = discover(config.get("sysfs", "/sys"), config.get("procfs", "/proc"))
    out = sys.stdout
    limits = {s.name: s.limit_w for s in sources if getattr(s, "limit_w", None)}
    names = [s.name for s in sources]
    out.write(json.dumps({"series": {s.name: s.unit for s in sources}, "order": names, "scale": scales(sources),
                          "unreadable": unreadable, "power_limits": limits}) + "\n")
    out.flush()
    start, seq, gone = time.monotonic(), 0, []
    index = {name: i for i, name in enumerate(names)}
    while True:
        if seq and seq % RECHECK_PASSES == 0:
            gone = [index[name] for name in recheck(sources)]
        values, bad = sample_raw(sources, time.monotonic())
        bad = sorted(set(bad) | set(gone)) if gone else bad
        line = f'{{"seq":{seq},"t":{time.time():.3f},"r":[{",".join(map(_number, values))}]'
        out.write(f'{line},"bad":{bad}}}\n' if bad else line + "}\n")
        out.flush()
        seq += 1
        # Sleep to the next tick of a fixed grid; when late (a busy node), skip the missed ticks.
        late = time.monotonic() - (start + seq * interval)
        if late > 0:
            start += (int(late // interval) + 1) * interval  # no burst of catch-up samples
        time.sleep(max(start + seq * interval - time.monotonic(), 0))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
