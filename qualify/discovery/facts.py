"""Everything `qualify profile init` reads from a node, in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qualify.discovery.drives import Drive, discover_drives
from qualify.discovery.nics import Nic, discover_nics
from qualify.discovery.peers import discover_links, management_interfaces
from qualify.inventory import collect_inventory
from qualify.node import Node
from qualify.profile import NetworkLink


@dataclass
class NodeFacts:
    node: str
    host: str
    drives: list[Drive]
    nics: list[Nic]
    links: list[NetworkLink]
    peers: list[str]
    inventory: dict[str, Any]  # qualify/inventory.py: CPU, microcode, memory, DIMMs, board and BIOS
    management: set[str] = field(default_factory=set)  # interfaces carrying the controller's ssh
    problems: list[str] = field(default_factory=list)  # peers that could not be asked


def gather_facts(node: Node, peers: Sequence[str]) -> NodeFacts:
    nics = discover_nics(node)
    links, problems = discover_links(node, peers) if peers else ([], [])
    return NodeFacts(node=node.name, host=node.profile.host, drives=discover_drives(node), nics=nics, links=links,
                     peers=list(peers), inventory=collect_inventory(node),
                     management=management_interfaces(node, [nic.interface for nic in nics]), problems=problems)
