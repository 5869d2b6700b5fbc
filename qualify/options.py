"""Command-line values shared by the CLI and the pytest plugin: labels and durations."""

from __future__ import annotations

from qualify.durations import parse_duration
from qualify.errors import UsageError


def parse_labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for item in ",".join(values).split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"label '{item}': expected key=value, e.g. LABEL=cooler=G195,lid=closed")
        labels[key.strip()] = value.strip()
    return labels


def duration_option(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"DURATION={text}: {exc}") from None
