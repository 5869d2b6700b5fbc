"""The profile overlay of a lab node: what qualify merges over the node's profile while the lab is up.

It carries only what makes a lab node reachable and quick: the lab's ssh config (host key checked
against the lab's own known_hosts), the node's prepared tree, the lab's short durations, and the
bars the lab's simulated hardware is fairly held to (its link rate; a loop drive on this machine's
disk). Its drives and links are not named here: discovery finds them, as on a real node (the loop
drive by its QLAB- marker serial, the mesh links by asking the peers for their addresses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from qualify.lab.shaping import LAB_LINK_RATE


def overlay_content(ssh_config: Path, node: str, node_dir: Path) -> dict[str, Any]:
    return {
        "host": node,
        "ssh": {"config_file": str(ssh_config)},
        "paths": {"sysfs": str(node_dir / "sys"), "procfs": str(node_dir / "proc"),
                  "firmware": str(node_dir / "firmware"), "kernel_log": str(node_dir / "kernel.log")},
        "duration": "15s",  # memory burn-in, thermal soak, idle window: seconds on the lab
        # Simulated links: short iperf3 tests keep a lab mesh run within a minute or two; a veth says
        # 10 Gb/s, the lab's links are shaped to LAB_LINK_RATE.
        "checks": {"network": {"duration": "2s", "expected_rate": f"{LAB_LINK_RATE / 1e6:g}M"},
                   "nic_health": {"load_duration": "2s"},
                   # the stand-in drive's self-tests take seconds, not minutes: read their progress every second
            "selftest": {"poll_interval": "1s"},
                   # The loop drive: the fio matrix runs for real, a few seconds per job. It is a file on this
                   # machine's disk, shared with whatever else runs here: sync-write bars a real U.2 must meet
                   # would judge the host, so the lab asks for little and sets no latency limits.
                   "storage": {"job_runtime": "3s", "random_jobs": 2, "ceph_min_sync_write_iops": 20,
                               "sync_write_latency_us": {}},
                   # ... and a file has no power-loss protection: its sync share judges the host's disk
                   "power_loss_protection": {"job_runtime": "3s", "min_sync_share": 0.01},
                   "cpu_correctness": {"per_cpu": "3s", "all_cpus": "5s", "retests": 1},
                   "pcie": {"load": "5s"}},
    }


def write_overlay(path: Path, content: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(content, sort_keys=False, default_flow_style=False))


def overlay_for(node: str) -> Path | None:
    """Entry point `qualify.overlays` (see qualify/overlays.py): the overlay of a node of the running lab."""
    from qualify.lab.lab import LabConfig, overlay_path  # late: lab.py imports this module

    return overlay_path(LabConfig.from_env(), node)
