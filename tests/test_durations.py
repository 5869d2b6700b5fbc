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
