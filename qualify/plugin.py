"""The pytest plugin that makes a pytest session a qualification run of one node.

    pytest -p qualify.plugin --node pve2 [--profile F] [--duration 30m] [--label cooler=G195] -k microcode

Inert without --node (so the project's own tests are not affected). With it: loads and validates
the profile, creates the run store, connects to the node, records the inventory, records every
check's outcome, reasons and metrics as it ends, and at the end writes verdict.json, junit.xml
(pytest's own), report.html and reports/index.html. The exit status is the verdict's:
0 pass, 1 fail, 2 incomplete.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from qualify import __version__
from qualify.errors import QualifyError
from qualify.findings import Findings
from qualify.inventory import collect_inventory
from qualify.node import Node, connect
from qualify.options import duration_option, parse_labels
from qualify.overlays import resolve_profile
from qualify.profile import LoadedProfile, Profile
from qualify.store import RunStore, reports_dir
from qualify.watch import Watcher, start_watch

PLUGIN_NAME = "qualify-run"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qualify", "qualification run of a node")
    group.addoption("--node", help="node to qualify (profiles/<node>.yaml)")
    group.addoption("--profile", help="profile file to use instead of profiles/<node>.yaml")
    group.addoption("--duration", help="length of long checks, e.g. 90s, 30m, 12h")
    group.addoption("--label", action="append", default=[], help="key=value recorded with the run (repeatable)")
    group.addoption("--reports-dir", help="where run directories go (default ./reports)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "destructive: writes to a device; needs the profile's explicit permission")
    config.addinivalue_line("markers", "long: runs for the profile's duration (seconds in tests, hours for real)")
    node = config.getoption("node", None)
    if not node:
        return
    try:
        run = QualifyRun.start(config, node)
    except QualifyError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(run, PLUGIN_NAME)
    config.option.xmlpath = str(run.store.run_dir / "junit.xml")  # before junitxml configures itself


class QualifyRun:
    """State of one run; registered as a plugin so its hooks see the session."""

    def __init__(self, loaded: LoadedProfile, store: RunStore, labels: dict[str, str]):
        self.loaded = loaded
        self.profile: Profile = loaded.profile
        self.store = store
        self.labels = labels
        self.node: Node | None = None
        self.connect_error: QualifyError | None = None
        self.interrupted: str | None = None
        self.watcher: Watcher | None = None

    @classmethod
    def start(cls, config: pytest.Config, node: str) -> "QualifyRun":
        loaded = resolve_profile(node, config.getoption("profile"), announce=True)
        if config.getoption("duration"):
            seconds = duration_option(config.getoption("duration"))
            loaded = loaded.model_copy(update={"profile": loaded.profile.model_copy(update={"duration": seconds})})
        labels = {**loaded.profile.labels, **parse_labels(config.getoption("label"))}
        base = Path(config.getoption("reports_dir")) if config.getoption("reports_dir") else reports_dir()
        return cls(loaded, RunStore.create(node, base), labels)

    # -- session

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        signal.signal(signal.SIGTERM, _terminate)
        self.store.append(
            "run_started", node=self.loaded.node, run_id=self.store.run_id, host=self.profile.host,
            labels=self.labels, profile_sources=list(self.loaded.sources),
            profile=self.profile.model_dump(mode="json"), argv=sys.argv, version=__version__,
        )
        print(f"{self.loaded.node}: run {self.store.run_dir}", file=sys.stderr)
        try:
            self.node = connect(self.loaded.node, self.profile)
        except QualifyError as exc:
            self.connect_error = exc
            self.store.append("event", severity="error", source="node", message=str(exc))
            print(f"error: {exc}", file=sys.stderr)
            return
        self.store.append("inventory", inventory=collect_inventory(self.node))
        self.watcher = start_watch(self.node, self.profile.watch, self.store)  # freezes, reboots, kernel log

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a check module that does not load: an error of that check, the others still run
            name = Path(report.nodeid.split("::")[0]).stem
            message = f"cannot load check {name}: {report.longreprtext.strip().splitlines()[-1]}"
            self.store.append("check_started", name=name)
            self.store.append("check_result", name=name, outcome="error", reasons=[message], problems=[],
                              metrics={}, duration_s=0.0, traceback=report.longreprtext)
            print(f"{self.loaded.node}: {name} error: {message}", file=sys.stderr)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not session.items:
            expression = session.config.getoption("keyword") or ""
            message = f"no check selected (CHECKS={expression!r}); the checks are: {', '.join(available_checks())}"
            self.store.append("event", severity="error", source="selection", message=message)
            print(f"error: {message}", file=sys.stderr)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        self.store.append("check_started", name=_check_name(location[2]))

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
            self._record(item)
        return report

    def _record(self, item: pytest.Item) -> None:
        outcome, message, trace = item.stash.get(_OUTCOME, ("error", "the check did not run", None))
        findings: Findings | None = getattr(item, "funcargs", {}).get("findings")
        reasons = list(findings.reasons) if findings else []
        if message and message not in reasons and outcome != "failed":
            reasons.append(message)
        self.store.append(
            "check_result", name=_check_name(item.name), outcome=outcome, reasons=reasons,
            problems=list(findings.problems) if findings else [],
            metrics=findings.metrics if findings else {},
            measurements=[m.as_record() for m in findings.measurements] if findings else [],
            not_qualified=list(findings.not_qualified_parts) if findings else [],
            duration_s=round(item.stash[_DURATION], 3),
            **({"traceback": trace} if trace else {}),
        )
        headline = (findings.problems if findings and findings.problems else reasons) or [""]
        first = headline[0]
        print(f"{self.loaded.node}: {_check_name(item.name)} {outcome}{': ' + first if first else ''}",
              file=sys.stderr)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = "stopped by a signal or Ctrl-C"
        self.store.append("run_finished", interrupted=self.interrupted, pytest_exit=int(exitstatus))
        if self.watcher:
            self.watcher.stop()
        if self.node:
            self.node.close()
        self.store.close()
        from qualify.report import render_run  # late: the report pulls in pytest-html machinery

        run_dir = self.store.run_dir
        try:
            shown = f"report: {render_run(run_dir)}"
        except QualifyError as exc:  # verdict.json is written before the report is rendered
            shown = f"report not rendered: {exc}"
        verdict = json.loads((run_dir / "verdict.json").read_text())
        print(f"{self.loaded.node}: verdict {verdict['verdict']} — {shown}", file=sys.stderr)
        session.exitstatus = verdict["exit_code"]


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


def _run(request: pytest.FixtureRequest) -> QualifyRun:
    run = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if run is None:
        pytest.skip("not a qualification run (no --node)")
    return run


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
