"""Durations as people write them in profiles and on the command line: 90s, 30m, 12h, 1h30m, 2d."""

import math
import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_MAX_TEXT = 64  # longer is no duration anyone writes (and keeps the regex work bounded)
MAX_DURATION_S = 30 * 86400.0  # a month-long soak is the longest plausible; beyond it is a typo


def parse_duration(value: str | int | float, allow_zero: bool = False) -> float:
    """Seconds in `value`; a bare number means seconds. ValueError says what was expected.

    Zero is refused unless `allow_zero` (a wait that may be skipped): a zero length of a check
    would otherwise fall back to its default without a word. At most MAX_DURATION_S.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a duration like 90s, 30m, 12h, got {_short(value)}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    else:
        text = value.strip().lower().replace(" ", "")
        if len(text) > _MAX_TEXT:
            raise ValueError(f"expected a duration like 90s, 30m, 12h or 1h30m, got {_short(value)}")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"expected a duration like 90s, 30m, 12h or 1h30m, got {_short(value)}")
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if math.isnan(seconds):
        raise ValueError(f"expected a duration like 90s, 30m, 12h, got {_short(value)}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {_short(value)}")
    if seconds == 0 and not allow_zero:
        raise ValueError(f"a duration must be longer than zero, got {_short(value)}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration can be at most {MAX_DURATION_S / 86400:g}d, got {_short(value)}")
    return seconds


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(seconds: float) -> str:
    """Short human form: 45s, 12m30s, 3h05m."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
