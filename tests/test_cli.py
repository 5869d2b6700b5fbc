"""Bad input gets a clear answer: exit 2, the file/key/host/tool named, no traceback."""

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qualify.errors import ToolMissing
from qualify.node import LocalNode
from qualify.profile import Profile

REPO = Path(__file__).resolve().parents[1]


def assert_clear_error(proc, *expected):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    for text in expected:
        assert text in proc.stderr, proc.stderr


def test_help_lists_every_verb(workspace):
    proc = workspace.qualify("--help")
    assert proc.returncode == 0
    for verb in ("run", "report", "lab", "prepare", "profile"):
        assert verb in proc.stdout


def test_unknown_node_lists_known_ones(workspace):
    workspace.local_node("pve1")
    assert_clear_error(workspace.qualify("run", "pve9"), "no profile for node 'pve9'", "known nodes: pve1")


def test_profile_typo_names_file_and_key(workspace):
    workspace.local_node("n1", extra="checks:\n  microcode:\n    min_revison: 0x1\n")
    assert_clear_error(workspace.qualify("run", "n1"), "n1.yaml: checks.microcode.min_revison: unknown key")
    assert not workspace.runs("n1")  # nothing started


def test_bad_duration_and_label(workspace):
    workspace.local_node("n1")
    assert_clear_error(workspace.qualify("run", "n1", "--duration", "abc"), "DURATION=abc: expected a duration")
    assert_clear_error(workspace.qualify("run", "n1", "--label", "cooler"), "label 'cooler': expected key=value")


def test_checks_that_select_nothing(workspace):
    workspace.local_node("n1")
    proc = workspace.qualify("run", "n1", "--checks", "no_such_check")
    assert_clear_error(proc, "no check selected (CHECKS='no_such_check'); "
                             "the checks are: cpu_correctness, drive_identity, ")


def test_report_of_a_directory_that_is_not_a_run(workspace):
    assert_clear_error(workspace.qualify("report", str(workspace.root)), "is not a run directory")


def test_labels_are_recorded(workspace):
    workspace.local_node("n1")
    proc = workspace.qualify("run", "n1", "--checks", "microcode", "--label", "cooler=G195,lid=closed")
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads((workspace.runs("n1")[0] / "verdict.json").read_text())
    assert verdict["labels"] == {"cooler": "G195", "lid": "closed"}


def test_refused_ssh_connection_names_the_host(workspace):
    (workspace.profiles / "far.yaml").write_text("host: 127.0.0.1\nssh:\n  port: 9\n  connect_timeout: 3s\n")
    proc = workspace.qualify("run", "far")
    assert_clear_error(proc, "cannot reach host '127.0.0.1' over ssh")
    verdict = json.loads((workspace.runs("far")[0] / "verdict.json").read_text())
    assert verdict["verdict"] == "incomplete" and verdict["checks"][0]["outcome"] == "error"
    assert "cannot reach host '127.0.0.1'" in verdict["checks"][0]["reasons"][0]


@pytest.fixture
def silent_server():
    """A TCP port on loopback that accepts and never says a word: a hung sshd."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_unresponsive_host_gives_up_within_the_connect_timeout(workspace, silent_server):
    (workspace.profiles / "hung.yaml").write_text(
        f"host: 127.0.0.1\nssh:\n  port: {silent_server}\n  connect_timeout: 2s\n")
    started = time.monotonic()
    proc = workspace.qualify("run", "hung")
    assert_clear_error(proc, "cannot reach host '127.0.0.1' over ssh")
    assert time.monotonic() - started < 30


def test_missing_tool_names_the_debian_package():
    node = LocalNode("n1", Profile(host="localhost"))
    with pytest.raises(ToolMissing, match=r"n1: 'stressapptest' is not installed on the node; "
                                          r"install the Debian package 'stressapptest'"):
        node.run(["stressapptest", "-s", "1"])
    with pytest.raises(ToolMissing, match="install the Debian package 'stressapptest'"):
        node.require("stressapptest")


def test_localhost_run_skips_what_cannot_apply(workspace):
    """This machine is a VM: no microcode revision is exposed, so the check skips and says why."""
    (workspace.profiles / "localhost.yaml").write_text("host: localhost\n")
    proc = workspace.qualify("run", "localhost", "--checks", "microcode")
    verdict = json.loads((workspace.runs("localhost")[0] / "verdict.json").read_text())
    check = next(c for c in verdict["checks"] if c["name"] == "microcode")
    if check["outcome"] == "skipped":
        assert proc.returncode == 2 and verdict["verdict"] == "incomplete"
        assert "microcode" in check["reasons"][0]
    else:  # bare metal: a real verdict
        assert check["outcome"] in ("passed", "failed")
    assert verdict["inventory"]["kernel"] and verdict["inventory"]["logical_cpus"] >= 1


# -- inputs that must not write, run or inject (issue 17)


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("node", ["../x", "..", "/abs/x", "x;touch F;:", "n1/../../y", "-n1"])
def test_a_node_name_that_is_a_path_is_refused_before_anything_is_written(workspace, node):
    workspace.local_node("n1")
    before = _files(workspace.root)
    proc = workspace.qualify("run", "--profile", str(workspace.profiles / "n1.yaml"), "--checks", "microcode",
                             "--", node)
    assert_clear_error(proc, "a node name is letters, digits")
    assert _files(workspace.root) == before


def test_a_checks_syntax_error_is_pytests_own_and_makes_no_run(workspace):
    workspace.local_node("n1")
    proc = workspace.qualify("run", "n1", "--checks", "microcode or")
    assert_clear_error(proc, "CHECKS='microcode or': Wrong expression passed to '-k'", "at column 13")
    assert not workspace.reports.exists()


def test_a_corrupt_stored_run_an_unreadable_meminfo_and_a_copied_run(workspace):
    """One run covers three defects: a bad older run is skipped in the index (with a warning naming it) and
    leaves the exit code alone; a /proc/meminfo nobody can parse is an inventory error, not the end of the
    run; re-rendering a copy of the run elsewhere writes no index next to the copy."""
    tree = workspace.local_node("n1")
    (tree / "proc" / "meminfo").write_text("MemTotal:       lots kB\n")  # synthetic: an unparsable meminfo
    corrupt = workspace.reports / "n1" / "20200101T000000Z"
    corrupt.mkdir(parents=True)
    (corrupt / "run.jsonl").write_text(
        '{"t":"2020-01-01T00:00:00Z","kind":"run_started","node":"n1","labels":["a","b"]}\n'
        '{"t":"2020-01-01T00:00:01Z","kind":"run_finished"}\n')
    proc = workspace.qualify("run", "n1", "--checks", "microcode")
    assert proc.returncode == 0, proc.stderr
    assert f"warning: index: skipped {corrupt}" in proc.stderr
    run_dir = next(r for r in workspace.runs("n1") if r != corrupt)
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert any(e.startswith("memory: cannot parse") and "MemTotal" in e for e in verdict["inventory"]["errors"])
    assert run_dir.name in (workspace.reports / "index.html").read_text()

    copy = workspace.root / "elsewhere" / "run1"
    shutil.copytree(run_dir, copy)
    before = _files(workspace.root)
    proc = workspace.qualify("report", str(copy))
    assert proc.returncode == 0, proc.stderr
    assert "no index written" in proc.stderr
    assert set(_files(workspace.root)) - set(before) <= {"elsewhere/run1/report.html"}


@pytest.fixture
def fake_make(tmp_path):
    """`make` on the project's Makefile with `qualify` replaced by a script that records its arguments."""
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # newer than pyproject.toml: the install step has nothing to do
    log = tmp_path / "argv.jsonl"
    fake = tmp_path / "fake-qualify"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)

    def make(*args):
        proc = subprocess.run(["make", "-s", "-C", str(REPO), f"VENV={venv}", f"QUALIFY={fake}", *args],
                              capture_output=True, text=True, timeout=60)
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return proc, calls

    return make


def test_make_passes_values_to_qualify_without_a_shell_parsing_them(fake_make, tmp_path):
    flag = tmp_path / "F"
    payload = f";touch {flag};:`touch {flag}`$(touch {flag})$(shell touch {flag})'\"\\"
    proc, calls = fake_make("qualify", f"NODE=x{payload}", f"LABEL=a=b{payload}", f"CHECKS=-k{payload}",
                            f"PROFILE=-p{payload}", f"DURATION=1h{payload}")
    assert proc.returncode == 0, proc.stderr
    assert calls == [["run", f"--profile=-p{payload}", f"--checks=-k{payload}", f"--duration=1h{payload}",
                      f"--label=a=b{payload}", "--", f"x{payload}"]]
    for target, variables in [("soak", ["NODE", "DURATION", "LABEL", "PROFILE"]), ("nightly", ["NODE", "AT"]),
                              ("report", ["RUN"]), ("export", ["RUN", "OUTPUT"]), ("compare", ["RUNS"])]:
        proc, calls = fake_make(target, *(f"{v}=v{payload}" for v in variables))
        assert proc.returncode == 0, (target, proc.stderr)
        assert len(calls) == 1 and calls[0].count(f"v{payload}") + sum(
            a.endswith(f"=v{payload}") for a in calls[0]) == len(variables), (target, calls)
    assert not flag.exists()


def test_make_qualify_with_an_injected_node_name_is_refused_by_qualify(workspace, tmp_path):
    flag = tmp_path / "F"
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()
    proc = subprocess.run(["make", "-s", "-C", str(REPO), f"VENV={venv}", f"QUALIFY={REPO}/.venv/bin/qualify",
                           "qualify", f"NODE=x;touch {flag};:"], capture_output=True, text=True, timeout=120,
                          env=workspace.env())
    assert proc.returncode != 0 and "a node name is letters, digits" in proc.stderr, proc.stderr
    assert not flag.exists() and not workspace.reports.exists()


def test_what_a_node_says_never_drives_the_terminal():
    from qualify.terminal import printable
    assert printable("model \x1b[2J\x1b]0;owned\x07 serial\r\x9b31m\nnext\tcol") == \
        "model \\x1b[2J\\x1b]0;owned\\x07 serial\\x0d\\x9b31m\nnext\tcol"
