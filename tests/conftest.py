"""Shared fixtures: a prepared node tree with a profile pointing at it, and `qualify` as a user runs it.
The helpers behind them live in tests/helpers.py, which tests import (never this file)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import Workspace, test_lab_config
from qualify.lab import LabConfig, lab_down, lab_up


@pytest.fixture(scope="session")
def lab() -> Iterator[LabConfig]:
    """A running test lab (lab-pve1..lab-pve3 over SSH) for end-to-end tests; always taken down."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    config = test_lab_config("e")
    try:
        lab_up(config)
        yield config
    finally:
        lab_down(config)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path)
    ws.profiles.mkdir()
    return ws
