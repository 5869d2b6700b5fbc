"""The verdict of a run, decided from its records alone (so any run, finished or not, can be judged again).

pass        — the run finished, at least one check passed, none failed or errored;
fail        — the run finished and a check failed (the hardware did not meet the profile), or an event
              marked `fails_run` was recorded (a freeze, an unexpected reboot, a kernel fault: qualify/watch);
incomplete  — the run did not finish, or a check could not decide (error), or nothing was checked, or a
              check the profile requires (`require:`) was skipped.

`not_qualified` lists every part of the node the run did not test, with why and the step that would test
it: skipped checks, checks not selected, parts a check left out (writes not allowed, no peer), and figures
that could not be read.

`drives` gives each drive the drive checks measured its buyer's line (accept / reject / unknown:
qualify/storage/buyer.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qualify.storage.buyer import drive_lines

OUTCOMES = ("passed", "failed", "error", "skipped")
EXIT_CODES = {"pass": 0, "fail": 1, "incomplete": 2}


def build_verdict(records: list[dict[str, Any]]) -> dict[str, Any]:
    started = _first(records, "run_started") or {}
    finished = _first(records, "run_finished")
    checks = _checks(records)
    last_t = records[-1]["t"] if records else None
    outcomes = {c["outcome"] for c in checks}
    failing_events = [r for r in records if r["kind"] == "event" and r.get("fails_run")]
    not_qualified = _not_qualified(checks)
    required = _required(started, checks)
    # A required check must run and test all of itself: a skip, or a part it left out (writes refused, a
    # figure it could not read), leaves the node not qualified for what the profile asked.
    missing = [c for c in checks if c["name"] in required and (c["outcome"] == "skipped" or c.get("not_qualified"))]

    notes: list[str] = []
    if finished is None:
        verdict = "incomplete"
        notes.append(f"the run did not finish; its last record is from {last_t}")
    elif not started:  # which node, profile and labels are unknown: nothing to pass
        verdict = "incomplete"
        notes.append("the run has no run_started record")
    elif "failed" in outcomes or failing_events:  # or a freeze, a reboot, a kernel error the profile does not tolerate
        verdict = "fail"
    elif "error" in outcomes:
        verdict = "incomplete"
        notes.append("a check could not decide (error)")
    elif missing:
        verdict = "incomplete"
        notes.append("required but not qualified: " + "; ".join(f"{c['name']} ({_gap(c)})" for c in missing))
    elif "passed" not in outcomes:
        verdict = "incomplete"
        notes.append("no check passed" if checks else "no check ran")
    else:
        verdict = "pass"
    if failing_events:  # said whether or not a check failed too: a kernel fault is its own cause
        notes.append(f"{len(failing_events)} event(s) fail the run, first: {failing_events[0]['message']}")
    if finished and finished.get("interrupted"):
        verdict = "incomplete"
        notes.append(f"the run was interrupted: {finished['interrupted']}")

    inventory = (_last(records, "inventory") or {}).get("inventory", {})
    return {
        "node": started.get("node"),
        "run_id": started.get("run_id"),
        "verdict": verdict,
        "started": started.get("t"),
        "finished": finished["t"] if finished else None,
        "last_record": last_t,
        "notes": notes,
        "labels": started.get("labels", {}),
        "host": started.get("host"),
        "profile_sources": started.get("profile_sources", []),
        "checks": checks,
        "not_qualified": not_qualified,
        "required": sorted(required),
        "events": [_without(r, "kind") for r in records if r["kind"] == "event"],
        "inventory": inventory,
        "drives": drive_lines(checks, inventory.get("disks") or []),  # the buyer's line per drive
        "exit_code": EXIT_CODES[verdict],
    }


def _checks(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per check in start order; a started check with no result died with the run."""
    results = {r["name"]: r for r in records if r["kind"] == "check_result"}
    starts = {r["name"]: r["t"] for r in records if r["kind"] == "check_started"}
    order = [r["name"] for r in records if r["kind"] in ("check_started", "check_result")]
    checks = []
    for name in dict.fromkeys(order):
        if name in results:
            r = results[name]
            checks.append({
                "name": name,
                "outcome": r["outcome"],
                "reasons": r.get("reasons", []),
                "problems": r.get("problems", []),
                "metrics": r.get("metrics", {}),
                "measurements": r.get("measurements", []),
                "not_qualified": r.get("not_qualified", []),
                "started": starts.get(name),
                "finished": r["t"],
                "duration_s": r.get("duration_s"),
                **({"traceback": r["traceback"]} if r.get("traceback") else {}),
            })
        else:
            checks.append({
                "name": name, "outcome": "error",
                "reasons": [f"did not finish: started {starts[name]}, "
                            f"the run's last record is from {records[-1]['t']}"],
                "problems": [], "metrics": {}, "measurements": [], "not_qualified": [], "started": starts[name],
                "finished": None, "duration_s": None,
            })
    return checks


def _not_qualified(checks: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What the run did not test: each skipped check, and each part a check said it left out."""
    entries: list[dict[str, str]] = []
    for check in checks:
        parts = check.get("not_qualified") or []
        if check["outcome"] == "skipped" and not parts:
            reason = (check["reasons"] or ["skipped"])[-1]
            parts = [{"check": check["name"], "reason": reason, "how": ""}]
        entries.extend({"check": check["name"], "reason": p.get("reason", ""), "how": p.get("how", "")}
                       for p in parts)
    return entries


def _gap(check: dict[str, Any]) -> str:
    if check["outcome"] == "skipped":
        return (check["reasons"] or ["skipped"])[-1]
    return "; ".join(p.get("reason", "") for p in check.get("not_qualified") or [])


def _required(started: dict[str, Any], checks: list[dict[str, Any]]) -> set[str]:
    """The checks the profile's `require:` names (`all`: every check that ran)."""
    require = (started.get("profile") or {}).get("require") or []
    if not isinstance(require, list):
        require = [require]
    if "all" in require:
        return {c["name"] for c in checks}
    return {str(name) for name in require}


def _first(records, kind):
    return next((r for r in records if r["kind"] == kind), None)


def _last(records, kind):
    return next((r for r in reversed(records) if r["kind"] == kind), None)


def _without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}


def write_verdict(run_dir: Path, verdict: dict[str, Any]) -> Path:
    """verdict.json of a run, written whole (to a temporary file first: a reader never sees half of it)."""
    path = run_dir / "verdict.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(verdict, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
