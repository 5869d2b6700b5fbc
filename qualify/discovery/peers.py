"""Links to peer nodes: for each local interface, the peer's address on the same subnet.

A switchless mesh has one small subnet per cable (a /30, or one /24 per pair), a switched cluster
network one shared subnet: either way the peer's address that lies in a local interface's subnet is
the far end of that interface's link. The peers are asked for their addresses over their own
connection (their profile, or their name as an ssh destination). The interface the controller's
ssh session arrives on is the management network, not a link under test; link-local and
loopback addresses say nothing about cabling.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from qualify.discovery.nics import interfaces
from qualify.errors import QualifyError
from qualify.node import Node, connect
from qualify.overlays import resolve_profile
from qualify.parsers.iproute import Address, Interface
from qualify.profile import NetworkLink


def _usable(address: Address) -> bool:
    return address.scope == "global" and address.family in ("inet", "inet6")


def match_links(local: Sequence[Interface], peer: str, peer_interfaces: Sequence[Interface],
                management: AbstractSet[str] = frozenset()) -> list[NetworkLink]:
    """One link per local interface that shares a subnet with the peer (IPv4 preferred)."""
    peer_addresses = [a for i in peer_interfaces for a in i.addresses if _usable(a)]
    links = []
    for interface in local:
        if interface.link.name in management:
            continue
        found = []
        for mine in (a for a in interface.addresses if _usable(a)):
            network = ipaddress.ip_interface(f"{mine.address}/{mine.prefixlen}").network
            found += [(theirs.family != "inet", theirs.address) for theirs in peer_addresses
                      if theirs.address != mine.address and ipaddress.ip_address(theirs.address) in network]
        if found:
            links.append(NetworkLink(peer=peer, interface=interface.link.name, peer_address=min(found)[1]))
    return links


def management_interfaces(node: Node, local: Sequence[Interface]) -> set[str]:
    """The interface holding the address this node's ssh session came in on (none for a local node)."""
    connection = node.run(["sh", "-c", 'echo "$SSH_CONNECTION"']).stdout.split()
    if len(connection) < 3:
        return set()
    return {i.link.name for i in local for a in i.addresses if a.address == connection[2]}


def discover_links(node: Node, peers: Sequence[str]) -> tuple[list[NetworkLink], list[str]]:
    """(links to the peers, problems: a peer that could not be asked, a peer with no shared subnet)."""
    local = interfaces(node)
    management = management_interfaces(node, local)
    links: list[NetworkLink] = []
    problems: list[str] = []
    for peer in peers:
        try:
            peer_node = connect(peer, resolve_profile(peer, None).profile)
        except QualifyError as exc:
            problems.append(f"peer {peer} could not be asked for its addresses: {exc}")
            continue
        try:
            found = match_links(local, peer, interfaces(peer_node), management)
        finally:
            peer_node.close()
        if not found:
            problems.append(f"peer {peer} has no address in a subnet of {node.name}'s interfaces "
                            f"(other than the management network {', '.join(sorted(management)) or '-'})")
        links += found
    return links, problems
