"""`qualify profile init` and runs completed by discovery, end to end on the tests' own lab (lab-pve1..3 over
SSH), plus the rules that need no lab: no overwrite without --force, --diff, `require:`."""

from __future__ import annotations

import json

import pytest
import yaml
from test_e2e_lab import lab_workspace  # noqa: F401  (the lab with the repo's profiles)


def verdict(workspace, node):
    return json.loads((workspace.runs(node)[-1] / "verdict.json").read_text())


def outcomes(v):
    return {c["name"]: c["outcome"] for c in v["checks"]}


def lab_serial(lab, node):
    from qualify.lab.lab import lab_status

    backing = lab_status(lab).nodes[node].backing_file
    return (backing.parent / f"{backing.name}.qualify-serial").read_text().strip()


def mesh_addresses(lab, node):
    """{peer: the peer's address on the cable between them} from the lab's own record of its mesh."""
    from qualify.lab.lab import lab_status

    found = {}
    for ln in lab_status(lab).links:
        if node in (ln.a, ln.b):
            peer, address = (ln.b, ln.addr_b) if ln.a == node else (ln.a, ln.addr_a)
            found[peer] = address.split("/")[0]
    return found


@pytest.fixture
def init_file(lab_workspace, lab):
    node, (first, third) = lab.nodes[1], (lab.nodes[0], lab.nodes[2])
    output = lab_workspace.root / f"{node}-init.yaml"
    proc = lab_workspace.qualify("profile", "init", node, "--peers", f"{first},{third}", "--output", str(output))
    assert proc.returncode == 0, proc.stderr
    return node, output


def test_init_names_the_drive_by_serial_and_both_mesh_links(init_file, lab):
    node, output = init_file
    written = yaml.safe_load(output.read_text())
    assert written["checks"]["storage"]["drives"] == [{"serial": lab_serial(lab, node), "allow_destroy": False}]
    links = {(link["peer"], link["interface"], link["peer_address"]) for link in written["checks"]["network"]["links"]}
    assert links == {(peer, f"to-{peer}", address) for peer, address in mesh_addresses(lab, node).items()}
    text = output.read_text()
    assert "# /dev/loop" in text and "— share of MemAvailable to test" in text  # comments: drive facts, reasons


def test_init_refuses_to_overwrite_and_shows_a_diff(init_file, lab_workspace):
    node, output = init_file
    again = lab_workspace.qualify("profile", "init", node, "--output", str(output))
    assert again.returncode == 2 and "exists: not overwriting it (--force" in again.stderr
    output.write_text(output.read_text().replace("allow_destroy: false", "allow_destroy: true"))
    diff = lab_workspace.qualify("profile", "init", node, "--peers", "x", "--output", str(output), "--diff")
    changed = [line[0] + line[1:].split("#")[0].strip() for line in diff.stdout.splitlines() if "allow_destroy" in line]
    assert diff.returncode == 0 and changed == ["-allow_destroy: true", "+allow_destroy: false"], diff.stdout
    assert "allow_destroy: true" in output.read_text()  # --diff writes nothing


def test_run_with_the_init_profile_reads_then_writes_when_allowed(init_file, lab_workspace, lab):
    node, output = init_file
    checks = "storage or ssd_health or network or nic_health"
    lab_workspace.qualify("run", node, "--profile", str(output), "--checks", checks)
    v = verdict(lab_workspace, node)
    assert outcomes(v) | {"storage_falloff": None} == {"storage": "passed", "ssd_health": "passed",
                                                      "network": "passed", "nic_health": "passed",
                                                      "storage_falloff": None}, v["checks"]
    assert any(e["check"] == "storage" and e["reason"].startswith("writes not tested") for e in v["not_qualified"])
    storage = next(c for c in v["checks"] if c["name"] == "storage")
    assert "seq_write" not in json.dumps(storage["metrics"])

    output.write_text(output.read_text().replace("allow_destroy: false", "allow_destroy: true"))
    lab_workspace.qualify("run", node, "--profile", str(output), "--checks", "storage")
    storage = next(c for c in verdict(lab_workspace, node)["checks"] if c["name"] == "storage")
    assert storage["outcome"] == "passed" and "seq_write" in json.dumps(storage["metrics"]), storage["problems"]


def test_a_profile_of_only_host_qualifies_discovered_drives_and_links(lab_workspace, lab):
    node = lab.nodes[1]
    bare = lab_workspace.root / "bare.yaml"
    bare.write_text(f"host: {node}\n")
    lab_workspace.qualify("run", " ".join(lab.nodes), "--profile", str(bare), "--checks", "network or storage")
    v = verdict(lab_workspace, node)
    assert outcomes(v)["storage"] == "passed" and outcomes(v)["network"] == "passed", v["checks"]


def test_require_all_with_a_skipping_check_is_incomplete(workspace):
    workspace.local_node("box", extra="require: all\n")
    proc = workspace.qualify("run", "box", "--checks", "microcode or network")
    assert proc.returncode == 2, proc.stderr
    v = verdict(workspace, "box")
    assert v["verdict"] == "incomplete" and any("required but not qualified: network" in n for n in v["notes"])
    assert any(e["check"] == "network" and "no peer known" in e["how"] for e in v["not_qualified"])


def test_a_typo_in_require_is_refused(workspace):
    workspace.local_node("box", extra="require: [storgae]\n")
    proc = workspace.qualify("profile", "box")
    assert proc.returncode == 2 and "unknown check storgae" in proc.stderr
