"""Node access on this machine: commands, file helpers and streams (the SSH side is in test_e2e_lab.py)."""

import time
from pathlib import Path

import pytest

from qualify.errors import CommandFailed, CommandTimeout
from qualify.node import LocalNode
from qualify.profile import Profile

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
    with pytest.raises(CommandFailed, match=r"here: command exited with status 2: .*No such file.*\(command: ls /nonexistent\)"):
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
