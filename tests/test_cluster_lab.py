"""The cluster view end to end on the tests' own lab (issue 16, done when): after a run of all three
nodes, one node's BIOS version and its drive's firmware change in its prepared tree; after a re-run
of that node, `qualify cluster` names exactly that node with both values, and the node whose links
are capped (tc on its egress) is the network outlier. Short checks only: the inventory comes with
every run, drive_identity reads the drive's firmware (stand-in nvme), network gives one figure per
direction."""

from __future__ import annotations

import json
import time

from test_e2e_lab import lab_workspace  # noqa: F401 (the fixture: the repo's profiles with the lab's overlays)
from test_network_lab import HEALTHY, RATE

from qualify.cluster.view import ClusterOptions, build_cluster
from qualify.lab.drive import FIXTURES, drive_dir, set_drive_case
from qualify.lab.shaping import Shape, shaped
from qualify.network.mesh import mesh_rounds, mesh_rows, wall_seconds

NODES = ("lab-pve1", "lab-pve2", "lab-pve3")
CHANGED, CAPPED = "lab-pve1", "lab-pve3"
CHECKS = "network or drive_identity"
NEW_BIOS, NEW_FIRMWARE = "5.31", "EDA7702Q"


def _profile(workspace) -> str:
    path = workspace.root / "cluster.yaml"
    path.write_text("extends: base/lab.yaml\nchecks:\n  network:\n    streams: 1\n    directions: [forward]\n")
    return str(path)


def _change_bios_and_drive_firmware(lab, node: str, tmp_path) -> tuple[str, str]:
    """The node's DMI BIOS version and its stand-in drive's firmware, changed; the old values."""
    bios = lab.node_dir(node) / "sys/class/dmi/id/bios_version"
    old_bios = bios.read_text().strip()
    bios.write_text(NEW_BIOS + "\n")
    case_file = drive_dir(lab.node_dir(node)) / "case.json"
    case = json.loads(case_file.read_text())
    smart = json.loads((FIXTURES / case["smartctl"]).read_text())
    old_firmware = smart["firmware_version"]
    smart["firmware_version"] = NEW_FIRMWARE
    flashed = tmp_path / "flashed-smartctl.json"
    flashed.write_text(json.dumps(smart))
    case_file.write_text(json.dumps({**case, "smartctl": str(flashed)}))  # an absolute path wins over FIXTURES
    return old_bios, old_firmware


def test_cluster_names_the_changed_node_and_the_capped_one(lab_workspace, lab, tmp_path):
    profile = _profile(lab_workspace)
    node_dirs = {node: lab.node_dir(node) for node in NODES}
    bios_file = node_dirs[CHANGED] / "sys/class/dmi/id/bios_version"
    saved = {path: path.read_bytes() for path in (bios_file, drive_dir(node_dirs[CHANGED]) / "case.json")}
    # three identical siblings to start with: lab-pve3's worn drive becomes the healthy model too
    worn_case = json.loads((drive_dir(node_dirs[CAPPED]) / "case.json").read_text())["case"]
    set_drive_case(node_dirs[CAPPED], "healthy")
    shapes = {(a, b): (Shape(rate_bits=RATE * 0.3) if a == CAPPED else HEALTHY)
              for a in NODES for b in NODES if a != b}
    try:
        with shaped(lab, shapes):
            started = time.monotonic()
            mesh = lab_workspace.qualify("run", " ".join(NODES), "--profile", profile, "--checks", CHECKS)
            mesh_s = time.monotonic() - started
            assert mesh.returncode in (0, 1), mesh.stderr  # the capped node's network fails
            rows = mesh_rows(lab_workspace.reports)
            assert mesh_rounds(rows) == {0: [("lab-pve2", "lab-pve3")], 1: [("lab-pve1", "lab-pve3")],
                                         2: [("lab-pve1", "lab-pve2")]}
            tests_s = wall_seconds((row["started"], row["finished"]) for row in rows)
            assert 0 < tests_s < mesh_s
            print(f"lab mesh of 3 nodes: link tests {tests_s:.1f} s wall in 3 rounds, whole run {mesh_s:.1f} s")
            before = {d["field"] for d in build_cluster(lab_workspace.reports, list(NODES),
                                                         ClusterOptions())["differences"]}

            old_bios, old_firmware = _change_bios_and_drive_firmware(lab, CHANGED, tmp_path)
            peers = ",".join(node for node in NODES if node != CHANGED)
            rerun = lab_workspace.qualify("run", CHANGED, "--profile", profile, "--checks", CHECKS, "--peers", peers)
            assert rerun.returncode == 0, rerun.stderr
        cluster = lab_workspace.qualify("cluster", *NODES)
        assert cluster.returncode == 0, cluster.stderr
    finally:
        for path, content in saved.items():
            path.write_bytes(content)
        set_drive_case(node_dirs[CAPPED], worn_case)
    data = json.loads((lab_workspace.reports / "cluster.json").read_text())
    assert data["runs"][CHANGED]["run_id"] == lab_workspace.runs(CHANGED)[-1].name

    assert before == set()  # three identical siblings
    new = data["differences"]
    assert sorted(d["field"] for d in new) == ["BIOS version", "drive_identity: firmware_revision (#1)"]
    for difference, (was, now) in zip(sorted(new, key=lambda d: d["field"]),
                                      ((old_bios, NEW_BIOS), (old_firmware, NEW_FIRMWARE)), strict=True):
        assert difference["odd_nodes"] == [CHANGED]
        assert difference["values"] == {CHANGED: now, **{n: was for n in NODES if n != CHANGED}}
        assert f"{CHANGED} has {difference['field']} '{now}', the others '{was}'" == difference["sentence"]

    network = [o for o in data["outliers"] if o["check"] == "network"]
    assert network and {o["node"] for o in network} == {CAPPED}
    assert {o["subject"] for o in network} == {f"{CAPPED} → {peer} (forward, to-{peer})"
                                               for peer in NODES if peer != CAPPED}
    for outlier in network:
        assert outlier["deviation_ratio"] < -0.5 and outlier["measurement"] == "iperf_throughput_bits_per_second"
        assert outlier["sentence"].startswith(f"{CAPPED} {outlier['subject']}: network ")
    html = (lab_workspace.reports / "cluster.html").read_text()
    assert NEW_FIRMWARE in html and CAPPED in html
