"""Power-loss protection, measured: 4 KiB writes at queue depth 1 with and without O_DSYNC (or fsync)
on every drive allowed to be destroyed.

Why: Ceph's guidance judges a drive for an OSD by its 4 KiB sync writes, and drives with power-loss
protection show the same IOPS with and without a sync, while consumer drives fall from tens of
thousands to one or two thousand. A spec sheet or a SMART field saying "PLP" proves nothing; the two
figures side by side do. A sync figure below `min_sync_share` of the plain one: no effective PLP, not
fit for Ceph, both numbers named. Destructive: fio write jobs behind the guard and the device hold.
"""

from __future__ import annotations

import pytest

from qualify.findings import Findings
from qualify.node import Node
from qualify.profile import Profile
from qualify.storage.named import named_drives
from qualify.storage.plp import collect, judge
from qualify.storage.runner import fio_capabilities
from qualify.store import RunStore

VERDICT = "plp_verdict"


@pytest.mark.destructive
def check_power_loss_protection(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    storage = profile.checks.storage
    named_drives(storage, findings,
                 how="name the drives under checks.storage.drives, with allow_destroy: true for those to test")
    settings = profile.checks.power_loss_protection
    capabilities = fio_capabilities(node, storage.ioengine)
    if settings.sync == "dsync" and not capabilities.dsync:
        findings.note(f"{capabilities.version} has no --sync=dsync: the sync job uses O_SYNC (stricter than O_DSYNC)")
    judged = [judge(collect(node, drive, f"checks.storage.drives[{index}]", settings, storage, capabilities,
                            run_store), settings) for index, drive in enumerate(storage.drives)]
    findings.metric("verdicts", {j.subject: j.line for j in judged})
    for judgement in judged:
        judgement.record(findings, VERDICT)
