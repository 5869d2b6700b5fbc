"""Headless Chromium over a page: the DOM after its scripts ran, its console, a screenshot. Used by the report
tests and by `python -m qualify.report.screenshots` (the README's images)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]


def chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Chromium with a fresh profile of its own, removed afterwards."""
    if CHROMIUM is None:
        raise FileNotFoundError("chromium is not installed (Debian package chromium; make test installs it as root)")
    with tempfile.TemporaryDirectory(prefix="qualify-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 2400) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    chromium(f"--window-size={width},{height}", "--hide-scrollbars", "--virtual-time-budget=5000",
             f"--screenshot={out.resolve()}", page.resolve().as_uri())
    return out
