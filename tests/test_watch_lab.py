"""The freeze watch against lab nodes over real SSH: a real freeze (cgroup freezer) seen from outside,
recovery after thaw, a simulated reboot, and no false freeze while the node runs stress-ng on all CPUs."""

import os
import signal
import statistics
import subprocess
import time
from datetime import datetime

import pytest
from test_watch import events, wait_for

from qualify.lab import freeze_node, lab_status, thaw_node
from qualify.node import connect
from qualify.overlays import resolve_profile
from qualify.store import RunStore, read_samples
from qualify.watch import start_watch

INTERVAL = 0.5


def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def lab_env(lab, workspace, monkeypatch):
    workspace.lab = lab
    (workspace.profiles / "lab-pve2.yaml").write_text("host: lab-pve2\n")
    (workspace.profiles / "lab-pve3.yaml").write_text("host: lab-pve3\n")
    for key, value in workspace.env().items():
        monkeypatch.setenv(key, value)
    return workspace


def watch(lab_env, name, **watch_settings):
    profile = resolve_profile(name, None).profile
    profile = profile.model_copy(update={"watch": profile.watch.model_copy(
        update={"heartbeat_interval": INTERVAL, "probe_interval": 1.0, **watch_settings})})
    node = connect(name, profile)
    store = RunStore.create(name, lab_env.reports)
    watcher = start_watch(node, profile.watch, store)
    wait_for(lambda: len(read_samples(store.run_dir, "heartbeat")) >= 2, what="first heartbeats")
    return node, store, watcher


def test_frozen_node_is_detected_with_the_time_of_its_last_heartbeat_then_recovers(lab, lab_env):
    node, store, watcher = watch(lab_env, "lab-pve2")
    try:
        frozen_at = time.time()
        freeze_node(lab, "lab-pve2")
        try:
            freeze = wait_for(lambda: events(store, "freeze"), timeout=20, what="freeze event")[0]
        finally:
            thaw_node(lab, "lab-pve2")
        threshold = 3 * INTERVAL
        assert freeze["fails_run"] and freeze["severity"] == "critical"
        last_beat = at(freeze["last_heartbeat"])
        assert frozen_at - INTERVAL - 1.0 <= last_beat <= frozen_at + 0.5, "last heartbeat is the one before the freeze"
        assert threshold <= at(freeze["t"]) - last_beat, "not before the threshold"
        assert "the independent probe gets no answer either" in freeze["message"]
        recovered = wait_for(lambda: events(store, "recovered"), timeout=30, what="recovery")[0]
        assert recovered["frozen_since"] == freeze["last_heartbeat"] and recovered["last_words"]
        assert not events(store, "reboot")
    finally:
        watcher.stop()
        node.close()
        store.close()


def test_simulated_reboot_of_a_lab_node_is_an_unexpected_reboot(lab, lab_env):
    tree = lab_status(lab).nodes["lab-pve3"].tree_root
    boot_id = tree / "proc/sys/kernel/random/boot_id"
    original = boot_id.read_text()
    node, store, watcher = watch(lab_env, "lab-pve3")
    try:
        boot_id.write_text("0badb007-0000-4000-8000-000000000000\n")
        reboot = wait_for(lambda: events(store, "reboot"), timeout=20, what="reboot event")[0]
        assert "to 0badb007-0000-4000-8000-000000000000" in reboot["message"] and reboot["fails_run"]
    finally:
        boot_id.write_text(original)
        watcher.stop()
        node.close()
        store.close()


def test_kernel_messages_injected_into_a_lab_node_become_events(lab, lab_env):
    log = lab_status(lab).nodes["lab-pve3"].tree_root / "kernel.log"
    node, store, watcher = watch(lab_env, "lab-pve3")
    try:
        time.sleep(1)  # tail -F has opened the file
        with open(log, "a") as f:
            f.write("[50000.000001] INFO: task kworker/u32:2:113 blocked for more than 122 seconds.\n"
                    "[50000.100000] nvme nvme0: I/O 12 QID 5 timeout, aborting\n")
        wait_for(lambda: events(store, "nvme_timeout"), timeout=20, what="nvme event")
        assert events(store, "hung_task")[0]["message"].startswith("lab-pve3 kernel: INFO: task kworker")
    finally:
        watcher.stop()
        node.close()
        store.close()


def test_no_false_freeze_while_the_node_runs_stress_ng_on_all_cpus(lab, lab_env):
    node, store, watcher = watch(lab_env, "lab-pve2", heartbeat_interval=1.0)
    stress = node.spawn(["stress-ng", "--cpu", "0", "--timeout", "25s", "--quiet"])
    try:
        time.sleep(20)
    finally:
        stress.stop()
        watcher.stop()
        node.close()
        store.close()
    beats = read_samples(store.run_dir, "heartbeat")
    gaps = [b["gap_s"] for b in beats[1:]]
    print(f"stress: {len(beats)} heartbeats, gap median {statistics.median(gaps):.3f} s, max {max(gaps):.3f} s")
    assert not events(store, "freeze") and not events(store, "heartbeat_lost")
    assert len(beats) >= 15


def test_stuck_heartbeat_channel_of_a_live_node_is_not_a_freeze(lab, lab_env):
    """Only our heartbeat loop stops (SIGSTOP), sshd still answers: a warning, a new channel, no freeze."""
    boot_id = lab_status(lab).nodes["lab-pve2"].tree_root / "proc/sys/kernel/random/boot_id"
    node, store, watcher = watch(lab_env, "lab-pve2")
    found = subprocess.run(["pgrep", "-f", f"qualify-heartbeat {boot_id} "], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    assert len(pids) == 1, f"expected the one heartbeat loop of this watch, found {pids}"
    try:
        os.kill(pids[0], signal.SIGSTOP)
        lost = wait_for(lambda: events(store, "heartbeat_lost"), timeout=20, what="heartbeat_lost")[0]
        assert lost["severity"] == "warning" and not lost.get("fails_run")
        assert "it answers a new connection (SSH-2.0-" in lost["message"]
        beats = len(read_samples(store.run_dir, "heartbeat"))
        wait_for(lambda: len(read_samples(store.run_dir, "heartbeat")) > beats + 2, what="beats on a new channel")
        assert not events(store, "freeze")
    finally:
        os.kill(pids[0], signal.SIGCONT)
        watcher.stop()
        node.close()
        store.close()
