"""Cost of one command on a node: qualify's multiplexed ssh vs a fresh ssh connection vs local.

Needs the built-in lab (make lab-up). Prints ms per command; ratios matter, not absolute times
(the machine is shared and noisy).

    .venv/bin/python benchmarks/node_commands.py [NODE] [COUNT]
"""

from __future__ import annotations

import subprocess
import sys
import time

from qualify.node import LocalNode, SshNode, connect
from qualify.overlays import resolve_profile
from qualify.profile import Profile


def per_command_ms(run, count: int) -> float:
    run()  # warm up
    started = time.perf_counter()
    for _ in range(count):
        run()
    return (time.perf_counter() - started) / count * 1000


def main(node_name: str = "lab-pve2", count: int = 30) -> None:
    profile = resolve_profile(node_name, None).profile
    node = connect(node_name, profile)
    if not isinstance(node, SshNode):
        node.close()
        sys.exit(f"{node_name} is not reached over ssh: nothing to compare")
    try:
        fresh_argv = [*node.ssh_argv(), "-o", "ControlPath=none", "--", profile.host, "true"]
        results = {
            "qualify ssh (multiplexed)": per_command_ms(lambda: node.run(["true"]), count),
            "ssh, new connection each": per_command_ms(
                lambda: subprocess.run(fresh_argv, check=True, stdin=subprocess.DEVNULL), count),
            "local subprocess": per_command_ms(lambda: LocalNode("local", Profile(host="localhost")).run(["true"]),
                                               count),
        }
    finally:
        node.close()
    for name, ms in results.items():
        print(f"{name:28s} {ms:7.1f} ms/command")
    ratio = results["ssh, new connection each"] / results["qualify ssh (multiplexed)"]
    print(f"new connection / multiplexed: {ratio:.2f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "lab-pve2", int(args[1]) if len(args) > 1 else 30)
