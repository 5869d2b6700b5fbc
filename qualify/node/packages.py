"""Which Debian package brings which tool: named in every "tool missing" error and used by `qualify prepare`."""

TOOL_PACKAGES: dict[str, str] = {
    "fio": "fio",
    "iperf3": "iperf3",
    "stress-ng": "stress-ng",
    "smartctl": "smartmontools",
    "nvme": "nvme-cli",
    "ethtool": "ethtool",
    "lspci": "pciutils",
    "dmidecode": "dmidecode",
    "lsblk": "util-linux",
    "blkid": "util-linux",
    "wipefs": "util-linux",
    "dmesg": "util-linux",
    "journalctl": "systemd",
    "ip": "iproute2",
    "tc": "iproute2",
    "nft": "nftables",
    "python3": "python3-minimal",
    "losetup": "util-linux",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "hostname": "hostname",
    "ping": "iputils-ping",
    "turbostat": "linux-cpupower",
    "stressapptest": "stressapptest",
    "timeout": "coreutils",
    "cat": "coreutils",
    "grep": "grep",
    "perl": "perl-base",  # every node command runs under a Perl tether (qualify/node/tether.py)
}

# What `qualify prepare` installs on a node: everything the checks may run.
NODE_PACKAGES: tuple[str, ...] = (
    "fio", "iperf3", "stress-ng", "smartmontools", "nvme-cli", "ethtool", "pciutils",
    "dmidecode", "util-linux", "iproute2", "iputils-ping", "coreutils", "python3-minimal",
    "stressapptest", "linux-cpupower",
)


def package_for(tool: str) -> str:
    """The package of a tool named by name or path (/usr/sbin/sshd); the tool's name when unknown."""
    name = tool.rsplit("/", 1)[-1]
    return TOOL_PACKAGES.get(name, name)
