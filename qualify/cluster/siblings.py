"""Siblings compared: which node is configured differently, which one performs out of line.

Pure: verdicts in (verdict.json of each node's newest run), findings out. Configuration comes from
each run's inventory (and the info measurements checks record, e.g. a drive's firmware); performance
from the measurements (checks[].measurements) — this module knows no check's keys.

Performance: every numeric measurement that more than one node has is pooled over the nodes (and
their subjects: each drive, each link direction); a value more than `tolerance` (default 10 %, as
Intel's cluster guidance keeps STREAM/LINPACK of nodes) away from the pool's median — or from the
golden node's value — is an outlier, named with the node, its subject and the reference.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Inventory fields that must agree between siblings, and how to read them from verdict.json's inventory.
CONFIG_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CPU model", ("cpu_model",)),
    ("CPU stepping", ("cpu_stepping",)),
    ("microcode", ("microcode",)),
    ("logical CPUs", ("logical_cpus",)),
    ("memory (GiB)", ("memory_gib",)),
    ("BIOS vendor", ("board", "bios_vendor")),
    ("BIOS version", ("board", "bios_version")),
    ("BIOS date", ("board", "bios_date")),
    ("board", ("board", "board_name")),
    ("kernel", ("kernel",)),
    ("kernel command line", ("cmdline",)),
)
INFO_UNITS_HIGHER_IS_BETTER = ("iops", "bytes_per_second", "bits_per_second", "ops_per_second", "mhz")


@dataclass(frozen=True)
class Difference:
    field: str
    odd_nodes: tuple[str, ...]
    values: dict[str, Any]        # node -> value
    sentence: str


@dataclass(frozen=True)
class Outlier:
    check: str
    measurement: str
    node: str
    subject: str | None
    value: float
    reference: float
    reference_from: str           # "median of a, b" or "golden node a"
    deviation_ratio: float        # (value - reference) / reference
    unit: str
    sentence: str


def _get(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def config_values(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration of one node as flat `field -> value`, from its inventory and info measurements."""
    inventory = verdict.get("inventory") or {}
    values: dict[str, Any] = {}
    for field, path in CONFIG_FIELDS:
        value = _get(inventory, path)
        if value not in (None, "", []):
            values[field] = value
    dimms = [d for d in inventory.get("dimms") or [] if isinstance(d, Mapping) and d.get("size_mib")]
    if dimms:
        values["DIMM count"] = len(dimms)
        values["DIMM sizes (MiB)"] = ", ".join(str(d["size_mib"]) for d in dimms)
        values["DIMM speeds (MT/s)"] = ", ".join(str(d.get("configured_speed_mts") or d.get("speed_mts"))
                                                 for d in dimms)
    for nic in inventory.get("nics") or []:
        if isinstance(nic, Mapping) and nic.get("driver"):
            values[f"NIC {nic.get('name')} driver"] = nic["driver"]
            if nic.get("firmware"):
                values[f"NIC {nic.get('name')} firmware"] = nic["firmware"]
    disks = [d for d in inventory.get("disks") or [] if isinstance(d, Mapping)]
    for number, disk in enumerate(sorted(disks, key=lambda d: str(d.get("name")))):
        for key in ("model", "firmware"):
            if disk.get(key):
                values[f"drive {number + 1} {key}"] = disk[key]
    # Facts checks record as info measurements with a string value (firmware, LBA format, link, policies).
    for check in verdict.get("checks") or []:
        for m in check.get("measurements") or []:
            if m.get("outcome") == "info" and isinstance(m.get("value"), str):
                where = _position_subject(m.get("subject"), verdict)
                values[f"{check.get('name')}: {m.get('name')}{' ' + where if where else ''}"] = m["value"]
    return values


def _position_subject(subject: str | None, verdict: Mapping[str, Any]) -> str:
    """A subject as it corresponds across nodes: drive serials differ, their position does not."""
    if not subject:
        return ""
    node = verdict.get("node") or ""
    disks = [str(d.get("serial")) for d in (verdict.get("inventory") or {}).get("disks") or []
             if isinstance(d, Mapping) and d.get("serial")]
    if subject in disks:
        return f"(drive {sorted(disks).index(subject) + 1})"
    return f"({subject.replace(node, '<node>')})" if node else f"({subject})"


def differences(verdicts: Mapping[str, Mapping[str, Any]]) -> list[Difference]:
    """Every configuration field on which the nodes disagree, naming the odd node(s) and every value."""
    per_node = _aligned({node: config_values(v) for node, v in verdicts.items()})
    fields = sorted({f for values in per_node.values() for f in values})
    found = []
    for field in fields:
        values = {node: per_node[node].get(field) for node in per_node
                  if not (per_node[node].get(field) is None and _names(field, node))}
        distinct = Counter(_hashable(v) for v in values.values())
        if len(distinct) < 2:
            continue
        (common, count), *_ = distinct.most_common()
        if count > len(values) / 2:
            odd = tuple(n for n, v in values.items() if _hashable(v) != common)
            usual = next(v for v in values.values() if _hashable(v) == common)
            sentence = "; ".join(f"{n} has {field} {_show(values[n])}" for n in odd) + \
                f", the others {_show(usual)}"
        else:
            odd = tuple(values)
            sentence = f"{field} differs on every node: " + ", ".join(f"{n} {_show(v)}" for n, v in values.items())
        found.append(Difference(field, odd, values, sentence))
    return found


def _names(field: str, node: str) -> bool:
    """Whether the field is about the node itself: a mesh NIC named after its peer ("to-pve2") is
    on every node but pve2, which has no link to itself (its lack there is no difference)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(node)}(?![A-Za-z0-9])", field) is not None


_WITH_SUBJECT = re.compile(r"^(.*) \((.*)\)$")


def _aligned(per_node: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fields whose subject only one node has (a drive serial the inventory does not list: a lab loop
    drive, a disk lsblk cannot see) paired across nodes by position: "(#1)", "(#2)" in subject order."""
    seen = Counter(f for values in per_node.values() for f in values)
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for node, values in per_node.items():
        for field in values:
            match = _WITH_SUBJECT.match(field)
            if seen[field] == 1 and match:
                groups[match[1]][node].append(field)
    aligned = {node: dict(values) for node, values in per_node.items()}
    for prefix, by_node in groups.items():
        if len(by_node) < 2:
            continue
        for node, fields in by_node.items():
            for number, field in enumerate(sorted(fields)):
                aligned[node][f"{prefix} (#{number + 1})"] = aligned[node].pop(field)
    return aligned


def _hashable(value: Any) -> Any:
    return repr(value)


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value) if isinstance(value, str) else str(value)


def _numeric_measurements(verdict: Mapping[str, Any]) -> Iterable[tuple[str, str, str | None, float, str, dict]]:
    for check in verdict.get("checks") or []:
        for m in check.get("measurements") or []:
            value = m.get("value")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            yield check.get("name", "?"), m.get("name", "?"), m.get("subject"), float(value), m.get("unit", ""), m


def outliers(verdicts: Mapping[str, Mapping[str, Any]], tolerance: float = 0.10,
             golden: str | None = None) -> list[Outlier]:
    """Measurements of a node more than `tolerance` from the siblings' median (or the golden node's)."""
    pools: dict[tuple[str, str], list[tuple[str, str | None, float, str, dict]]] = defaultdict(list)
    for node, verdict in verdicts.items():
        for check, name, subject, value, unit, m in _numeric_measurements(verdict):
            pools[(check, name)].append((node, subject, value, unit, m))
    found = []
    for (check, name), entries in sorted(pools.items()):
        nodes = {e[0] for e in entries}
        if len(nodes) < 2 or not _comparable(name, entries[0][4]):
            continue
        if golden is not None:
            gold = [e[2] for e in entries if e[0] == golden]
            if not gold:
                continue
            reference, source = statistics.median(gold), f"the golden node {golden}"
            candidates = [e for e in entries if e[0] != golden]
        else:
            reference = statistics.median(e[2] for e in entries)
            candidates = entries
        if reference == 0:
            continue
        for node, subject, value, unit, _ in candidates:
            ratio = (value - reference) / abs(reference)
            if abs(ratio) <= tolerance:
                continue
            if golden is None:
                others = sorted(nodes - {node})
                source = f"the median of {', '.join([node, *others])}" if len(others) > 1 else \
                    f"the median of {', '.join(sorted(nodes))}"
            where = f" {subject}" if subject else ""
            direction = "below" if ratio < 0 else "above"
            sentence = (f"{node}{where}: {check} {name} {_with_unit(value, unit)} is {abs(ratio):.0%} {direction} "
                        f"{source} ({_with_unit(reference, unit)})")
            found.append(Outlier(check, name, node, subject, value, reference, source, round(ratio, 4), unit,
                                 sentence))
    return found


def _comparable(name: str, measurement: Mapping[str, Any]) -> bool:
    """Performance and condition figures; not counters of events or setup values."""
    return not any(word in name for word in ("count", "events", "errors", "_s_into", "started"))


def _with_unit(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}" if unit else text


def as_data(items: Iterable[Difference | Outlier]) -> list[dict[str, Any]]:
    return [asdict(item) for item in items]
