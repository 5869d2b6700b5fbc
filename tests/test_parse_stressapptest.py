"""stressapptest's verdict on real outputs: stamped (>= 1.0.7 and -l log files) and bare lines, PASS, HW and
procedural FAILs, a log without its summary."""

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.parsers.stressapptest import parse_stressapptest

# file -> (passed, hardware incidents, Report Error lines, Process Error lines, status words)
EXPECTED = {
    "vc-1.0.0-logfile-pass-timestamped.txt": (True, 0, 0, 0, "please verify no corrected errors"),
    # stamped lines were read as no status at all (ParseError) before
    "vc-1.0.0-logfile-force-errors-15-incidents-timestamped.txt": (False, 15, 15, 0, "test discovered HW problems"),
    "issue117-procedural-error-copy-thread-failed-to-pop-pages-0-incidents.txt": (
        False, 0, 0, 3, "test encountered procedural errors"),
    # the run broke before it counted anything: the incident count is unknown, not 0
    "issue1-1.0.0-unsupported-system-initialize-failed-no-stats.txt": (
        False, None, 0, 3, "test encountered procedural errors"),
    "issue53-fail-hw-problems-page-error-pdt-stamps-no-stats-excerpt.txt": (
        False, None, 2, 0, "test discovered HW problems"),
}


def test_every_corpus_file_is_covered():
    assert sorted(p.name for p in corpus_path("stressapptest").iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_the_verdict(name):
    result = parse_stressapptest(corpus_path("stressapptest", name).read_text())
    passed, incidents, reports, process, status = EXPECTED[name]
    assert (result.passed, result.hardware_incidents, result.status) == (passed, incidents, status)
    assert sum(not e.startswith("Process Error: ") for e in result.errors) == reports
    assert sum(e.startswith("Process Error: ") for e in result.errors) == process


def test_report_lines_lose_their_stamp_and_prefix_and_process_errors_say_why():
    hw = parse_stressapptest(corpus_path("stressapptest", "vc-1.0.0-logfile-force-errors-15-incidents-timestamped.txt")
                             .read_text())
    assert hw.errors[0] == "miscompare : DIMM Unknown : 1 : 6s"
    procedural = parse_stressapptest(corpus_path(
        "stressapptest", "issue117-procedural-error-copy-thread-failed-to-pop-pages-0-incidents.txt").read_text())
    assert procedural.errors[:2] == ("Process Error: copy_thread failed to pop pages, bailing",
                                     "Process Error: Thread 16 failed with status 0 at 25713.01 seconds")


def test_an_output_without_status_names_the_source():
    text = corpus_path("stressapptest", "vc-1.0.0-logfile-pass-timestamped.txt").read_text()
    cut = text[:text.index("Stats: Found")]  # killed before the summary
    with pytest.raises(ParseError, match="stressapptest on pve2: no 'Status: PASS'"):
        parse_stressapptest(cut, "stressapptest on pve2")
