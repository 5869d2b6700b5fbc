"""The built-in lab: simulated nodes on this machine, reached over real SSH (see lab.py)."""

from qualify.lab.lab import (
    LabConfig,
    LabState,
    LinkState,
    NodeState,
    freeze_node,
    lab_down,
    lab_status,
    lab_up,
    node_frozen,
    overlay_path,
    thaw_node,
)
from qualify.lab.tree import NodeSpec, build_node_tree

__all__ = [
    "LabConfig", "LabState", "LinkState", "NodeState", "NodeSpec", "build_node_tree",
    "freeze_node", "lab_down", "lab_status", "lab_up", "node_frozen", "overlay_path", "thaw_node",
]
