"""The run store keeps every record a killed run wrote, and such a run still renders."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from qualify.errors import UsageError
from qualify.store import RunStore, is_reports_root, list_runs, read_records, read_samples


def test_records_are_readable_while_the_store_is_open(tmp_path):
    store = RunStore.create("n1", tmp_path)
    store.append("run_started", node="n1")
    store.append("event", message="x" * 10)
    assert [r["kind"] for r in read_records(store.run_dir)] == ["run_started", "event"]  # before close
    store.close()
    assert list_runs(tmp_path) == [store.run_dir]


def test_a_torn_last_line_is_skipped(tmp_path):
    store = RunStore.create("n1", tmp_path)
    store.append("run_started", node="n1")
    store.close()
    with open(store.run_dir / "run.jsonl", "a") as f:
        f.write('{"t": "2026-11-30T13:00:00Z", "kind": "ev')  # killed mid-write
    assert len(read_records(store.run_dir)) == 1


def test_two_runs_in_the_same_second_get_their_own_directories(tmp_path):
    first, second = RunStore.create("n1", tmp_path), RunStore.create("n1", tmp_path)
    assert first.run_dir != second.run_dir and first.run_id < second.run_id


def test_a_directory_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(UsageError, match=f"{tmp_path} is not a run directory"):
        read_records(tmp_path)


def test_sigkill_of_a_real_run_loses_nothing_and_the_run_still_renders(workspace):
    """A run stuck in a check (its kernel log is a FIFO nobody writes) is killed with SIGKILL."""
    tree = workspace.local_node("stuck")
    (tree / "kernel.log").unlink()
    os.mkfifo(tree / "kernel.log")
    proc = subprocess.Popen([sys.executable, "-m", "qualify", "run", "stuck", "--checks", "microcode"],
                            env=workspace.env(), cwd=workspace.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = workspace.runs("stuck")
            if runs and (runs[0] / "raw" / "microcode-cpuinfo.txt").exists():
                break  # inside the check: cpuinfo read, now waiting on the kernel log
            time.sleep(0.1)
        else:
            pytest.fail("the run never reached the microcode check")
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        try:  # release the orphaned reader of the FIFO, if there is one
            os.close(os.open(tree / "kernel.log", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    run_dir = workspace.runs("stuck")[0]
    kinds = [r["kind"] for r in read_records(run_dir)]
    assert kinds[0] == "run_started" and kinds[-1] == "check_started" and "inventory" in kinds
    assert "run_finished" not in kinds

    rendered = workspace.qualify("report", str(run_dir))
    assert rendered.returncode == 0, rendered.stderr
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "incomplete" and verdict["finished"] is None
    assert verdict["checks"][0]["name"] == "microcode" and verdict["checks"][0]["outcome"] == "error"
    assert "did not finish" in verdict["checks"][0]["reasons"][0]
    html = (run_dir / "report.html").read_text()
    assert "did not finish" in html
    assert (workspace.reports / "index.html").is_file()


def test_sample_streams_are_separate_files_readable_while_written(tmp_path):
    store = RunStore.create("n1", tmp_path)
    telemetry = store.samples("telemetry")
    for i in range(3):
        telemetry.append({"node_t": 1000.0 + i, "cpu_temp_c": 40 + i})
    assert store.samples("telemetry") is telemetry
    assert [s["cpu_temp_c"] for s in read_samples(store.run_dir, "telemetry")] == [40, 41, 42]
    assert read_samples(store.run_dir, "absent") == []
    store.close()


@pytest.mark.parametrize("node", ["../../x", "..", "/abs/path", "x;touch F;:", "a b", "", "n1/../../y"])
def test_a_node_name_never_leaves_the_reports_folder(tmp_path, node):
    base = tmp_path / "reports"
    with pytest.raises(UsageError, match="a node name is"):
        RunStore.create(node, base)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing made, not even the reports folder


def test_a_reports_folder_is_marked_where_runs_are_created(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALIFY_REPORTS", str(tmp_path / "configured"))
    store = RunStore.create("n1", tmp_path / "elsewhere")
    store.close()
    assert is_reports_root(tmp_path / "elsewhere") and is_reports_root(tmp_path / "configured")
    assert not is_reports_root(tmp_path) and not is_reports_root(store.run_dir.parent)


def test_sample_lines_with_nan_or_huge_integers_are_read_and_a_torn_line_is_not(tmp_path):
    from qualify.store import read_samples
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples/s.jsonl").write_text(
        '{"t": 1, "v": {"a": NaN}}\n{"t": 2, "v": {"a": 123456789012345678901234567890}}\n{"t": 3, "v"\n')
    records = read_samples(tmp_path, "s")
    assert [r["t"] for r in records] == [1, 2] and records[1]["v"]["a"] == pytest.approx(1.2345678901234568e29)
