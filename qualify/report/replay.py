"""Replays a run's stored check results as a pytest session so that pytest-html renders report.html.

One test item per check, with the recorded outcome; the check's section (reasons, metrics,
traceback) goes in as a pytest-html extra, the verdict and inventory into the summary. Nothing is
measured here: everything comes from the run's records.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
from pytest_html import extras

from qualify.report.plots import check_images
from qualify.report.templates import render_template
from qualify.store import read_records
from qualify.verdict import build_verdict

_VERDICT = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--replay-run", required=True, help="run directory to render")


def _verdict(config: pytest.Config) -> dict[str, Any]:
    """The run's verdict, read once (pytest-metadata may ask before our pytest_configure would run)."""
    if _VERDICT not in config.stash:
        config.stash[_VERDICT] = build_verdict(read_records(Path(config.getoption("replay_run"))))
    return config.stash[_VERDICT]


class CheckRecord(Exception):
    """How a replayed check that failed shows its problems."""


class ReplayedCheck(pytest.Item):
    def __init__(self, *, check: dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.check = check

    def setup(self) -> None:
        if self.check["outcome"] == "error":  # pytest-html shows setup failures as "Error"
            raise CheckRecord("\n".join(self.check["reasons"]) or "error")

    def runtest(self) -> None:
        outcome = self.check["outcome"]
        if outcome == "skipped":
            pytest.skip("; ".join(self.check["reasons"]) or "skipped")
        if outcome == "failed":
            raise CheckRecord("\n".join(self.check["problems"] or self.check["reasons"]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[str, int, str]:
        return "qualify", 0, self.name


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    verdict = _verdict(config)
    items[:] = [ReplayedCheck.from_parent(session, name=check["name"], check=check) for check in verdict["checks"]]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report: pytest.TestReport = yield
    if isinstance(item, ReplayedCheck):
        report.duration = item.check.get("duration_s") or 0.0
        report.qualify_check = item.check  # the table-row hook sees only the report
        shows_section = (call.when == "call") or (call.when == "setup" and report.failed)
        if shows_section:
            run_dir = Path(item.config.getoption("replay_run"))
            # plots inline at full width: pytest-html's media carousel would show them as thumbnails
            report.extras = [extras.html(render_template("check.html.j2", check=item.check,
                                                         images=check_images(run_dir, item.check)))]
    return report


def pytest_html_report_title(report: Any) -> None:
    verdict = _verdict(report.config)
    report.title = f"qualify — {verdict.get('node')} — {verdict.get('run_id')}"


def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: pytest.Session) -> None:
    prefix.append(render_template("summary.html.j2", v=_verdict(session.config)))


def pytest_html_results_table_header(cells: list) -> None:
    cells.insert(2, "<th>Why</th>")


def pytest_html_results_table_row(report: pytest.TestReport, cells: list) -> None:
    check = getattr(report, "qualify_check", None) or {}
    # a failed check leads with what failed, others with their first finding
    reasons = check.get("problems", []) + [r for r in check.get("reasons", []) if r not in check.get("problems", [])]
    cells.insert(2, render_template("why_cell.html.j2", reasons=reasons))


def pytest_html_results_table_html(report: pytest.TestReport, data: list) -> None:
    data.clear()  # a replayed check has no captured log; its section says everything


def pytest_metadata(metadata: dict, config: pytest.Config) -> None:
    """The environment table shows the node, not the machine that renders the report."""
    verdict = _verdict(config)
    metadata.clear()
    labels = verdict.get("labels") or {}
    values = {
        "Node": verdict.get("node"), "Host": verdict.get("host"), "Run": verdict.get("run_id"),
        "Labels": ", ".join(f"{k}={v}" for k, v in labels.items()) if isinstance(labels, dict) else labels,
        "Profile": ", ".join(map(str, verdict.get("profile_sources") or [])),
    }
    # pytest-html puts each value into the page as HTML (innerHTML): stored strings must arrive as text
    metadata.update({key: html.escape(str(value)) if value not in (None, "") else "none"
                     for key, value in values.items()})
