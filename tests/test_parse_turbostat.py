"""turbostat: every corpus file (Intel PkgWatt and --Joules tables, hwbench's list-literal AMD fixture), garbage."""

from __future__ import annotations

import pytest

from corpus import corpus_path, parse_error
from qualify.parsers.turbostat import parse_turbostat

# file -> (interval seconds, CPU rows, package C-states of the summary, package watts, last CPU's C-state column)
EXPECTED = {
    "xeon-gold-6130-4s-turbostat-21.05.04-pkgwatt-ramwatt.txt":
        (5.030216, 7, {"pc2": 59.79, "pc6": 0.0}, 205.38, ("24", "CPU%c6", 98.58)),
    "xeon-troll-turbostat-21.05.04-joules-Pkg_J-RAM_J.txt":
        (5.014223, 7, {"pc2": 46.29, "pc6": 0.0}, 457.55 / 5.014223, ("12", "CPU%c6", 99.02)),
    "hwbench-amd-epyc-turbostat-lines-fixture.txt":
        (None, 48, {}, 171.26, ("47", "C1%", 99.02)),
    # "Pk%pc10" is turbostat's own name for package C10 (was not read as pc10 before)
    "netdata-pr2704-turbostat-2017-header-GFXWattRAMWatt-run-together-jitter-line.txt":
        (None, 5, {"pc2": 16.63, "pc3": 40.30, "pc6": 0.0, "pc7": 0.0, "pc8": 0.0, "pc9": 0.0, "pc10": 0.0}, 4.98,
         ("2", "CoreTmp", 47)),
    "mangohud-ryzen9-7950x-turbostat-21.05.04-preamble-space-separated-excerpt.txt":
        (None, 5, {}, 152.59, ("2", "C3%", 0.01)),
    # turbostat 2024.12.03: the interval only in the preamble ("Measurement interval: 5.000 seconds")
    "stats-collect-genoa0-epyc-turbostat-2024.12.03-time-of-day-die-columns-excerpt.txt":
        (5.0, 16, {}, 200.91, ("91", "C2%", 98.92)),
}
# The real header of this turbostat (2017) has "GFXWatt" and "RAMWatt" run together: read, and said.
REJECTED = {"netdata-pr2704-turbostat-2017-header-GFXWattRAMWatt-run-together-jitter-line.txt": (
    "line 2: header column 'GFXWattRAMWatt' read as 'GFXWatt' and 'RAMWatt' (two names run together)",)}
FILES = sorted(path.name for path in corpus_path("turbostat").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    seconds, rows, cstates, watts, (cpu, column, value) = EXPECTED[name]
    [interval] = parse_turbostat(corpus_path("turbostat", name).read_text(), name)
    assert interval.seconds == seconds
    assert len(interval.cpus) == rows
    assert interval.package_cstates == cstates
    assert interval.package_watts == pytest.approx(watts)
    assert interval.cpus[-1].cpu == cpu and interval.cpus[-1].values[column] == value
    assert interval.rejected == REJECTED.get(name, ())


XEON = "xeon-gold-6130-4s-turbostat-21.05.04-pkgwatt-ramwatt.txt"


def test_two_header_names_run_together_are_split_and_said():
    # The real Xeon table with the tab between CPU%c6 and CoreTmp removed, as some turbostat versions print it.
    text = corpus_path("turbostat", XEON).read_text().replace("CPU%c6\tCoreTmp", "CPU%c6CoreTmp", 1)
    [interval] = parse_turbostat(text)
    assert len(interval.cpus) == 7 and interval.package_watts == 205.38
    assert interval.summary.values["CPU%c6"] == 92.80 and interval.summary.values["CoreTmp"] == 31
    assert interval.rejected == (("line 2: header column 'CPU%c6CoreTmp' read as 'CPU%c6' and 'CoreTmp' "
                                  "(two names run together)"),)


def test_a_malformed_row_is_listed_and_the_others_kept():
    lines = corpus_path("turbostat", XEON).read_text().splitlines()
    lines[3] += "\t7"  # the first CPU row (line 4) gets one field too many
    lines[4] = lines[4].replace("1278", "12?8")  # the sibling row a field that is no number
    [interval] = parse_turbostat("\n".join(lines))
    assert [row.cpu for row in interval.cpus] == ["8", "72", "16", "80", "24"]  # the other CPU rows
    assert interval.package_watts == 205.38
    assert interval.rejected == ("line 4 has 29 columns, the header only 28",
                                 "line 5: column Bzy_MHz is '12?8', expected a number")


def test_names_run_together_that_cannot_be_split_keep_the_short_rows():
    text = corpus_path("turbostat", XEON).read_text().replace("PKG_%\tRAM_%", "PKG_%RAM_%x", 1)
    [interval] = parse_turbostat(text)
    assert interval.summary is None
    assert interval.rejected == ("line 3 has 28 columns, the header only 27",
                                 "line 4 has 28 columns, the header only 27")
    # rows that stop before the package columns (other cores, siblings) still fit the header
    assert [row.cpu for row in interval.cpus] == ["64", "8", "72", "16", "80", "24"]


def test_sibling_rows_have_only_their_columns():
    [interval] = parse_turbostat(corpus_path("turbostat", "xeon-gold-6130-4s-turbostat-21.05.04-pkgwatt-ramwatt.txt")
                                 .read_text())
    sibling = interval.cpus[1]
    assert sibling.cpu == "64" and "PkgWatt" not in sibling.values and sibling.values["CPU%c1"] == 6.06


def test_several_intervals_and_a_wrapped_commands_output():
    table = corpus_path("turbostat", "xeon-gold-6130-4s-turbostat-21.05.04-pkgwatt-ramwatt.txt").read_text()
    intervals = parse_turbostat("stress-ng: info: dispatching hogs\n" + table + table)
    assert len(intervals) == 2 and all(i.package_cstates["pc2"] == 59.79 for i in intervals)


@pytest.mark.parametrize("text, problem", [
    ("", "no turbostat table found"),
    ("hello world\n", "no turbostat table found"),
    ("CPU\tBusy%\n0\tbusy\n", "column Busy% is 'busy'"),
    ("CPU\tBusy%\n0\t1\t2\n", "has 3 columns, the header only 2"),
    ("[1, 2", "not a list of lines"),
])
def test_garbage_names_the_tool(text, problem):
    assert "turbostat on pve2" in str(parse_error(lambda t: parse_turbostat(t, "turbostat on pve2"), text, problem))


def test_run_together_header_of_a_real_turbostat_keeps_every_column():
    name = "netdata-pr2704-turbostat-2017-header-GFXWattRAMWatt-run-together-jitter-line.txt"
    [interval] = parse_turbostat(corpus_path("turbostat", name).read_text())
    assert interval.summary.values["GFXWatt"] == 0.06 and interval.summary.values["RAMWatt"] == 1.30
    assert interval.summary.values["RAM_%"] == 0.0


def test_joules_use_the_preamble_interval_when_no_interval_line_is_printed():
    # The real 2024.12.03 table with PkgWatt renamed Pkg_J (as --Joules prints it): watts = joules / 5 s.
    name = "stats-collect-genoa0-epyc-turbostat-2024.12.03-time-of-day-die-columns-excerpt.txt"
    text = corpus_path("turbostat", name).read_text().replace("\tPkgWatt", "\tPkg_J")
    [interval] = parse_turbostat(text)
    assert interval.package_watts == pytest.approx(200.91 / 5.0)
