"""Text for the operator's terminal: what a node or a tool said never drives it.

Serials, models, process names and tool messages come from the node; an ANSI escape or a carriage return in
one of them would recolour, move or overwrite what the operator reads."""

from __future__ import annotations

import re

# C0 controls but newline and tab, DEL and the C1 controls (CSI 0x9b starts an escape sequence on its own)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character shown as a visible escape (\\x1b), newlines and tabs kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
