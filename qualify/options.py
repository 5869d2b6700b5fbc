"""Command-line values shared by the CLI and the pytest plugin: labels and durations."""

from __future__ import annotations

from qualify.durations import parse_duration
from qualify.errors import UsageError

# a control character (newline, ANSI escape) in a label would break a line of the report or rewrite the terminal
from qualify.terminal import CONTROL


def shown(text: str, limit: int = 80) -> str:
    """`text` as an error message may show it: quoted, control characters escaped, shortened."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else quoted[:limit - 3] + "..."


def parse_labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in ",".join(values).split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"label {shown(item)}: expected key=value, e.g. LABEL=cooler=G195,lid=closed")
        if CONTROL.search(item):
            raise UsageError(f"label {shown(item)}: a label may not hold control characters (newlines, escapes)")
        if key.strip() in labels:
            raise UsageError(f"label {shown(key.strip())} is given twice ({shown(labels[key.strip()])} and "
                             f"{shown(value.strip())}): give each key once")
        labels[key.strip()] = value.strip()
    return labels


def duration_option(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        plain = len(text) <= 80 and not CONTROL.search(text)
        raise UsageError(f"DURATION={text if plain else shown(text)}: {exc}") from None
