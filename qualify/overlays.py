"""Profile overlays from plug-ins: files merged over a node's profile, found through entry points.

A plug-in (the built-in lab is one) registers a function in the `qualify.overlays` entry-point group
that takes a node name and returns a YAML file to merge on top of the node's profile, or None. The
product never names a plug-in: a node of a plug-in that has no profile of its own is qualified with
the overlay alone (it must then be a valid profile).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from qualify.profile import LoadedProfile, load_profile

GROUP = "qualify.overlays"


def overlays_for(node: str) -> list[tuple[str, Path]]:
    """(plug-in name, overlay file) of every plug-in that knows the node."""
    found = []
    for ep in entry_points(group=GROUP):
        path = ep.load()(node)
        if path is not None:
            found.append((ep.name, Path(path)))
    return found


def resolve_profile(node: str, path: str | None, announce: bool = False,
                    extra: Sequence[Path] = ()) -> LoadedProfile:
    """The node's profile (profiles/<node>.yaml or `path`), with `extra` overlays (an inventory's connection
    settings) and plug-in overlays on top."""
    overlays = overlays_for(node)
    loaded = load_profile(node, Path(path) if path else None, [*extra, *(p for _, p in overlays)])
    if announce:
        for name, overlay in overlays:
            print(f"{node}: {name} node: using {overlay}", file=sys.stderr)
    return loaded
