"""Node access on this machine: commands, file helpers, streams, the tether and the run lock (the SSH side is in
test_e2e_lab.py and test_leftovers.py)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qualify.errors import CommandFailed, CommandTimeout, ToolMissing
from qualify.node import LocalNode
from qualify.node.lock import NodeBusy
from qualify.profile import Profile
from storage_loop import forget_run_lock

STREAM = 'echo $$; i=0; while [ $i -lt 3 ]; do echo "line $i"; i=$((i+1)); sleep 0.05; done; sleep 60'


@pytest.fixture
def local():
    return LocalNode("here", Profile(host="localhost"))


def gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" in status.read_text()


def assert_stream_stops_on_the_node(node):
    stream = node.spawn(["sh", "-c", STREAM])
    lines = stream.lines()
    pid = int(next(lines))
    assert [next(lines) for _ in range(3)] == ["line 0", "line 1", "line 2"]
    assert not gone(pid)
    stream.stop()
    deadline = time.monotonic() + 10
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pid), "the streamed command outlived stop()"


def test_local_stream_stops_on_the_node(local):
    assert_stream_stops_on_the_node(local)


def test_failed_command_names_node_command_and_stderr(local):
    with pytest.raises(CommandFailed,
                       match=r"here: command exited with status 2: .*No such file.*\(command: ls /nonexistent\)"):
        local.run(["ls", "/nonexistent"])


def test_local_timeout(local):
    with pytest.raises(CommandTimeout, match="here: command did not finish within 0.5 s"):
        local.run(["sleep", "5"], timeout_s=0.5)


def test_file_helpers(local, tmp_path):
    (tmp_path / "a").write_text("0x435\nsecond line\n")
    (tmp_path / "b").write_text("Not affected\n")
    (tmp_path / "dir").mkdir()
    assert local.read_text(str(tmp_path / "a")) == "0x435\nsecond line\n"
    assert local.read_text(str(tmp_path / "missing")) is None
    assert local.read_glob(str(tmp_path), "*") == {"a": "0x435", "b": "Not affected"}
    assert local.read_glob(str(tmp_path / "missing"), "*") == {}
    assert local.list_files(str(tmp_path)) == ["a", "b"]
    weird = tmp_path / "it's $(dangerous)"
    weird.write_text("safe\n")
    assert local.read_text(str(weird)) == "safe\n"


# -- the tether (qualify/node/tether.py) and the run lock (qualify/node/lock.py)


def wait_gone(pid: int, limit_s: float = 10) -> float:
    started = time.monotonic()
    while not gone(pid) and time.monotonic() - started < limit_s:
        time.sleep(0.05)
    assert gone(pid), f"pid {pid} still runs {limit_s:g} s later"
    return time.monotonic() - started


def test_a_time_limit_ends_everything_the_command_started(local, tmp_path):
    started = tmp_path / "bg.pid"
    with pytest.raises(CommandTimeout):
        local.run(["sh", "-c", f'setsid sleep 600 & echo $! > {started}; sleep 600'], timeout_s=0.5)
    assert wait_gone(int(started.read_text())) < 2  # in a session of its own, and still ended


def test_what_a_finished_command_left_running_is_ended(local):
    result = local.run(["sh", "-c", "setsid sleep 600 & echo $!"])
    assert wait_gone(int(result.stdout)) < 2


def test_exit_status_and_missing_tool_come_through(local):
    assert local.run(["sh", "-c", "exit 7"], check=False).returncode == 7
    assert local.run(["sh", "-c", "kill -9 $$"], check=False).returncode == 128 + 9  # as a shell reports it
    with pytest.raises(ToolMissing, match="'no-such-tool' is not installed on the node"):
        local.run(["no-such-tool"])


CONTROLLER = """
import sys
from qualify.node import LocalNode
from qualify.profile import Profile
node = LocalNode("here", Profile(host="localhost"))
stream = node.spawn(["sh", "-c", "echo $$; exec sleep 600"])
print(next(stream.lines()), flush=True)
node.run(["sh", "-c", f"echo $$ > {sys.argv[1]}; exec sleep 600"])
"""


def test_commands_end_when_the_controller_is_killed(tmp_path):
    ran = tmp_path / "ran.pid"
    controller = subprocess.Popen([sys.executable, "-c", CONTROLLER, str(ran)], stdout=subprocess.PIPE, text=True)
    try:
        streamed = int(controller.stdout.readline())
        deadline = time.monotonic() + 20
        while not (ran.exists() and ran.read_text().strip()):
            assert time.monotonic() < deadline, "the command did not start"
            time.sleep(0.05)
    finally:
        controller.kill()  # SIGKILL: no clean-up of its own
        controller.wait()
    assert wait_gone(streamed) < 3 and wait_gone(int(ran.read_text())) < 3


@pytest.fixture(autouse=True)
def own_lock_files(tmp_path):
    """Nodes on tmp_path/"tree" have a run lock of this test's own: its files go afterwards."""
    yield
    forget_run_lock(tmp_path / "tree")


def lock_node(tree: Path, **settings) -> LocalNode:
    """A node with a run lock of the test's own: its own tree path."""
    return LocalNode("here", Profile(host="localhost", paths={"sysfs": str(tree)}, **settings))


def test_the_run_lock_refuses_naming_the_holder_and_is_reentrant(tmp_path):
    first, second = lock_node(tmp_path / "tree"), lock_node(tmp_path / "tree", lock_wait=1)
    with first.exclusive("a test load"), first.exclusive("nested: the same run"):
        started = time.monotonic()
        with pytest.raises(NodeBusy, match=rf"another run is writing to or loading this node: a test load on here for "
                                           rf"pid {os.getpid()} on .* since .*waited 1 s"), second.exclusive("x"):
            pass
        assert time.monotonic() - started < 5
    with second.exclusive("now free"):
        assert second._lock.held


def test_a_waiting_run_gets_the_lock_when_the_holder_lets_go(tmp_path):
    first, second = lock_node(tmp_path / "tree"), lock_node(tmp_path / "tree", lock_wait=30)
    first._lock.acquire("holding")
    releaser = threading.Timer(1.0, first._lock.release)
    releaser.start()
    started = time.monotonic()
    with second.exclusive("waiting"):
        waited = time.monotonic() - started
    releaser.join()
    assert 0.8 < waited < 5
