"""stress-ng's own performance figures: the `--metrics`/`--metrics-brief` table and `--yaml` metrics.

The table has looked like this since 0.09 (on stderr, "info:" lines until 0.16, "metrc:" since 0.17,
0.17 adds per-instance CPU and RSS columns):

    stress-ng: metrc: [74875] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s ...
    stress-ng: metrc: [74875] qsort             15341     10.00   1279.61      0.16      1534.09          11.99 ...

With `--timestamp` each prefix carries the time ("stress-ng: 10:48:33.34 metrc: [1858952] ...").

The YAML document (`--yaml FILE`, or stdout in old versions, possibly interleaved with stderr lines)
has a `metrics:` list of `- stressor: NAME` entries with bogo-ops, bogo-ops-per-second-real-time,
bogo-ops-per-second-usr-sys-time, wall-clock-time, user-time, system-time (and per-instance
entries in 0.21+, ignored here). Where both are present the YAML wins (more digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import ParseError

# "stress-ng: metrc: [74875] ...", with --timestamp "stress-ng: 10:48:33.34 metrc: [1858952] ..."
_STAMP = r"(?:\d\d:\d\d:\d\d(?:\.\d+)? )?"
_PREFIX = re.compile(rf"^stress-ng: {_STAMP}(?:info|metrc):\s+\[\d+\]\s?")
_FAILURE = re.compile(rf"^stress-ng: {_STAMP}fail:\s+\[\d+\]\s?(?P<message>.*?)\s*$")
_ROW = re.compile(r"^(?P<name>[\w.-]+)\s+(?P<ops>\d+)\s+(?P<real>[\d.]+)\s+(?P<usr>[\d.]+)\s+(?P<sys>[\d.]+)"
                  r"\s+(?P<rate_real>[\d.]+)\s+(?P<rate_cpu>[\d.]+)(?:\s+[\d.]+)*\s*$")
_YAML_KEYS = {"bogo-ops": "bogo_ops", "bogo-ops-per-second-real-time": "bogo_ops_per_s",
              "bogo-ops-per-second-usr-sys-time": "bogo_ops_per_cpu_s", "wall-clock-time": "real_time_s",
              "user-time": "user_time_s", "system-time": "system_time_s"}


@dataclass(frozen=True)
class StressorMetrics:
    stressor: str
    bogo_ops: int
    real_time_s: float
    user_time_s: float
    system_time_s: float
    bogo_ops_per_s: float       # over real (wall-clock) time: the throughput that drops when throttled
    bogo_ops_per_cpu_s: float   # over usr+sys CPU time


def parse_stress_ng(text: str, source: str = "stress-ng output") -> list[StressorMetrics]:
    """Metrics of every stressor in the output; ParseError when there are none."""
    found = {m.stressor: m for m in _table(text)}
    found.update({m.stressor: m for m in _yaml(text)})
    if not found:
        raise ParseError(source, "no stress-ng metrics found (expected the --metrics-brief table or a "
                                 "--yaml 'metrics:' list)")
    return list(found.values())


def stress_ng_failures(text: str) -> list[str]:
    """The messages of stress-ng's "fail:" lines, e.g. "vm: detected 3 bit errors while stressing memory"
    (how --verify reports a mismatch); [] for a clean run."""
    return [m["message"] for line in text.splitlines() if (m := _FAILURE.match(line))]


def _table(text: str) -> list[StressorMetrics]:
    """Rows of the metrics table; a row is known by its shape (a name and six or more numbers), so a table
    whose header was cut off (a log's tail) is still read. Misc metrics and summary lines have other shapes."""
    rows = []
    for line in text.splitlines():
        if not _PREFIX.match(line):
            continue
        if match := _ROW.match(_PREFIX.sub("", line).strip()):
            rows.append(StressorMetrics(
                stressor=match["name"], bogo_ops=int(match["ops"]), real_time_s=float(match["real"]),
                user_time_s=float(match["usr"]), system_time_s=float(match["sys"]),
                bogo_ops_per_s=float(match["rate_real"]), bogo_ops_per_cpu_s=float(match["rate_cpu"])))
    return rows


def _yaml(text: str) -> list[StressorMetrics]:
    """The metrics list, read line by line: stderr lines may be interleaved with the document."""
    entries: list[dict[str, str]] = []
    in_metrics = in_instances = False
    for line in text.splitlines():
        if _PREFIX.match(line):
            continue
        if re.match(r"^metrics:\s*$", line):
            in_metrics = True
            continue
        if not in_metrics:
            continue
        if re.match(r"^\S", line):  # the next top-level key or the end marker
            in_metrics = False
            continue
        stressor = re.match(r"^\s*- stressor:\s*(\S+)", line)
        if stressor:
            entries.append({"stressor": stressor[1].strip("'\"")})
            in_instances = False
        elif re.match(r"^\s+instances:\s*$", line):
            in_instances = True
        elif entries and not in_instances and (pair := re.match(r"^\s+([\w-]+):\s*(\S+)\s*$", line)):
            entries[-1][pair[1]] = pair[2]
    return [_from_yaml(entry) for entry in entries if "bogo-ops" in entry]


def _from_yaml(entry: dict[str, str]) -> StressorMetrics:
    values = {field: entry.get(key, "0") for key, field in _YAML_KEYS.items()}
    return StressorMetrics(stressor=entry["stressor"], bogo_ops=int(float(values.pop("bogo_ops"))),
                           **{k: float(v) for k, v in values.items()})
