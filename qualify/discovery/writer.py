"""`qualify profile init`: a node's first profile, written from what the live node has (as nhc-genconf does).

What the node HAS is written as values: its drives by serial/WWN (allow_destroy: false, always: only
the user may flip it, per drive, by hand), its links with the peer's address, its memory size and
DIMM count, the microcode revision it runs. What the checks REQUIRE (limits) is listed commented out
at the value in force (the default, or what `extends:` sets) with the reason of each, so the file
never shadows a base by accident: uncomment a line to change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import yaml
from pydantic import BaseModel

from qualify.discovery.complete import drive_entries
from qualify.discovery.drives import Drive
from qualify.discovery.facts import NodeFacts
from qualify.discovery.nics import Nic
from qualify.durations import format_duration
from qualify.profile import DEFAULT_REQUIRE, Checks, Profile

DEFAULT_DURATION = "30m"  # long enough for a memory pass and a thermal plateau, short enough for a first run
# Keys written as discovered values (not listed again among the commented limits).
_WRITTEN = {"storage": {"drives"}, "network": {"links"}, "memory": {"expected_gib", "expected_dimms"},
            "microcode": {"min_revision"}}


def render_profile(facts: NodeFacts, effective: Profile, kept: dict[str, Any]) -> str:
    """The profile's text. `effective`: the profile in force now (defaults, bases); `kept`: top-level keys of
    the existing file that stay as they are (extends, description, ssh, paths, labels...)."""
    inv = facts.inventory
    out = [f"# Profile of node {facts.node}, written by `qualify profile init` on {date.today()} from the live node.",
           "# Yours to edit; `qualify profile init` refuses to overwrite it without --force (--diff shows changes).",
           "# Values below are what the node HAS (a run checks it still has them); the limits each check REQUIRES",
           "# are listed commented out at the value in force, with the reason: uncomment a line to change it."]
    out.append(_yaml({"host": kept.pop("host", facts.host)}))
    for key, value in kept.items():
        out.append(_yaml({key: value}))
    out += ["# Checks that must run for the node to pass: one skipped ends the run incomplete (exit 2).",
            _yaml({"require": effective.require if effective.require else list(DEFAULT_REQUIRE)}, flow=True)]
    if facts.peers:
        out += ["# Nodes at the far end of the links below; a run with no links asks them for their addresses.",
                _yaml({"peers": facts.peers}, flow=True)]
    out += ["# Length of the long checks (memory burn-in, thermal soak, idle window); memory needs one to run.",
            _yaml({"duration": format_duration(effective.duration) if effective.duration else DEFAULT_DURATION})]
    out += [f"# {line}" for line in _found_lines(inv)]
    out.append("checks:")
    out += _microcode(effective, inv)
    out += _memory(effective, inv)
    out += _storage(facts.drives, effective)
    out += _network(facts, effective)
    for name in Checks.model_fields:
        if name not in ("microcode", "memory", "storage", "network"):
            section = _limits(name, getattr(effective.checks, name))
            out += [f"  # {name}:", *section] if section else []
    return "\n".join(out) + "\n"


def _found_lines(inv: dict[str, Any]) -> list[str]:
    board = inv.get("board") or {}
    cpu = (f"CPU: {inv.get('cpu_model') or 'unknown'}, {inv.get('cores') or '?'} cores, "
           f"{inv.get('logical_cpus') or '?'} threads, microcode {inv.get('microcode') or 'not exposed'}")
    bios = (f"BIOS: {board.get('bios_vendor', '?')} {board.get('bios_version', '?')} ({board.get('bios_date', '?')}); "
            f"board {board.get('board_vendor', '?')} {board.get('board_name', '?')}")
    dimms = inv.get("dimms") or []
    memory = f"memory: {inv.get('memory_gib', '?')} GiB visible, {len(dimms)} DIMM(s) populated" + (
        ": " + ", ".join(f"{d['locator']} {d.get('size_mib') or '?'} MiB {d.get('type') or ''} "
                         f"{d.get('configured_speed_mts') or d.get('speed_mts') or '?'} MT/s".strip()
                         for d in dimms) if dimms else "")
    errors = [f"not readable: {e}" for e in inv.get("errors", [])]
    return ["Found on the node when this file was written (the run's inventory records them again):",
            f"  {cpu}", f"  {bios}", f"  {memory}", *(f"  {e}" for e in errors)]


def _microcode(effective: Profile, inv: dict[str, Any]) -> list[str]:
    settings = effective.checks.microcode
    running = int(inv["microcode"], 16) if inv.get("microcode") else None
    lines = ["  microcode:"]
    floor = max(r for r in (running, settings.min_revision) if r is not None) if running or settings.min_revision \
        else None
    if floor is not None:
        lines += [f"    # runs 0x{running:x} now; never accept an older revision" if running is not None else
                  "    # from the bases: no revision readable on the node now",
                  f"    min_revision: 0x{floor:x}"]
    return lines + _limits("microcode", settings)


def _memory(effective: Profile, inv: dict[str, Any]) -> list[str]:
    lines = ["  memory:"]
    if inv.get("memory_gib"):
        lines += ["    # memory the kernel sees now (MemTotal); a missing DIMM shows as less",
                  f"    expected_gib: {inv['memory_gib']}"]
    if inv.get("dimms"):
        lines += ["    # populated DIMM slots (dmidecode)", f"    expected_dimms: {len(inv['dimms'])}"]
    return lines + _limits("memory", effective.checks.memory)


def _storage(drives: Sequence[Drive], effective: Profile) -> list[str]:
    lines = ["  storage:",
             "    # Every drive by serial (or WWN), never by /dev name: those change between boots. allow_destroy",
             "    # stays false until you decide a drive's data may go: then set it to true, for that drive, by hand.",
             "    drives:"]
    entries = {e.serial or e.wwn: e for e in drive_entries(drives)}
    for drive in drives:
        entry = entries.get(drive.serial) or entries.get(drive.wwn)
        lines.append(f"      # {drive.path}: {_drive_text(drive)}")
        if drive.uses:
            lines.append(f"      # IN USE: {'; '.join(drive.uses)} — writes would destroy it")
        if entry is None:
            lines.append("      # no serial or WWN to name it by: not tested")
            continue
        key = "serial" if entry.serial else "wwn"
        lines += [f"      - {key}: {_scalar(getattr(entry, key))}",
                  "        allow_destroy: false"]
    if not entries:
        lines[3] = "    drives: []" + ("" if drives else "  # none found")
    return lines + _limits("storage", effective.checks.storage, indent=4)


def _drive_text(drive: Drive) -> str:
    size = f"{drive.size_bytes / 1e9:,.1f} GB" if drive.size_bytes else "size unknown"
    return ", ".join([drive.model or "model unknown", size, f"firmware {drive.firmware or 'unknown'}",
                      drive.transport or "no transport (virtual)"])


def _network(facts: NodeFacts, effective: Profile) -> list[str]:
    nics = {nic.name: nic for nic in facts.nics}
    lines = ["  network:",
             "    # One link per local interface that shares a subnet with a peer (found by asking the peers)."]
    if facts.links:
        lines.append("    links:")
        for link in facts.links:
            nic = nics.get(link.interface)
            lines += [f"      # {_nic_text(nic) if nic else link.interface}",
                      f"      - peer: {link.peer}", f"        interface: {link.interface}",
                      f"        peer_address: {link.peer_address}"]
    else:
        reason = "no peers given (--peers a,b)" if not facts.peers else "no peer shares a subnet with this node"
        lines.append(f"    links: []  # {reason}")
    lines += [f"    # {problem}" for problem in facts.problems]
    linked = {link.interface for link in facts.links}
    others = [nic for nic in facts.nics if nic.name not in linked]
    if others:
        lines.append("    # Interfaces without a link to a peer:")
        lines += [f"    #   {_nic_text(nic)}" + (" (management: carries qualify's ssh)" if nic.name in facts.management
                                                 else "") for nic in others]
    return lines + _limits("network", effective.checks.network, indent=4)


def _nic_text(nic: Nic) -> str:
    link = nic.interface.link
    state = {True: "link up", False: "no link", None: f"state {link.state or 'unknown'}"}[nic.link_detected]
    parts = [nic.name, link.kind or "physical", state,
             f"{nic.speed_mbps} Mb/s" if nic.speed_mbps else "speed unknown",
             f"driver {nic.driver}" if nic.driver else "driver unknown",
             f"PCI {nic.pci_slot}" if nic.pci_slot else "no PCI device",
             " ".join(f"{a.address}/{a.prefixlen}" for a in nic.interface.addresses if a.scope == "global")
             or "no address"]
    return ", ".join(parts)


def _limits(name: str, settings: BaseModel, indent: int = 4) -> list[str]:
    """Every setting of a check as a commented line: the value in force and the reason (the field's description)."""
    pad = " " * indent
    values = settings.model_dump(mode="json")
    lines = []
    for key, info in type(settings).model_fields.items():
        if key in _WRITTEN.get(name, set()):
            continue
        text = f"{pad}# {_yaml({key: values[key]}, flow=True)}"
        lines.append(f"{text}  — {info.description}" if info.description else text)
    return lines


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _yaml(data: dict[str, Any], flow: bool = False) -> str:
    """`key: value` lines; flow: each value on its key's line ([a, b], {k: v})."""
    if flow:
        return "\n".join(f"{key}: {_scalar(value)}" for key, value in data.items())
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=200).strip()
