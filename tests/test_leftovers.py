"""Nothing of a run outlives it: a controller killed with SIGKILL leaves no fio, stress-ng, ssh master, node
session or control folder behind within seconds, and the next run does not load the node until they are gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_storage_guard import write_job
from test_storage_hold import node_for

from loopback_sshd import loopback_sshd
from qualify.errors import NodeUnreachable
from qualify.lab import NodeSpec
from qualify.node import connect
from qualify.storage.runner import run_fio
from storage_loop import forget_run_lock, loop_devices

GONE_WITHIN_S = 10.0  # what the issue allows; the tethers take well under that


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def descendants(pid: int) -> dict[int, str]:
    """{pid: command name} of every process below `pid`."""
    parents = {int(p): stat[1] for p in os.listdir("/proc") if p.isdigit() and (stat := _stat(int(p)))}
    found, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        for child in frontier:
            try:
                found[child] = Path(f"/proc/{child}/comm").read_text().strip()
            except OSError:
                pass
    return found


def wait_gone(pids: list[int], limit_s: float = GONE_WITHIN_S) -> float:
    """Seconds until none of `pids` is alive; fails after limit_s naming what is left."""
    started = time.monotonic()
    while (left := [p for p in pids if alive(p)]) and time.monotonic() - started < limit_s:
        time.sleep(0.05)
    assert not left, f"still running {limit_s:g} s after the controller was killed: {left}"
    return time.monotonic() - started


def start_controller(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent)


# -- a write job


WRITER = """
import json, sys
from qualify.node import LocalNode
from qualify.profile import Profile
from qualify.storage.runner import run_fio
profile, argv = json.loads(sys.argv[1]), json.loads(sys.argv[2])
node = LocalNode("killed", Profile.model_validate(profile))
run_fio(node, argv, 600, lambda _: print("writing", flush=True))
"""


@pytest.fixture(autouse=True)
def own_lock_files(tmp_path):
    """Nodes on tmp_path/"tree" have a run lock of this test's own: its files go afterwards."""
    yield
    forget_run_lock(tmp_path / "tree")


@pytest.fixture
def loops(tmp_path):
    with loop_devices(tmp_path / "drives") as made:
        yield made


def test_sigkill_during_a_write_job_ends_fio_and_the_next_run_waits_for_it(loops, tmp_path):
    serial = f"QLAB-k{os.getpid()}"
    device = loops.make(serial)
    profile = node_for(serial, tmp_path).profile.model_dump(mode="json")
    controller = start_controller(WRITER, json.dumps(profile), json.dumps(write_job(device, 600)))
    try:
        assert controller.stdout.readline() == "writing\n"
        below = descendants(controller.pid)
        assert "fio" in below.values(), below
    finally:
        controller.kill()
        controller.wait()
        killed = time.monotonic()
    # The next run: its lock comes only once the killed run's fio and hold are gone.
    node = node_for(serial, tmp_path, lock_wait=30)
    with node.exclusive("the next run"):
        print(f"write job: the next run had the node {time.monotonic() - killed:.2f} s after the SIGKILL")
        left = {pid: below[pid] + " " + Path(f"/proc/{pid}/cmdline").read_text()[:300] for pid in below if alive(pid)}
        assert not left, f"the next run got the node while the killed run's loads ran: {left}"
    print(f"write job: the killed run's processes were gone {wait_gone(list(below)):.2f} s after the lock was had")
    outcome = run_fio(node, write_job(device, 1), 1, lambda _: None)
    assert outcome.failed is None


# -- a thermal soak, end to end through `qualify run`, on a prepared tree


def test_sigkill_during_a_thermal_soak_ends_stress_ng(workspace):
    workspace.local_node("hot", NodeSpec(sensors=True), extra="duration: 60s\ntelemetry:\n  interval: 0.5s\n"
                         "checks:\n  thermal:\n    slice: 60s\n    idle_lead_in: 1s\n    cool_down: 1s\n")
    controller = subprocess.Popen([sys.executable, "-m", "qualify", "run", "hot", "--checks", "thermal"],
                                  env=workspace.env(), cwd=workspace.root, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "stress-ng" not in (below := descendants(controller.pid)).values():
            assert time.monotonic() < deadline and controller.poll() is None, "stress-ng never started"
            time.sleep(0.1)
        time.sleep(0.5)  # its workers too
        below = descendants(controller.pid)
    finally:
        controller.kill()
        controller.wait()
    forget_run_lock(workspace.root / "trees" / "hot" / "sys")
    gone = wait_gone(list(below))
    print(f"thermal soak: stress-ng and the rest gone {gone:.2f} s after SIGKILL")
    assert gone < 5, "stress-ng kept the CPUs busy after the controller was killed"


# -- over ssh: master, node session, commands, control folder


def test_a_failed_connection_leaves_no_control_folder(tmp_path, monkeypatch):
    with loopback_sshd(tmp_path / "sshd") as sshd:
        profile = sshd.profile()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp puts qualify-ssh-*
    with pytest.raises(NodeUnreachable, match="cannot reach host '127.0.0.1' over ssh"):
        connect("gone", profile)  # the sshd is stopped: nothing listens on its port
    assert not list(tmp_path.glob("qualify-ssh-*"))


SSH_CONTROLLER = """
import json, sys, threading
from qualify.node import connect
from qualify.profile import Profile
node = connect("remote", Profile.model_validate(json.loads(sys.argv[1])))
stream = node.spawn(["sh", "-c", "echo $$; exec sleep 600"])
streamed = next(stream.lines())
ran = sys.argv[2]
threading.Thread(target=node.run, args=(["sh", "-c", f"echo $$ > {ran}; exec sleep 600"],), daemon=True).start()
print(json.dumps({"stream": int(streamed), "control": node._control_dir}), flush=True)
threading.Event().wait()
"""


def test_sigkill_over_ssh_leaves_no_master_session_or_command(tmp_path):
    with loopback_sshd(tmp_path / "sshd") as sshd:
        ran = tmp_path / "ran.pid"
        controller = start_controller(SSH_CONTROLLER, json.dumps(sshd.profile().model_dump(mode="json")), str(ran))
        try:
            shown = json.loads(controller.stdout.readline())
            deadline = time.monotonic() + 30
            while not (ran.exists() and ran.read_text().strip()):
                assert time.monotonic() < deadline, "the command never started on the node"
                time.sleep(0.05)
            on_node = [shown["stream"], int(ran.read_text())]
            local = descendants(controller.pid)
            assert "ssh" in local.values() and sshd.sessions(), (local, sshd.sessions())
        finally:
            controller.kill()
            controller.wait()
        print(f"ssh: master, clients and node commands gone {wait_gone([*local, *on_node]):.2f} s after SIGKILL")
        started = time.monotonic()
        while sshd.sessions() and time.monotonic() - started < GONE_WITHIN_S:
            time.sleep(0.05)
        assert not sshd.sessions(), "the node's sshd session outlived the controller"
        assert not Path(shown["control"]).exists(), "the control folder outlived the controller"
