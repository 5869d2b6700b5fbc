"""A run's profile completed from the live node: what the profile does not name is discovered at run start.

- No drives under checks.storage.drives: every drive of the node that has a serial or WWN is named,
  with allow_destroy false (never true: writes need the user's own word in the profile), so SMART
  health and the read jobs run on each; writes are listed as not qualified by the storage check.
- No links under checks.network.links: the links to the run's peers (`qualify run "a b c"` makes each
  node's peers the others; the profile's `peers:` adds more) are found by asking each peer for its
  addresses (qualify/discovery/peers.py).
- checks.network.expected_rate is the expected rate of every link that names none.
Nothing here writes to the node; what was found is said in the returned notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from qualify.discovery.drives import Drive, discover_drives
from qualify.discovery.peers import discover_links
from qualify.node import Node
from qualify.profile import NetworkLink, Profile, StorageDrive


@dataclass(frozen=True)
class Completion:
    profile: Profile
    notes: list[str] = field(default_factory=list)  # what was discovered, and what could not be


def drive_entries(drives: Sequence[Drive]) -> list[StorageDrive]:
    """Profile entries for the nameable drives: by serial, by WWN where two devices share a serial."""
    serials = Counter(d.serial for d in drives if d.serial)
    entries = []
    for drive in drives:
        if drive.serial and serials[drive.serial] == 1:
            entries.append(StorageDrive(serial=drive.serial))
        elif drive.wwn:
            entries.append(StorageDrive(wwn=drive.wwn))
    return entries


def complete_profile(node: Node, profile: Profile, peers: Sequence[str] = ()) -> Completion:
    notes: list[str] = []
    storage, network = profile.checks.storage, profile.checks.network
    if not storage.drives:
        drives = discover_drives(node)
        storage = storage.model_copy(update={"drives": drive_entries(drives)})
        for drive in drives:
            said = f"{drive.path} ({', '.join(drive.uses) or 'not in use'})"
            notes.append(f"discovered drive {drive.label}: {said}" if drive.nameable else
                         f"drive {said} has no serial or WWN to name it by: not tested")
    links = list(network.links)
    wanted = [p for p in dict.fromkeys([*profile.peers, *peers]) if p != node.name]
    if not links and wanted:
        links, problems = discover_links(node, wanted)
        notes += [f"discovered link {link.interface} to {link.peer} at {link.peer_address}" for link in links]
        notes += problems
    if network.expected_rate is not None:
        links = [link if link.expected_rate is not None else
                 NetworkLink(**{**link.model_dump(), "expected_rate": network.expected_rate}) for link in links]
    network = network.model_copy(update={"links": links})
    checks = profile.checks.model_copy(update={"storage": storage, "network": network})
    return Completion(profile.model_copy(update={"checks": checks}), notes)
