"""Text for the operator's terminal: what a node or a tool said never drives it.

Serials, models, process names and tool messages come from the node; an ANSI escape or a carriage return in
one of them would recolour, move or overwrite what the operator reads."""

from __future__ import annotations

import re
import sys

# C0 controls, DEL and the C1 controls (CSI 0x9b starts an escape sequence on its own)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_KEPT = "\n\t"  # a message's own line breaks and indents


def printable(text: str) -> str:
    """`text` with every control character shown as a visible escape (\\x1b), newlines and tabs kept."""
    return CONTROL.sub(lambda m: m[0] if m[0] in _KEPT else f"\\x{ord(m[0]):02x}", text)


def say(text: str) -> None:
    """One line for the operator, on stderr (stdout is the tools')."""
    print(printable(text), file=sys.stderr)
