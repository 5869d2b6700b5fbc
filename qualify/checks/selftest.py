"""Drive self-tests, run (not just read): the short test of every named drive, and the extended one when
the time the drive says it needs fits the budget; then every critical SMART field before vs after.

Why: the self-test log of a second-hand drive holds only the tests someone else chose to run (if any).
OCP's autoval-ssd runs the drive's own self-tests and judges before/after deltas of every critical
field; so does this check: critical-warning bits, media/uncorrected errors, reallocated, pending and
offline-uncorrectable sectors, grown defects and spare must not move while the drive tests itself
(new error-log entries are a warning: NVMe logs benign "invalid field" commands there too). NVMe
drives through nvme-cli (`nvme device-self-test`, `nvme self-test-log`, `nvme id-ctrl` for support and
the extended-test time), SATA and SAS through smartctl (`smartctl -t short|long`, `-a -j`). A test the
drive cannot run is said, with why. Read-only: a self-test does not touch user data, so it needs no
allow_destroy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from qualify.errors import ParseError
from qualify.findings import Findings, format_value
from qualify.node import Node
from qualify.parsers.nvme import (
    SELF_TEST_RESULTS,
    NvmeSelfTestLog,
    NvmeSelfTestResult,
    parse_nvme_id_ctrl,
    parse_nvme_self_test_log,
)
from qualify.parsers.smartctl import DriveHealth, SelfTest, parse_smartctl_json
from qualify.profile import Profile, SelftestSettings, StorageDrive
from qualify.storage import BlockDevice, resolve_drive
from qualify.storage.figures import DriveJudgement, Figure
from qualify.storage.health import smartctl_json
from qualify.storage.named import named_drives
from qualify.store import RunStore

DEFAULT_BUDGET_S = 1800.0
STREAM = "selftest"  # progress samples: drive, test, remaining percent
VERDICT = "selftest_verdict"
NVME_CODES = {"short": 1, "extended": 2}
SMARTCTL_TESTS = {"short": "short", "extended": "long"}
# fields that must not grow while the drive tests itself: (DriveHealth field, what, warn only)
CRITICAL = (("media_errors", "media/uncorrected errors", False), ("reallocated_sectors", "reallocated sectors", False),
            ("pending_sectors", "pending sectors", False), ("offline_uncorrectable", "offline uncorrectable", False),
            ("grown_defects", "grown defects", False), ("error_log_entries", "error-log entries", True))
Progress = Callable[[int | None], None]  # remaining percent of the running test
T = TypeVar("T")


def new_entry(before: Sequence[T], now: Sequence[T]) -> T | None:
    """The newest log entry that was not there before the test (the log keeps only the newest 20 or 21)."""
    if now and (len(now) > len(before) or not before or now[0] != before[0]):
        return now[0]
    return None


@dataclass(frozen=True)
class SelfTestRun:
    kind: str  # "short" / "extended"
    passed: bool | None  # None: did not finish, was aborted, or the drive did not log it
    result: str
    seconds: float


@dataclass
class SelftestEvidence:
    label: str
    device: str
    protocol: str | None = None
    before: DriveHealth | None = None
    after: DriveHealth | None = None
    runs: list[SelfTestRun] = field(default_factory=list)
    cannot_run: str | None = None  # why the drive ran no test
    notes: list[str] = field(default_factory=list)
    untested: list[tuple[str, str]] = field(default_factory=list)  # a test not run: why, and how to run it


def check_selftest(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    drives = named_drives(profile.checks.storage, findings, how="name the drives under checks.storage.drives")
    settings = profile.checks.selftest
    budget = settings.budget or profile.duration or DEFAULT_BUDGET_S
    evidence = [ev for drive in drives if (ev := collect(node, drive, settings, budget, run_store)) is not None]
    if not evidence:
        findings.skip("no named drive has SMART (loop devices): no self-test to run")
    judged = [judge(ev) for ev in evidence]
    findings.metric("verdicts", {j.subject: j.line for j in judged})
    for ev, judgement in zip(evidence, judged, strict=True):
        judgement.record(findings, VERDICT)
        if judgement.line.startswith("unknown"):
            findings.not_qualified(f"{judgement.subject}: {judgement.line}", "see the reasons; run the test by hand")
        for reason, how in ev.untested:
            findings.not_qualified(f"{judgement.subject}: {reason}", how)


# ---------------------------------------------------------------- collect (I/O)

def collect(node: Node, drive: StorageDrive, settings: SelftestSettings, budget: float,
            run_store: RunStore) -> SelftestEvidence | None:
    label = drive.serial or drive.wwn or ""
    device = resolve_drive(node, drive)
    before = _health(node, device, run_store, f"selftest-{label}-before.json")
    if before is None:
        return None  # a loop device without SMART: nothing that could test itself
    ev = SelftestEvidence(label=label, device=device.path, protocol=before.protocol, before=before)
    runner = _NvmeRunner(node, device) if before.protocol == "NVMe" else _SmartctlRunner(node, device, before)
    ev.cannot_run = runner.cannot_run()
    if ev.cannot_run:
        return ev
    short_s = 60 * (runner.expected_minutes("short") or settings.short_minutes)
    kinds = ["short"]
    extended = runner.expected_minutes("extended")
    if not settings.extended:
        ev.notes.append("extended self-test not asked for (selftest.extended: false)")
    elif extended is None:
        ev.notes.append("extended self-test not run: the drive states no time for it")
        ev.untested.append(("extended self-test not run: the drive states no time for it",
                            f"run it by hand and read its result: {runner.by_hand('extended')}"))
    elif (short_s + 60 * extended) * settings.slack > budget:
        said = (f"extended self-test not run: the drive needs ~{extended:g} min for it, more than the "
                f"budget of {budget:g} s allows (selftest.budget)")
        ev.notes.append(said)
        needed = (short_s + 60 * extended) * settings.slack
        ev.untested.append((said, f"raise selftest.budget to at least {needed:.0f} s (or the profile's duration), "
                                  f"or run it by hand: {runner.by_hand('extended')}"))
    else:
        kinds.append("extended")
    samples = run_store.samples(STREAM)
    for kind in kinds:
        expected = short_s if kind == "short" else 60 * (extended or 0)

        def progress(remaining: int | None, kind: str = kind) -> None:
            samples.append({"t": time.time(), "drive": label, "test": kind, "remaining_percent": remaining})

        ev.runs.append(runner.run(kind, expected * settings.slack + settings.poll_interval, settings.poll_interval,
                                  progress))
        if ev.runs[-1].passed is None and "could not start" in ev.runs[-1].result:
            break
    ev.after = _health(node, device, run_store, f"selftest-{label}-after.json")
    return ev


def _health(node: Node, device: BlockDevice, run_store: RunStore, name: str) -> DriveHealth | None:
    output = smartctl_json(node, device, "-x")
    run_store.save_raw(name, output)
    try:
        return parse_smartctl_json(output, f"{node.name}: smartctl -x -j {device.path}")
    except ParseError:
        if device.is_loop:
            return None
        raise


class _NvmeRunner:
    def __init__(self, node: Node, device: BlockDevice):
        self.node, self.device = node, device
        node.require("nvme")
        output = node.run(["nvme", "id-ctrl", device.path, "-o", "json"], check=False).stdout
        self.controller = parse_nvme_id_ctrl(output, f"{node.name}: nvme id-ctrl {device.path}")

    def by_hand(self, kind: str) -> str:
        return (f"nvme device-self-test {self.device.path} -s {NVME_CODES[kind]}, "
                f"then nvme self-test-log {self.device.path}")

    def cannot_run(self) -> str | None:
        if self.controller.self_test_supported is False:
            return "the controller does not support Device Self-test (id-ctrl OACS bit 4 is clear)"
        return None

    def expected_minutes(self, kind: str) -> float | None:
        # the NVMe spec states the extended time only (EDSTT); a short test takes at most 2 minutes
        return float(self.controller.extended_test_minutes) if kind == "extended" and \
            self.controller.extended_test_minutes else (2.0 if kind == "short" else None)

    def _log(self) -> NvmeSelfTestLog:
        output = self.node.run(["nvme", "self-test-log", self.device.path, "-o", "json"], check=False).stdout
        return parse_nvme_self_test_log(output, f"{self.node.name}: nvme self-test-log {self.device.path}")

    def run(self, kind: str, timeout_s: float, poll_s: float, progress: Progress) -> SelfTestRun:
        started = time.monotonic()
        logged = self._log().results
        result = self.node.run(["nvme", "device-self-test", self.device.path, "-s", str(NVME_CODES[kind])],
                               check=False)
        if result.returncode != 0:
            return SelfTestRun(kind, None, f"could not start: {(result.stderr or result.stdout).strip()}", 0.0)

        def state() -> tuple[bool, int | None, Sequence[NvmeSelfTestResult]]:
            log = self._log()
            return bool(log.running), 100 - (log.completion_percent or 0), log.results

        def abort() -> None:
            self.node.run(["nvme", "device-self-test", self.device.path, "-s", "15"], check=False)

        newest, elapsed = wait_for_entry(started, timeout_s, poll_s, progress, state, logged, abort, patient=False)
        if isinstance(newest, str):
            return SelfTestRun(kind, None, newest, elapsed)
        text = SELF_TEST_RESULTS.get(newest.result, f"result {newest.result}")
        passed = True if newest.result == 0 else (False if newest.result in (5, 6, 7) else None)
        if newest.failing_lba is not None:
            text += f" (failing LBA {newest.failing_lba})"
        return SelfTestRun(kind, passed, text, elapsed)


class _SmartctlRunner:
    def __init__(self, node: Node, device: BlockDevice, before: DriveHealth):
        self.node, self.device, self.before = node, device, before

    def cannot_run(self) -> str | None:
        return None  # smartctl -t says it when the drive refuses; see run()

    def by_hand(self, kind: str) -> str:
        return f"smartctl -t {SMARTCTL_TESTS[kind]} {self.device.path}, then smartctl -l selftest {self.device.path}"

    def expected_minutes(self, kind: str) -> float | None:
        return self.before.short_test_minutes if kind == "short" else self.before.extended_test_minutes

    def _health(self) -> DriveHealth:
        return parse_smartctl_json(smartctl_json(self.node, self.device, "-a"),
                                   f"{self.node.name}: smartctl -a -j {self.device.path}")

    def run(self, kind: str, timeout_s: float, poll_s: float, progress: Progress) -> SelfTestRun:
        started = time.monotonic()
        logged = self._health().self_tests
        result = self.node.run(["smartctl", "-t", SMARTCTL_TESTS[kind], self.device.path], check=False)
        if result.returncode & 0b110 or "Testing has begun" not in result.stdout:
            said = next((line for line in result.stdout.splitlines() if "not supported" in line.lower()
                         or "failed" in line.lower()), (result.stderr or result.stdout).strip()[-200:])
            return SelfTestRun(kind, None, f"could not start: {said}", 0.0)

        def state() -> tuple[bool, int | None, Sequence[SelfTest]]:
            health = self._health()
            return health.self_test_running, health.self_test_remaining_percent, health.self_tests

        def abort() -> None:
            self.node.run(["smartctl", "-X", self.device.path], check=False)

        # patient: some drives show the test as running only after a moment
        newest, elapsed = wait_for_entry(started, timeout_s, poll_s, progress, state, logged, abort, patient=True)
        if isinstance(newest, str):
            return SelfTestRun(kind, None, newest, elapsed)
        text = newest.result + (f" (LBA {newest.failing_lba})" if newest.failing_lba is not None else "")
        return SelfTestRun(kind, newest.passed, text, elapsed)


def wait_for_entry(started: float, timeout_s: float, poll_s: float, progress: Progress,
                   state: Callable[[], tuple[bool, int | None, Sequence[T]]], logged: Sequence[T],
                   abort: Callable[[], None], patient: bool) -> tuple[T | str, float]:
    """Poll the drive until its log has a new entry (or why there is none), showing progress as it runs.

    state: whether the test runs, its remaining percent (None: the drive does not say) and the log's entries;
    a test still running after timeout_s is aborted; `patient` keeps polling until timeout_s for the entry.
    """
    while True:
        time.sleep(min(poll_s, 1.0) if time.monotonic() - started < 1.5 else poll_s)
        running, remaining, entries = state()
        elapsed = time.monotonic() - started
        if running:
            progress(remaining)
            if elapsed > timeout_s:
                abort()
                return f"still running after {elapsed:.0f} s: aborted", elapsed
            continue
        newest = new_entry(logged, entries)
        if newest is not None:
            return newest, elapsed
        if not patient or elapsed > timeout_s:
            return "the drive logged no result for the test", elapsed


# ---------------------------------------------------------------- judge (pure)

def judge(ev: SelftestEvidence) -> DriveJudgement:
    out = DriveJudgement(ev.label)
    out.notes.append(f"{ev.device}" + (f" ({ev.protocol})" if ev.protocol else ""))
    out.notes.extend(ev.notes)
    if ev.cannot_run:
        out.figures.append(Figure("self_test_ran", None, low=1, text="self-test", detail=ev.cannot_run))
        return out
    for run in ev.runs:
        out.figures.append(Figure(f"{run.kind}_self_test_passed", run.passed, low=1,
                                  text=f"{run.kind} self-test passed",
                                  detail=f"({run.result}, {format_value(round(run.seconds), 's')})"))
    out.figures.extend(deltas(ev.before, ev.after))
    return out


def deltas(before: DriveHealth | None, after: DriveHealth | None) -> list[Figure]:
    """Every critical field after the tests vs before (a field either side does not report is not compared)."""
    if before is None or after is None:
        return [Figure("smart_after_tests_readable", None, low=1, text="SMART after the tests",
                       detail="smartctl gave nothing after the tests")]
    figures = []
    if before.critical_warning is not None and after.critical_warning is not None:
        new = after.critical_warning & ~before.critical_warning
        figures.append(Figure("critical_warning_new_bits", new, high=0, text="new critical-warning bits",
                              detail=f"(0x{before.critical_warning:02x} -> 0x{after.critical_warning:02x})"))
    if before.available_spare is not None and after.available_spare is not None:
        figures.append(Figure("available_spare_drop_percent", before.available_spare - after.available_spare,
                              unit="%", high=0, text="available spare lost"))
    for name, what, warn in CRITICAL:
        old, new = getattr(before, name), getattr(after, name)
        if old is not None and new is not None:
            figures.append(Figure(f"{name}_increase", new - old, high=0, warn=warn, text=f"{what} added",
                                  detail=f"({old:,} -> {new:,})"))
    return figures
