"""Headless Chromium for the report tests: the DOM after the page's scripts ran, its console, a screenshot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from qualify.report.browser import CHROMIUM, chromium
from qualify.report.browser import screenshot as take_screenshot

# Screenshots of the test runs' reports: CI artifacts, never committed (.gitignore).
ARTIFACTS = Path(os.environ.get("QUALIFY_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))

needs_chromium = pytest.mark.skipif(CHROMIUM is None and os.geteuid() != 0,
                                    reason="no chromium (make test installs it when run as root)")


@dataclass
class Page:
    dom: str
    console: list[str]


def open_page(path: Path) -> Page:
    """The DOM once loaded (scripts run) and every console line the page wrote."""
    proc = chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                    path.resolve().as_uri())
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return Page(proc.stdout, console)


def screenshot(path: Path, name: str, height: int = 2400) -> Path:
    return take_screenshot(path, ARTIFACTS / f"{name}.png", height=height)
