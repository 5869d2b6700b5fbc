"""Where the corpus of real tool outputs lives: tests/corpus/ in the repo (origins in its SOURCES.md), and
the check every parser's garbage test makes.

Tests built on it must fail, not skip, when it is missing: a silently skipped parser test
would let a broken parser pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qualify.errors import ParseError

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_path(*parts: str) -> Path:
    """A file or folder of the corpus; raises FileNotFoundError (failing the test) when absent."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"corpus entry {path} is missing; the parser tests need {CORPUS}")
    return path


def parse_error(parse: Callable[[str], object], text: str, problem: str) -> ParseError:
    """The ParseError `parse(text)` raises, which must say `problem`; the caller checks what it names."""
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert problem in str(caught.value), f"{problem!r} is not in {str(caught.value)!r}"
    return caught.value
