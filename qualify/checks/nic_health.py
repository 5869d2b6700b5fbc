"""NIC health of every link in the profile: link state, speed and duplex, MTU (agreeing with the
peer, jumbo frames through with don't-fragment), error counters over a loaded test, ping under
load, the SFP+ module's diagnostics against its own thresholds, and the NIC's PCIe link.

Why: a link that "works" can still be wrong in ways iperf3 alone does not explain: a riser that
trains an x8 card at x1, a transceiver running hot or at the edge of its optical budget, CRC
errors from a dirty fibre, an MTU that differs between the ends (jumbo frames silently dropped).
Virtual interfaces (the lab's veths) have no PCI device, module or hardware counters: those parts
are noted as not applicable.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict

from qualify.findings import Findings
from qualify.network.iperf import IperfServer, run_client
from qualify.network.links import connect_peer, link_settings, node_interfaces, require_interface
from qualify.network.lock import link_test_lock
from qualify.network.units import format_rate
from qualify.node import Node
from qualify.parsers.ethtool import (QUANTITIES, DriverInfo, ModuleInfo, NicStatistics, Thresholds,
                                     milliwatt_to_dbm, parse_ethtool_driver_info, parse_ethtool_module,
                                     parse_ethtool_statistics)
from qualify.parsers.iproute import Link
from qualify.parsers.lspci import parse_lspci_vv
from qualify.parsers.ping import PingSummary, parse_ping
from qualify.profile import NetworkLink, NicHealthSettings, Profile
from qualify.store import RunStore

# Counters that count something going wrong, whatever the driver calls them (rx_crc_errors,
# rx_missed_errors, tx_dropped, rx_fifo_errors, rx_queue_0_drops, port.rx_discards, rx_no_dma_resources
# ...); not the flow director's match/miss statistics (fdir_*), which are no errors.
ERROR_COUNTER = re.compile(r"^(?!fdir_).*(crc|err|drop|miss|fifo|discard|fcs|symbol|align|timeout|collision|fail"
                           r"|no_dma|no_buf)", re.I)
_QUANTITY_NAMES = {"bias_ma": "laser bias current", "tx_power_mw": "TX optical power",
                   "rx_power_mw": "RX optical power", "temperature_c": "temperature", "voltage_v": "supply voltage"}
_IPV4_ICMP_HEADERS = 28  # what `ping -s` does not count of the frame's IP payload
_LOCK_TIMEOUT_S = 1800


def check_nic_health(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    links = profile.checks.network.links
    settings = profile.checks.nic_health
    if not links:
        findings.skip("no links in the profile: list each link under checks.network.links "
                      "(interface, peer node, peer address) to check its NIC",
                      how="no peer known: run every node of the mesh at once (make qualify NODE=\"pve1 pve2 "
                          "pve3\"), or set peers: or checks.network.links in the profile (qualify profile init "
                          "NODE --peers a,b writes them)")
    for tool in ("ethtool", "ping", "iperf3"):
        node.require(tool)
    interfaces = node_interfaces(node)
    for index, link in enumerate(links):
        require_interface(node, link, index, interfaces)
    for link in links:
        _link_state(node, link, findings)
        driver = _driver(node, link.interface, findings, run_store)
        _pcie_link(node, link.interface, driver, findings, run_store)
        _module(node, link.interface, driver, findings, run_store)
        peer = connect_peer(link)
        try:
            _mtu(node, peer, link, interfaces[link.interface], settings, findings)
            _under_load(node, peer, link, profile, findings, run_store)
        finally:
            peer.close()


def _link_state(node: Node, link: NetworkLink, findings: Findings) -> None:
    state = link_settings(node, link.interface)
    iface = link.interface
    if state is None:
        findings.note(f"{iface}: ethtool reports no link settings")
        return
    if state.link_detected is False:
        findings.problem(f"{iface}: no link detected (cable, module or the peer's port)")
    if state.duplex == "Half":
        findings.problem(f"{iface}: half duplex at {state.speed_mbps} Mb/s: autonegotiation failed on one end")
    if state.speed_mbps is None:
        findings.note(f"{iface}: speed unknown (ethtool says Unknown!): no link or a module the NIC cannot drive")
        return
    findings.metric(f"{iface}_speed_mbps", state.speed_mbps)
    if link.expected_rate and state.speed_mbps * 1e6 < link.expected_rate:
        findings.problem(f"{iface}: negotiated {state.speed_mbps} Mb/s, below the expected "
                         f"{format_rate(link.expected_rate)} of the link")
    else:
        findings.note(f"{iface}: link up at {state.speed_mbps} Mb/s, {state.duplex or 'unknown'} duplex")


def _driver(node: Node, iface: str, findings: Findings, run_store: RunStore) -> DriverInfo | None:
    result = node.run(["ethtool", "-i", iface], check=False)
    if result.returncode != 0:
        return None
    run_store.save_raw(f"nic-{iface}-ethtool-i.txt", result.stdout)
    driver = parse_ethtool_driver_info(result.stdout, f"{node.name}: ethtool -i {iface}")
    findings.metric(f"{iface}_driver", {"driver": driver.driver, "version": driver.version,
                                        "firmware": driver.firmware_version, "bus": driver.bus_info})
    return driver


def _pcie_link(node: Node, iface: str, driver: DriverInfo | None, findings: Findings, run_store: RunStore) -> None:
    if driver is None or not driver.bus_info or not re.match(r"^[0-9a-fA-F:.]+$", driver.bus_info):
        kind = driver.driver if driver else "unknown"
        findings.note(f"{iface}: no PCI device ({kind} driver): PCIe link not checked")
        return
    if not node.has_tool("lspci"):
        findings.note(f"{iface}: lspci is not installed (Debian package pciutils): PCIe link not checked")
        return
    text = node.run(["lspci", "-vv", "-s", driver.bus_info]).stdout
    run_store.save_raw(f"nic-{iface}-lspci.txt", text)
    devices = parse_lspci_vv(text, f"{node.name}: lspci -vv -s {driver.bus_info}")
    device = devices[0] if devices else None
    if device is None or device.link_status is None or device.link_capability is None:
        findings.note(f"{iface}: the PCIe link of {driver.bus_info} is not readable (lspci needs root)")
        return
    cap, sta = device.link_capability, device.link_status
    findings.metric(f"{iface}_pcie", {"capable": f"{cap.speed_gts:g}GT/s x{cap.width}",
                                      "running": f"{sta.speed_gts:g}GT/s x{sta.width}"})
    if device.downgraded:
        findings.problem(f"{iface}: the NIC's PCIe link ({device.slot}) runs at {sta.speed_gts:g} GT/s x{sta.width}, "
                         f"below the {cap.speed_gts:g} GT/s x{cap.width} it is capable of (riser, slot or lanes "
                         f"shared): it may not carry line rate")
    else:
        findings.note(f"{iface}: PCIe link {sta.speed_gts:g} GT/s x{sta.width}, as capable")


def _module(node: Node, iface: str, driver: DriverInfo | None, findings: Findings, run_store: RunStore) -> None:
    if driver is not None and driver.supports.get("eeprom-access") is False:
        findings.note(f"{iface}: the {driver.driver} driver gives no module EEPROM access: no module diagnostics")
        return
    result = node.run(["ethtool", "-m", iface], check=False)
    if result.returncode != 0:
        why = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        findings.note(f"{iface}: no module EEPROM readable ({why}): no module diagnostics")
        return
    run_store.save_raw(f"nic-{iface}-ethtool-m.txt", result.stdout)
    judge_module(iface, parse_ethtool_module(result.stdout, f"{node.name}: ethtool -m {iface}"), findings)


def judge_module(iface: str, module: ModuleInfo, findings: Findings) -> None:
    """The module's diagnostics against the module's own alarm and warning thresholds."""
    name = " ".join(part for part in (module.vendor, module.part_number) if part) or "module"
    findings.metric(f"{iface}_module", {"vendor": module.vendor, "part": module.part_number,
                                        "serial": module.serial, "types": list(module.transceiver_types)})
    if not module.diagnostics or not module.readings:
        findings.note(f"{iface}: {name} has no diagnostics (DOM): temperature and optical power not checked")
        return
    if not any(value for values in module.readings.values() for value in values):
        findings.note(f"warning: {iface}: {name} reports all-zero diagnostics (0 V supply, 0 mW): its DOM is "
                      f"not implemented or not calibrated; readings ignored")
        return
    findings.metric(f"{iface}_dom", {quantity: list(values) for quantity, values in module.readings.items()})
    for quantity in QUANTITIES:
        limits = module.thresholds.get(quantity)
        for lane, value in enumerate(module.readings.get(quantity, ())):
            what = f"{iface}: {name} {_QUANTITY_NAMES[quantity]}" + (f" (lane {lane + 1})" if lane else "")
            _judge_reading(what, quantity, value, limits, findings)
    for flag in module.flags_on:
        (findings.problem if "alarm" in flag.lower() else findings.note)(f"{iface}: {name} raises '{flag}'")


def _judge_reading(what: str, quantity: str, value: float, limits: Thresholds | None, findings: Findings) -> None:
    shown = _show(quantity, value)
    if limits is None or not limits.consistent:
        findings.note(f"{what} {shown}; the module's thresholds are missing or inconsistent, not judged")
        return
    if _outside(value, limits.low_alarm, limits.high_alarm):
        findings.problem(f"{what} {shown} is beyond the module's alarm limits "
                         f"{_show(quantity, limits.low_alarm)} .. {_show(quantity, limits.high_alarm)}")
    elif _outside(value, limits.low_warning, limits.high_warning):
        findings.note(f"warning: {what} {shown} is beyond the module's warning limits "
                      f"{_show(quantity, limits.low_warning)} .. {_show(quantity, limits.high_warning)}")
    else:
        findings.note(f"{what} {shown}, within the module's limits")


def _outside(value: float, low: float | None, high: float | None) -> bool:
    return (low is not None and value < low) or (high is not None and value > high)


def _show(quantity: str, value: float | None) -> str:
    if value is None:
        return "none"
    if quantity.endswith("_mw"):
        return f"{value:.4f} mW ({milliwatt_to_dbm(value):.2f} dBm)"
    unit = {"bias_ma": "mA", "temperature_c": "°C", "voltage_v": "V"}[quantity]
    return f"{value:g} {unit}"


def _mtu(node: Node, peer: Node, link: NetworkLink, local: Link, settings: NicHealthSettings,
         findings: Findings) -> None:
    iface = link.interface
    mtu = local.mtu
    if mtu is None:
        findings.note(f"{iface}: MTU unknown")
        return
    findings.metric(f"{iface}_mtu", mtu)
    if settings.mtu is not None and mtu != settings.mtu:
        findings.problem(f"{iface}: MTU {mtu}, the profile expects {settings.mtu}")
    peer_iface = next((back.interface for back in peer.profile.checks.network.links if back.peer == node.name), None)
    peer_link = node_interfaces(peer).get(peer_iface) if peer_iface else None
    if peer_link is not None and peer_link.mtu != mtu:
        findings.problem(f"{iface}: MTU {mtu} here but {peer_link.mtu} on {link.peer}'s {peer_iface}: frames above "
                         f"the smaller one are dropped; set the same MTU on both ends")
    payload = mtu - _IPV4_ICMP_HEADERS
    result = node.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", str(payload), link.peer_address],
                      check=False)
    summary = parse_ping(result.stdout, f"{node.name}: ping -M do -s {payload} {link.peer_address}")
    if summary.received == 0:
        findings.problem(f"{iface}: full-size frames (MTU {mtu}, don't fragment) do not reach {link.peer} at "
                         f"{link.peer_address}: something on the path has a smaller MTU")
    else:
        findings.note(f"{iface}: full-size frames (MTU {mtu}, don't fragment) reach {link.peer}")


def _under_load(node: Node, peer: Node, link: NetworkLink, profile: Profile, findings: Findings,
                run_store: RunStore) -> None:
    """Error counters before and after an iperf3 load, and ping latency and loss during it."""
    settings = profile.checks.nic_health
    network = profile.checks.network.model_copy(update={"duration": settings.load_duration})
    iface = link.interface
    before = _statistics(node, iface)
    interval = max(0.01, (settings.load_duration * 0.8) / settings.ping_count)
    ping_argv = ["ping", "-c", str(settings.ping_count), "-i", f"{interval:.3f}", "-W", "2", link.peer_address]
    pinged: dict[str, str] = {}

    def ping() -> None:
        pinged["output"] = node.run(ping_argv, check=False).stdout

    with IperfServer(peer, network.port, network.connect_timeout) as server, \
            link_test_lock(run_store.run_dir.parents[1], _LOCK_TIMEOUT_S):
        pinger = threading.Thread(target=ping, name=f"ping-{iface}")
        pinger.start()
        result, raw = run_client(node, link.peer_address, server.port, "forward", network)
        pinger.join()
    run_store.save_raw(f"nic-{iface}-load.json", raw)
    after = _statistics(node, iface)
    load = result.flows[0].bits_per_second if result.flows and result.flows[0].bits_per_second else None
    under = f"under load ({format_rate(load)} to {link.peer})" if load else "while iperf3 ran"
    _judge_ping(iface, link, parse_ping(pinged.get("output", ""), f"{node.name}: {' '.join(ping_argv)}"),
                under, settings, findings, run_store)
    if before is not None and after is not None:
        judge_counters(iface, before, after, findings)


def _statistics(node: Node, iface: str) -> NicStatistics | None:
    result = node.run(["ethtool", "-S", iface], check=False)
    if result.returncode != 0:
        return None
    return parse_ethtool_statistics(result.stdout, f"{node.name}: ethtool -S {iface}")


def _judge_ping(iface: str, link: NetworkLink, summary: PingSummary, under: str, settings: NicHealthSettings,
                findings: Findings, run_store: RunStore) -> None:
    run_store.samples("nic_ping").append({"interface": iface, "peer": link.peer, **asdict(summary)})
    findings.metric(f"{iface}_ping", {"loss_percent": summary.loss_percent, "rtt_avg_ms": summary.rtt_avg_ms})
    said = (f"ping to {link.peer} {under}: {summary.received} of {summary.transmitted} answered "
            f"({summary.loss_percent:g} % lost), average {summary.rtt_avg_ms} ms")
    if summary.loss_percent > settings.max_ping_loss_percent:
        findings.problem(f"{iface}: {said}; the profile allows {settings.max_ping_loss_percent:g} % loss")
    elif summary.rtt_avg_ms is not None and summary.rtt_avg_ms > settings.max_ping_rtt_ms:
        findings.problem(f"{iface}: {said}; the profile allows {settings.max_ping_rtt_ms:g} ms")
    else:
        findings.note(f"{iface}: {said}")


def judge_counters(iface: str, before: NicStatistics, after: NicStatistics, findings: Findings) -> None:
    """Error counters that grew during the test fail; ones already non-zero before are history, noted."""
    errors = sorted(name for name in after.counters if ERROR_COUNTER.search(name))
    grew = {name: after.counters[name] - before.counters.get(name, 0) for name in errors
            if after.counters[name] > before.counters.get(name, 0)}
    findings.metric(f"{iface}_counter_growth", grew)
    for name, delta in grew.items():
        findings.problem(f"{iface}: NIC counter {name} grew by {delta} during the test "
                         f"({before.counters.get(name, 0)} -> {after.counters[name]})")
    old = {name: before.counters[name] for name in errors if before.counters.get(name) and name not in grew}
    if old:
        listed = ", ".join(f"{name} {value}" for name, value in old.items())
        findings.note(f"{iface}: error counters non-zero since the driver loaded (not growing): {listed}")
    if not grew:
        findings.note(f"{iface}: none of {len(errors)} NIC error counters grew during the test")
