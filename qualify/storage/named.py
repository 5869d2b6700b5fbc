"""The drives a storage-related check works on: those named under checks.storage.drives."""

from __future__ import annotations

from qualify.findings import Findings
from qualify.profile import StorageDrive, StorageSettings

NO_DRIVES = "no drive is named under checks.storage.drives in the profile (by serial or wwn)"


def named_drives(settings: StorageSettings, findings: Findings, how: str) -> list[StorageDrive]:
    """The profile's drives; without any the check is skipped, saying so and `how` to name them."""
    if not settings.drives:
        findings.skip(NO_DRIVES, how=how)
    return settings.drives
