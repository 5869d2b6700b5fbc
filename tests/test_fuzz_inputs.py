"""Generated bad input (issue 17): profiles and command-line values a careless user or an attacker could
give. Each must end in a clear error (exit 2, no traceback) in bounded time and memory, and nothing may be
written anywhere — not even in the reports folder.

Most cases run in-process (milliseconds each); a few go through `python -m qualify` to measure a real
process's time and peak memory.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qualify import cli
from qualify.errors import ProfileError
from qualify.names import MAX_NODE_NAME, NODE_NAME
from qualify.profile import load_profile
from qualify.store import RunStore
from qualify.verdict import build_verdict

SETTINGS = settings(max_examples=150, deadline=3000, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---------------------------------------------------------------- profiles


def _never_a_duration() -> st.SearchStrategy:
    """Values no duration field may accept: zero, negative, non-finite, beyond 30 days, not a number."""
    return st.one_of(
        st.just(0), st.just("0s"), st.integers(max_value=-1), st.floats(max_value=-1e-9, allow_nan=False),
        st.sampled_from([float("inf"), float("-inf"), float("nan")]),
        st.integers(min_value=30 * 86400 + 1), st.floats(min_value=30 * 86400 + 1, allow_infinity=False),
        st.text(alphabet="abcxyzsmhd -_:;/.,", min_size=1).filter(lambda t: t.strip()),  # no digit: no number
        st.from_regex(r"\A[1-9][0-9]{6,12}d\Z"),  # days beyond 30
        st.booleans(), st.lists(st.integers(min_value=1, max_value=5), min_size=1),
        st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), min_size=1),
    )


_DURATION_KEYS = [("command_timeout",), ("duration",), ("ssh", "connect_timeout"), ("checks", "thermal", "slice"),
                  ("checks", "storage", "job_runtime"), ("checks", "soak", "duration"), ("telemetry", "interval"),
                  ("watch", "heartbeat_interval"), ("watch", "probe_interval"), ("checks", "network", "duration")]
_SECTIONS = [(), ("ssh",), ("paths",), ("checks",), ("checks", "thermal"), ("checks", "storage"), ("watch",),
             ("checks", "microcode"), ("telemetry",), ("export",)]


def _nested(path: tuple[str, ...], value) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


@st.composite
def bad_profiles(draw) -> tuple[dict, str]:
    """(profile, the key the error must name): exactly one thing wrong in an otherwise valid profile."""
    kind = draw(st.sampled_from(["duration", "unknown_key", "port", "host", "labels", "drives", "inf_float"]))
    if kind == "duration":
        path = draw(st.sampled_from(_DURATION_KEYS))
        return {"host": "n1", **_nested(path, draw(_never_a_duration()))}, ".".join(path)
    if kind == "unknown_key":
        section = draw(st.sampled_from(_SECTIONS))
        key = draw(st.from_regex(r"\A[a-z][a-z_]{0,20}\Z").filter(lambda k: k not in {
            "host", "description", "labels", "duration", "command_timeout", "ssh", "paths", "checks", "telemetry",
            "watch", "export", "require", "peers", "history", "cluster", "extends"} and not section))
        key = key if not section else "zz_" + key  # never a real key of the section
        return {"host": "n1", **_nested((*section, key), 1)}, ".".join((*section, key))
    if kind == "port":
        port = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=65536), st.text(min_size=1)))
        return {"host": "n1", "ssh": {"port": port}}, "ssh.port"
    if kind == "host":
        host = draw(st.one_of(st.just(""), st.from_regex(r"\A-[a-zA-Z=]*\Z"), st.from_regex(r"\Ah\s+h\Z"),
                              st.lists(st.text(), min_size=1), st.integers()))
        return {"host": host}, "host"
    if kind == "labels":
        return {"host": "n1", "labels": draw(st.one_of(st.lists(st.text(), min_size=1), st.integers(),
                                                       st.text(min_size=1)))}, "labels"
    if kind == "drives":
        serial = draw(st.from_regex(r"\A[A-Z0-9]{1,12}\Z"))
        drives = draw(st.sampled_from([
            [{"serial": serial}, {"serial": serial}], [{"serial": serial, "wwn": "0x5"}], [{}],
            [{"serial": serial, "allow_destroy": "maybe"}]]))
        return {"host": "n1", "checks": {"storage": {"drives": drives}}}, "checks.storage.drives"
    value = draw(st.sampled_from([float("inf"), float("nan"), float("-inf")]))
    key = draw(st.sampled_from(["max_package_temp_c", "max_throttled_share", "steady_slope_c_per_min"]))
    return {"host": "n1", "checks": {"thermal": {key: value}}}, f"checks.thermal.{key}"


@SETTINGS
@given(case=bad_profiles())
def test_every_generated_bad_profile_is_refused_naming_file_and_key(tmp_path, case):
    profile, key = case
    path = tmp_path / "n1.yaml"
    path.write_text(yaml.safe_dump(profile))
    started = time.monotonic()
    with pytest.raises(ProfileError) as refused:
        load_profile("n1", directory=tmp_path)
    message = str(refused.value)
    assert time.monotonic() - started < 2 and len(message) < 3000
    assert f"{path}: {key}" in message, message


_YAML_ALPHABET = "ab01:-[]{}&*!|>'\"#%@,?. \n\t~"


@SETTINGS
@given(text=st.one_of(st.text(alphabet=_YAML_ALPHABET, max_size=300), st.binary(max_size=300)))
def test_garbage_is_either_a_profile_or_a_clear_error(tmp_path, text):
    """Any bytes at all: a valid profile or a ProfileError, never another exception (no traceback)."""
    path = tmp_path / "n1.yaml"
    path.write_bytes(b"host: n1\n" + (text if isinstance(text, bytes) else text.encode()))
    try:
        load_profile("n1", directory=tmp_path)
    except ProfileError as exc:
        assert str(path) in str(exc)


@settings(max_examples=40, deadline=3000, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(min_value=2, max_value=12), depth=st.integers(min_value=6, max_value=40),
       mapping=st.booleans())
def test_generated_alias_bombs_are_refused_in_bounded_time(tmp_path, width, depth, mapping):
    if width ** depth <= 20_000:
        depth = 20  # every generated bomb expands beyond the budget
    lines = ["x0: &x0 [lol]"]
    for i in range(1, depth):
        refs = ", ".join(f"{'k' + str(j) + ': ' if mapping else ''}*x{i - 1}" for j in range(width))
        lines.append(f"x{i}: &x{i} {'{' if mapping else '['}{refs}{'}' if mapping else ']'}")
    path = tmp_path / "n1.yaml"
    path.write_text("host: n1\nlabels:\n" + "".join(f"  {line}\n" for line in lines))
    started = time.monotonic()
    with pytest.raises(ProfileError, match=r"once anchors and aliases .* are expanded|nested deeper"):
        load_profile("n1", directory=tmp_path)
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------- command-line values, in-process


def _bad_node_name() -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from(["..", "../x", "../../x", "/abs/path", "x;touch F;:", "a/b", ".hidden", "-n1", "n1/..",
                         "a..b", "x" * (MAX_NODE_NAME + 1), "$(touch F)", "`touch F`", "a|b", "a&b", "<script>"]),
        st.text(min_size=1, max_size=80).filter(
            lambda t: any(not NODE_NAME.fullmatch(n) or ".." in n or len(n) > MAX_NODE_NAME for n in t.split())),
    )


def _bad_argv() -> st.SearchStrategy:
    """Argument lists that must all be refused before anything starts (a run, a unit file, a page)."""
    node = _bad_node_name()
    return st.one_of(
        st.builds(lambda n: ["run", "--", n], node),
        st.builds(lambda n: ["soak", "--", n], node),
        st.builds(lambda n: ["profile", "--", n], node),
        st.builds(lambda n: ["prepare", "--", n], node),
        st.builds(lambda n, d: ["nightly", "install", "--unit-dir", d, "--", n], node, st.just("units")),
        st.builds(lambda d: ["run", "n1", f"--duration={d}"],
                  st.one_of(st.sampled_from(["0", "0s", "-1s", "inf", "nan", "31d", "99999999999999d", "1x"]),
                            st.text(alphabet="abcxyz :;-", min_size=1))),
        st.builds(lambda at: ["nightly", "install", "n1", "--unit-dir", "units", f"--at={at}"],
                  st.one_of(st.sampled_from(["22:00\n", "24:00", "22:60", "2200", "22:00:00", " 22:00", "x"]),
                            st.text(max_size=12).filter(lambda t: not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", t)))),
        st.builds(lambda k: ["run", "n1", f"--checks={k}"],
                  st.sampled_from(["microcode or", "(microcode", "and", "not", "microcode)", "a b", "or or"])),
        st.builds(lambda lab: ["run", "n1", f"--label={lab}"],
                  st.text(alphabet="abc;$`() ", min_size=1).filter(lambda t: t.strip() and "," not in t)),
    )


@pytest.fixture
def in_process_cli(tmp_path, monkeypatch):
    """`qualify` in this process, in a folder of its own, with a run that would start reported as a failure."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "n1.yaml").write_text("host: 127.0.0.1\nssh:\n  port: 9\n  connect_timeout: 1s\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUALIFY_PROFILES", str(tmp_path / "profiles"))
    monkeypatch.setenv("QUALIFY_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("QUALIFY_LAB_DIR", str(tmp_path / "no-lab"))

    def started(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(cli, "_run_one", started)
    monkeypatch.setattr(cli, "_run_parallel", started)

    def run(argv: list[str]) -> tuple[int, str]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # argparse's own usage errors
                code = exc.code
        return code, err.getvalue()

    return tmp_path, run


@SETTINGS
@given(argv=_bad_argv())
def test_generated_bad_arguments_exit_2_and_write_nothing(in_process_cli, argv):
    root, run = in_process_cli
    code, err = run(argv)
    assert code == 2, (argv, err)
    assert "Traceback" not in err and err.strip(), (argv, err)
    assert sorted(p.name for p in root.iterdir()) == ["profiles"], argv  # no reports/, no units/, nothing else


# ---------------------------------------------------------------- real processes: time and memory


def _qualify_measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, float, float]:
    """(exit code, stderr, seconds, peak RSS in MiB) of one `python -m qualify` process (killed after 60 s)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "qualify", *args], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, so its own rusage: peak RSS of this process
    finally:
        watchdog.cancel()
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, time.monotonic() - started, usage.ru_maxrss / 1024


def test_hostile_inputs_in_a_real_process(workspace):
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    files = {
        "bomb.yaml": ("host: n1\nlabels:\n" + "".join(f"  {line}\n" for line in bomb.splitlines())).encode(),
        "nested.yaml": ("host: n1\nlabels: " + "[" * 20000).encode(),
        "bytes.yaml": b"host: n1\n\xff\xfe\x00",
        "inf.yaml": b"host: n1\ncommand_timeout: .inf\n",
    }
    for name, content in files.items():
        (workspace.root / name).write_bytes(content)
    cases = [["run", "n1", "--profile", str(workspace.root / name)] for name in files]
    cases += [["run", "../../x", "--profile", str(workspace.root / "inf.yaml")], ["report", "--", "/"]]
    before = sorted(workspace.root.rglob("*"))
    for args in cases:
        code, err, seconds, peak_mib = _qualify_measured(args, workspace.env(), workspace.root)
        assert code == 2 and "Traceback" not in err and "qualify: error:" in err, (args, err)
        assert seconds < 15 and peak_mib < 400, (args, seconds, peak_mib)
    assert sorted(workspace.root.rglob("*")) == before


# ---------------------------------------------------------------- what stored strings become in pages


def test_stored_strings_reach_the_pages_as_text(tmp_path, monkeypatch):
    """Labels, host and profile paths of a stored run are shown, never run, in report.html and the index."""
    monkeypatch.setenv("QUALIFY_REPORTS", str(tmp_path))
    attack = "<img src=x onerror=alert(1)>"
    store = RunStore.create("n1", tmp_path)
    store.append("run_started", node="n1", run_id=store.run_id, host=f"h{attack}", labels={f"k{attack}": attack},
                 profile_sources=[f"/p/{attack}.yaml"], profile={})
    store.append("check_started", name="microcode")
    store.append("check_result", name="microcode", outcome="passed", reasons=[attack], problems=[], metrics={})
    store.append("run_finished")
    store.close()
    from qualify.report import render_run

    report = render_run(store.run_dir).read_text()
    index = (tmp_path / "index.html").read_text()
    for page in (report, index):
        assert attack not in page and html.escape(attack) in page
    # pytest-html (where it renders the report) puts its data in an attribute and then each environment
    # value into the page as HTML: there the values must arrive escaped once more
    if blob := re.search(r'data-jsonblob="([^"]*)"', report):
        environment = json.loads(html.unescape(blob[1]))["environment"]
        for key in ("Host", "Labels", "Profile"):
            assert attack not in environment[key] and html.escape(attack) in environment[key], environment


def test_a_run_without_its_start_is_not_judged_pass():
    records = [{"t": "2026-01-01T00:00:00Z", "kind": "check_result", "name": "microcode", "outcome": "passed"},
               {"t": "2026-01-01T00:00:01Z", "kind": "run_finished"}]
    verdict = build_verdict(records)
    assert verdict["verdict"] == "incomplete" and "no run_started record" in verdict["notes"][0]


# ---------------------------------------------------------------- labels: one meaning, no terminal control


@pytest.mark.parametrize("label, message", [
    ("cooler=a,cooler=b", "label 'cooler' is given twice ('a' and 'b'): give each key once"),
    ("lid=open\nverdict=pass", "a label may not hold control characters"),
    ("x=\x1b]0;owned\x07", "label 'x=\\x1b]0;owned\\x07': a label may not hold control characters"),
])
def test_labels_that_would_mean_two_things_or_drive_the_terminal_are_refused(in_process_cli, label, message):
    root, run = in_process_cli
    code, err = run(["run", "n1", "--label", label])
    assert code == 2 and message in err and "\x1b" not in err, err
    assert sorted(p.name for p in root.iterdir()) == ["profiles"]


def test_a_duration_with_escapes_is_shown_escaped(in_process_cli):
    _, run = in_process_cli
    code, err = run(["run", "n1", "--duration", "1h\x1b[2J"])
    assert code == 2 and "DURATION='1h\\x1b[2J'" in err and "\x1b" not in err, err
