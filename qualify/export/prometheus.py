"""A run as a node_exporter textfile-collector file, so a homelab's Prometheus/Grafana can trend nights.

    qualify export prometheus reports/pve2/<run-id> --output /var/lib/prometheus/node-exporter/qualify-pve2.prom

Built from the checks' measurements alone (verdict.json's `checks[].measurements`), so it knows no check:
- `qualify_<name>{node, check, subject}`: every numeric measurement as the check recorded it (the name
  carries its unit: `qualify_iperf_throughput_bits_per_second{subject="pve2 → pve3 (forward, enp6s0f0)"}`);
- `qualify_measurement_outcome{node, check, name, subject, outcome}`: 1 for each measurement's outcome
  (passed, failed, warning, info, unknown), figures without a number included;
- `qualify_measurement_limit{node, check, name, subject, bound}`: its low/high limits;
- `qualify_run_verdict` and `qualify_check_outcome`: state sets (1 for the current state, 0 for the others),
  plus `qualify_run_info`, `qualify_run_timestamp_seconds` and `qualify_check_duration_seconds`.
Every series carries `node`; `subject` is "" where a check measures one thing. The file is written
atomically (temporary file + rename), as the textfile collector requires.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from qualify.errors import UsageError
from qualify.store import read_records
from qualify.verdict import EXIT_CODES, OUTCOMES, build_verdict

PREFIX = "qualify_"
MEASUREMENT_OUTCOMES = ("passed", "failed", "warning", "info", "unknown")
_NOT_A_NAME = re.compile(r"[^a-zA-Z0-9_]")


def export_prometheus(run_dir: Path, output: Path) -> Path:
    """Write the run's measurements to `output` (a .prom file); returns the path written."""
    verdict = build_verdict(read_records(run_dir))
    if not output.name.endswith(".prom"):
        raise UsageError(f"{output}: the textfile collector reads only files ending in .prom")
    if not output.parent.is_dir():
        raise UsageError(f"{output.parent} does not exist (node_exporter's --collector.textfile.directory, "
                         f"e.g. /var/lib/prometheus/node-exporter)")
    write_to_textfile(str(output), registry(verdict))
    return output


def registry(verdict: dict[str, Any]) -> CollectorRegistry:
    found = CollectorRegistry()
    node = verdict["node"] or "unknown"
    gauges: dict[str, Gauge] = {}

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        if name not in gauges:
            gauges[name] = Gauge(name, doc, ("node", *labels), registry=found)
        return gauges[name]

    run_verdict = gauge("qualify_run_verdict", "1 for the run's verdict, 0 for the others", "verdict")
    for state in EXIT_CODES:
        run_verdict.labels(node, state).set(int(verdict["verdict"] == state))
    gauge("qualify_run_info", "The run this file describes", "run_id").labels(node, verdict["run_id"] or "").set(1)
    stamp = verdict["finished"] or verdict["last_record"]
    if stamp:
        gauge("qualify_run_timestamp_seconds", "When the run finished (or its last record)").labels(node).set(
            datetime.fromisoformat(stamp).timestamp())

    outcome = gauge("qualify_check_outcome", "1 for the check's outcome, 0 for the others", "check", "outcome")
    duration = gauge("qualify_check_duration_seconds", "How long the check ran", "check")
    judged = gauge("qualify_measurement_outcome", "1 for the measurement's outcome, 0 for the others",
                   "check", "name", "subject", "outcome")
    limit = gauge("qualify_measurement_limit", "A limit the measurement was judged against",
                  "check", "name", "subject", "bound")
    reserved = set(gauges)
    for check in verdict["checks"]:
        name = check["name"]
        for state in OUTCOMES:
            outcome.labels(node, name, state).set(int(check["outcome"] == state))
        if check.get("duration_s") is not None:
            duration.labels(node, name).set(check["duration_s"])
        for measurement in check.get("measurements") or []:
            subject = measurement.get("subject") or ""
            what = measurement["name"]
            for state in MEASUREMENT_OUTCOMES:
                judged.labels(node, name, what, subject, state).set(int(measurement.get("outcome") == state))
            for bound in ("low", "high"):
                if (at := _number(measurement.get(bound))) is not None:
                    limit.labels(node, name, what, subject, bound).set(at)
            value = _number(measurement.get("value"))
            series = PREFIX + _NOT_A_NAME.sub("_", what)
            if value is not None and series not in reserved:
                unit = f" ({measurement['unit']})" if measurement.get("unit") else ""
                gauge(series, f"{what}{unit}, as the check measured it", "check", "subject").labels(
                    node, name, subject).set(value)
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None
