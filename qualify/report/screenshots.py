"""The README's screenshots, made by qualify itself: `python -m qualify.report.screenshots [OUT_DIR]`.

- compare of three thermal runs: real `qualify run --checks thermal` runs on this machine against local node
  trees driven by the lab's thermal model (qualify.lab.thermal_model), one per cooler preset, real stress-ng
  load; then `qualify compare` of the three.
- a 12 h soak report: a stored run written as the soak check and the watch write one (run.jsonl, 12 h of
  heartbeats and telemetry in samples/), synthetic — a night of idle/load phases that ends in a freeze and a
  reboot — judged by the soak check's own judge and rendered as `qualify report` does.

Pages are opened in headless Chromium (qualify.report.browser); images go to docs/img (default).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from qualify.checks.soak import judge
from qualify.findings import Findings
from qualify.lab import NodeSpec, build_node_tree
from qualify.lab.thermal_model import COOLERS, start_model, stop_model
from qualify.report import render_run
from qualify.report.browser import screenshot
from qualify.store import RunStore

REPO = Path(__file__).resolve().parents[2]
COOLER_LABELS = {"19mm-lid-closed": "cooler=19mm,lid=closed", "19mm-lid-open": "cooler=19mm,lid=open",
                 "tall-lid-open": "cooler=tall,lid=open"}
THERMAL_PROFILE = """duration: 30s
telemetry:
  interval: 0.5s
checks:
  thermal:
    slice: 8s
    idle_lead_in: 2s
    cool_down: 2s
    max_perf_drop_percent: 90  # as the tests: a shared build machine's own throughput varies; the coolers show in °C
"""
SPEEDUP = 60.0  # 30 s of soak is half an hour of heatsink time


def thermal_runs(root: Path) -> list[Path]:
    """One real thermal run per cooler preset, one after the other (they share this machine's CPU)."""
    env = {**os.environ, "QUALIFY_PROFILES": str(root / "profiles"), "QUALIFY_REPORTS": str(root / "reports"),
           "QUALIFY_LAB_DIR": str(root / "no-lab")}
    runs = []
    for n, cooler in enumerate(COOLERS):
        node, tree = f"cooler{n}", root / "trees" / f"cooler{n}"
        build_node_tree(tree, NodeSpec(sensors=True))
        (root / "profiles").mkdir(parents=True, exist_ok=True)
        (root / "profiles" / f"{node}.yaml").write_text(
            f"host: localhost\npaths:\n  sysfs: {tree}/sys\n  procfs: {tree}/proc\n  firmware: {tree}/firmware\n"
            f"  kernel_log: {tree}/kernel.log\n{THERMAL_PROFILE}")
        start_model(tree, cooler, SPEEDUP)
        try:
            subprocess.run([sys.executable, "-m", "qualify", "run", node, "--checks", "thermal",
                            "--label", COOLER_LABELS[cooler]], env=env, cwd=root, check=False, timeout=600)
        finally:
            stop_model(tree)
        runs += sorted((root / "reports" / node).glob("*T*Z"))[-1:]
    return runs


def soak_run(base: Path, hours: float = 12.0) -> Path:
    """A stored 12 h soak: idle/load phases of an hour, a kernel warning, a freeze in an idle phase at
    11 h 38 min, the node power-cycled and back 14 min later (a reboot)."""
    start = datetime(2026, 11, 28, 20, 0, tzinfo=UTC).timestamp()
    seconds = int(hours * 3600)
    freeze_at, back_at = int(11.63 * 3600), int(11.87 * 3600)

    def stamp(offset: float) -> str:
        return datetime.fromtimestamp(start + offset, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    store = RunStore.create("pve2", base)
    store.append("run_started", t=stamp(0), node="pve2", run_id=store.run_id, host="pve2.lan",
                 labels={"board": "ES-sample", "bios": "1.07"}, argv=["soak", "pve2"], version="screenshot",
                 profile={"watch": {"heartbeat_interval": 5, "missed_heartbeats": 6}}, profile_sources=[])
    store.append("check_started", t=stamp(0), name="soak")
    phases = store.samples("soak_phases")
    for index, at in enumerate(range(0, seconds, 3600)):
        phases.append({"t": stamp(at), "phase": ("idle", "load")[index % 2], "index": index, "planned_s": 3600})
    beats = store.samples("heartbeat")
    for seq, at in enumerate(range(0, seconds, 5)):
        if freeze_at < at < back_at:
            continue
        gap = (back_at - freeze_at) if at == back_at - back_at % 5 + 5 else 5.0 + 0.02 * math.sin(at)
        beats.append({"t": stamp(at), "seq": seq, "boot_id": "b1" if at < back_at else "b2", "gap_s": round(gap, 2)})
    units = {"temp:coretemp/Package id 0": "C", **{f"temp:coretemp/Core {c}": "C" for c in range(4)},
             **{f"freq:cpu{c}": "MHz" for c in range(8)}, "rapl:package-0": "W", "util:cpu": "%"}
    telemetry = store.samples("telemetry-soak")
    telemetry.append({"series": units, "interval": 2.0, "node": "pve2"})
    for seq, at in enumerate(range(0, seconds, 2)):
        if freeze_at < at < back_at:
            continue
        load = (at // 3600) % 2 == 1
        into = at % 3600
        heat = (42 + 36 * (1 - math.exp(-into / 400))) if load else (44 + 34 * math.exp(-into / 300)) - 8 * (
            1 - math.exp(-into / 300))
        heat += 1.5 * math.sin(at / 37)
        values = {"temp:coretemp/Package id 0": round(heat, 1), "rapl:package-0": round(52 if load else 7.5, 1),
                  "util:cpu": 100.0 if load else 1.5}
        values.update({f"temp:coretemp/Core {c}": round(heat - 2 - c, 1) for c in range(4)})
        values.update({f"freq:cpu{c}": (3100 - 10 * c if load else 800 + 3 * c) for c in range(8)})
        telemetry.append({"seq": seq, "t": start + at, "rx": start + at + 0.01, "v": values})
    events = [
        {"t": stamp(5.25 * 3600), "severity": "warning", "source": "kernel", "event": "thermal_throttle",
         "fails_run": False,
         "message": "CPU3: Core temperature above threshold, cpu clock throttled (total events = 1)"},
        {"t": stamp(freeze_at + 30), "severity": "critical", "source": "heartbeat", "event": "freeze",
         "fails_run": True, "message": f"pve2 froze: no heartbeat for 30.0 s (threshold 30 s = 6 intervals); "
                                       f"last heartbeat at {stamp(freeze_at)} (idle phase)"},
        {"t": stamp(back_at), "severity": "critical", "source": "heartbeat", "event": "reboot", "fails_run": True,
         "message": f"pve2 rebooted unexpectedly: boot id changed from b1 to b2; last heartbeat of the previous "
                    f"boot at {stamp(freeze_at)}"},
    ]
    for event in events:
        store.append("event", **event)
    findings = Findings("soak")
    findings.measure("duration_seconds", seconds, unit="s", text="soak length")
    judge(findings, "pve2", events, seconds, seconds // 3600)
    store.append("check_result", t=stamp(seconds), name="soak", outcome="failed", reasons=findings.reasons,
                 problems=findings.problems, metrics=findings.metrics,
                 measurements=[m.as_record() for m in findings.measurements], not_qualified=[],
                 duration_s=float(seconds))
    store.append("run_finished", t=stamp(seconds + 2), interrupted=None, pytest_exit=1)
    store.close()
    return store.run_dir


def main(out: Path = REPO / "docs" / "img") -> None:
    with tempfile.TemporaryDirectory(prefix="qualify-screenshots-") as tmp:
        root = Path(tmp)
        soak = render_run(soak_run(root / "soak"), index=False)
        print(screenshot(soak, out / "soak-12h-report.png", height=1900))
        runs = thermal_runs(root)
        compare = root / "compare.html"
        subprocess.run([sys.executable, "-m", "qualify", "compare", *map(str, runs), "--output", str(compare)],
                       check=True, env={**os.environ, "QUALIFY_REPORTS": str(root / "reports")})
        print(screenshot(compare, out / "compare-three-coolers.png", height=1500))


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
