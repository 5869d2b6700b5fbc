"""The network check end to end over SSH on the tests' own lab, its veth mesh shaped with tc/nftables
so the model is real: healthy links pass against their configured rate, a capped direction
(forward, or one direction only) and a lossy one (reverse) fail and are named; the mesh of three
nodes in parallel runs one link test at a time and shows every direction."""

from __future__ import annotations

import json
from datetime import datetime

from test_e2e_lab import lab_workspace  # noqa: F401 (the fixture: the repo's profiles with the lab's overlays)

from qualify.checks.network import THROUGHPUT
from qualify.lab.shaping import LAB_LINK_RATE, Shape, shaped
from qualify.network.mesh import mesh_cells, mesh_rows

RATE = LAB_LINK_RATE  # what the lab overlay states for every link, bits/s
HEALTHY = Shape(rate_bits=RATE)


def every_direction_healthy(nodes=("lab-pve1", "lab-pve2", "lab-pve3")) -> dict[tuple[str, str], Shape]:
    return {(a, b): HEALTHY for a in nodes for b in nodes if a != b}


def run_network(workspace, node: str, profile_extra: str = "") -> tuple[int, dict]:
    profile = workspace.root / f"{node}-net.yaml"
    profile.write_text(f"extends: base/lab.yaml\nchecks:\n  network:\n    streams: 2\n{profile_extra}")
    peers = ",".join(peer for peer in workspace.lab.nodes if peer != node)
    proc = workspace.qualify("run", node, "--profile", str(profile), "--checks", "network", "--peers", peers)
    verdict = json.loads((workspace.runs(node)[-1] / "verdict.json").read_text())
    return proc.returncode, next(c for c in verdict["checks"] if c["name"] == "network")


def test_capped_forward_direction_only_is_named_and_the_rest_passes(lab_workspace, lab):
    shapes = {**every_direction_healthy(), ("lab-pve2", "lab-pve3"): Shape(rate_bits=RATE * 0.3)}
    with shaped(lab, shapes):
        code, check = run_network(lab_workspace, "lab-pve2", "    directions: [forward, reverse]\n")
    assert code == 1 and check["outcome"] == "failed"
    assert [problem.split(":")[0] for problem in check["problems"]] == ["lab-pve2 → lab-pve3 (forward, to-lab-pve3)"]
    problem = check["problems"][0]
    assert f"of the expected {RATE / 1e6:.0f} Mbit/s, the profile's expected rate; 90% required" in problem
    outcomes = {m["subject"]: m["outcome"] for m in check["measurements"] if m["name"] == THROUGHPUT}
    assert outcomes == {"lab-pve2 → lab-pve3 (forward, to-lab-pve3)": "failed",
                        "lab-pve3 → lab-pve2 (reverse, to-lab-pve3)": "passed",
                        "lab-pve2 → lab-pve1 (forward, to-lab-pve1)": "passed",
                        "lab-pve1 → lab-pve2 (reverse, to-lab-pve1)": "passed"}


def test_lossy_reverse_direction_is_named_with_retransmits_as_the_cause(lab_workspace, lab):
    shapes = {**every_direction_healthy(), ("lab-pve1", "lab-pve2"): Shape(rate_bits=RATE, loss_percent=20)}
    with shaped(lab, shapes):
        code, check = run_network(lab_workspace, "lab-pve2", "    directions: [reverse]\n")
    assert code == 1
    assert len(check["problems"]) == 1
    problem = check["problems"][0]
    assert problem.startswith("lab-pve1 → lab-pve2 (reverse, to-lab-pve1): ")
    assert "likely cause: " in problem and "retransmits" in problem and "packets are lost on the link" in problem
    assert any(r.startswith("lab-pve3 → lab-pve2 (reverse, to-lab-pve3): throughput ") for r in check["reasons"])


def test_mesh_in_parallel_one_test_at_a_time_with_every_direction(lab_workspace, lab):
    base = lab_workspace.root / "mesh.yaml"
    base.write_text("extends: base/lab.yaml\nchecks:\n  network:\n    streams: 2\n    directions: [forward]\n")
    with shaped(lab, every_direction_healthy()):
        proc = lab_workspace.qualify("run", "lab-pve1 lab-pve2 lab-pve3", "--profile", str(base), "--checks", "network")
    assert proc.returncode == 0, proc.stderr
    rows = mesh_rows(lab_workspace.reports)
    assert sorted((r["source"], r["target"]) for r in rows) == sorted(
        (a, b) for a in ("lab-pve1", "lab-pve2", "lab-pve3") for b in ("lab-pve1", "lab-pve2", "lab-pve3") if a != b)
    assert all(cell.passed for cell in mesh_cells(rows).values())
    spans = sorted((datetime.fromisoformat(r["started"].rstrip("Z")), datetime.fromisoformat(r["finished"].rstrip("Z")))
                   for r in rows)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):  # on 3 nodes every two links share a node
        assert end <= start, "two link tests sharing a node overlapped: the per-node locks did not serialise them"
    report = (lab_workspace.runs("lab-pve3")[-1] / "report.html").read_text()
    assert "Mesh throughput" in report
