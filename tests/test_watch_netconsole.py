"""Netconsole: the controller's UDP listener keeps the node's lines (and ignores others), the node side
is configured through configfs with a clear reason when it cannot be, and a frozen node's last netconsole
lines come with its freeze event."""

import shutil
import socket

import pytest
from test_watch import events, wait_for
from test_watch_lab import lab_env, watch  # noqa: F401 (fixture)

from qualify.errors import NodeError
from qualify.lab import freeze_node, lab_status, thaw_node
from qualify.store import RunStore, read_samples
from qualify.watch.netconsole import MAX_PACKET, NetconsoleListener, configure_netconsole


def send(payload: bytes, port: int, source: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind((source, 0))
        sender.sendto(payload, ("127.0.0.1", port))


def test_listener_keeps_the_nodes_lines_and_counts_foreign_and_oversized_packets(tmp_path):
    store = RunStore.create("n1", tmp_path)
    listener = NetconsoleListener(store, ("127.0.0.1", 0), "127.0.0.1", keep_lines=2).start()
    try:
        send(b"[  12.5] first line\n[  12.6] second line\n", listener.port)
        send(b"[  12.7] third line\n", listener.port)
        send(b"from somebody else\n", listener.port, source="127.0.0.2")
        send(b"x" * (MAX_PACKET + 1), listener.port)
        wait_for(lambda: listener.oversized and listener.foreign and len(listener.last_lines) == 2, what="packets")
    finally:
        listener.stop()
        store.close()
    assert list(listener.last_lines) == ["[  12.6] second line", "[  12.7] third line"]
    assert [s["line"] for s in read_samples(store.run_dir, "netconsole")] == [
        "[  12.5] first line", "[  12.6] second line", "[  12.7] third line"]
    assert (listener.foreign, listener.oversized) == (1, 1)


def test_node_without_dynamic_netconsole_gets_a_clear_reason(lab, lab_env):  # noqa: F811
    node, store, watcher = watch(lab_env, "lab-pve2", netconsole=True, netconsole_port=0)
    try:
        unavailable = events(store, "netconsole_unavailable")[0]
        assert unavailable["severity"] == "warning"
        assert "lab-pve2: netconsole not possible:" in unavailable["message"]
        assert "kernel/config/netconsole does not exist: the kernel has no dynamic netconsole" in unavailable["message"]
    finally:
        watcher.stop()
        node.close()
        store.close()


def test_frozen_node_freeze_event_carries_its_last_netconsole_lines(lab, lab_env):  # noqa: F811
    configfs = lab_status(lab).nodes["lab-pve3"].tree_root / "sys/kernel/config/netconsole"
    configfs.mkdir(parents=True)  # stands in for the kernel's configfs directory
    try:
        node, store, watcher = watch(lab_env, "lab-pve3", netconsole=True, netconsole_port=0)
        try:
            target = configfs / "qualify"
            assert (target / "dev_name").read_text().strip() == "mgmt0"
            assert (target / "remote_ip").read_text().strip() == lab.bridge_cidr.split("/")[0]
            assert (target / "enabled").read_text().strip() == "1"
            port = int((target / "remote_port").read_text())
            line = "[43200.5] watchdog: BUG: soft lockup - CPU#4 stuck for 26s! [kworker/4:1:99]"
            sender = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                      f"s.sendto({line!r}.encode() + b'\\n', ('{lab.bridge_cidr.split('/')[0]}', {port}))")
            node.run(["python3", "-c", sender])
            wait_for(lambda: read_samples(store.run_dir, "netconsole"), what="netconsole line")
            freeze_node(lab, "lab-pve3")
            try:
                freeze = wait_for(lambda: events(store, "freeze"), timeout=20, what="freeze")[0]
            finally:
                thaw_node(lab, "lab-pve3")
            assert freeze["netconsole"] == [line]
        finally:
            watcher.stop()
            node.close()
            store.close()
    finally:
        shutil.rmtree(configfs.parent)


def test_controller_out_of_the_nodes_reach_is_named(lab, lab_env):  # noqa: F811
    configfs = lab_status(lab).nodes["lab-pve2"].tree_root / "sys/kernel/config/netconsole"
    configfs.mkdir(parents=True)
    node, store, watcher = watch(lab_env, "lab-pve2")
    try:
        if "default" in node.run(["ip", "route"]).stdout:
            pytest.skip("the lab node has a default route")
        with pytest.raises(NodeError, match=r"^lab-pve2: netconsole not possible: no route from the node "
                                            r"to the controller 192.0.2.1"):
            configure_netconsole(node, "192.0.2.1", 6666)
    finally:
        watcher.stop()
        node.close()
        store.close()
        shutil.rmtree(configfs.parent)
