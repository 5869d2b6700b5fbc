"""Where the corpus of real tool outputs lives: tests/corpus/ in the repo (origins in its SOURCES.md).

Tests built on it must fail, not skip, when it is missing: a silently skipped parser test
would let a broken parser pass.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_path(*parts: str) -> Path:
    """A file or folder of the corpus; raises FileNotFoundError (failing the test) when absent."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"corpus entry {path} is missing; the parser tests need {CORPUS}")
    return path
