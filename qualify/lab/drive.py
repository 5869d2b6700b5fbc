"""The built-in lab's drives: each node's loop device as a named, writable "used U.2 drive".

Every lab node gets a serial (derived from its backing file, so two labs never share one) and a
stand-in `smartctl` and `nvme` on its PATH (<node dir>/bin, see qualify/lab/standin.py) that answer
for its loop device with the outputs of a drive case, so the product reads SMART exactly as on a
real node: a healthy used PM983 on most nodes; on WORN_NODE the eBay drive that must be rejected
(worn out, media errors, far more hours than the seller claimed, and a self-test that fails); and,
for tests, a SAS drive with grown defects (set_drive_case). Other devices go to the real tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qualify.storage.identity import LOOP_SERIAL_PREFIX, mark_loop_backing_file

FIXTURES = Path(__file__).with_name("smart")
WORN_NODE = "lab-pve3"
SELLER_CLAIMED_HOURS = 5000  # "only a few thousand hours"
RATED_ENDURANCE_TBW = 2733.0  # 1.92 TB at 1.3 drive writes per day for 3 years
TOOLS = ("smartctl", "nvme")
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DriveCase:
    smartctl: str  # `smartctl -x -j` of the drive (qualify/lab/smart/)
    id_ctrl: str | None  # `nvme id-ctrl -o json` for NVMe drives (model, serial, firmware taken from smartctl's)
    self_test_fails: bool = False  # the drive's self-tests end "failed in a segment" / "read failure"
    self_test_seconds: float = 2.0  # how long a started self-test runs on the lab (real ones take minutes)


CASES = {
    "healthy": DriveCase("healthy-samsung-pm983-u2.json", "id-ctrl-samsung-pm983.json"),
    "worn": DriveCase("worn-intel-p4510-u2.json", "id-ctrl-samsung-pm983.json", self_test_fails=True),
    "sas-grown-defects": DriveCase("sas-seagate-st4000nm0043-grown-defects.json", None),
}


def lab_drive_serial(backing_file: Path) -> str:
    digest = hashlib.sha256(str(backing_file.resolve()).encode()).hexdigest()[:12].upper()
    return f"{LOOP_SERIAL_PREFIX}{digest}"


def drive_dir(node_dir: Path) -> Path:
    """Where the stand-in tools find the node's drive case and keep its self-test state."""
    return node_dir / "drive"


def bin_dir(node_dir: Path) -> Path:
    """Put first on the node's PATH (sshd SetEnv), so `smartctl` and `nvme` are the stand-ins."""
    return node_dir / "bin"


def prepare_lab_drive(node: str, backing_file: Path) -> dict[str, Any]:
    """Mark the node's backing file with its serial, install the stand-in tools; the profile's drive entry."""
    serial = lab_drive_serial(backing_file)
    mark_loop_backing_file(backing_file, serial)
    node_dir = backing_file.parent
    _write_case(node_dir, "worn" if node == WORN_NODE else "healthy", backing_file)
    tools = bin_dir(node_dir)
    tools.mkdir(exist_ok=True)
    for tool in TOOLS:
        script = tools / tool
        script.write_text(
            "#!/bin/sh\n# qualify lab stand-in: replays recorded outputs for this node's lab drive\n"
            f"PYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} -m qualify.lab.standin "
            f"{shlex.quote(str(drive_dir(node_dir)))} {tool} \"$@\"\n")
        os.chmod(script, 0o755)
    return {"serial": serial, "allow_destroy": True, "seller_power_on_hours": SELLER_CLAIMED_HOURS,
            "rated_endurance_tbw": RATED_ENDURANCE_TBW}


def set_drive_case(node_dir: Path, case: str) -> None:
    """Give the node's lab drive another case (tests: the SAS drive); clears its self-test history."""
    if case not in CASES:
        raise ValueError(f"lab drive case {case!r}: expected one of {', '.join(CASES)}")
    current = json.loads((drive_dir(node_dir) / "case.json").read_text())
    _write_case(node_dir, case, Path(current["backing_file"]))


def _write_case(node_dir: Path, case: str, backing_file: Path) -> None:
    state = drive_dir(node_dir)
    state.mkdir(parents=True, exist_ok=True)
    (state / "case.json").write_text(json.dumps({"case": case, "backing_file": str(backing_file.resolve()),
                                                 "serial": lab_drive_serial(backing_file), **asdict(CASES[case])},
                                                indent=2) + "\n")
    (state / "selftest.json").unlink(missing_ok=True)
