"""What a check found: the sentences of its verdict and its numbers.

A check notes what it saw (`note`), says what is wrong (`problem`, which fails the check when the
check function returns) and records `metric`s. Checks decide; the plugin only records.
"""

from __future__ import annotations

from typing import Any, NoReturn

import pytest


class Findings:
    def __init__(self, name: str):
        self.name = name
        self.reasons: list[str] = []
        self.problems: list[str] = []
        self.metrics: dict[str, Any] = {}

    def note(self, sentence: str) -> None:
        self.reasons.append(sentence)

    def problem(self, sentence: str) -> None:
        """Something the node must fix; the check fails."""
        self.problems.append(sentence)
        self.reasons.append(sentence)

    def metric(self, name: str, value: Any) -> None:
        self.metrics[name] = value

    def skip(self, sentence: str) -> NoReturn:
        """The check cannot apply to this node; says why."""
        self.reasons.append(sentence)
        pytest.skip(sentence)
