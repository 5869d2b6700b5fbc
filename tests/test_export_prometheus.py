"""`qualify export prometheus`: the textfile is accepted by prometheus_client's own parser and carries the
verdict, outcomes and every numeric measurement labelled by node, check and subject (a real lab network
run: the iperf3 figure of every direction); bad paths give clear errors; a soak writes it by itself when
the profile says where."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from test_e2e_lab import lab_workspace  # noqa: F401 (the fixture: the repo's profiles with the lab's overlays)

from qualify.findings import Findings
from qualify.store import RunStore


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def measured(name: str, declare) -> list[dict]:
    """A check's measurements as the plugin records them (through the real Findings)."""
    findings = Findings(name)
    declare(findings)
    return [m.as_record() for m in findings.measurements]


CHECKS = {
    "thermal": ("failed", lambda f: (f.measure("max_package_temperature_celsius", 97.5, unit="°C", high=95),
                                     f.measure("package_sensor", "temp:coretemp/Package id 0"))),
    "storage": ("passed", lambda f: (f.measure("fio_rand_read_iops", 182450, unit="IOPS", subject="S4YNNE0N"),
                                     f.measure("fio_sync_write_latency_p99_seconds", None, unit="s", high=0.01,
                                               subject="S4YNNE0N"))),
    "idle_power": ("skipped", lambda f: None),
}


def fake_run(base: Path) -> Path:
    store = RunStore.create("pve2", base)
    store.append("run_started", node="pve2", run_id=store.run_id, labels={})
    for name, (outcome, declare) in CHECKS.items():
        store.append("check_started", name=name)
        store.append("check_result", name=name, outcome=outcome, reasons=[], problems=[], metrics={},
                     measurements=measured(name, declare), duration_s=12.5)
    store.append("run_finished", interrupted=None)
    store.close()
    return store.run_dir


def test_every_numeric_measurement_is_a_series_parsed_by_prometheus_client(workspace):
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
    thermal = {node, ("check", "thermal"), ("subject", "")}
    assert got[("qualify_max_package_temperature_celsius", frozenset(thermal))] == 97.5
    hot = thermal | {("name", "max_package_temperature_celsius")}
    assert got[("qualify_measurement_outcome", frozenset(hot | {("outcome", "failed")}))] == 1
    assert got[("qualify_measurement_outcome", frozenset(hot | {("outcome", "passed")}))] == 0
    assert got[("qualify_measurement_limit", frozenset(hot | {("bound", "high")}))] == 95
    drive = {node, ("check", "storage"), ("subject", "S4YNNE0N")}
    assert got[("qualify_fio_rand_read_iops", frozenset(drive))] == 182450
    unread = drive | {("name", "fio_sync_write_latency_p99_seconds"), ("outcome", "unknown")}
    assert got[("qualify_measurement_outcome", frozenset(unread))] == 1  # an unread figure: its outcome, no value
    assert not any(name in ("qualify_fio_sync_write_latency_p99_seconds", "qualify_package_sensor") for name, _ in got)


def test_a_real_lab_network_run_exports_the_throughput_of_every_direction(lab_workspace, lab):
    profile = lab_workspace.root / "net.yaml"
    profile.write_text("extends: base/lab.yaml\nchecks:\n  network:\n    duration: 1s\n    streams: 1\n"
                       "    directions: [forward, bidir]\n")
    node, peers = lab.nodes[1], [peer for peer in lab.nodes if peer != lab.nodes[1]]
    proc = lab_workspace.qualify("run", node, "--profile", str(profile), "--checks", "network",
                                 "--peers", ",".join(peers))
    assert proc.returncode in (0, 1), proc.stderr  # a loaded machine may miss the lab's rate: still exported
    run_dir = lab_workspace.runs(node)[-1]
    proc = lab_workspace.qualify("export", "prometheus", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    got = samples((run_dir / "qualify.prom").read_text())
    throughput = {dict(labels)["subject"]: value for name, labels in got
                  if name == "qualify_iperf_throughput_bits_per_second" for value in [got[(name, labels)]]}
    expected = set()
    for peer in peers:
        expected |= {f"{node} → {peer} (forward, to-{peer})", f"{node} → {peer} (bidir, to-{peer})",
                     f"{peer} → {node} (bidir, to-{peer})"}
    assert set(throughput) == expected
    assert all(value > 0 for value in throughput.values())
    for subject in expected:
        labels = frozenset({("node", node), ("check", "network"), ("name", "iperf_throughput_bits_per_second"),
                            ("subject", subject), ("bound", "low")})
        assert got[("qualify_measurement_limit", labels)] > 0  # the share of the lab's stated rate


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
