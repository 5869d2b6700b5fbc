"""The node-side telemetry sampler: standard library only, sent to the node as `python3 -c <this file>`.

    python3 -c "$(cat sampler.py)" '{"sysfs": "/sys", "procfs": "/proc", "interval": 1.0}'

Discovers the node's sensors once, keeps every file open and re-reads it with os.pread (no process
and no open() per sample), and prints on stdout first one JSON line, then one compact line per interval:

    {"series": {"temp:coretemp/Package id 0": "C", ...}, "order": [...], "scale": {...},
     "power_limits": {"rapl:package-0": 45.0}}                     first line: what will be sampled
    0 1764500000.123 45000 38000 ? 2800000 ... 12.345 3.1 0.05     then: seq, node time, one token per series

Lighter on the node: a pass preads the files in one comprehension and sends their text as the kernel
wrote it (millidegrees, kHz, µW), in the header's order, joined by spaces: no parsing, no number
formatting, no JSON; the controller parses and scales (`decode`). Only the few derived series (RAPL
watts, CPU busy %, load) are computed here. A token `-` means nothing to send (the first reading of a
rate), `?` a file that vanished or could not be read in this pass; a token that is not a number (a
file holding garbage) is judged so by the controller (recorded, never fatal). `t` is the node's own
clock. Units after decoding: C, rpm, W, MHz, %, count. Counters (throttle) are cumulative.
"""

import glob
import json
import math
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
    """One kernel file, kept open, sent as the kernel wrote it (scaled by the controller). The derived
    series' subclasses compute value() on the node."""

    def __init__(self, name, unit, path, scale=1.0):
        self.name, self.unit, self.path, self.scale = name, unit, path, scale
        self.fd = os.open(path, os.O_RDONLY)
        self.inode = os.fstat(self.fd).st_ino

    def raw(self):
        return os.pread(self.fd, 64, 0).split(b"\n", 1)[0]

    def recheck(self):
        """Reopen a replaced file; raise OSError when it is gone."""
        inode = os.stat(self.path).st_ino
        if inode != self.inode:
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_RDONLY)
            self.inode = inode


class Energy(Source):
    """RAPL energy_uj (µJ), sent as read; the controller turns it into watts (the counter wraps at
    max_range_uj). limit_w: the zone's highest constraint_*_power_limit_uw (a reading far above it is a
    glitch, judged by the controller)."""

    def __init__(self, name, path, max_range_uj, limit_w=None):
        super().__init__(name, "W", path)
        self.max_range_uj = max_range_uj
        self.limit_w = limit_w


class CpuBusy(Source):
    """The first line of /proc/stat: its eight counters, joined by commas; the controller turns two
    passes into the busy share of all CPUs."""

    def __init__(self, name, path):
        super().__init__(name, "%", path)

    def token(self):
        return b",".join(os.pread(self.fd, 512, 0).split(b"\n", 1)[0].split()[1:9])


class Load(Source):
    """The first field of /proc/loadavg."""

    def __init__(self, name, path):
        super().__init__(name, "", path)

    def token(self):
        return os.pread(self.fd, 64, 0).split(None, 1)[0]


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


UNREAD = b"?"  # the token of a file that could not be read in this pass


class Pass:
    """Sampling passes over the sources, each as a line of tokens: first the plain files (all but the
    two of /proc), read by one comprehension and sent as read - their texts joined by spaces are the
    line, once the newlines are gone - then the first fields of /proc/stat and /proc/loadavg."""

    def __init__(self, sources):
        self.plain = [s for s in sources if not hasattr(s, "token")]
        self.fields = [s for s in sources if hasattr(s, "token")]
        self.sources = self.plain + self.fields  # the order of the tokens
        self.fds = [s.fd for s in self.plain]
        self.gone = set()  # positions whose file vanished: unread until a recheck finds them again

    def tokens(self):
        """The pass's tokens as one bytes line (without the newline)."""
        pread, count = os.pread, len(self.fds)
        try:
            text = b" ".join([pread(fd, 64, 0) for fd in self.fds])
        except OSError:
            text = None
        if text is None or text.count(b"\n") != count or text.count(b" ") != count - 1 or self.gone:
            text = b" ".join(self._careful())  # an unreadable, empty or odd file: one by one
        else:
            text = text.replace(b"\n", b"")
        return b" ".join(([text] if count else []) + [self._field(i, s) for i, s in enumerate(self.fields, count)])

    def _careful(self):
        for index, fd in enumerate(self.fds):
            try:
                words = [] if index in self.gone else os.pread(fd, 64, 0).split(None, 1)
            except OSError:
                words = []
            yield words[0] if words else UNREAD

    def _field(self, index, source):
        try:
            return UNREAD if index in self.gone else source.token() or UNREAD
        except (OSError, IndexError):
            return UNREAD

    def recheck(self):
        """Reopen replaced files; note the vanished ones."""
        self.gone = set()
        for index, source in enumerate(self.sources):
            try:
                source.recheck()
            except OSError:
                self.gone.add(index)
        self.fds = [s.fd for s in self.plain]


def header(sources, unreadable):
    """The first line: what will be sampled, in the order of the tokens, and how the controller decodes it."""
    return {"series": {s.name: s.unit for s in sources}, "order": [s.name for s in sources],
            "scale": scales(sources), "unreadable": unreadable,
            "power_limits": {s.name: s.limit_w for s in sources if getattr(s, "limit_w", None)},
            "energy_wrap_uj": {s.name: s.max_range_uj for s in sources if isinstance(s, Energy)},
            "cpu_busy": [s.name for s in sources if isinstance(s, CpuBusy)]}


class Decoder:
    """The controller's side: one pass's tokens -> ({series: value in its unit}, [names not read]).
    Keeps the previous pass of the rates (RAPL watts, CPU busy %): their first pass has no value."""

    def __init__(self, header):
        self.names = list(header.get("order") or header.get("series", {}))
        self.scales = dict(header.get("scale") or {})
        self.wrap = dict(header.get("energy_wrap_uj") or {})
        self.cpu = set(header.get("cpu_busy") or ())
        self.last = {}  # rate series -> (counter(s), node monotonic time) of its previous good reading

    def __call__(self, tokens, now):
        out, bad = {}, []
        for name, token in zip(self.names, tokens):  # noqa: B905 — the node's python3 may predate strict=
            try:
                if name in self.cpu:
                    value = self._busy(name, [int(x) for x in token.split(",")], now)
                elif name in self.wrap:
                    value = self._watts(name, int(token), now)
                else:
                    value = _number(token)
            except (ValueError, IndexError):
                bad.append(name)  # "?", garbage
                continue
            if value is not None:
                scale = self.scales.get(name)
                out[name] = round(value * scale, 3) if scale else value
        return out, bad

    def _watts(self, name, energy, now):
        last, self.last[name] = self.last.get(name), (energy, now)
        if last is None or now <= last[1]:
            return None
        delta = energy - last[0]
        if delta < 0:
            delta += self.wrap[name]
        return round(delta / 1e6 / (now - last[1]), 3)

    def _busy(self, name, fields, now):
        if len(fields) != 8:
            raise ValueError(name)
        idle, total = fields[3] + fields[4], sum(fields)
        last, self.last[name] = self.last.get(name), (idle, total)
        if last is None or total <= last[1]:
            return None
        return round(100.0 * (1 - (idle - last[0]) / (total - last[1])), 1)


def _number(token):
    """An integer as the kernel wrote it, or a decimal (load); anything else is a ValueError."""
    try:
        return int(token)
    except ValueError:
        value = float(token)
        if not math.isfinite(value):
            raise
        return round(value, 3)


def sample(sources, now, decoder=None):
    """One pass decoded at once (tests, benchmarks); the same decoder across passes gives the rates."""
    sampling = Pass(sources)
    decoder = decoder or Decoder(header(sampling.sources, []))
    return decoder(sampling.tokens().decode("utf-8", "replace").split(" "), now)


def scales(sources):
    return {s.name: s.scale for s in sources if s.scale != 1.0}


def main(argv):
    config = json.loads(argv[1])
    interval = float(config.get("interval", 1.0))
    sources, unreadable = discover(config.get("sysfs", "/sys"), config.get("procfs", "/proc"))
    sampling = Pass(sources)
    sys.stdout.write(json.dumps(header(sampling.sources, unreadable)) + "\n")
    sys.stdout.flush()
    write = os.write  # one blocking write per line, no buffer layer between (a pipe takes it whole)
    wall_ns = getattr(time, "time_ns", lambda: int(time.time() * 1e9))  # Python 3.6 has no *_ns
    monotonic_ns = getattr(time, "monotonic_ns", lambda: int(time.monotonic() * 1e9))
    start, seq = time.monotonic(), 0
    while True:
        if seq and seq % RECHECK_PASSES == 0:
            sampling.recheck()
        # seq, the node's clock and its monotonic clock (for the rates) in ns, then the tokens
        tokens = sampling.tokens()
        write(1, b"%d %d %d%s%s\n" % (seq, wall_ns(), monotonic_ns(), b" " if tokens else b"", tokens))
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
