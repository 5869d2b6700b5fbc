import pytest

from qualify.durations import format_duration, parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("30m", 1800), ("12h", 43200), ("1h30m", 5400), ("2d", 172800), ("45", 45),
    ("1.5h", 5400), ("500ms", 0.5), (" 10 m ", 600), (20, 20),
])
def test_durations_people_write(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "", "10x", "m10", "-5s", "1h-30m", True])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration():
    assert [format_duration(s) for s in (5, 750, 3600, 11100)] == ["5s", "12m30s", "1h", "3h05m"]


@pytest.mark.parametrize("value, message", [
    (0, "longer than zero"), ("0s", "longer than zero"), ("0", "longer than zero"),
    (float("inf"), "at most 30d"), (float("nan"), "expected a duration"), (10**400, "at most 30d"),
    ("99999999999999d", "at most 30d"), ("31d", "at most 30d"), ("1" * 100 + "s", "expected a duration"),
    (None, "expected a duration"), ([1], "expected a duration"),
])
def test_durations_are_finite_positive_and_bounded(value, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_zero_where_a_wait_may_be_skipped():
    assert parse_duration("0s", allow_zero=True) == 0
    assert parse_duration("30d") == 30 * 86400
