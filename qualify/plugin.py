"""The pytest plugin that makes a pytest session a qualification run of one node.

    pytest -p qualify.plugin --node pve2 [--profile F] [--duration 30m] [--label cooler=G195] -k microcode

Inert without --node (so the project's own tests are not affected). With it: loads and validates
the profile, creates the run store, connects to the node, records the inventory, records every
check's outcome, reasons and measurements as it ends, and at the end writes verdict.json, junit.xml
(pytest's own), report.html and reports/index.html. The exit status is the verdict's:
0 pass, 1 fail, 2 incomplete. The run's lifecycle is qualify/run.py; this module only adapts pytest.
"""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.node import Node
from qualify.profile import Profile
from qualify.run import Run
from qualify.store import RunStore

PLUGIN_NAME = "qualify-run"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qualify", "qualification run of a node")
    group.addoption("--node", help="node to qualify (profiles/<node>.yaml)")
    group.addoption("--profile", help="profile file to use instead of profiles/<node>.yaml")
    group.addoption("--duration", help="length of long checks, e.g. 90s, 30m, 12h")
    group.addoption("--label", action="append", default=[], help="key=value recorded with the run (repeatable)")
    group.addoption("--reports-dir", help="where run directories go (default ./reports)")
    group.addoption("--overlay", action="append", default=[], help="a profile file merged on top (repeatable)")
    group.addoption("--peers", default="", help="nodes at the far ends of the links, a,b (found at run start)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "destructive: writes to a device; needs the profile's explicit permission")
    config.addinivalue_line("markers", "long: runs for the profile's duration (seconds in tests, hours for real)")
    node = config.getoption("node", None)
    if not node:
        return
    try:
        plugin = QualifyRun.start(config, node)
    except QualifyError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    config.option.xmlpath = str(plugin.run.store.run_dir / "junit.xml")  # before junitxml configures itself


class QualifyRun:
    """Adapts the pytest session to a Run (qualify/run.py): its hooks feed the run's lifecycle."""

    def __init__(self, run: Run):
        self.run = run

    @classmethod
    def start(cls, config: pytest.Config, node: str) -> QualifyRun:
        return cls(Run.start(node, config.getoption("profile"), config.getoption("duration"),
                             config.getoption("label"), config.getoption("reports_dir"), config.getoption("overlay"),
                             peers=config.getoption("peers").split(",")))

    # -- session

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        signal.signal(signal.SIGTERM, _terminate)
        self.run.begin(sys.argv)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a check module that does not load: an error of that check, the others still run
            name = Path(report.nodeid.split("::")[0]).stem
            message = f"cannot load check {name}: {report.longreprtext.strip().splitlines()[-1]}"
            self.run.check_started(name)
            self.run.record(name, "error", None, message, report.longreprtext)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not session.items:
            expression = session.config.getoption("keyword") or ""
            self.run.event("error", "selection", f"no check selected (CHECKS={expression!r}); the checks are: "
                           f"{', '.join(available_checks())}")

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        self.run.check_started(_check_name(location[2]))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        result = yield
        findings = item.funcargs.get("findings") if hasattr(item, "funcargs") else None
        if isinstance(findings, Findings) and findings.problems:
            pytest.fail("\n".join(findings.problems), pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report: pytest.TestReport = yield
        item.stash[_DURATION] = item.stash.get(_DURATION, 0.0) + report.duration
        outcome = item.stash.get(_OUTCOME, None)
        if outcome is None or outcome[0] == "passed":
            judged = _judge(report, call)
            if judged:
                item.stash[_OUTCOME] = judged
        if call.when == "teardown":
            result, message, trace = item.stash.get(_OUTCOME, ("error", "the check did not run", None))
            findings = getattr(item, "funcargs", {}).get("findings")
            self.run.record(_check_name(item.name), result, findings if isinstance(findings, Findings) else None,
                            message, trace, item.stash[_DURATION])
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.run.interrupted = "stopped by a signal or Ctrl-C"
        session.exitstatus = self.run.finish(int(exitstatus))


_OUTCOME = pytest.StashKey[tuple[str, str, str | None]]()
_DURATION = pytest.StashKey[float]()  # setup + call + teardown


def _judge(report: pytest.TestReport, call: pytest.CallInfo) -> tuple[str, str, str | None] | None:
    """(outcome, message, traceback) of one phase; None when the phase says nothing new."""
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "skipped", reason.removeprefix("Skipped: "), None
    if report.passed:
        return ("passed", "", None) if call.when == "call" else None
    exc = call.excinfo.value if call.excinfo else None
    if call.when == "call" and isinstance(exc, pytest.fail.Exception):
        return "failed", str(exc), None
    if isinstance(exc, QualifyError):
        return "error", str(exc), None
    trace = "".join(traceback.format_exception(exc)) if exc else report.longreprtext
    return "error", f"internal error in the check ({type(exc).__name__}: {exc}); see the traceback", trace


def available_checks() -> list[str]:
    return sorted(p.stem for p in Path(__file__).with_name("checks").glob("[!_]*.py"))


def _check_name(test_name: str) -> str:
    return test_name.removeprefix("check_")


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM ends the run like Ctrl-C, so the report still says what happened.
    raise KeyboardInterrupt(f"signal {signum}")


# -- fixtures the checks ask for


def _run(request: pytest.FixtureRequest) -> Run:
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        pytest.skip("not a qualification run (no --node)")
    return plugin.run


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> Profile:
    return _run(request).profile


@pytest.fixture(scope="session")
def node(request: pytest.FixtureRequest) -> Node:
    run = _run(request)
    if run.node is None:
        raise run.connect_error or QualifyError("no connection to the node")
    return run.node


@pytest.fixture(scope="session")
def run_store(request: pytest.FixtureRequest) -> RunStore:
    return _run(request).store


@pytest.fixture
def findings(request: pytest.FixtureRequest) -> Findings:
    return Findings(_check_name(request.node.name))
