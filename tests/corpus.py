"""Where the shared corpus of real tool outputs lives (/work/shared/corpus next to the repo).

Tests built on it must fail, not skip, when it is missing: a silently skipped parser test
would let a broken parser pass.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_path(*parts: str) -> Path:
    """A file or folder of the corpus; raises FileNotFoundError (failing the test) when absent."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"corpus entry {path} is missing; the parser tests need {CORPUS}")
    return path
