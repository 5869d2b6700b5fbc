"""NIC health of every link in the profile: link state, speed and duplex, MTU (agreeing with the
peer, jumbo frames through with don't-fragment), error counters over a loaded test, ping under
load, the SFP+ module's diagnostics against its own thresholds, and the NIC's PCIe link.

Why: a link that "works" can still be wrong in ways iperf3 alone does not explain: a riser that
trains an x8 card at x1, a transceiver running hot or at the edge of its optical budget, CRC
errors from a dirty fibre, an MTU that differs between the ends (jumbo frames silently dropped).
Virtual interfaces (the lab's veths) have no PCI device, module or hardware counters: those parts
are noted as not applicable.

Measurements (subject: the interface): negotiated speed (against the link's expected rate), PCIe link
speed and width (against what the NIC is capable of), each module reading (temperature, bias, TX/RX
power, supply voltage, per lane; against the module's own alarm limits, a warning beyond its warning
limits), MTU (the profile's; the peer's must match), full-size pings answered, ping loss and round trip
under load, and the growth of the NIC's error counters during the load (limit 0).
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass

from qualify.findings import Findings
from qualify.network.iperf import IperfServer, run_client
from qualify.network.links import (
    connect_peer,
    in_rounds,
    link_settings,
    node_interfaces,
    peer_end,
    require_interface,
)
from qualify.network.lock import link_test_lock
from qualify.network.units import format_rate
from qualify.node import Node
from qualify.parsers.ethtool import (
    QUANTITIES,
    DriverInfo,
    LinkSettings,
    ModuleInfo,
    NicStatistics,
    Thresholds,
    milliwatt_to_dbm,
    parse_ethtool_driver_info,
    parse_ethtool_module,
    parse_ethtool_statistics,
)
from qualify.parsers.lspci import PciDevice, parse_lspci_vv
from qualify.parsers.ping import PingSummary, parse_ping
from qualify.profile import NetworkLink, NicHealthSettings, Profile
from qualify.store import RunStore

# Counters that count something going wrong, whatever the driver calls them (rx_crc_errors,
# rx_missed_errors, tx_dropped, rx_fifo_errors, rx_queue_0_drops, port.rx_discards, rx_no_dma_resources
# ...); not the flow director's match/miss statistics (fdir_*), which are no errors.
ERROR_COUNTER = re.compile(r"^(?!fdir_).*(crc|err|drop|miss|fifo|discard|fcs|symbol|align|timeout|collision|fail"
                           r"|no_dma|no_buf)", re.IGNORECASE)
# quantity -> (measurement name, what it is, unit)
_READINGS = {"bias_ma": ("module_laser_bias_milliamperes", "laser bias current", "mA"),
             "tx_power_mw": ("module_tx_power_milliwatts", "TX optical power", "mW"),
             "rx_power_mw": ("module_rx_power_milliwatts", "RX optical power", "mW"),
             "temperature_c": ("module_temperature_celsius", "temperature", "°C"),
             "voltage_v": ("module_supply_voltage_volts", "supply voltage", "V")}
_IPV4_ICMP_HEADERS = 28  # what `ping -s` does not count of the frame's IP payload
_LOCK_TIMEOUT_S = 1800


@dataclass(frozen=True)
class UnderLoad:
    """What the NIC showed while iperf3 loaded the link."""

    before: NicStatistics | None   # ethtool -S before and after the load; None where ethtool has none
    after: NicStatistics | None
    ping: PingSummary
    load_bits_per_second: float | None


@dataclass(frozen=True)
class LinkHealth:
    link: NetworkLink
    state: LinkSettings | None     # `ethtool IFACE`
    driver: DriverInfo | None      # `ethtool -i IFACE`
    pcie: PciDevice | None
    pcie_unread: str | None        # why the PCIe link is not known (no PCI device, no lspci, not root)
    module: ModuleInfo | None      # `ethtool -m IFACE`
    module_unread: str | None      # why there are no module diagnostics
    mtu: int | None
    peer_interface: str | None     # the peer's interface that holds the peer address
    peer_mtu: int | None
    full_size_ping: PingSummary | None  # don't-fragment pings of the MTU's size; None when the MTU is unknown
    load: UnderLoad


@dataclass(frozen=True)
class NicHealthEvidence:
    node: str
    links: tuple[LinkHealth, ...]


def check_nic_health(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    if not profile.checks.network.links:
        findings.skip("no links in the profile: list each link under checks.network.links "
                      "(interface, peer node, peer address) to check its NIC",
                      how="no peer known: run every node of the mesh at once (make qualify NODE=\"pve1 pve2 "
                          "pve3\"), or set peers: or checks.network.links in the profile (qualify profile init "
                          "NODE --peers a,b writes them)")
    judge(collect(node, profile, run_store), profile.checks.nic_health, findings)


def collect(node: Node, profile: Profile, run_store: RunStore) -> NicHealthEvidence:
    for tool in ("ethtool", "ping", "iperf3"):
        node.require(tool)
    links = profile.checks.network.links
    interfaces = node_interfaces(node)
    for index, link in enumerate(links):
        require_interface(node, link, index, interfaces)
    found = []
    for _, link in in_rounds(node.name, links):  # the loads of one round's disjoint pairs run at once
        iface = link.interface
        state = link_settings(node, iface)
        driver = _driver(node, iface, run_store)
        pcie, pcie_unread = _pcie_link(node, iface, driver, run_store)
        module, module_unread = _module(node, iface, driver, run_store)
        mtu = interfaces[iface].mtu
        peer = connect_peer(link)
        try:
            peer_link = peer_end(peer, link.peer_address)
            full_size = _full_size_ping(node, link, mtu) if mtu is not None else None
            load = _under_load(node, peer, link, profile, run_store)
        finally:
            peer.close()
        found.append(LinkHealth(link, state, driver, pcie, pcie_unread, module, module_unread,
                                mtu, peer_link.name if peer_link else None, peer_link.mtu if peer_link else None,
                                full_size, load))
    return NicHealthEvidence(node.name, tuple(found))


def _driver(node: Node, iface: str, run_store: RunStore) -> DriverInfo | None:
    result = node.run(["ethtool", "-i", iface], check=False)
    if result.returncode != 0:
        return None
    run_store.save_raw(f"nic-{iface}-ethtool-i.txt", result.stdout)
    return parse_ethtool_driver_info(result.stdout, f"{node.name}: ethtool -i {iface}")


def _pcie_link(node: Node, iface: str, driver: DriverInfo | None,
               run_store: RunStore) -> tuple[PciDevice | None, str | None]:
    if driver is None or not driver.bus_info or not re.match(r"^[0-9a-fA-F:.]+$", driver.bus_info):
        return None, f"no PCI device ({driver.driver if driver else 'unknown'} driver)"
    if not node.has_tool("lspci"):
        return None, "lspci is not installed (Debian package pciutils)"
    text = node.run(["lspci", "-vv", "-s", driver.bus_info]).stdout
    run_store.save_raw(f"nic-{iface}-lspci.txt", text)
    devices = parse_lspci_vv(text, f"{node.name}: lspci -vv -s {driver.bus_info}")
    device = devices[0] if devices else None
    if device is None or device.link_status is None or device.link_capability is None:
        return None, f"the PCIe link of {driver.bus_info} is not readable (lspci needs root)"
    return device, None


def _module(node: Node, iface: str, driver: DriverInfo | None,
            run_store: RunStore) -> tuple[ModuleInfo | None, str | None]:
    if driver is not None and driver.supports.get("eeprom-access") is False:
        return None, f"the {driver.driver} driver gives no module EEPROM access"
    result = node.run(["ethtool", "-m", iface], check=False)
    if result.returncode != 0:
        why = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        return None, f"no module EEPROM readable ({why})"
    run_store.save_raw(f"nic-{iface}-ethtool-m.txt", result.stdout)
    return parse_ethtool_module(result.stdout, f"{node.name}: ethtool -m {iface}"), None


def _full_size_ping(node: Node, link: NetworkLink, mtu: int) -> PingSummary:
    payload = mtu - _IPV4_ICMP_HEADERS
    result = node.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", str(payload), link.peer_address],
                      check=False)
    return parse_ping(result.stdout, f"{node.name}: ping -M do -s {payload} {link.peer_address}")


def _under_load(node: Node, peer: Node, link: NetworkLink, profile: Profile, run_store: RunStore) -> UnderLoad:
    """Error counters before and after an iperf3 load, and ping latency and loss during it."""
    settings = profile.checks.nic_health
    network = profile.checks.network.model_copy(update={"duration": settings.load_duration})
    before = _statistics(node, link.interface)
    interval = max(0.01, (settings.load_duration * 0.8) / settings.ping_count)
    ping_argv = ["ping", "-c", str(settings.ping_count), "-i", f"{interval:.3f}", "-W", "2", link.peer_address]
    pinged: dict[str, str] = {}

    def ping() -> None:
        pinged["output"] = node.run(ping_argv, check=False).stdout

    with IperfServer(peer, network.port, network.connect_timeout) as server, \
            link_test_lock(run_store.run_dir.parents[1], _LOCK_TIMEOUT_S, (node.name, link.peer)):
        pinger = threading.Thread(target=ping, name=f"ping-{link.interface}")
        pinger.start()
        result, raw = run_client(node, link.peer_address, server.port, "forward", network)
        pinger.join()
    run_store.save_raw(f"nic-{link.interface}-load.json", raw)
    summary = parse_ping(pinged.get("output", ""), f"{node.name}: {' '.join(ping_argv)}")
    run_store.samples("nic_ping").append({"interface": link.interface, "peer": link.peer, **asdict(summary)})
    load = result.flows[0].bits_per_second if result.flows and result.flows[0].bits_per_second else None
    return UnderLoad(before, _statistics(node, link.interface), summary, load)


def _statistics(node: Node, iface: str) -> NicStatistics | None:
    result = node.run(["ethtool", "-S", iface], check=False)
    if result.returncode != 0:
        return None
    return parse_ethtool_statistics(result.stdout, f"{node.name}: ethtool -S {iface}")


# -- the judge: pure, on the evidence above

def judge(evidence: NicHealthEvidence, settings: NicHealthSettings, findings: Findings) -> None:
    for health in evidence.links:
        iface = health.link.interface
        judge_link_state(health.link, health.state, findings)
        if health.driver is not None:
            driver = health.driver
            findings.metric(f"{iface}_driver", {"driver": driver.driver, "version": driver.version,
                                                "firmware": driver.firmware_version, "bus": driver.bus_info})
        if health.pcie is not None:
            judge_pcie(iface, health.pcie, findings)
        else:
            findings.note(f"{iface}: {health.pcie_unread}: PCIe link not checked")
        if health.module is not None:
            judge_module(iface, health.module, findings)
        else:
            findings.note(f"{iface}: {health.module_unread}: no module diagnostics")
        _judge_mtu(health, settings, findings)
        load = health.load
        under = (f"under load ({format_rate(load.load_bits_per_second)} to {health.link.peer})"
                 if load.load_bits_per_second else "while iperf3 ran")
        judge_ping(iface, health.link.peer, load.ping, under, settings, findings)
        if load.before is not None and load.after is not None:
            judge_counters(iface, load.before, load.after, findings)


def judge_link_state(link: NetworkLink, state: LinkSettings | None, findings: Findings) -> None:
    iface = link.interface
    if state is not None and state.link_detected is False:
        findings.problem(f"{iface}: no link detected (cable, module or the peer's port)", name="link_detected",
                         subject=iface)
    if state is not None and state.duplex == "Half":
        findings.problem(f"{iface}: half duplex at {state.speed_mbps} Mb/s: autonegotiation failed on one end",
                         name="link_duplex", subject=iface)
    speed = state.speed_mbps * 1e6 if state is not None and state.speed_mbps else None
    unread = ("ethtool reports no link settings" if state is None else
              "ethtool says Unknown!: no link or a module the NIC cannot drive")
    findings.measure("link_speed_bits_per_second", speed, unit="bit/s", low=link.expected_rate, subject=iface,
                     text="negotiated speed",
                     detail=f"({state.duplex or 'unknown'} duplex)" if speed and state else unread,
                     because="below the expected rate of the link")


def judge_pcie(iface: str, device: PciDevice, findings: Findings) -> None:
    """The NIC's PCIe link against what it is capable of (a riser or slot that trains it down)."""
    cap, sta = device.link_capability, device.link_status
    if cap is None or sta is None:
        return
    because = "riser, slot or lanes shared: it may not carry line rate"
    findings.measure("pcie_link_speed_gts", sta.speed_gts, unit="GT/s", low=cap.speed_gts, subject=iface,
                     text="PCIe link speed", detail=f"at {device.slot}", because=because)
    findings.measure("pcie_link_width_lanes", sta.width, unit="lanes", low=cap.width, subject=iface,
                     text="PCIe link width", detail=f"at {device.slot}", because=because)


def judge_module(iface: str, module: ModuleInfo, findings: Findings) -> None:
    """The module's diagnostics against the module's own alarm and warning thresholds."""
    name = " ".join(part for part in (module.vendor, module.part_number) if part) or "module"
    findings.metric(f"{iface}_module", {"vendor": module.vendor, "part": module.part_number,
                                        "serial": module.serial, "types": list(module.transceiver_types)})
    # QSFP dumps (SFF-8636) have no "Optical diagnostics support" line: their readings are the evidence
    if module.diagnostics is False or not module.readings:
        findings.note(f"{iface}: {name} has no diagnostics (DOM): temperature and optical power not checked")
        return
    optical = [value for quantity in ("tx_power_mw", "rx_power_mw") for value in module.readings.get(quantity, ())]
    if module.low_power_mode and optical and not any(optical):
        # Not a fibre fault: the host holds the module in low power (SFF-8636), its lasers are off
        findings.problem(f"{iface}: {name} is held in low-power mode (Power override and Power set on): every lane "
                         f"sends and receives 0 mW, the link cannot carry traffic; let it power up with "
                         f"`ethtool --set-module {iface} power-mode-policy high`",
                         name="module_low_power_mode", subject=iface)
        return
    if not any(value for values in module.readings.values() for value in values):
        findings.warning(f"{iface}: {name} reports all-zero diagnostics (0 V supply, 0 mW): its DOM is "
                         f"not implemented or not calibrated; readings ignored")
        return
    for quantity in QUANTITIES:
        readings = module.readings.get(quantity, ())
        for lane, value in enumerate(readings):
            subject = f"{iface} {name}" + (f" lane {lane + 1}" if len(readings) > 1 else "")
            _judge_reading(subject, quantity, value, module.thresholds.get(quantity), findings)
    for flag in module.flags_on:
        if "alarm" in flag.lower():
            findings.problem(f"{iface}: {name} raises '{flag}'", name="module_alarm_flag", subject=iface)
        else:
            findings.warning(f"{iface}: {name} raises '{flag}'")


def _judge_reading(subject: str, quantity: str, value: float, limits: Thresholds | None,
                   findings: Findings) -> None:
    """Beyond the alarm limits fails; inside them, the warning limits decide (a warning, the check passes)."""
    name, what, unit = _READINGS[quantity]
    dbm = f"({milliwatt_to_dbm(value):.2f} dBm)" if unit == "mW" else ""
    if limits is None or not limits.consistent:
        findings.measure(name, value, unit=unit, subject=subject, text=what,
                         detail=f"{dbm} the module's thresholds are missing or inconsistent, not judged".strip())
        return
    alarm = (value < limits.low_alarm if limits.low_alarm is not None else False) or \
            (value > limits.high_alarm if limits.high_alarm is not None else False)
    low, high = (limits.low_alarm, limits.high_alarm) if alarm else (limits.low_warning, limits.high_warning)
    findings.measure(name, value, unit=unit, low=low, high=high, warn=not alarm, subject=subject, text=what,
                     detail=dbm, because="beyond the module's alarm limits" if alarm else
                     "beyond the module's warning limits")


def _judge_mtu(health: LinkHealth, settings: NicHealthSettings, findings: Findings) -> None:
    iface, link, mtu = health.link.interface, health.link, health.mtu
    findings.measure("mtu_bytes", mtu, unit="bytes", low=settings.mtu, high=settings.mtu, subject=iface, text="MTU",
                     because="the profile's MTU")
    if mtu is None:
        return
    if health.peer_mtu is not None:
        findings.measure("peer_mtu_bytes", health.peer_mtu, unit="bytes", low=mtu, high=mtu, subject=iface,
                         text=f"MTU of {link.peer}'s {health.peer_interface}",
                         because="frames above the smaller one are dropped; set the same MTU on both ends")
    if health.full_size_ping is not None:
        ping = health.full_size_ping
        findings.measure("full_size_ping_replies", ping.received, low=1, subject=iface,
                         text=f"full-size pings (MTU {mtu}, don't fragment) answered by {link.peer}",
                         detail=f"of {ping.transmitted} to {link.peer_address}",
                         because="something on the path has a smaller MTU")


def judge_ping(iface: str, peer: str, summary: PingSummary, under: str, settings: NicHealthSettings,
               findings: Findings) -> None:
    findings.measure("ping_loss_percent", summary.loss_percent, unit="%", high=settings.max_ping_loss_percent,
                     subject=iface, text=f"ping loss to {peer} {under}",
                     detail=f"({summary.received} of {summary.transmitted} answered)", because="the profile's limit")
    if summary.received:  # nothing back: the loss above has said it
        findings.measure("ping_rtt_milliseconds", summary.rtt_avg_ms, unit="ms", high=settings.max_ping_rtt_ms,
                         subject=iface, text=f"average ping round trip to {peer} {under}",
                         because="the profile's limit")


def judge_counters(iface: str, before: NicStatistics, after: NicStatistics, findings: Findings) -> None:
    """Error counters that grew during the test fail; ones already non-zero before are history, noted."""
    errors = sorted(name for name in after.counters if ERROR_COUNTER.search(name))
    grew = {name: after.counters[name] - before.counters.get(name, 0) for name in errors
            if after.counters[name] > before.counters.get(name, 0)}
    listed = ", ".join(f"{name} +{delta} ({before.counters.get(name, 0)} -> {after.counters[name]})"
                       for name, delta in grew.items())
    findings.measure("nic_error_counter_growth", sum(grew.values()), high=0, subject=iface,
                     text="NIC error counter growth during the test",
                     detail=f"({listed})" if grew else f"(none of {len(errors)} error counters grew)",
                     because="the NIC counted errors under load (CRC: fibre or transceiver; drops/misses: the "
                             "host did not keep up)")
    old = {name: before.counters[name] for name in errors if before.counters.get(name) and name not in grew}
    if old:
        history = ", ".join(f"{name} {value}" for name, value in old.items())
        findings.note(f"{iface}: error counters non-zero since the driver loaded (not growing): {history}")
