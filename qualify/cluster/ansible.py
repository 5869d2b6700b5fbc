"""An Ansible inventory as the node list: the way fleets already name their machines.

Reads the two formats Ansible's own inventory plugins read — YAML (`all: {hosts:, children:, vars:}`)
and INI (`[group]`, `[group:vars]`, `[group:children]`, `host key=value ...`, ranges `pve[1:3]`) —
and selects hosts with Ansible's pattern language: `all`/`*`, group or host names, shell globs,
`~regex`, unions `a:b` or `a,b`, intersections `&g`, exclusions `!g`. Host vars become connection
settings: ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qualify.errors import UsageError

CONNECTION_VARS = {"ansible_host": ("host",), "ansible_user": ("ssh", "user"), "ansible_port": ("ssh", "port"),
                   "ansible_ssh_private_key_file": ("ssh", "identity_file")}
_RANGE = re.compile(r"\[(\w+):(\w+)(?::(\d+))?\]")


@dataclass
class Inventory:
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)      # host -> its own vars
    groups: dict[str, set[str]] = field(default_factory=dict)           # group -> direct hosts
    children: dict[str, set[str]] = field(default_factory=dict)         # group -> child groups
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)                      # hosts in file order

    def add_host(self, name: str, group: str, variables: dict[str, Any]) -> None:
        if name not in self.hosts:
            self.hosts[name] = {}
            self.order.append(name)
        self.hosts[name].update(variables)
        self.groups.setdefault(group, set()).add(name)

    def members(self, group: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if group in ("all", "*"):
            return set(self.hosts)
        if group in seen:
            return set()
        found = set(self.groups.get(group, set()))
        for child in self.children.get(group, set()):
            found |= self.members(child, seen | {group})
        return found

    def ancestry(self, host: str) -> list[str]:
        """Groups of a host, most general first (all, parents, the host's own group), so the closest wins."""
        direct = [g for g in self.groups if host in self.groups[g]]
        chain: list[str] = []

        def parents(group: str) -> list[str]:
            return [p for p, kids in self.children.items() if group in kids]

        def walk(group: str, depth: int = 0) -> None:
            if depth > 50 or group in chain:
                return
            for parent in parents(group):
                walk(parent, depth + 1)
            chain.append(group)

        for group in direct:
            walk(group)
        return ["all", *[g for g in chain if g != "all"]]

    def variables(self, host: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for group in self.ancestry(host):
            merged.update(self.group_vars.get(group, {}))
        merged.update(self.hosts[host])
        return merged


def expand(name: str) -> list[str]:
    """pve[1:3] -> pve1, pve2, pve3; db-[a:c] -> db-a, db-b, db-c; [01:10] keeps the zero padding."""
    m = _RANGE.search(name)
    if not m:
        return [name]
    start, end, step = m[1], m[2], int(m[3] or 1)
    head, tail = name[:m.start()], name[m.end():]
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") else 0
        values = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    elif len(start) == len(end) == 1 and start.isalpha() and end.isalpha():
        values = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    else:
        raise UsageError(f"inventory host range {name!r}: expected [1:3] or [a:c]")
    return [x for v in values for x in expand(head + v + tail)]


def load_inventory(path: Path) -> Inventory:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"inventory {path}: cannot read: {exc}") from None
    if len(text) > 5_000_000:
        raise UsageError(f"inventory {path}: larger than 5 MB")
    stripped = text.lstrip()
    if path.suffix in (".yml", ".yaml") or stripped.startswith(("all:", "---")):
        return _from_yaml(path, text)
    return _from_ini(path, text)


def _from_yaml(path: Path, text: str) -> Inventory:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"inventory {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"inventory {path}: expected groups at the top level (e.g. all: {{hosts: ...}})")
    inventory = Inventory()

    def group(name: str, body: Any, depth: int = 0) -> None:
        if depth > 50:
            raise UsageError(f"inventory {path}: groups nested deeper than 50")
        body = body or {}
        if not isinstance(body, dict):
            raise UsageError(f"inventory {path}: group {name}: expected hosts:, vars: or children:")
        inventory.groups.setdefault(name, set())
        for host_pattern, variables in (body.get("hosts") or {}).items():
            for host in expand(str(host_pattern)):
                inventory.add_host(host, name, dict(variables or {}))
        inventory.group_vars.setdefault(name, {}).update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            inventory.children.setdefault(name, set()).add(str(child))
            group(str(child), child_body, depth + 1)

    for name, body in data.items():
        group(str(name), body)
    return inventory


def _from_ini(path: Path, text: str) -> Inventory:
    inventory = Inventory()
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s#.*$", "", raw).strip()  # a comment line, or a comment after whitespace
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            name, _, suffix = line[1:-1].partition(":")
            section, kind = name, suffix or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise UsageError(f"inventory {path}:{number}: unknown section kind {suffix!r}")
            inventory.groups.setdefault(section, set())
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"inventory {path}:{number}: {exc}") from None
        if kind == "children":
            inventory.children.setdefault(section, set()).add(words[0])
        elif kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise UsageError(f"inventory {path}:{number}: expected key=value in [{section}:vars]")
            inventory.group_vars.setdefault(section, {})[key.strip()] = _scalar(value.strip())
        else:
            variables = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise UsageError(f"inventory {path}:{number}: expected key=value after the host, got {word!r}")
                variables[key] = _scalar(value)
            for host in expand(words[0]):
                inventory.add_host(host, section, variables)
    return inventory


def _scalar(value: str) -> Any:
    return int(value) if value.isdigit() else value


def select(inventory: Inventory, pattern: str) -> list[str]:
    """Hosts matching an Ansible pattern, in inventory order."""
    chosen: set[str] = set()
    terms = [t for t in re.split(r"[:,]", pattern) if t]
    if not terms:
        raise UsageError("inventory pattern is empty: give a group, a host or 'all'")
    for term in terms:
        op = term[0] if term[0] in "&!" else ""
        hosts = _match(inventory, term[len(op):])
        if op == "&":
            chosen &= hosts
        elif op == "!":
            chosen -= hosts
        else:
            chosen |= hosts
    return [h for h in inventory.order if h in chosen]


def _match(inventory: Inventory, term: str) -> set[str]:
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise UsageError(f"inventory pattern {term!r}: {exc}") from None
        return {h for h in inventory.hosts if regex.search(h)}
    if term in inventory.groups or term in ("all", "*"):
        return inventory.members(term)
    if any(c in term for c in "*?["):
        groups = [g for g in inventory.groups if fnmatch.fnmatchcase(g, term)]
        return {h for h in inventory.hosts if fnmatch.fnmatchcase(h, term)} | \
            {h for g in groups for h in inventory.members(g)}
    return {term} if term in inventory.hosts else set()


def connection_overlay(inventory: Inventory, host: str) -> dict[str, Any]:
    """The profile keys a host's vars set (host, ssh.user, ssh.port, ssh.identity_file)."""
    overlay: dict[str, Any] = {}
    for var, value in inventory.variables(host).items():
        target = CONNECTION_VARS.get(var)
        if target is None:
            continue
        if len(target) == 1:
            overlay[target[0]] = str(value)
        else:
            overlay.setdefault(target[0], {})[target[1]] = int(value) if target[1] == "port" else str(value)
    overlay.setdefault("host", host)
    return overlay


def hosts_with_overlays(path: Path, pattern: str) -> Iterable[tuple[str, dict[str, Any]]]:
    inventory = load_inventory(path)
    hosts = select(inventory, pattern)
    if not hosts:
        groups = ", ".join(sorted(g for g in inventory.groups if g != "ungrouped")) or "none"
        raise UsageError(f"inventory {path}: no host matches {pattern!r} (groups: {groups})")
    for host in hosts:
        yield host, connection_overlay(inventory, host)
