"""Node names: they become directory names (reports/<node>/), file names (profiles/<node>.yaml) and
systemd unit names, so a node name is a name and never a path, an option or shell syntax."""

from __future__ import annotations

import re

from qualify.errors import UsageError

MAX_NODE_NAME = 64
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NODE_NAME_RULE = (f"letters, digits, '.', '_' and '-', starting with a letter or digit, no '..', "
                  f"at most {MAX_NODE_NAME} characters")


def check_node_name(name: str) -> str:
    """`name` itself when it is a valid node name; UsageError naming the rule otherwise."""
    if not isinstance(name, str) or len(name) > MAX_NODE_NAME or not NODE_NAME.fullmatch(name) or ".." in name:
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise UsageError(f"node name {shown}: a node name is {NODE_NAME_RULE} "
                         f"(it names profiles/<node>.yaml and reports/<node>/)")
    return name
