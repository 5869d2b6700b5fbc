"""The node's links as the profile names them: the interface checked to exist, its negotiated
link settings, and a connection to the peer node at the other end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qualify.cluster.schedule import round_of
from qualify.errors import NodeUnreachable, QualifyError
from qualify.node import Node, connect
from qualify.overlays import resolve_profile
from qualify.parsers.ethtool import LinkSettings, parse_ethtool_link
from qualify.parsers.iproute import Link, parse_ip_addr, parse_ip_link
from qualify.profile import NetworkLink


@dataclass(frozen=True)
class Expectation:
    bits_per_second: float
    basis: str  # what it comes from, for the reasons: "the profile's expected rate", "the negotiated ..."


def in_rounds(node: str, links: Sequence[NetworkLink]) -> list[tuple[int, NetworkLink]]:
    """The node's links as (round, link) in the order of the mesh's round-robin rounds.

    The mesh is the node and its peers, in name order: on a full mesh every node's process computes
    the same rounds, so the tests of one round (disjoint pairs) start together. On a partial mesh
    the views differ; the per-node locks still keep tests that share a node apart.
    """
    mesh = sorted({node, *(link.peer for link in links)})
    rounds = [(round_of(mesh, node, link.peer) if link.peer != node else 0, link) for link in links]  # loopback: 0
    return sorted(rounds, key=lambda entry: entry[0])


def node_interfaces(node: Node) -> dict[str, Link]:
    return {link.name: link for link in parse_ip_link(node.run(["ip", "-j", "-d", "link", "show"]).stdout)}


def peer_end(peer: Node, address: str) -> Link | None:
    """The peer's interface that holds the link's peer address: the far end of the link, whatever its name."""
    result = peer.run(["ip", "-j", "-d", "addr", "show"], check=False)
    if result.returncode != 0:
        return None
    return next((interface.link for interface in parse_ip_addr(result.stdout)
                 if any(a.address == address for a in interface.addresses)), None)


def require_interface(node: Node, link: NetworkLink, index: int, interfaces: dict[str, Link]) -> Link:
    """The interface the profile names; a QualifyError naming the key and the node's interfaces otherwise."""
    if link.interface in interfaces:
        return interfaces[link.interface]
    present = ", ".join(sorted(interfaces)) or "none"
    raise QualifyError(f"checks.network.links[{index}].interface: {node.name} has no interface "
                       f"'{link.interface}' (it has: {present}); fix the profile")


def link_settings(node: Node, interface: str) -> LinkSettings | None:
    """`ethtool IFACE`; None when ethtool cannot tell (no such ioctl for the device)."""
    result = node.run(["ethtool", interface], check=False)
    return parse_ethtool_link(result.stdout, f"{node.name}: ethtool {interface}") if result.returncode == 0 else None


def expectation(link: NetworkLink, settings: LinkSettings | None) -> Expectation | None:
    if link.expected_rate is not None:
        return Expectation(link.expected_rate, "the profile's expected rate")
    if settings is not None and settings.speed_mbps:
        return Expectation(settings.speed_mbps * 1e6, f"the negotiated speed of {link.interface}")
    return None


def connect_peer(link: NetworkLink) -> Node:
    """The peer node, from its own profile (with the lab overlay when it is a lab node)."""
    profile = resolve_profile(link.peer, None).profile
    try:
        return connect(link.peer, profile)
    except NodeUnreachable as exc:
        raise QualifyError(f"peer {link.peer} of link {link.interface} is unreachable, so no iperf3 server "
                           f"can run there: {exc}") from None
