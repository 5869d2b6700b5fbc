"""The verdict of a run, decided from its records alone (so any run, finished or not, can be judged again).

pass        — the run finished, at least one check passed, none failed or errored;
fail        — the run finished and a check failed (the hardware did not meet the profile), or an event
              marked `fails_run` was recorded (a freeze, an unexpected reboot, a kernel fault: qualify/watch);
incomplete  — the run did not finish, or a check could not decide (error), or nothing was checked.
"""

from __future__ import annotations

from typing import Any

OUTCOMES = ("passed", "failed", "error", "skipped")
EXIT_CODES = {"pass": 0, "fail": 1, "incomplete": 2}


def build_verdict(records: list[dict[str, Any]]) -> dict[str, Any]:
    started = _first(records, "run_started") or {}
    finished = _first(records, "run_finished")
    checks = _checks(records)
    last_t = records[-1]["t"] if records else None
    outcomes = {c["outcome"] for c in checks}
    failing_events = [r for r in records if r["kind"] == "event" and r.get("fails_run")]

    notes: list[str] = []
    if finished is None:
        verdict = "incomplete"
        notes.append(f"the run did not finish; its last record is from {last_t}")
    elif "failed" in outcomes:
        verdict = "fail"
    elif failing_events:  # a freeze, a reboot or a kernel error the profile does not tolerate
        verdict = "fail"
        notes.append(f"{len(failing_events)} event(s) fail the run, first: {failing_events[0]['message']}")
    elif "error" in outcomes:
        verdict = "incomplete"
        notes.append("a check could not decide (error)")
    elif "passed" not in outcomes:
        verdict = "incomplete"
        notes.append("no check passed" if checks else "no check ran")
    else:
        verdict = "pass"
    if finished and finished.get("interrupted"):
        verdict = "incomplete"
        notes.append(f"the run was interrupted: {finished['interrupted']}")

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
        "events": [_without(r, "kind") for r in records if r["kind"] == "event"],
        "inventory": (_last(records, "inventory") or {}).get("inventory", {}),
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
                "started": starts.get(name),
                "finished": r["t"],
                "duration_s": r.get("duration_s"),
                **({"traceback": r["traceback"]} if r.get("traceback") else {}),
            })
        else:
            checks.append({
                "name": name, "outcome": "error",
                "reasons": [f"did not finish: started {starts[name]}, the run's last record is from {records[-1]['t']}"],
                "problems": [], "metrics": {}, "started": starts[name], "finished": None, "duration_s": None,
            })
    return checks


def _first(records, kind):
    return next((r for r in records if r["kind"] == kind), None)


def _last(records, kind):
    return next((r for r in reversed(records) if r["kind"] == kind), None)


def _without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}
