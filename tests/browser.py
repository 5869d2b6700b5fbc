"""Headless Chromium for the report tests: the DOM after the page's scripts ran, its console, a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
# Screenshots of the test runs' reports: CI artifacts, never committed (.gitignore).
ARTIFACTS = Path(os.environ.get("QUALIFY_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))

needs_chromium = pytest.mark.skipif(CHROMIUM is None and os.geteuid() != 0,
                                    reason="no chromium (make test installs it when run as root)")


@dataclass
class Page:
    dom: str
    console: list[str]


def _chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        raise FileNotFoundError("chromium is not installed (Debian package chromium; make test installs it as root)")
    with tempfile.TemporaryDirectory(prefix="qualify-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def open_page(path: Path) -> Page:
    """The DOM once loaded (scripts run) and every console line the page wrote."""
    proc = _chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                     path.resolve().as_uri())
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return Page(proc.stdout, console)


def screenshot(path: Path, name: str, height: int = 2400) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"{name}.png"
    _chromium(f"--window-size=1280,{height}", "--virtual-time-budget=5000", f"--screenshot={out}",
              path.resolve().as_uri())
    return out
