"""Access to a node: run a command (argv, never a shell string) with a timeout, read files.

`connect()` picks the backend from the profile: `local` for localhost, else the system ssh.
"""

from qualify.node.base import CommandResult, Node, NodeProcess
from qualify.node.local import LocalNode
from qualify.node.ssh import SshNode
from qualify.profile import Profile


def connect(name: str, profile: Profile) -> Node:
    """A connected node; raises NodeUnreachable naming the host when it does not answer."""
    node: Node = LocalNode(name, profile) if profile.is_local else SshNode(name, profile)
    node.open()
    return node


__all__ = ["CommandResult", "LocalNode", "Node", "NodeProcess", "SshNode", "connect"]
