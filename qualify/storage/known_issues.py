"""Published drive defects (qualify/data/known_drive_issues.yaml plus the profile's own) and which match a drive."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from qualify.errors import QualifyError
from qualify.profile import KnownDriveIssue

DATA_FILE = Path(__file__).parents[1] / "data" / "known_drive_issues.yaml"


@dataclass(frozen=True)
class KnownIssues:
    date: str  # the data file's own date, said with every result
    issues: tuple[KnownDriveIssue, ...]


@cache
def builtin_issues(path: Path = DATA_FILE) -> KnownIssues:
    try:
        data = yaml.safe_load(path.read_text())
        return KnownIssues(date=str(data["date"]),
                           issues=tuple(KnownDriveIssue.model_validate(entry) for entry in data["issues"]))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValidationError) as exc:
        raise QualifyError(f"{path}: cannot read the known drive issues ({exc}); restore the file from the "
                           "repository") from None


def matching(issues: tuple[KnownDriveIssue, ...] | list[KnownDriveIssue], model: str | None,
             firmware: str | None) -> list[KnownDriveIssue]:
    """Issues whose model and firmware patterns both match (a drive that reports neither matches nothing)."""
    if not model:
        return []
    return [issue for issue in issues if re.search(issue.model, model, re.IGNORECASE)
            and re.search(issue.firmware, firmware or "", re.IGNORECASE)]
