"""Before a destructive check touches a drive: why it may not write to it at all, in the check's words."""

from __future__ import annotations

from qualify.node import Node
from qualify.profile import StorageDrive
from qualify.storage.guard import device_use, refusals
from qualify.storage.identity import BlockDevice


def why_not_written(node: Node, drive: StorageDrive, device: BlockDevice, key: str) -> str | None:
    """None when the profile allows destroying the drive's data and the guard finds it unused; else why not.

    The guard is asked again right before each write (`checked_for_writing`): this is the first, cheap answer.
    """
    if not drive.allow_destroy:
        return f"the profile does not allow destroying its data (set {key}.allow_destroy: true)"
    found = refusals(drive, device_use(node, device), key)
    return "; ".join(str(r) for r in found) or None
