"""A run as a node_exporter textfile-collector file, so a homelab's Prometheus/Grafana can trend nights.

    qualify export prometheus reports/pve2/<run-id> --output /var/lib/prometheus/node-exporter/qualify-pve2.prom

Every series carries `node`; per-check series carry `check`. The run's verdict and each check's
outcome are state sets (1 for the current state, 0 for the others) so a panel can count them; key
figures get their own names (temperature, throttling, power, fio, iperf3, SSD wear, freezes, memory,
C-states); every other numeric top-level metric of a check is `qualify_check_metric{metric=...}`.
The file is written atomically (temporary file + rename), as the textfile collector requires.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from qualify.errors import UsageError
from qualify.store import read_records
from qualify.verdict import EXIT_CODES, OUTCOMES, build_verdict

QUANTILES = {"p50": "0.5", "p99": "0.99", "p99.9": "0.999", "p99.99": "0.9999"}
MB = 1_000_000

# (metric name, help, check, metric key in that check, scale)
_KEY_FIGURES: tuple[tuple[str, str, str, str, float], ...] = (
    ("qualify_max_package_temperature_celsius", "Highest package temperature of the thermal soak",
     "thermal", "max_package_temp_c", 1),
    ("qualify_throttle_events", "Thermal throttle events during the soak's load", "thermal", "throttle_events", 1),
    ("qualify_throttled_ratio", "Share of the load time spent throttling", "thermal", "throttled_share", 1),
    ("qualify_sustained_clock_hertz", "Median all-core clock late in the load", "thermal", "sustained_clock_mhz", 1e6),
    ("qualify_load_package_power_watts", "Average package power under the soak's load", "thermal",
     "avg_package_power_w", 1),
    ("qualify_idle_package_power_watts", "Average package power over the idle window", "idle_power",
     "idle_package_power_w", 1),
    ("qualify_deepest_cstate_residency_ratio", "Share of the idle window in the deepest C-state", "idle_power",
     "deepest_residency", 1),
    ("qualify_iperf_throughput_bits_per_second", "Lowest iperf3 throughput over the node's links", "network",
     "throughput_bps", 1),
    ("qualify_freezes", "Freezes detected during the soak", "soak", "freezes", 1),
    ("qualify_reboots", "Unexpected reboots during the soak", "soak", "reboots", 1),
    ("qualify_memory_edac_new_errors", "EDAC error counts that rose during the memory burn-in", "memory",
     "edac_new_errors", 1),
    ("qualify_memory_verify_failures", "stress-ng --verify failures of the memory burn-in", "memory",
     "verify_failures", 1),
)
# per drive from ssd_health: (metric name, help, key)
_SSD_FIGURES = (
    ("qualify_ssd_percentage_used", "NVMe percentage used / ATA wear-out of the drive", "percentage_used"),
    ("qualify_ssd_media_errors", "Media and data integrity errors of the drive", "media_errors"),
    ("qualify_ssd_power_on_hours", "Power-on hours of the drive", "power_on_hours"),
    ("qualify_ssd_data_written_bytes", "Data written to the drive over its life", "data_written_bytes"),
)


def export_prometheus(run_dir: Path, output: Path) -> Path:
    """Write the run's metrics to `output` (a .prom file); returns the path written."""
    verdict = build_verdict(read_records(run_dir))
    if not output.name.endswith(".prom"):
        raise UsageError(f"{output}: the textfile collector reads only files ending in .prom")
    if not output.parent.is_dir():
        raise UsageError(f"{output.parent} does not exist (node_exporter's --collector.textfile.directory, "
                         f"e.g. /var/lib/prometheus/node-exporter)")
    write_to_textfile(str(output), _registry(verdict))
    return output


def _registry(verdict: dict[str, Any]) -> CollectorRegistry:
    registry = CollectorRegistry()
    node = verdict["node"] or "unknown"

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(name, doc, ("node", *labels), registry=registry)

    run_verdict = gauge("qualify_run_verdict", "1 for the run's verdict, 0 for the others", "verdict")
    for state in EXIT_CODES:
        run_verdict.labels(node, state).set(int(verdict["verdict"] == state))
    gauge("qualify_run_info", "The run this file describes", "run_id").labels(node, verdict["run_id"] or "").set(1)
    stamp = verdict["finished"] or verdict["last_record"]
    if stamp:
        gauge("qualify_run_timestamp_seconds", "When the run finished (or its last record)").labels(node).set(
            datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())

    checks = {c["name"]: c for c in verdict["checks"]}
    outcome = gauge("qualify_check_outcome", "1 for the check's outcome, 0 for the others", "check", "outcome")
    duration = gauge("qualify_check_duration_seconds", "How long the check ran", "check")
    generic = gauge("qualify_check_metric", "A numeric metric of a check", "check", "metric")
    for name, check in checks.items():
        for state in OUTCOMES:
            outcome.labels(node, name, state).set(int(check["outcome"] == state))
        if check.get("duration_s") is not None:
            duration.labels(node, name).set(check["duration_s"])
        for key, value in check.get("metrics", {}).items():
            if _number(value) is not None:
                generic.labels(node, name, key).set(_number(value))

    for metric, doc, check_name, key, scale in _KEY_FIGURES:
        value = _number(checks.get(check_name, {}).get("metrics", {}).get(key))
        if value is not None:
            gauge(metric, doc, "check").labels(node, check_name).set(value * scale)
    _drives(checks, node, gauge)
    return registry


def _drives(checks: dict[str, dict], node: str, gauge: Callable[..., Gauge]) -> None:
    fio = list(_fio(checks.get("storage", {}).get("metrics", {}).get("drives", {})))
    if fio:
        iops = gauge("qualify_fio_iops", "IOPS of a fio job of the storage matrix", "check", "drive", "job")
        bandwidth = gauge("qualify_fio_bandwidth_bytes_per_second", "Bandwidth of a fio job", "check", "drive", "job")
        latency = gauge("qualify_fio_latency_seconds", "Completion latency percentile of a fio job",
                        "check", "drive", "job", "quantile")
        for drive, job, result in fio:
            if _number(result.get("iops")) is not None:
                iops.labels(node, "storage", drive, job).set(result["iops"])
            if _number(result.get("mb_s")) is not None:
                bandwidth.labels(node, "storage", drive, job).set(result["mb_s"] * MB)
            for percentile, micros in (result.get("latency_us") or {}).items():
                if percentile in QUANTILES and _number(micros) is not None:
                    latency.labels(node, "storage", drive, job, QUANTILES[percentile]).set(micros / 1e6)
    ssd = checks.get("ssd_health", {}).get("metrics", {}).get("drives", {})
    for metric, doc, key in _SSD_FIGURES:
        values = {drive: _number(health.get(key)) for drive, health in ssd.items() if isinstance(health, dict)}
        values = {drive: value for drive, value in values.items() if value is not None}
        if values:
            series = gauge(metric, doc, "check", "drive")
            for drive, value in values.items():
                series.labels(node, "ssd_health", drive).set(value)


def _fio(drives: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for drive, jobs in drives.items():
        for job, result in (jobs.items() if isinstance(jobs, dict) else ()):
            if isinstance(result, dict):
                yield drive, job, result


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None
