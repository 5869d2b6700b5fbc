"""Nightly soaks: systemd units written where told (never /etc in tests), and the night-by-night trend page."""

import json

import pytest

from browser import needs_chromium, open_page
from qualify.errors import UsageError
from qualify.findings import Findings
from qualify.nightly import service_text
from qualify.report.trend import night, render_trend
from qualify.store import RunStore


def test_install_writes_a_service_and_a_timer_per_node(workspace, tmp_path):
    workspace.local_node("n1")
    workspace.local_node("n2")
    units = tmp_path / "units"
    proc = workspace.qualify("nightly", "install", "n1", "n2", "--at", "23:30", "--duration", "6h",
                             "--unit-dir", str(units))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in units.iterdir()) == [
        "qualify-nightly-n1.service", "qualify-nightly-n1.timer",
        "qualify-nightly-n2.service", "qualify-nightly-n2.timer"]
    service = (units / "qualify-nightly-n1.service").read_text()
    assert "-m qualify soak n1 --duration 6h" in service and f"WorkingDirectory={workspace.root}" in service
    assert f"Environment=QUALIFY_PROFILES={workspace.profiles}" in service
    timer = (units / "qualify-nightly-n2.timer").read_text()
    assert "OnCalendar=*-*-* 23:30:00" in timer and "Unit=qualify-nightly-n2.service" in timer
    assert "systemctl enable --now qualify-nightly-n1.timer qualify-nightly-n2.timer" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["n1", "--at", "25:00"], "--at '25:00': expected a time of day like 22:00"),
    (["n1", "--at", "22:00\n"], "--at '22:00\\n': expected a time of day like 22:00"),
    (["n1", "--at", "22:00\nExecStartPre=/bin/true"], "expected a time of day like 22:00"),
    (["n1", "--at", "22:00:00"], "expected a time of day like 22:00"),
    (["n1", "--duration", "0"], "DURATION=0: a duration must be longer than zero"),
    (["--", "../x"], "node name '../x': a node name is letters, digits"),
    (["n1", "x%h"], "node name 'x%h'"),
    (["n1", "--duration", "soon"], "DURATION=soon"),
    (["nosuch"], "no profile for node 'nosuch'"),
])
def test_bad_nightly_input_is_named(workspace, tmp_path, args, message):
    workspace.local_node("n1")
    proc = workspace.qualify("nightly", "install", "--unit-dir", str(tmp_path / "units"), *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "units").exists()


def _night(base, events, soak, finished=True):
    """A stored night whose soak check measured `soak` (name -> (value, high limit))."""
    findings = Findings("soak")
    for name, (value, high) in soak.items():
        findings.measure(name, value, unit="°C" if name.endswith("_celsius") else "", high=high)
    store = RunStore.create("pve2", base)
    store.append("run_started", node="pve2", run_id=store.run_id)
    for event in events:
        store.append("event", **event)
    store.append("check_result", name="soak", outcome="failed" if events else "passed",
                 measurements=[m.as_record() for m in findings.measurements])
    if finished:
        store.append("run_finished")
    store.close()
    return store.run_dir


def test_trend_puts_nights_side_by_side(tmp_path):
    quiet = _night(tmp_path, [], {"max_package_temperature_celsius": (71.5, 95), "throttle_events_total": (0, None)})
    bad = _night(tmp_path, [
        {"severity": "critical", "source": "heartbeat", "event": "freeze", "fails_run": True, "message": "froze"},
        {"severity": "critical", "source": "heartbeat", "event": "reboot", "fails_run": True, "message": "rebooted"},
        {"severity": "critical", "source": "kernel", "event": "soft_lockup", "fails_run": True, "message": "lockup"},
        {"severity": "warning", "source": "kernel", "event": "thermal_throttle", "message": "throttled"},
    ], {"max_package_temperature_celsius": (99.0, 95), "throttle_events_total": (412, None)}, finished=False)
    first, second = night(quiet), night(bad)
    temperature = ("soak", "max_package_temperature_celsius", "")
    assert (first.verdict, first.freezes, first.figures[temperature].value) == ("pass", 0, 71.5)
    assert (second.verdict, second.freezes, second.reboots, second.kernel_events, second.failing_kernel_events,
            second.figures[("soak", "throttle_events_total", "")].value) == ("incomplete", 1, 1, 2, 1, 412)
    assert second.figures[temperature].outcome == "failed"
    assert second.kinds == {"soft_lockup": 1, "thermal_throttle": 1}
    html = render_trend(tmp_path / "pve2").read_text()
    assert html.index(quiet.name) < html.index(bad.name), "oldest first"
    assert "soft_lockup 1, thermal_throttle 1" in html and "soak: max_package_temperature_celsius (°C)" in html
    assert '<td class="failed"\n title="max package temperature 99°C (limit ≤ 95°C)">99°C</td>' in html


@needs_chromium
def test_trend_page_charts_are_interactive_in_a_browser(tmp_path):
    for temperature in (71.5, 74.0, 99.0):
        _night(tmp_path, [], {"max_package_temperature_celsius": (temperature, 95), "throttle_events_total": (0, None)})
    page = open_page(render_trend(tmp_path / "pve2"))
    assert page.console == []
    assert page.dom.count('class="uplot') >= 2  # events per night, and one chart per measurement
    data = json.loads(page.dom.split('id="qualify-chart-data">', 1)[1].split("</script>", 1)[0])
    values = [v for chart in data for series in chart["series"] for v in series["values"] if v is not None]
    assert 99.0 in values and 71.5 in values


def test_trend_of_a_node_without_runs_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="holds no runs"):
        render_trend(tmp_path / "pve9")


def test_a_percent_in_a_path_stays_a_percent_for_systemd(monkeypatch, tmp_path):
    monkeypatch.setenv("QUALIFY_REPORTS", "/srv/qualify/100%h")
    text = service_text("n1", "8h", tmp_path / "50%")
    assert "Environment=QUALIFY_REPORTS=/srv/qualify/100%%h" in text and f"WorkingDirectory={tmp_path}/50%%" in text
    monkeypatch.setenv("QUALIFY_REPORTS", "/srv/x\nExecStartPre=/bin/true")
    with pytest.raises(UsageError, match="line break"):
        service_text("n1", "8h", tmp_path)
