"""The node's network interfaces: addresses (`ip -j -d addr`), and with details driver, PCI slot, link and
speed (`ethtool -i`, `ethtool`, or the kernel's /sys/class/net where ethtool is missing)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import QualifyError
from qualify.node import Node
from qualify.parsers.ethtool import parse_ethtool_driver_info, parse_ethtool_link
from qualify.parsers.iproute import Interface, parse_ip_addr

_PCI_SLOT = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


@dataclass(frozen=True)
class Nic:
    interface: Interface
    driver: str | None = None
    firmware: str | None = None
    pci_slot: str | None = None  # 0000:06:00.0; None for virtual interfaces
    speed_mbps: int | None = None
    link_detected: bool | None = None

    @property
    def name(self) -> str:
        return self.interface.link.name


def interfaces(node: Node) -> list[Interface]:
    """Every interface but loopback, with its addresses (one command: cheap enough at every run start)."""
    found = parse_ip_addr(node.run(["ip", "-j", "-d", "addr", "show"]).stdout)
    return [i for i in found if i.link.name != "lo"]


def discover_nics(node: Node) -> list[Nic]:
    has_ethtool = node.has_tool("ethtool")
    return [_details(node, interface, has_ethtool) for interface in interfaces(node)]


def _details(node: Node, interface: Interface, has_ethtool: bool) -> Nic:
    name = interface.link.name
    if not has_ethtool:
        speed_text = node.read_text(node.sys_path("class/net", name, "speed"))
        carrier = node.read_text(node.sys_path("class/net", name, "carrier"))
        return Nic(interface, speed_mbps=_positive(speed_text),
                   link_detected=None if carrier is None else carrier.strip() == "1")
    driver = firmware = slot = None
    info = node.run(["ethtool", "-i", name], check=False)
    if info.returncode == 0:
        parsed = parse_ethtool_driver_info(info.stdout, f"{node.name}: ethtool -i {name}")
        driver, firmware = parsed.driver, parsed.firmware_version
        slot = parsed.bus_info if parsed.bus_info and _PCI_SLOT.match(parsed.bus_info) else None
    speed = link = None
    settings = node.run(["ethtool", name], check=False)
    if settings.returncode == 0:
        try:
            parsed_link = parse_ethtool_link(settings.stdout, f"{node.name}: ethtool {name}")
            speed, link = parsed_link.speed_mbps, parsed_link.link_detected
        except QualifyError:
            pass  # an interface ethtool has no link settings for (a tunnel): nothing to say
    return Nic(interface, driver, firmware, slot, speed, link)


def _positive(text: str | None) -> int | None:
    """/sys/class/net/X/speed: Mb/s, -1 (or unreadable) without a link."""
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if value > 0 else None
