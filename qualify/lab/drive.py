"""The built-in lab's drives: each node's loop device as a named, writable "used U.2 drive".

Every lab node gets a serial (derived from its backing file, so two labs never share one) and a
SMART fixture: a healthy used enterprise drive, except on WORN_NODE, whose drive is the eBay drive
that must be rejected (worn out, media errors, far more hours than the seller claimed).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from qualify.storage.identity import LOOP_SERIAL_PREFIX, mark_loop_backing_file

FIXTURES = Path(__file__).with_name("lab_smart")
HEALTHY_FIXTURE = FIXTURES / "healthy-samsung-pm983-u2.json"
WORN_FIXTURE = FIXTURES / "worn-intel-p4510-u2.json"
WORN_NODE = "lab-pve3"
SELLER_CLAIMED_HOURS = 5000  # "only a few thousand hours"
RATED_ENDURANCE_TBW = 2733.0  # 1.92 TB at 1.3 drive writes per day for 3 years


def lab_drive_serial(backing_file: Path) -> str:
    digest = hashlib.sha256(str(backing_file.resolve()).encode()).hexdigest()[:12].upper()
    return f"{LOOP_SERIAL_PREFIX}{digest}"


def prepare_lab_drive(node: str, backing_file: Path) -> dict[str, Any]:
    """Mark the node's backing file with its serial, write its SMART fixture; the profile's drive entry."""
    serial = lab_drive_serial(backing_file)
    mark_loop_backing_file(backing_file, serial)
    fixture = json.loads((WORN_FIXTURE if node == WORN_NODE else HEALTHY_FIXTURE).read_text())
    fixture["serial_number"] = serial  # the SMART data belongs to this drive
    smart_json = backing_file.with_name("smart.json")
    smart_json.write_text(json.dumps(fixture, indent=2) + "\n")
    return {"serial": serial, "allow_destroy": True, "smart_json": str(smart_json),
            "seller_power_on_hours": SELLER_CLAIMED_HOURS, "rated_endurance_tbw": RATED_ENDURANCE_TBW}
