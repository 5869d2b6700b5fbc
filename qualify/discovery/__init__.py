"""What a node has, read from the live node: drives, network interfaces, links to its peers.

Used at the start of every run to complete a profile that names no drives or links
(`complete_profile`), and by `qualify profile init` to write a node's first profile.
"""

from qualify.discovery.complete import Completion, complete_profile, drive_entries
from qualify.discovery.drives import Drive, discover_drives
from qualify.discovery.nics import Nic, discover_nics
from qualify.discovery.peers import discover_links, match_links

__all__ = ["Completion", "Drive", "Nic", "complete_profile", "discover_drives", "discover_links", "discover_nics",
           "drive_entries", "match_links"]
