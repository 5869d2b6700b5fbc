"""The buyer's line per drive: one verdict over every drive check of a run, from the checks' recorded
measurements alone (subject = the drive's serial), so any verdict.json can be judged again.

    accept                              every check that should judge the drive did, and nothing failed
    reject: <check>: <first reason>     a measurement of the drive failed (the most serious check first)
    unknown: <what could not be checked (how to check it)>; ...

The checks in `JUDGES` must all have judged a drive for it to be accepted; `WHERE_RAN` count only when they
ran (drive_identity applies to NVMe drives only, power_loss_protection to drives it may write).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# In order of seriousness: the drive loses or fakes data, fails its own test, shows worn or failing health.
JUDGES = ("drive_integrity", "selftest", "ssd_health")
WHERE_RAN = ("drive_identity", "power_loss_protection")
DRIVE_CHECKS = JUDGES + WHERE_RAN
HOW_TO_RUN = "run `qualify run <node> --checks '{checks}'` with the drive named under checks.storage.drives"
GENERIC_HOW = "or drop its limit from the profile"
_NOT_JUDGED = re.compile(r" \([^()]*: not judged\)$")  # the limits an unknown figure would have been judged by


def drive_lines(checks: list[dict[str, Any]], disks: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """One entry per drive any drive check measured, in the order the checks first measured them."""
    by_name = {c["name"]: c for c in checks}
    subjects = dict.fromkeys(m["subject"] for name in DRIVE_CHECKS for m in _rows(by_name.get(name))
                             if m.get("subject"))
    models = {d.get("serial"): d.get("model") for d in disks if d.get("serial") and d.get("model")}
    models |= {s: m for s, m in ((by_name.get("ssd_health") or {}).get("metrics", {}).get("models") or {}).items()
               if s not in models}  # SMART's model where lsblk gives none (loop devices, some HBAs)
    return [_drive(subject, by_name, models.get(subject)) for subject in subjects]


def _drive(subject: str, by_name: dict[str, dict[str, Any]], model: str | None) -> dict[str, Any]:
    outcomes: dict[str, str] = {}
    failed: list[str] = []
    unknown: list[str] = []
    not_run: list[str] = []
    for name in DRIVE_CHECKS:
        check = by_name.get(name)
        if check is None or (name in WHERE_RAN and check["outcome"] == "skipped"):
            if name in JUDGES:
                outcomes[name] = "not run"
                not_run.append(name)
            continue
        outcome, fails, gaps = _judged(subject, check)
        outcomes[name] = outcome
        failed += [f"{name}: {reason}" for reason in fails]
        unknown += [f"{name}: {gap}" for gap in gaps]
    if not_run:
        unknown.append(f"{', '.join(not_run)} {'was' if len(not_run) == 1 else 'were'} not run "
                       f"({HOW_TO_RUN.format(checks=' or '.join(not_run))})")
    if failed:
        verdict, line = "reject", f"reject: {failed[0]}"
    elif unknown:
        verdict, line = "unknown", "unknown: " + "; ".join(unknown)
    else:
        verdict, line = "accept", "accept"
    return {"subject": subject, "model": model, "verdict": verdict, "line": line, "checks": outcomes}


def _judged(subject: str, check: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """The drive's outcome in one check, its failed reasons and what the check could not tell of it."""
    rows = [m for m in _rows(check) if m.get("subject") == subject]
    fails = [_reason(m, subject) for m in rows if m.get("outcome") == "failed"]
    gaps = [_reason(m, subject) + _how(check, m) for m in rows if m.get("outcome") == "unknown"]
    if check["outcome"] == "skipped":
        part = next((p for p in check.get("not_qualified") or [] if p.get("how")), None)
        why = (check.get("reasons") or ["skipped"])[-1]
        return "skipped", [], [f"skipped: {why}" + (f" ({part['how']})" if part else "")]
    if check["outcome"] == "error":
        return "error", [], [f"could not decide: {(check.get('reasons') or ['error'])[0]}"]
    if not rows:  # the check ran but said nothing of this drive
        if check["outcome"] == "failed":  # a failure it named no drive for: not this drive's accept either
            return "failed", [], [f"failed without naming a drive: {(check.get('problems') or ['failed'])[0]}"]
        return "not judged", [], [f"did not judge it ({HOW_TO_RUN.format(checks=check['name'])})"]
    return ("failed" if fails else "unknown" if gaps else "passed"), fails, gaps


def _rows(check: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The check's judged measurements (not its own per-drive summary line, `<check>_verdict`)."""
    if check is None:
        return []
    return [m for m in check.get("measurements") or [] if not str(m.get("name", "")).endswith("_verdict")]


def _reason(measurement: dict[str, Any], subject: str) -> str:
    """The measurement's sentence without the drive's name, the unjudged limits and the why of the limit."""
    sentence = str(measurement.get("sentence") or measurement.get("name", "")).removeprefix(f"{subject}: ")
    if measurement.get("because"):
        sentence = sentence.removesuffix(f" — {measurement['because']}")
    return _NOT_JUDGED.sub("", sentence)


def _how(check: dict[str, Any], measurement: dict[str, Any]) -> str:
    """The step the check named for this figure; findings' generic one ("make it readable, or drop its limit")
    is left out: dropping a limit does not qualify a drive, and the sentence says why it was not read."""
    part = next((p for p in check.get("not_qualified") or [] if p.get("reason") == measurement.get("sentence")), None)
    how = (part or {}).get("how", "")
    return f" ({how})" if how and not how.endswith(GENERIC_HOW) else ""
