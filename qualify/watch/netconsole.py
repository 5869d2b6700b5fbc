"""Netconsole: the node's kernel sends every message over UDP to the controller as it prints it, so the
last words of a kernel that hangs before anything reaches the disk are still kept.

`configure_netconsole` sets up a dynamic netconsole target on the node through configfs (needs root
and a kernel with CONFIG_NETCONSOLE_DYNAMIC); `NetconsoleListener` receives on the controller, keeps
every line in `samples/netconsole.jsonl` and ignores (and counts) packets from other sources or
larger than netconsole ever sends.
"""

from __future__ import annotations

import socket
import threading
from collections import deque

from qualify.errors import NodeError
from qualify.node import Node
from qualify.store import RunStore, utc_now

TARGET = "qualify"
MAX_PACKET = 1500  # netconsole sends at most one MTU-sized message per packet (1000 bytes of text)

# $1 configfs dir of netconsole, $2 controller ip, $3 port, $4 "modprobe" or "no". Prints the reason
# on failure (exit 3), so the controller can say why netconsole is not possible on this node.
_CONFIGURE = r"""
fail() { echo "$1"; exit 3; }
[ "$(id -u)" = 0 ] || fail "netconsole needs root on the node (ssh.user: root)"
[ "$4" = modprobe ] && modprobe netconsole 2>/dev/null
[ -d "$1" ] || fail "$1 does not exist: the kernel has no dynamic netconsole (CONFIG_NETCONSOLE_DYNAMIC) \
or the module is not loaded (modprobe netconsole)"
route=$(ip -o route get "$2" 2>/dev/null) || fail "no route from the node to the controller $2"
dev=$(echo "$route" | sed -n 's/.* dev \([^ ]*\).*/\1/p'); src=$(echo "$route" | sed -n 's/.* src \([^ ]*\).*/\1/p')
hop=$(echo "$route" | sed -n 's/.* via \([^ ]*\).*/\1/p'); hop=${hop:-$2}
ping -c 1 -W 1 "$hop" >/dev/null 2>&1
mac=$(ip neigh show "$hop" dev "$dev" | sed -n 's/.* lladdr \([^ ]*\).*/\1/p')
[ -n "$mac" ] || fail "no MAC address for the next hop $hop on $dev (it does not answer ARP)"
t="$1/qualify"; mkdir -p "$t" || fail "cannot create $t"
echo 0 > "$t/enabled" 2>/dev/null
echo "$dev" > "$t/dev_name" && echo "$src" > "$t/local_ip" && echo "$2" > "$t/remote_ip" &&
echo "$3" > "$t/remote_port" && echo "$mac" > "$t/remote_mac" && echo 1 > "$t/enabled" ||
  fail "the kernel refused the netconsole target $t (dev $dev, src $src, mac $mac)"
echo "$dev $src $mac"
"""

_REMOVE = r"""t="$1/qualify"; [ -d "$t" ] || exit 0; echo 0 > "$t/enabled"; rmdir "$t" """


def controller_address(node_address: str) -> str:
    """The controller's own address on the route to the node (what the node must send to)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((node_address, 9))  # no packet is sent: this only picks the route
        return probe.getsockname()[0]


def configure_netconsole(node: Node, controller_ip: str, port: int) -> str:
    """Make the node send its kernel messages to controller_ip:port; returns 'dev src mac'.

    NodeError with the reason when netconsole is not possible there. The module is loaded only on a
    real kernel interface (paths.sysfs /sys), never for a prepared tree.
    """
    configfs = node.sys_path("kernel/config/netconsole")
    load = "modprobe" if node.paths.sysfs == "/sys" else "no"
    result = node.run(["sh", "-c", _CONFIGURE, "sh", configfs, controller_ip, str(port), load], check=False)
    if result.returncode != 0:
        reason = result.stdout.strip() or result.stderr.strip() or f"exit status {result.returncode}"
        raise NodeError(node.name, f"netconsole not possible: {reason}")
    return result.stdout.strip()


def remove_netconsole(node: Node) -> None:
    node.run(["sh", "-c", _REMOVE, "sh", node.sys_path("kernel/config/netconsole")], check=False)


class NetconsoleListener:
    """Receives the node's netconsole packets in a thread; keeps the last lines for a freeze event."""

    def __init__(self, store: RunStore, bind: tuple[str, int], node_address: str, keep_lines: int):
        self.store = store
        self.node_address = node_address
        self.foreign = 0
        self.oversized = 0
        self.last_lines: deque[str] = deque(maxlen=keep_lines)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(bind)
        self._socket.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True, name="watch-netconsole")

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def start(self) -> NetconsoleListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._socket.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, (source, _) = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if source != self.node_address:
                self.foreign += 1
            elif len(data) > MAX_PACKET:
                self.oversized += 1
            else:
                self._keep(data.decode("utf-8", errors="replace"))

    def _keep(self, text: str) -> None:
        received = utc_now()
        for line in text.splitlines():
            if line.strip():
                self.last_lines.append(line)
                self.store.samples("netconsole").append({"t": received, "line": line})
