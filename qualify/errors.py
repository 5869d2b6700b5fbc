"""Errors a user can act on. Each message names the file/key/host/tool and what to do.

The CLI prints them without a traceback and exits 2; anything else is a bug.
"""


class QualifyError(Exception):
    """A problem with the input or the environment that the user can fix."""


class ProfileError(QualifyError):
    """A profile that cannot be found, read or validated."""


class UsageError(QualifyError):
    """A bad command-line value (node name, duration, label, run directory)."""


class ParseError(QualifyError):
    """Output of a tool or a file that does not have the expected format."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"cannot parse {source}: {problem}")
        self.source = source
        self.problem = problem


class NodeError(QualifyError):
    """A command on a node that could not be run or failed."""

    def __init__(self, node: str, message: str, command: str = ""):
        text = f"{node}: {message}" + (f" (command: {command})" if command else "")
        super().__init__(text)
        self.node = node
        self.command = command


class NodeUnreachable(NodeError):
    pass


class ToolMissing(NodeError):
    def __init__(self, node: str, tool: str, package: str, command: str = ""):
        super().__init__(
            node,
            f"'{tool}' is not installed on the node; install the Debian package '{package}' "
            f"(apt-get install {package}, or `qualify prepare {node}`)",
            command,
        )
        self.tool = tool
        self.package = package


class CommandFailed(NodeError):
    def __init__(self, node: str, command: str, returncode: int, stderr: str):
        tail = stderr.strip().splitlines()[-3:] if stderr.strip() else []
        detail = "; ".join(tail) or "no error output"
        super().__init__(node, f"command exited with status {returncode}: {detail}", command)
        self.returncode = returncode
        self.stderr = stderr


class CommandTimeout(NodeError):
    def __init__(self, node: str, command: str, timeout_s: float):
        super().__init__(node, f"command did not finish within {timeout_s:g} s", command)
        self.timeout_s = timeout_s


class LabError(QualifyError):
    """The built-in lab cannot be brought up or down."""
