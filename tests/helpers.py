"""Helpers the tests share, as a plain module (tests import it; conftest.py builds its fixtures on it)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from qualify.lab import LabConfig, NodeSpec, build_node_tree

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Workspace:
    """A profiles folder and a reports folder of the test's own."""

    root: Path

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    lab: LabConfig | None = None  # the lab whose overlays apply; none by default

    def env(self) -> dict[str, str]:
        env = {**os.environ, "QUALIFY_PROFILES": str(self.profiles), "QUALIFY_REPORTS": str(self.reports),
               # never the overlay of a lab the developer may have running
               "QUALIFY_LAB_DIR": str(self.root / "no-lab")}
        if self.lab:
            env.update(QUALIFY_LAB_DIR=str(self.lab.lab_dir), QUALIFY_LAB_PREFIX=self.lab.prefix,
                       QUALIFY_LAB_SUBNET=str(self.lab.subnet))
        return env

    def local_node(self, name: str, spec: NodeSpec | None = None, extra: str = "") -> Path:
        """profiles/<name>.yaml for this machine, reading a prepared tree built from `spec`."""
        tree = self.root / "trees" / name
        build_node_tree(tree, spec or NodeSpec())
        profile = self.profiles / f"{name}.yaml"
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(
            f"host: localhost\npaths:\n  sysfs: {tree}/sys\n  procfs: {tree}/proc\n"
            f"  firmware: {tree}/firmware\n  kernel_log: {tree}/kernel.log\n{extra}")
        return tree

    def qualify(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "qualify", *args], check=False, capture_output=True, text=True,
                              env=self.env(), cwd=self.root, timeout=timeout)

    def runs(self, node: str) -> list[Path]:
        return sorted((self.reports / node).glob("*T*Z"))


def free_subnet() -> int:
    """First 10.N/16 from 214 that nothing here uses, so parallel runs and a user's lab do not clash."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], check=False, capture_output=True, text=True).stdout
    for n in range(214, 250):
        if f" 10.{n}." not in used:
            return n
    pytest.skip("no free 10.N.0.0/16 subnet for the test lab")


def test_lab_config(tag: str = "") -> LabConfig:
    """A lab of the tests' own: its own folder, names and subnet, never the user's lab."""
    pid = os.getpid()
    return LabConfig(lab_dir=Path(f"/run/qualify-test-{pid}{tag}"), prefix=f"qt{pid % 10000}{tag}-",
                     subnet=free_subnet())


test_lab_config.__test__ = False  # a helper, not a test
