"""iperf3 between two nodes: the server on the peer (started and stopped by qualify), the client on
the node under test.

The server runs through `node.spawn`, so it is tied to this process: stop() ends it by its pid on
the peer, and a dropped ssh connection or a killed qualify ends it too. It never outlives the check.
"""

from __future__ import annotations

import queue
import threading
from typing import Literal

from qualify.errors import CommandFailed, NodeError
from qualify.node import Node
from qualify.node.base import NodeProcess
from qualify.parsers.iperf3 import Iperf3Result, parse_iperf3
from qualify.profile import NetworkSettings

Direction = Literal["forward", "reverse", "bidir"]
_DIRECTION_FLAGS: dict[str, list[str]] = {"forward": [], "reverse": ["-R"], "bidir": ["--bidir"]}
PORT_TRIES = 10  # the chosen port and the next ones, when another server (or run) has it
_LISTENING = "Server listening on"
_PORT_TAKEN = "Address already in use"
_CLIENT_GRACE_S = 30  # beyond -t: connection set-up, the results exchange, a loaded machine


class IperfServer:
    """`iperf3 -s` on a node, on the first free port from `first_port`; use as a context manager."""

    def __init__(self, node: Node, first_port: int, ready_timeout_s: float):
        node.require("iperf3")
        self.node = node
        self.port, self._process = self._start(first_port, ready_timeout_s)

    def _start(self, first_port: int, ready_timeout_s: float) -> tuple[int, NodeProcess]:
        last_port = min(first_port + PORT_TRIES - 1, 65535)
        for port in range(first_port, last_port + 1):
            # stderr into stdout: the "Address already in use" line must reach us while the wrapper waits
            process = self.node.spawn(["sh", "-c", 'exec iperf3 "$@" 2>&1', "sh",
                                       "-s", "-p", str(port), "--forceflush"])
            line = _first_line(process, (_LISTENING, "error"), ready_timeout_s)
            if line is not None and _LISTENING in line:
                return port, process
            process.stop()
            if line is not None and _PORT_TAKEN in line:
                continue
            raise NodeError(self.node.name, f"the iperf3 server did not start on port {port}: "
                                            f"{line or f'no {_LISTENING!r} within {ready_timeout_s:g} s'}")
        raise NodeError(self.node.name, f"ports {first_port}-{last_port} are all in use, no iperf3 server could "
                                        f"listen; set checks.network.port to a free range")

    def stop(self) -> None:
        self._process.stop()

    def __enter__(self) -> IperfServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _first_line(process: NodeProcess, markers: tuple[str, ...], timeout_s: float) -> str | None:
    """The first output line holding one of `markers`; None on timeout or end of output.

    A thread keeps reading (and dropping) the rest, so the server never blocks on a full pipe.
    """
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in process.lines():
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True, name=f"iperf3-server-{process.node_name}").start()
    try:
        while (line := lines.get(timeout=timeout_s)) is not None:
            if any(marker in line for marker in markers):
                return line
    except queue.Empty:
        pass
    return None


def run_client(node: Node, address: str, port: int, direction: Direction,
               settings: NetworkSettings) -> tuple[Iperf3Result, str]:
    """One iperf3 test from `node` to the server at address:port; the parsed result and the raw output."""
    seconds = max(1, round(settings.duration))  # iperf3 -t takes whole seconds
    argv = ["iperf3", "-c", address, "-p", str(port), "-J", "-t", str(seconds), "-P", str(settings.streams),
            "--connect-timeout", str(int(settings.connect_timeout * 1000)), *_DIRECTION_FLAGS[direction]]
    result = node.run(argv, timeout_s=seconds + settings.connect_timeout + _CLIENT_GRACE_S, check=False)
    if "{" not in result.stdout:  # no JSON at all: an option this iperf3 lacks, a crash
        raise CommandFailed(node.name, result.command, result.returncode, result.stderr)
    raw = result.stdout + (f"\n{result.stderr}" if result.stderr.strip() else "")
    return parse_iperf3(raw, f"{node.name}: {result.command}"), raw
