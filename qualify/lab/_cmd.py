"""The one way the lab runs a command: argv lists (no shell), errors become LabError.

Every failure message names the command and its stderr so `make lab-up` tells the user what broke.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from qualify.errors import LabError
from qualify.node.packages import package_for

# Tools lab_up needs; checked up front so a missing one fails before anything is built.
REQUIRED_TOOLS: tuple[str, ...] = (
    "ip", "losetup", "unshare", "nsenter", "hostname", "/usr/sbin/sshd", "ssh", "ssh-keygen",
)


def _missing(tool: str) -> LabError:
    return LabError(f"the lab needs '{tool}', which is not installed: apt-get install {package_for(tool)}")


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root: run as root, e.g. sudo make lab-up")


def require_tools(tools: Sequence[str] | None = None) -> None:
    for tool in REQUIRED_TOOLS if tools is None else tools:
        found = Path(tool).is_file() and os.access(tool, os.X_OK) if "/" in tool else shutil.which(tool)
        if not found:
            raise _missing(tool)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    timeout: float = 30.0,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv; with check=True a non-zero exit raises LabError with the command and its stderr."""
    args = [os.fspath(a) for a in argv]
    cmd = shlex.join(args)
    try:
        cp = subprocess.run(
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise _missing(args[0]) from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{cmd}` did not finish within {timeout:g} s") from None
    if check and cp.returncode != 0:
        detail = cp.stderr.strip() or cp.stdout.strip() or "no error output"
        raise LabError(f"`{cmd}` failed (exit {cp.returncode}): {detail}")
    return cp
