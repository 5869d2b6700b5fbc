"""Nightly soaks: a systemd service + timer per node on the controller (`qualify nightly install`).

Each night the timer starts `qualify soak NODE --duration D` from this checkout, so every night is a
run of its own under reports/<node>/. Cron does the same where systemd is not wanted:
    0 22 * * *  cd /path/to/qualify && .venv/bin/qualify soak pve2 --duration 8h
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from qualify.errors import UsageError
from qualify.names import check_node_name

_TIME = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")  # fullmatch: a trailing newline would break the timer
_PASSED_ON = ("QUALIFY_PROFILES", "QUALIFY_REPORTS", "QUALIFY_LAB_DIR", "QUALIFY_LAB_PREFIX", "QUALIFY_LAB_SUBNET")


def unit_name(node: str) -> str:
    return f"qualify-nightly-{node}"


def _systemd(text: str) -> str:
    """systemd expands %-specifiers in ExecStart=, Environment= and WorkingDirectory=: keep a '%' a '%'.
    A unit file is read line by line: a line break in a value would start a directive of its own."""
    if "\n" in text or "\r" in text:
        raise UsageError(f"cannot write a systemd unit with a line break in {text!r}")
    return text.replace("%", "%%")


def service_text(node: str, duration: str, workdir: Path) -> str:
    command = _systemd(shlex.join([sys.executable, "-m", "qualify", "soak", node, "--duration", duration]))
    env = "".join(f"Environment={_systemd(shlex.quote(f'{k}={os.environ[k]}'))}\n"
                  for k in _PASSED_ON if k in os.environ)
    # Exit 1 (fail) and 2 (incomplete) leave the unit failed: `systemctl --failed` shows the bad night.
    return (f"[Unit]\nDescription=qualify nightly soak of {node}\n"
            "After=network-online.target\nWants=network-online.target\n\n"
            f"[Service]\nType=oneshot\nWorkingDirectory={_systemd(str(workdir))}\n{env}ExecStart={command}\n")


def timer_text(node: str, at: str) -> str:
    return (f"[Unit]\nDescription=qualify nightly soak of {node} at {at}\n\n"
            f"[Timer]\nOnCalendar=*-*-* {at}:00\nPersistent=false\nUnit={unit_name(node)}.service\n\n"
            "[Install]\nWantedBy=timers.target\n")


def install_nightly(nodes: list[str], at: str, duration: str, unit_dir: Path) -> list[Path]:
    """Write the units (profiles are checked first); returns the files written."""
    from qualify.overlays import resolve_profile

    if not _TIME.fullmatch(at):
        raise UsageError(f"--at {at!r}: expected a time of day like 22:00")
    names = [check_node_name(n) for item in nodes for n in item.split()]  # unit names and file names
    for node in names:
        resolve_profile(node, None)
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write units to {unit_dir}: {exc.strerror} (run as root, or --unit-dir)") from None
    written = []
    for node in names:
        service, timer = unit_dir / f"{unit_name(node)}.service", unit_dir / f"{unit_name(node)}.timer"
        service.write_text(service_text(node, duration, Path.cwd()))
        timer.write_text(timer_text(node, at))
        written += [service, timer]
    timers = " ".join(f"{unit_name(n)}.timer" for n in names)
    print(f"enable with: systemctl daemon-reload && systemctl enable --now {timers}", file=sys.stderr)
    return written
