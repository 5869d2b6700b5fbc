"""The verdict is decided from the records alone."""

from qualify.verdict import build_verdict


def records(*checks, finished=True, interrupted=None):
    out = [{"t": "2026-11-30T13:00:00.000Z", "kind": "run_started", "node": "pve2", "run_id": "20261130T130000Z",
            "labels": {"lid": "closed"}}]
    for i, (name, outcome) in enumerate(checks):
        out.append({"t": f"2026-11-30T13:00:0{i + 1}.000Z", "kind": "check_started", "name": name})
        if outcome:
            out.append({"t": f"2026-11-30T13:00:0{i + 1}.500Z", "kind": "check_result", "name": name,
                        "outcome": outcome, "reasons": [f"{name} {outcome}"], "metrics": {}})
    if finished:
        out.append({"t": "2026-11-30T13:00:09.000Z", "kind": "run_finished", "interrupted": interrupted})
    return out


def test_pass_needs_a_finished_run_with_a_passed_check():
    v = build_verdict(records(("microcode", "passed"), ("thermal", "skipped")))
    assert (v["verdict"], v["exit_code"]) == ("pass", 0)
    assert v["finished"] == "2026-11-30T13:00:09.000Z" and v["labels"] == {"lid": "closed"}


def test_a_failed_check_fails_the_run():
    assert build_verdict(records(("microcode", "failed"), ("x", "passed")))["verdict"] == "fail"


def test_errors_and_empty_runs_are_incomplete():
    assert build_verdict(records(("microcode", "error")))["verdict"] == "incomplete"
    assert build_verdict(records(("microcode", "skipped")))["verdict"] == "incomplete"
    assert build_verdict(records())["notes"] == ["no check ran"]


def test_an_unfinished_run_is_incomplete_with_its_last_record_and_the_dying_check():
    v = build_verdict(records(("microcode", "passed"), ("thermal", None), finished=False))
    assert v["verdict"] == "incomplete" and v["finished"] is None
    assert v["last_record"] == "2026-11-30T13:00:02.000Z"
    assert "last record is from 2026-11-30T13:00:02.000Z" in v["notes"][0]
    thermal = v["checks"][1]
    assert thermal["outcome"] == "error" and "did not finish" in thermal["reasons"][0]


def test_an_interrupted_run_is_incomplete():
    v = build_verdict(records(("microcode", "passed"), interrupted="stopped by a signal"))
    assert v["verdict"] == "incomplete"
