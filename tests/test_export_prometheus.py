"""`qualify export prometheus`: the textfile is accepted by prometheus_client's own parser and carries the
verdict, outcomes and key figures labelled by node and check; bad paths give clear errors; a soak writes
it by itself when the profile says where."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from qualify.store import RunStore

THERMAL = {"max_package_temp_c": 97.5, "throttle_events": 12, "throttled_share": 0.05, "sustained_clock_mhz": 2400,
           "avg_package_power_w": 41.2, "package_sensor": "temp:coretemp/Package id 0", "time_to_throttle_s": None}
STORAGE = {"fio": "fio-3.33", "drives": {"S4YNNE0N": {
    "device": "/dev/nvme0n1",
    "rand_read": {"iops": 182450, "mb_s": 747.3, "latency_us": {"p50": 111.1, "p99.99": 13697.0}},
    "sync_write": {"iops": 624, "mb_s": 2.6, "latency_us": {"p99": 7372.8}, "fit_for_ceph": False}}}}
SSD = {"drives": {"S4YNNE0N": {"percentage_used": 16, "media_errors": 0, "power_on_hours": 4127,
                               "data_written_bytes": 31249999872000, "verdict": "accept"}}}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def fake_run(base: Path) -> Path:
    store = RunStore.create("pve2", base)
    store.append("run_started", node="pve2", run_id=store.run_id, labels={})
    results = {"thermal": ("failed", THERMAL), "storage": ("passed", STORAGE), "ssd_health": ("passed", SSD),
               "network": ("passed", {"throughput_bps": 9.41e9}), "soak": ("passed", {"freezes": 0, "reboots": 0}),
               "idle_power": ("skipped", {})}
    for name, (outcome, metrics) in results.items():
        store.append("check_started", name=name)
        store.append("check_result", name=name, outcome=outcome, reasons=[], problems=[], metrics=metrics,
                     duration_s=12.5)
    store.append("run_finished", interrupted=None)
    store.close()
    return store.run_dir


def test_export_is_parsed_by_prometheus_client(workspace):
    run_dir = fake_run(workspace.reports)
    out = workspace.root / "pve2.prom"
    proc = workspace.qualify("export", "prometheus", str(run_dir), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    got = samples(out.read_text())
    node = ("node", "pve2")
    assert got[("qualify_run_verdict", frozenset({node, ("verdict", "fail")}))] == 1
    assert got[("qualify_run_verdict", frozenset({node, ("verdict", "pass")}))] == 0
    assert got[("qualify_check_outcome", frozenset({node, ("check", "thermal"), ("outcome", "failed")}))] == 1
    assert got[("qualify_check_outcome", frozenset({node, ("check", "idle_power"), ("outcome", "skipped")}))] == 1
    thermal = frozenset({node, ("check", "thermal")})
    assert got[("qualify_max_package_temperature_celsius", thermal)] == 97.5
    assert got[("qualify_throttle_events", thermal)] == 12
    assert got[("qualify_sustained_clock_hertz", thermal)] == 2.4e9
    drive = {node, ("check", "storage"), ("drive", "S4YNNE0N"), ("job", "rand_read")}
    assert got[("qualify_fio_iops", frozenset(drive))] == 182450
    assert got[("qualify_fio_bandwidth_bytes_per_second", frozenset(drive))] == 747.3e6
    assert got[("qualify_fio_latency_seconds", frozenset(drive | {("quantile", "0.9999")}))] == 0.013697
    assert got[("qualify_iperf_throughput_bits_per_second", frozenset({node, ("check", "network")}))] == 9.41e9
    assert got[("qualify_ssd_percentage_used", frozenset({node, ("check", "ssd_health"), ("drive", "S4YNNE0N")}))] == 16
    assert got[("qualify_freezes", frozenset({node, ("check", "soak")}))] == 0
    assert got[("qualify_check_metric", frozenset({node, ("check", "thermal"), ("metric", "throttled_share")}))] == 0.05
    assert not any(name == "qualify_check_metric" and ("metric", "package_sensor") in labels for name, labels in got)


def test_default_output_and_clear_errors(workspace):
    run_dir = fake_run(workspace.reports)
    proc = workspace.qualify("export", "prometheus", str(run_dir.parent))  # a node folder: its newest run
    assert proc.returncode == 0 and proc.stdout.strip() == str(run_dir / "qualify.prom")
    for args, message in (([str(workspace.root)], "is not a run directory"),
                          ([str(run_dir), "--output", str(workspace.root / "x.txt")], "only files ending in .prom"),
                          ([str(run_dir), "--output", "/nonexistent/q.prom"], "/nonexistent does not exist")):
        proc = workspace.qualify("export", "prometheus", *args)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_soak_writes_the_configured_textfile(workspace):
    textfiles = workspace.root / "textfiles"
    textfiles.mkdir()
    workspace.local_node("s1", extra=f"export:\n  prometheus_textfile: {textfiles}/qualify-{{node}}.prom\n"
                                     f"watch:\n  enabled: false\n")
    proc = workspace.qualify("soak", "s1", "--duration", "2s")
    assert proc.returncode in (0, 1, 2), proc.stderr
    got = samples((textfiles / "qualify-s1.prom").read_text())
    assert got[("qualify_check_outcome", frozenset({("node", "s1"), ("check", "soak"), ("outcome", "passed")}))] == 1
    assert f"s1: Prometheus textfile: {textfiles}/qualify-s1.prom" in proc.stderr
