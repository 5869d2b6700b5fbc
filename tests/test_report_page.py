"""report.html as a person sees it: opened in headless Chromium after real runs on prepared node trees."""

from __future__ import annotations

import json
import re
from unittest.mock import patch

from browser import needs_chromium, open_page, screenshot
from qualify.report.charts import Chart, Series, charts_json, envelope

pytestmark = needs_chromium
INJECTED = '<img src=x onerror="document.body.setAttribute(\'data-pwned\',1)"><script>document.title="pwned"</script>'


def run(workspace, extra: str = "", labels: tuple[str, ...] = ()) -> tuple[int, dict, object]:
    workspace.local_node("n1", extra=extra)
    argv = ["run", "n1", "--checks", "microcode"]
    for label in labels:
        argv += ["--label", label]
    proc = workspace.qualify(*argv)
    run_dir = workspace.runs("n1")[-1]
    return proc.returncode, json.loads((run_dir / "verdict.json").read_text()), run_dir


def test_a_failing_run_shows_verdict_and_cause_first(workspace):
    code, verdict, run_dir = run(workspace, "checks:\n  microcode:\n    min_revision: 0x4ff\n")
    assert code == 1
    page = open_page(run_dir / "report.html")
    dom = page.dom
    assert page.console == []
    verdict_at = dom.index('id="verdict"')
    causes = dom[dom.index('id="causes"'):dom.index('id="checks"')]
    assert "<b>microcode</b>" in causes and "0x435" in causes and "0x4ff" in causes
    assert verdict_at < dom.index('id="causes"') < dom.index('id="checks"')
    assert ">FAIL<" in dom
    screenshot(run_dir / "report.html", "report-failing-run")


def test_a_passing_run_reads_value_against_limit(workspace):
    code, verdict, run_dir = run(workspace)
    assert code == 0, verdict
    page = open_page(run_dir / "report.html")
    assert page.console == [] and ">PASS<" in page.dom
    assert re.search(r"<span class=\"badge o-passed\">passed</span>", page.dom)
    screenshot(run_dir / "report.html", "report-passing-run")


def test_injected_labels_stay_text(workspace):
    code, verdict, run_dir = run(workspace, labels=(f"cooler={INJECTED}",))
    page = open_page(run_dir / "report.html")
    assert "data-pwned" not in page.dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<title>pwned</title>" not in page.dom and "&lt;script&gt;" in page.dom
    index = open_page(workspace.reports / "index.html")
    assert "data-pwned" not in index.dom.split("<body", 1)[1].split(">", 1)[0] and "&lt;img" in index.dom


def test_charts_are_interactive_objects_and_stay_offline(tmp_path):
    from qualify.report.page import render_report_html

    t = [1_764_000_000 + i for i in range(100_000)]  # a long run: bucketed, peaks kept
    values = [50 + (i % 600) / 20 for i in range(100_000)]
    values[77_777] = 99.5
    chart = Chart("package temperature", *_enveloped(t, values))
    data = json.loads(charts_json([chart]))
    assert max(v for v in data[0]["series"][0]["high"] if v is not None) == 99.5
    page = tmp_path / "chart.html"
    with patch("qualify.report.page.check_charts", return_value=[chart]):
        page.write_text(render_report_html(tmp_path, {**VERDICT, "checks": [CHECK]}))
    result = open_page(page)
    assert result.console == []
    assert 'class="uplot' in result.dom  # uPlot built its object in the page
    assert "Content-Security-Policy" in result.dom and not re.search(r"(src|href)=\"https?:", result.dom)


def test_the_buyers_line_comes_first_one_row_per_drive_in_words(tmp_path):
    from qualify.report.page import render_report_html

    drives = [
        {"subject": "S4YNNE0N", "model": "SAMSUNG MZQLB1T9HAJR", "verdict": "reject",
         "line": "reject: self-test failed (read failure at LBA 8192)",
         "checks": {"ssd_health": "passed", "selftest": "failed", "drive_integrity": "skipped"}},
        {"subject": "QLAB-healthy", "model": None, "verdict": "accept", "line": "accept",
         "checks": {"selftest": "passed"}},
        {"subject": "QLAB-odd", "verdict": "unknown", "line": "unknown: no self-test log (smartctl -l selftest)"},
        {"subject": INJECTED, "verdict": "maybe", "checks": ["not", "a", "mapping"]},  # shapes a page must survive
        "not a drive",
    ]
    verdict = {**VERDICT, "verdict": "fail", "drives": drives, "checks": [{**CHECK, "outcome": "failed"}],
               "not_qualified": [{"check": "memory", "reason": "not run", "how": "run it"}]}
    page = tmp_path / "report.html"
    page.write_text(render_report_html(tmp_path, verdict))
    result = open_page(page)
    dom = result.dom
    assert result.console == []
    section = dom[dom.index('id="drives"'):dom.index('id="not-qualified"')]
    assert dom.index('id="verdict"') < dom.index('id="causes"') < dom.index('id="drives"') < dom.index('id="checks"')
    assert "reject: self-test failed (read failure at LBA 8192)" in section and "SAMSUNG MZQLB1T9HAJR" in section
    assert '<span class="badge o-reject">reject: self-test failed' in section  # the words beside the colour
    assert '<span class="badge o-accept">accept</span>' in section
    assert "unknown: no self-test log (smartctl -l selftest)" in section
    assert section.count("<tr") == 5  # header + four drives; the entry that is not a mapping is left out
    assert '<span class="badge o-unknown">unknown</span>' in section  # an unknown verdict word reads as unknown
    assert "&lt;img" in section and "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "selftest: <span class=\"badge o-failed\">failed</span>" in section
    screenshot(page, "report-buyers-line", height=900)


def test_no_drives_no_section(tmp_path):
    from qualify.report.page import render_report_html

    assert 'id="drives"' not in render_report_html(tmp_path, {**VERDICT, "drives": []})
    assert 'id="drives"' not in render_report_html(tmp_path, {**VERDICT, "drives": {"x": 1}})


VERDICT = {"node": "n", "run_id": "r", "verdict": "pass", "checks": [], "events": [], "notes": [],
           "not_qualified": [], "inventory": {}, "finished": "2026-12-02T13:00:00Z"}
CHECK = {"name": "thermal", "outcome": "passed", "measurements": [], "reasons": [], "problems": []}


def _enveloped(t, values):
    x, columns = envelope(t, {"package": values}, max_points=1500)
    mean, low, high = columns["package"]
    assert len(x) <= 1500
    return x, [Series("package", mean, "°C", low, high)]


def test_json_in_the_page_cannot_close_its_script():
    text = charts_json([Chart("</script><script>alert(1)</script>", [0.0], [Series("a", [1.0])])])
    assert "</script" not in text and "<" not in text
