"""Stand-in `smartctl` and `nvme` for a lab node: `python -m qualify.lab.standin <drive dir> <tool> <args>`.

They answer for the node's loop drive with its case's recorded outputs (qualify/lab/drive.py), the
way the real tools print them (`smartctl ... -j`, `nvme ... -o json`), and simulate what a real
drive does over time: a started self-test runs for a few seconds, shows progress, then lands in the
drive's self-test log as passed or failed. Capacities are the loop device's own. Any other device
is handed to the real tool, so the node behaves like a real one.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from qualify.lab.drive import FIXTURES

KELVIN = 273
SHORT, EXTENDED, ABORT = 1, 2, 0xF


class Drive:
    def __init__(self, state_dir: Path):
        self.dir = state_dir
        self.case = json.loads((state_dir / "case.json").read_text())
        self.smart = json.loads((FIXTURES / self.case["smartctl"]).read_text())
        self.smart["serial_number"] = self.case["serial"]
        size = Path(self.case["backing_file"]).stat().st_size
        self.size = size
        if "user_capacity" in self.smart:
            self.smart["user_capacity"] = {"blocks": size // 512, "bytes": size}
        if "nvme_total_capacity" in self.smart:
            self.smart["nvme_total_capacity"] = size
        self.protocol = "NVMe" if "nvme_smart_health_information_log" in self.smart else (
            self.smart.get("device") or {}).get("protocol", "ATA")
        self.hours = (self.smart.get("power_on_time") or {}).get("hours", 0)

    # -- the self-test the drive is running, and the ones it ran
    def selftest(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        path = self.dir / "selftest.json"
        state = json.loads(path.read_text()) if path.exists() else {"running": None, "history": []}
        running = state["running"]
        if running and time.time() - running["started"] >= running["seconds"]:
            state["history"].insert(0, {"code": running["code"], "passed": not self.case["self_test_fails"],
                                        "hours": self.hours})
            state["running"] = running = None
            path.write_text(json.dumps(state))
        return running, state["history"]

    def start(self, code: int) -> None:
        path = self.dir / "selftest.json"
        _, history = self.selftest()
        running = None if code == ABORT else {"code": code, "started": time.time(),
                                              "seconds": self.case["self_test_seconds"] * (1 if code == SHORT else 2)}
        path.write_text(json.dumps({"running": running, "history": history}))

    def remaining(self, running: dict[str, Any]) -> int:
        return max(0, min(99, round(100 * (1 - (time.time() - running["started"]) / running["seconds"]))))

    # -- smartctl -j
    def smartctl_json(self, argv: list[str]) -> dict[str, Any]:
        data = copy.deepcopy(self.smart)
        data.setdefault("smartctl", {})["argv"] = ["smartctl", *argv]
        running, history = self.selftest()
        if any(not test["passed"] for test in history):
            data["smartctl"]["exit_status"] = data["smartctl"].get("exit_status", 0) | 0x80  # self-test log errors
        if self.protocol == "NVMe":
            log = data.setdefault("nvme_self_test_log", {"table": []})
            log["current_self_test_operation"] = {"value": running["code"] if running else 0,
                                                  "string": "Short self-test in progress" if running
                                                  else "No self-test in progress"}
            if running:
                log["current_self_test_completion_percent"] = 100 - self.remaining(running)
            log["table"] = [{"self_test_code": {"value": t["code"], "string": "Short" if t["code"] == SHORT
                                                else "Extended"},
                             "self_test_result": {"value": 0 if t["passed"] else 7,
                                                  "string": "Completed without error" if t["passed"]
                                                  else "Completed: failed segments"},
                             "power_on_hours": t["hours"]} for t in history] + log.get("table", [])
        elif self.protocol == "SCSI":
            entries = [v for k, v in sorted(data.items()) if k.startswith("scsi_self_test_")]
            for key in [k for k in data if k.startswith("scsi_self_test_")]:
                del data[key]
            made: list[dict[str, Any]] = [
                {"code": {"value": t["code"],
                          "string": "Background short" if t["code"] == SHORT else "Background long"},
                 "result": {"value": 0 if t["passed"] else 7,
                            "string": "Completed" if t["passed"] else "Failed in segment -->"},
                 "power_on_time": {"hours": t["hours"], "aka": "accumulated_power_on_hours"}} for t in history]
            if running:
                made.insert(0, {"code": {"value": running["code"], "string": "Background short"},
                                "result": {"value": 15, "string": "Self test in progress ..."},
                                "self_test_in_progress": True})
            for i, entry in enumerate(made + entries):
                data[f"scsi_self_test_{i}"] = entry
        else:
            table = [{"type": {"value": t["code"], "string": "Short offline" if t["code"] == SHORT
                               else "Extended offline"},
                      "status": {"value": 0 if t["passed"] else 0x79, "string": "Completed without error"
                                 if t["passed"] else "Completed: read failure", "passed": t["passed"]},
                      "lifetime_hours": t["hours"]} for t in history]
            log = data.setdefault("ata_smart_self_test_log", {}).setdefault("standard", {"table": []})
            log["table"] = table + log.get("table", [])
            status = data.setdefault("ata_smart_data", {}).setdefault("self_test", {})
            status["status"] = {"value": 0xF0 | self.remaining(running) // 10, "string": "in progress",
                                "remaining_percent": self.remaining(running)} if running else \
                {"value": 0, "string": "completed without error", "passed": True}
        return data

    # -- nvme -o json
    def id_ctrl(self) -> dict[str, Any]:
        data = json.loads((FIXTURES / self.case["id_ctrl"]).read_text())
        data.update(mn=self.smart.get("model_name", data["mn"]), sn=self.case["serial"],
                    fr=self.smart.get("firmware_version", data["fr"]), tnvmcap=self.size, unvmcap=0,
                    oacs=int(data.get("oacs", 0)) | 0x10, edstt=1)  # self-test supported, 1 minute extended
        return data

    def id_ns(self) -> dict[str, Any]:
        # Formatted 512 + 0 while the drive offers 4096 + 0 as its best format, as drives pulled from arrays are.
        blocks = self.size // 512
        return {"nsze": blocks, "ncap": blocks, "nuse": blocks, "nsfeat": 0, "nlbaf": 1, "flbas": 0,
                "lbafs": [{"ms": 0, "ds": 9, "rp": 2}, {"ms": 0, "ds": 12, "rp": 0}]}

    def smart_log(self) -> dict[str, Any]:
        log = self.smart["nvme_smart_health_information_log"]
        return {"critical_warning": log["critical_warning"], "temperature": log["temperature"] + KELVIN,
                "avail_spare": log["available_spare"], "spare_thresh": log["available_spare_threshold"],
                "percent_used": log["percentage_used"], "data_units_written": log["data_units_written"],
                "power_on_hours": log["power_on_hours"], "unsafe_shutdowns": log["unsafe_shutdowns"],
                "media_errors": log["media_errors"], "num_err_log_entries": log["num_err_log_entries"],
                "warning_temp_time": log.get("warning_temp_time", 0),
                "critical_comp_time": log.get("critical_comp_time", 0)}

    def self_test_log(self) -> dict[str, Any]:
        running, history = self.selftest()
        return {"Current Device Self-Test Operation": running["code"] if running else 0,
                "Current Device Self-Test Completion": 100 - self.remaining(running) if running else 0,
                "List of Valid Reports": [
                    {"Self test result": 0 if t["passed"] else 7, "Self test code": t["code"],
                     "Segment number": 0 if t["passed"] else 2, "Valid Diagnostic Information": 0,
                     "Power on hours": t["hours"], "Vendor Specific": 0} for t in history]}


def _ours(device: str, drive_dir: Path) -> bool:
    case = json.loads((drive_dir / "case.json").read_text())
    name = os.path.basename(os.path.realpath(device))
    try:
        backing = Path(f"/sys/block/{name}/loop/backing_file").read_text().strip()
    except OSError:
        return False
    return os.path.realpath(backing) == os.path.realpath(case["backing_file"])


def _real_tool(tool: str, argv: list[str], own_bin: str) -> None:
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, tool)
        if os.path.realpath(directory) != own_bin and os.access(candidate, os.X_OK):
            os.execv(candidate, [tool, *argv])
    print(f"{tool}: command not found", file=sys.stderr)
    sys.exit(127)


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def smartctl(drive: Drive, argv: list[str]) -> int:
    test = _option(argv, "-t", "--test")
    if test is not None:
        drive.start({"short": SHORT, "long": EXTENDED}.get(test, SHORT))
        print("=== START OF OFFLINE IMMEDIATE AND SELF-TEST SECTION ===\nTesting has begun.")
        return 0
    if "-X" in argv or "--abort" in argv:
        drive.start(ABORT)
        print("Self-testing aborted!")
        return 0
    if not any(a in ("-j", "--json") or a.startswith("--json=") for a in argv):
        print("qualify lab stand-in: only JSON output (-j) is recorded for this drive", file=sys.stderr)
        return 1
    data = drive.smartctl_json(argv)
    print(json.dumps(data, indent=2))
    return int(data["smartctl"].get("exit_status", 0))


def nvme(drive: Drive, argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if drive.protocol != "NVMe":
        print(f"{argv[1] if len(argv) > 1 else ''}: not an NVMe device", file=sys.stderr)
        return 1
    if command == "device-self-test":
        drive.start(int(_option(argv, "-s", "--self-test-code") or "1", 0))
        print("Device self-test started")
        return 0
    outputs = {"id-ctrl": drive.id_ctrl, "id-ns": drive.id_ns, "smart-log": drive.smart_log,
               "self-test-log": drive.self_test_log}
    if command not in outputs:
        print(f"qualify lab stand-in: nvme {command} is not recorded for this drive", file=sys.stderr)
        return 1
    print(json.dumps(outputs[command](), indent=2))
    return 0


def nvme_list(drive_dir: Path) -> int:
    drive = Drive(drive_dir)
    name = next((p.parent.parent.name for p in Path("/sys/block").glob("loop*/loop/backing_file")
                 if os.path.realpath(p.read_text().strip()) == os.path.realpath(drive.case["backing_file"])), None)
    devices = [] if name is None or drive.protocol != "NVMe" else [{
        "DevicePath": f"/dev/{name}", "Firmware": drive.smart.get("firmware_version", ""), "Index": 0,
        "ModelNumber": drive.smart.get("model_name", ""), "ProductName": "Non-Volatile memory controller",
        "SerialNumber": drive.case["serial"], "UsedBytes": drive.size, "MaximumLBA": drive.size // 512,
        "PhysicalSize": drive.size, "SectorSize": 512}]
    print(json.dumps({"Devices": devices}, indent=2))
    return 0


def main(args: list[str]) -> int:
    drive_dir, tool, argv = Path(args[0]), args[1], args[2:]
    own_bin = os.path.realpath(drive_dir.parent / "bin")
    if tool == "nvme" and argv[:1] == ["list"]:
        return nvme_list(drive_dir)
    device = next((a for a in argv if a.startswith("/dev/")), None)
    if device is None or not _ours(device, drive_dir):
        _real_tool(tool, argv, own_bin)
    drive = Drive(drive_dir)
    return smartctl(drive, argv) if tool == "smartctl" else nvme(drive, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
