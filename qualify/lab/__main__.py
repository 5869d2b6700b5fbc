"""`python -m qualify.lab up|down|status`: the lab without the rest of the CLI (config from QUALIFY_LAB_*)."""

from __future__ import annotations

import sys

from qualify.errors import LabError
from qualify.lab.lab import LabConfig, lab_down, lab_status, lab_up


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("up", "down", "status"):
        print("usage: python -m qualify.lab up|down|status", file=sys.stderr)
        return 2
    try:
        cfg = LabConfig.from_env()
        if args[0] == "down":
            lab_down(cfg)
            print(f"lab down ({cfg.lab_dir} removed)")
            return 0
        state = lab_up(cfg) if args[0] == "up" else lab_status(cfg)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if state is None:
        print("lab is not up")
        return 1
    for n in state.nodes.values():
        print(f"{n.name}: {n.mgmt_ip} netns {n.netns} sshd {n.sshd_pid} disk {n.loop_device} overlay {n.overlay}")
    print(f"ssh -F {state.ssh_config} <node>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
