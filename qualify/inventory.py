"""What the node is made of, recorded on every run: CPU, memory, board, kernel, disks, NICs.

Each part is read on its own; a part that cannot be read is named in `errors` instead of
failing the run (a VM has no DMI board, a minimal node no ethtool).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qualify.errors import ParseError, QualifyError
from qualify.node import Node
from qualify.parsers.cpuinfo import parse_cpuinfo
from qualify.parsers.dmidecode import parse_dmidecode_memory
from qualify.parsers.ethtool import parse_ethtool_driver_info, parse_ethtool_link
from qualify.parsers.iproute import parse_ip_link
from qualify.parsers.lsblk import LSBLK_COLUMNS, parse_lsblk

DMI_FIELDS = ("sys_vendor", "product_name", "board_vendor", "board_name", "bios_vendor", "bios_version", "bios_date")


def collect_inventory(node: Node) -> dict[str, Any]:
    inventory: dict[str, Any] = {"errors": []}
    parts: dict[str, Callable[[Node], dict[str, Any]]] = {
        "cpu": _cpu, "memory": _memory, "dimms": _dimms, "board": _board, "kernel": _kernel, "disks": _disks,
        "nics": _nics,
    }
    for part, read in parts.items():
        try:
            inventory.update(read(node))
        except QualifyError as exc:
            inventory["errors"].append(f"{part}: {exc}")
        except Exception as exc:  # an output no parser foresaw: a gap in the inventory, never the end of the run
            inventory["errors"].append(f"{part}: cannot read it ({type(exc).__name__}: {exc})")
    return inventory


def _cpu(node: Node) -> dict[str, Any]:
    text = node.read_text(node.proc_path("cpuinfo"))
    if text is None:
        raise QualifyError(f"{node.proc_path('cpuinfo')} does not exist")
    cpus = parse_cpuinfo(text)
    if not cpus:
        return {}
    first = cpus[0]
    cores = {(c.physical_id, c.core_id) for c in cpus if c.core_id is not None}
    return {
        "cpu_model": first.model_name,
        "cpu_vendor": first.vendor_id,
        "cpu_family": first.family,
        "cpu_model_number": first.model,
        "cpu_stepping": first.stepping,
        "microcode": None if first.microcode is None else hex(first.microcode),
        "logical_cpus": len(cpus),
        "cores": len(cores) or None,
        "sockets": len({c.physical_id for c in cpus if c.physical_id is not None}) or None,
    }


def _memory(node: Node) -> dict[str, Any]:
    text = node.read_text(node.proc_path("meminfo")) or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "MemTotal":
            number = value.split()[0] if value.split() else ""
            if not (number.isascii() and number.isdigit()):
                raise ParseError(node.proc_path("meminfo"), f"MemTotal is not a number of kB: {line.strip()[:80]!r}")
            kib = int(number)
            return {"memory_kib": kib, "memory_gib": round(kib / 2**20, 1)}
    return {}


def _dimms(node: Node) -> dict[str, Any]:
    """Populated DIMM slots from SMBIOS (dmidecode needs root; a VM usually has no memory devices)."""
    if not node.has_tool("dmidecode"):
        return {}
    result = node.run(["dmidecode", "-t", "memory"], check=False)
    dimms = parse_dmidecode_memory(result.stdout + result.stderr, f"{node.name}: dmidecode -t memory")
    return {"dimms": [
        {"locator": d.locator, "size_mib": d.size_mib, "type": d.type, "speed_mts": d.speed_mts,
         "configured_speed_mts": d.configured_speed_mts, "manufacturer": d.manufacturer, "part_number": d.part_number}
        for d in dimms if d.populated
    ]}


def _board(node: Node) -> dict[str, Any]:
    values = node.read_glob(node.sys_path("class/dmi/id"), " ".join(DMI_FIELDS))
    return {"board": {k: v.strip() for k, v in values.items() if v.strip()}} if values else {}


def _kernel(node: Node) -> dict[str, Any]:
    release = node.read_text(node.proc_path("sys/kernel/osrelease"))
    if release is None:
        release = node.run(["uname", "-r"]).stdout
    return {"kernel": release.strip()}


def _disks(node: Node) -> dict[str, Any]:
    out = node.run(["lsblk", "-J", "-d", "-b", "-o", LSBLK_COLUMNS]).stdout
    disks = [d for d in parse_lsblk(out) if d.type == "disk"]
    return {"disks": [
        {"name": d.name, "model": d.model, "serial": d.serial, "wwn": d.wwn, "firmware": d.firmware,
         "size_bytes": d.size_bytes, "transport": d.transport}
        for d in disks
    ]}


def _nics(node: Node) -> dict[str, Any]:
    links = [link for link in parse_ip_link(node.run(["ip", "-j", "-d", "link", "show"]).stdout)
             if link.name != "lo" and link.kind not in ("bridge", "bond", "vlan", "tun", "dummy")]
    has_ethtool = node.has_tool("ethtool")
    nics = []
    for link in links:
        nic: dict[str, Any] = {"name": link.name, "mac": link.mac, "mtu": link.mtu, "state": link.state,
                               "kind": link.kind}
        if has_ethtool:
            info = node.run(["ethtool", "-i", link.name], check=False)
            if info.returncode == 0:
                driver = parse_ethtool_driver_info(info.stdout)
                nic.update(driver=driver.driver, firmware=driver.firmware_version, bus=driver.bus_info)
            settings = node.run(["ethtool", link.name], check=False)
            if settings.returncode == 0:
                link_settings = parse_ethtool_link(settings.stdout)
                nic.update(speed_mbps=link_settings.speed_mbps, duplex=link_settings.duplex)
        nics.append(nic)
    return {"nics": nics}

