"""Network namespaces, veth pairs and the management bridge (all through `ip`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from qualify.errors import LabError
from qualify.lab._cmd import run

NETNS_DIR = Path("/run/netns")


def netns_list() -> set[str]:
    cp = run(["ip", "-j", "netns", "list"], check=False)
    if cp.returncode != 0 or not cp.stdout.strip():
        return set()
    return {entry["name"] for entry in json.loads(cp.stdout)}


def netns_exists(name: str) -> bool:
    return name in netns_list()


def netns_inode(name: str) -> int | None:
    """Inode of the namespace, to recognise processes living in it via /proc/<pid>/ns/net."""
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return None


def netns_add(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def netns_pids(name: str) -> list[int]:
    cp = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in cp.stdout.split() if p.isdigit()] if cp.returncode == 0 else []


def netns_del(name: str) -> None:
    run(["ip", "netns", "del", name])


def link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip"] + (["-n", netns] if netns else []) + ["link", "show", "dev", name]
    return run(argv, check=False).returncode == 0


def link_names(netns: str | None = None) -> list[str]:
    argv = ["ip", "-j"] + (["-n", netns] if netns else []) + ["link", "show"]
    cp = run(argv, check=False)
    if cp.returncode != 0 or not cp.stdout.strip():
        return []
    return [entry["ifname"] for entry in json.loads(cp.stdout)]


def link_del(name: str) -> None:
    """Delete a link; one that vanished meanwhile (its peer's namespace was just deleted) is fine."""
    cp = run(["ip", "link", "del", "dev", name], check=False)
    if cp.returncode != 0 and "Cannot find device" not in cp.stderr:
        raise LabError(f"`ip link del dev {name}` failed (exit {cp.returncode}): {cp.stderr.strip()}")


def bridge_create(name: str, cidr: str) -> None:
    run(["ip", "link", "add", "name", name, "type", "bridge"])
    run(["ip", "addr", "add", cidr, "dev", name])
    run(["ip", "link", "set", "dev", name, "up"])


def mgmt_veth(root_name: str, bridge: str, netns: str, cidr: str, ns_name: str = "mgmt0") -> None:
    """A veth whose root end joins the bridge and whose other end is born inside the namespace."""
    run(["ip", "link", "add", "name", root_name, "type", "veth", "peer", "name", ns_name, "netns", netns])
    run(["ip", "link", "set", "dev", root_name, "master", bridge, "up"])
    run(["ip", "-n", netns, "addr", "add", cidr, "dev", ns_name])
    run(["ip", "-n", netns, "link", "set", "dev", ns_name, "up"])


def mesh_veth(ns_a: str, dev_a: str, cidr_a: str, ns_b: str, dev_b: str, cidr_b: str) -> None:
    """A veth between two namespaces, created inside ns_a so its names never touch the root namespace."""
    run(["ip", "-n", ns_a, "link", "add", "name", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b])
    run(["ip", "-n", ns_a, "addr", "add", cidr_a, "dev", dev_a])
    run(["ip", "-n", ns_b, "addr", "add", cidr_b, "dev", dev_b])
    run(["ip", "-n", ns_a, "link", "set", "dev", dev_a, "up"])
    run(["ip", "-n", ns_b, "link", "set", "dev", dev_b, "up"])


def ipv4_addresses() -> list[tuple[str, str]]:
    """(link, address/prefix) for every IPv4 address in the root namespace."""
    cp = run(["ip", "-j", "-4", "addr", "show"], check=False)
    if cp.returncode != 0 or not cp.stdout.strip():
        return []
    out = []
    for link in json.loads(cp.stdout):
        for a in link.get("addr_info", []):
            out.append((link["ifname"], f"{a['local']}/{a['prefixlen']}"))
    return out
