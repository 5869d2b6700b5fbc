"""The profile overlay of a lab node: what qualify merges over profiles/<node>.yaml while the lab is up.

It points the profile at the lab: the lab's ssh config (host key checked against the lab's own
known_hosts), the node's prepared tree, and the lab's own hardware (links, drive) where checks
need to be told about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def overlay_content(ssh_config: Path, node: str, node_dir: Path) -> dict[str, Any]:
    return {
        "host": node,
        "ssh": {"config_file": str(ssh_config)},
        "paths": {"sysfs": str(node_dir / "sys"), "procfs": str(node_dir / "proc"),
                  "firmware": str(node_dir / "firmware"), "kernel_log": str(node_dir / "kernel.log")},
    }


def write_overlay(path: Path, content: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(content, sort_keys=False, default_flow_style=False))
