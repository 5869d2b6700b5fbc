"""`qualify profile init NODE`: connect, discover, write the node's commented profile (qualify/discovery/writer.py).

An existing file is never overwritten without --force; --diff shows what would change and writes
nothing. Keys of the existing file that say how to reach the node or what it is (host, extends,
description, labels, ssh, paths, ...) are kept; what the node has is written from discovery.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from qualify.discovery.facts import gather_facts
from qualify.discovery.writer import render_profile
from qualify.errors import ProfileError, UsageError
from qualify.node import connect
from qualify.overlays import resolve_profile
from qualify.profile import load_profile, profiles_dir

# Written from discovery; every other top-level key of an existing file is kept as it is.
_REGENERATED = ("checks", "require", "peers", "duration")


def init_profile(node: str, peers: Sequence[str], output: Path | None = None, profile: str | None = None,
                 force: bool = False, diff: bool = False) -> str:
    """What to print: the diff (diff=True) or what was written."""
    target = Path(output) if output else profiles_dir() / f"{node}.yaml"
    if target.exists() and not (force or diff):
        raise UsageError(f"{target} exists: not overwriting it (--force to replace it, --diff to see what would "
                         f"change)")
    source = Path(profile) if profile else profiles_dir() / f"{node}.yaml"
    kept = {k: v for k, v in _read(source).items() if k not in _REGENERATED}
    loaded = resolve_profile(node, profile)
    connection = connect(node, loaded.profile)
    try:
        facts = gather_facts(connection, [p for p in (peers or loaded.profile.peers) if p != node])
    finally:
        connection.close()
    text = render_profile(facts, loaded.profile, kept)
    _validate(node, text, target)
    if diff:
        old = target.read_text().splitlines(keepends=True) if target.exists() else []
        return "".join(difflib.unified_diff(old, text.splitlines(keepends=True), str(target), f"{target} (new)"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    named = sum(1 for d in facts.drives if d.nameable)
    return (f"{target}: {named} drive(s) by serial/WWN (allow_destroy: false), {len(facts.links)} link(s) to "
            f"{', '.join(facts.peers) or 'no peer'}; edit it, then: qualify run {node}"
            + (f" --profile {target}" if output else "") + "\n" + "".join(f"  note: {p}\n" for p in facts.problems))


def _read(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    return data if isinstance(data, dict) else {}


def _validate(node: str, text: str, target: Path) -> None:
    """The new text loads as a profile where it will live (its extends: relative to that folder)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{node}-", suffix=".yaml", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        load_profile(node, Path(name))
    except ProfileError as exc:
        raise ProfileError(f"the profile written for {node} does not load (a bug in profile init): {exc}") from None
    finally:
        os.unlink(name)
