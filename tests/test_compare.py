"""`qualify compare`: runs side by side from their measurements alone — one row per check, measurement and
subject, a column per run named by its labels, each cell marked with its outcome; a figure only one run
has still gets its row."""

from __future__ import annotations

import json
from pathlib import Path

from browser import needs_chromium, open_page
from qualify.findings import Findings
from qualify.report.compare import load_run, write_comparison
from qualify.store import RunStore


def stored_run(base: Path, labels: dict[str, str], temperature: float, extra: bool = False) -> Path:
    findings = Findings("thermal")
    findings.measure("max_package_temperature_celsius", temperature, unit="°C", high=95)
    if extra:
        findings.measure("fio_rand_read_iops", 182450, unit="IOPS", subject="S4YNNE0N")
    store = RunStore.create("pve2", base)
    store.append("run_started", node="pve2", run_id=store.run_id, labels=labels)
    store.append("check_started", name="thermal")
    store.append("check_result", name="thermal", outcome="failed" if findings.failed else "passed",
                 reasons=findings.reasons, problems=findings.problems, metrics={},
                 measurements=[m.as_record() for m in findings.measurements])
    store.append("run_finished", interrupted=None)
    store.close()
    return store.run_dir


def test_runs_side_by_side_by_measurement(tmp_path):
    hot = stored_run(tmp_path / "a", {"cooler": "19mm"}, 99.2)
    cool = stored_run(tmp_path / "b", {"cooler": "tall"}, 68.0, extra=True)
    assert load_run(hot).reasons == ["max package temperature 99.2°C (limit ≤ 95°C)"]
    html = write_comparison([hot, cool], tmp_path / "compare.html").read_text()
    assert "<th>cooler=19mm</th><th>cooler=tall</th>" in html
    assert "<td>thermal: max_package_temperature_celsius (°C)</td>" in html
    assert 'class="failed" title="max package temperature 99.2°C (limit ≤ 95°C)">99.2°C</td>' in html
    assert 'class="passed" title="max package temperature 68°C (limit ≤ 95°C)">68°C</td>' in html
    assert "<td>thermal: fio_rand_read_iops [S4YNNE0N] (IOPS)</td>" in html and "182,450 IOPS" in html
    assert "data:image/png" not in html and 'id="figure-' not in html  # no telemetry stored: no curves


def with_telemetry(run_dir: Path, peak: float) -> Path:
    """samples/telemetry-thermal.jsonl as the sampler writes it: a header, then one line per sample."""
    units = {"temp:coretemp/Package id 0": "C", "freq:cpu0": "MHz", "rapl:package-0": "W"}
    lines = [{"series": units, "interval": 1.0, "node": "pve2"}] + [
        {"seq": i, "t": 1_764_000_000.0 + i, "rx": 1_764_000_000.01 + i,
         "v": {"temp:coretemp/Package id 0": 40 + (peak - 40) * min(1, i / 60), "freq:cpu0": 3000.0,
               "rapl:package-0": 45.0}} for i in range(120)]
    (run_dir / "samples").mkdir(exist_ok=True)
    (run_dir / "samples/telemetry-thermal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run_dir


@needs_chromium
def test_curves_of_every_run_are_interactive_in_the_page(tmp_path):
    hot = with_telemetry(stored_run(tmp_path / "a", {"cooler": "19mm"}, 99.2), 99.2)
    cool = with_telemetry(stored_run(tmp_path / "b", {"cooler": "tall"}, 68.0), 68.0)
    page = open_page(write_comparison([hot, cool], tmp_path / "compare.html"))
    assert page.console == []
    assert page.dom.count('class="uplot') == 3  # temperature, clock, power
    assert "Compared: package temperature" in page.dom and "cooler=19mm" in page.dom
    data = json.loads(page.dom.split('id="qualify-chart-data">', 1)[1].split("</script>", 1)[0])
    assert max(v for v in data[0]["series"][0]["values"] if v is not None) == 99.2
    assert [s["label"] for s in data[0]["series"]] == ["cooler=19mm", "cooler=tall"]
