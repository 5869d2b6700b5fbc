"""ethtool text output: every corpus file (link settings, driver info, `-S` counters, `-m` module dumps),
this machine's ethtool on a veth, and cut-short or garbage outputs."""

from __future__ import annotations

import math
import os
import subprocess

import pytest

from corpus import corpus_path, parse_error
from qualify.errors import ParseError
from qualify.parsers.ethtool import (
    DriverInfo,
    LinkSettings,
    Thresholds,
    milliwatt_to_dbm,
    parse_ethtool_driver_info,
    parse_ethtool_link,
    parse_ethtool_module,
    parse_ethtool_statistics,
)

ALL_SUPPORTS = {"statistics": True, "test": True, "eeprom-access": True, "register-dump": True, "priv-flags": True}
ATLANTIC_MODES = ["10baseT/Full", "100baseT/Full", "1000baseT/Full", "10000baseT/Full", "2500baseT/Full",
                  "5000baseT/Full"]

# Every non "m-" file of corpus/ethtool (the "m-" ones are `ethtool -m` module dumps, parsed elsewhere).
EXPECTED: dict[str, tuple] = {
    "ixgbe-x520-da2-i-and-S-head.txt": (parse_ethtool_driver_info, DriverInfo(
        driver="ixgbe", version="5.1.0-k", firmware_version="0x00015e0b", expansion_rom_version=None,
        bus_info="0000:06:00.1", supports=ALL_SUPPORTS)),
    "ixgbe-10g-sr-link-settings.txt": (parse_ethtool_link, LinkSettings(
        interface="eth0", supported_ports=["FIBRE"], supported_link_modes=["10000baseSR/Full"],
        advertised_link_modes=["10000baseSR/Full"], link_partner_advertised_link_modes=[],
        supports_auto_negotiation=True, advertised_auto_negotiation=True, speed_mbps=10000, duplex="Full",
        auto_negotiation=False, port="FIBRE", link_detected=True)),
    "ixgbe-x553-sfp-10g-no-link-speed-unknown.txt": (parse_ethtool_link, LinkSettings(
        interface="eno1", supported_ports=["FIBRE"], supported_link_modes=["10000baseT/Full"],
        advertised_link_modes=["10000baseT/Full"], link_partner_advertised_link_modes=[],
        supports_auto_negotiation=False, advertised_auto_negotiation=False, speed_mbps=None, duplex=None,
        auto_negotiation=False, port="Other", link_detected=None)),  # cut short before "Link detected"
    "atlantic-aqc-10gbase-t-link-settings-head.txt": (parse_ethtool_link, LinkSettings(
        interface="eth1", supported_ports=["TP"], supported_link_modes=ATLANTIC_MODES,
        advertised_link_modes=ATLANTIC_MODES,
        link_partner_advertised_link_modes=["10baseT/Half", "10baseT/Full", "100baseT/Half", "100baseT/Full",
                                            "1000baseT/Half", "1000baseT/Full", "10000baseT/Full"],
        supports_auto_negotiation=True, advertised_auto_negotiation=True, speed_mbps=None, duplex=None,
        auto_negotiation=None, port=None, link_detected=None)),  # cut short after the link partner modes
    # ethtool >= 5.x without CAP_NET_ADMIN: an unindented "netlink error" line inside the block
    "node-exporter-e1000e-settings-netlink-error-message-level-lines.txt": (parse_ethtool_link, LinkSettings(
        interface="eth0", supported_ports=["TP", "MII"],
        supported_link_modes=["10baseT/Half", "10baseT/Full", "100baseT/Half", "100baseT/Full", "1000baseT/Full",
                              "10000baseT/Full"],
        advertised_link_modes=["10baseT/Half", "10baseT/Full", "100baseT/Half", "100baseT/Full", "1000baseT/Full"],
        link_partner_advertised_link_modes=[], supports_auto_negotiation=True, advertised_auto_negotiation=True,
        speed_mbps=1000, duplex="Full", auto_negotiation=True, port="Twisted Pair", link_detected=True)),
    "node-exporter-e1000e-i-driver-empty-rom-version.txt": (parse_ethtool_driver_info, DriverInfo(
        driver="e1000e", version="5.11.0-22-generic", firmware_version="0.5-4", expansion_rom_version=None,
        bus_info="0000:00:1f.6", supports=ALL_SUPPORTS)),
    "node-exporter-S-rx-missed-name-with-space.txt": (lambda text: parse_ethtool_statistics(text).counters, {
        "tx_packets": 961500, "rx_packets": 1260062, "tx_errors": 0, "rx_errors": 0, "rx_missed": 401,
        "align_errors": 0, "tx_single_collisions": 0, "tx_multi_collisions": 0, "rx_unicast": 1230297,
        "rx_broadcast": 5792, "rx_multicast": 23973, "tx_aborted": 0, "tx_underrun": 0, "duplicate metric": 1,
        "duplicate_metric": 2}),
}
FILES = sorted(path.name for path in corpus_path("ethtool").iterdir() if not path.name.startswith("m-"))


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    parse, expected = EXPECTED[name]
    assert parse(corpus_path("ethtool", name).read_text()) == expected


TAB_INDENTED = """Settings for enp1s0f0:
\tSupported ports: [ FIBRE ]
\tSupported link modes:   1000baseT/Full
\t                        10000baseT/Full
\tSupported pause frame use: Symmetric
\tSupports auto-negotiation: Yes
\tSupported FEC modes: Not reported
\tAdvertised link modes:  1000baseT/Full
\t                        10000baseT/Full
\tAdvertised pause frame use: Symmetric
\tAdvertised auto-negotiation: Yes
\tAdvertised FEC modes: Not reported
\tSpeed: 1000Mb/s
\tDuplex: Half
\tAuto-negotiation: on
\tPort: Direct Attach Copper
\tPHYAD: 0
\tTransceiver: internal
\tSupports Wake-on: d
\tWake-on: d
        Current message level: 0x00000007 (7)
                               drv probe link
\tLink detected: no
"""


def test_tab_indented_with_continuation_lines():
    link = parse_ethtool_link(TAB_INDENTED)
    assert link.supported_link_modes == ["1000baseT/Full", "10000baseT/Full"]
    assert (link.speed_mbps, link.duplex, link.auto_negotiation, link.port, link.link_detected) == (
        1000, "Half", True, "Direct Attach Copper", False)


def test_noise_before_the_settings_header_is_ignored():
    link = parse_ethtool_link("netlink error: Operation not permitted\n" + TAB_INDENTED)
    assert link.interface == "enp1s0f0"


def test_header_only():
    link = parse_ethtool_link("Settings for vmbr0:\n\tLink detected: yes\n")
    assert (link.interface, link.speed_mbps, link.supported_link_modes, link.link_detected) == ("vmbr0", None, [], True)


@pytest.mark.parametrize("text, problem", [
    ("", "no 'Settings for IFACE:' line"),
    ("No data available\n", "no 'Settings for IFACE:' line"),
    (TAB_INDENTED.replace("1000Mb/s", "fast"), "'Speed: fast', expected a speed like 10000Mb/s"),
    (TAB_INDENTED.replace("Link detected: no", "Link detected: maybe"), "'Link detected: maybe', expected yes/no"),
    (TAB_INDENTED + TAB_INDENTED.replace("enp1s0f0", "enp1s0f1"), "settings of enp1s0f0 and enp1s0f1"),
])
def test_link_garbage(text, problem):
    error = parse_error(lambda t: parse_ethtool_link(t, source="ethtool enp1s0f0 on pve2"), text, problem)
    assert error.source == "ethtool enp1s0f0 on pve2"


def test_driver_info_alone_and_with_missing_lines():
    info = parse_ethtool_driver_info("driver: mlx4_en\nversion: 4.0-0\nfirmware-version: 2.42.5000\n")
    assert (info.driver, info.version, info.firmware_version, info.bus_info, info.supports) == (
        "mlx4_en", "4.0-0", "2.42.5000", None, {})


@pytest.mark.parametrize("text, problem", [
    ("", "no 'driver:' line"),
    ("Cannot get driver information: No such device\n", "no 'driver:' line"),
    ("driver: ixgbe\nbus-info: 0000:06:00.0\ndriver: ixgbe\nbus-info: 0000:06:00.1\n", "'driver:' appears twice"),
    ("driver: ixgbe\nsupports-test: sometimes\n", "'supports-test: sometimes', expected yes/no"),
])
def test_driver_info_garbage(text, problem):
    assert parse_error(lambda t: parse_ethtool_driver_info(t, source="ethtool -i eth0"), text, problem).source == \
        "ethtool -i eth0"


# ---------------------------------------------------------------- ethtool -S

def test_statistics_after_driver_info_in_the_same_capture():
    stats = parse_ethtool_statistics(corpus_path("ethtool", "ixgbe-x520-da2-i-and-S-head.txt").read_text())
    assert len(stats.counters) == 47
    assert [stats.counters[k] for k in ("tx_pkts_nic", "lsc_int", "alloc_rx_page")] == [160006, 36, 2044]
    assert stats.counters["rx_crc_errors"] == 0 and stats.counters["rx_no_dma_resources"] == 0


def test_statistics_names_with_dots_brackets_and_spaces():
    text = "NIC statistics:\n     port.rx_bytes: 12\n     [0]: rx_packets: 7\n     rx_queue_0_drops: 3\n"
    assert parse_ethtool_statistics(text).counters == {"port.rx_bytes": 12, "[0]: rx_packets": 7, "rx_queue_0_drops": 3}


def test_statistics_of_a_real_veth_here():
    netns = f"qt6st-{os.getpid()}"  # a namespace of the test's own: nothing appears in the root one
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "name", "v0", "type", "veth", "peer", "name", "v1"],
                       check=True)
        text = subprocess.run(["ip", "netns", "exec", netns, "ethtool", "-S", "v0"], capture_output=True, text=True,
                              check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=True)
    assert "rx_queue_0_drops" in parse_ethtool_statistics(text).counters


@pytest.mark.parametrize("text, problem", [
    ("", "no 'NIC statistics:' line"),
    ("no stats available\n", "no 'NIC statistics:' line"),
    ("NIC statistics:\n     a: 1\nNIC statistics:\n     a: 2\n", "two 'NIC statistics:' blocks"),
])
def test_statistics_garbage(text, problem):
    with pytest.raises(ParseError, match=problem):
        parse_ethtool_statistics(text)


# ---------------------------------------------------------------- ethtool -m

MODULE_FILES = sorted(path.name for path in corpus_path("ethtool").iterdir() if path.name.startswith("m-"))


QSFP_LANES = {  # QSFP28 dumps quoted with the author's "..." elisions: four lanes each way, no vendor lines
    "m-qsfp28-4-lanes-power-override-mlxsw-elided-excerpt.txt": {
        "tx_power_mw": (0.7633, 0.7649, 0.7696, 0.7739), "rx_power_mw": (0.924, 0.9129, 0.9194, 0.8708)},
    # forced to low power (Power set: On): no light on any lane, "0.0000 mW / -inf dBm"
    "m-qsfp28-low-power-mode-all-lanes-0mw-minus-inf-dbm-elided-excerpt.txt": {
        "tx_power_mw": (0.0,) * 4, "rx_power_mw": (0.0,) * 4},
}


def test_every_module_dump_parses():
    assert MODULE_FILES == sorted([*QSFP_LANES, "m-sfp-10gsr85-dom-zero-readings-inf-dbm.txt",
                                   "m-sfp-10gsr85-fs-module-dom-i40e.txt"])
    for name, lanes in QSFP_LANES.items():
        module = parse_ethtool_module(corpus_path("ethtool", name).read_text())
        assert (module.identifier, module.vendor, module.flags_on) == ("0x11 (QSFP28)", None, ())
        assert module.readings == lanes
        assert module.low_power_mode is ("low-power" in name)  # Power override on, Power set on / off
    for name in set(MODULE_FILES) - set(QSFP_LANES):
        module = parse_ethtool_module(corpus_path("ethtool", name).read_text())
        assert (module.vendor, module.part_number, module.identifier) == ("FS", "SFP-10GSR-85", "0x03 (SFP)")
        assert module.wavelength_nm == 850 and module.diagnostics is True
        assert module.transceiver_types[0] == "10G Ethernet: 10G Base-SR" and len(module.transceiver_types) == 4


def test_module_with_dom_readings_and_its_own_thresholds():
    module = parse_ethtool_module(corpus_path("ethtool", "m-sfp-10gsr85-fs-module-dom-i40e.txt").read_text())
    assert module.serial == "F2020533679" and module.flags_on == ()
    assert module.readings == {"bias_ma": (6.09,), "tx_power_mw": (0.6367,), "rx_power_mw": (0.6486,),
                               "temperature_c": (39.18,), "voltage_v": (3.3544,)}
    assert module.thresholds["rx_power_mw"] == Thresholds(1.5849, 0.0389, 1.0, 0.0617)
    assert module.thresholds["temperature_c"] == Thresholds(80.0, -10.0, 70.0, 0.0)
    assert all(limits.consistent for limits in module.thresholds.values())


def test_all_zero_module_with_minus_inf_dbm_and_nonsense_thresholds():
    module = parse_ethtool_module(corpus_path("ethtool", "m-sfp-10gsr85-dom-zero-readings-inf-dbm.txt").read_text())
    assert set(module.readings.values()) == {(0.0,)}
    assert module.thresholds["rx_power_mw"].high_warning == 0.0  # "0.0000 mW / -inf dBm"
    assert not module.thresholds["temperature_c"].consistent  # low alarm 7.06 above high alarm 3.02
    assert milliwatt_to_dbm(0.0) == -math.inf and milliwatt_to_dbm(0.6486) == pytest.approx(-1.88, abs=0.01)


QSFP = """\tIdentifier                                : 0x11 (QSFP28)
\tVendor name                               : Mellanox
\tVendor PN                                 : MMA1B00-C100D
\tLaser tx bias current (Channel 1)         : 6.750 mA
\tLaser tx bias current (Channel 2)         : 6.500 mA
\tTransmit avg optical power (Channel 1)    : 0.9000 mW / -0.46 dBm
\tRcvr signal avg optical power(Channel 1)  : 0.0300 mW / -15.23 dBm
\tRcvr signal avg optical power(Channel 2)  : 0.8000 mW / -0.97 dBm
\tModule temperature                        : 45.00 degrees C / 113.00 degrees F
\tLaser rx power low alarm threshold        : 0.0400 mW / -13.98 dBm
\tLaser rx power low alarm   (Chan 1)       : On
\tLaser rx power low alarm   (Chan 2)       : Off
"""


def test_qsfp_lanes_and_raised_flags():
    module = parse_ethtool_module(QSFP)
    assert module.readings["bias_ma"] == (6.75, 6.5) and module.readings["rx_power_mw"] == (0.03, 0.8)
    assert module.diagnostics is None and module.thresholds["rx_power_mw"].low_alarm == 0.04
    assert module.flags_on == ("Laser rx power low alarm   (Chan 1)",)


def test_module_without_diagnostics():
    module = parse_ethtool_module("\tIdentifier : 0x03 (SFP)\n\tVendor name : OEM\n"
                                  "\tOptical diagnostics support : No\n")
    assert (module.vendor, module.diagnostics, module.readings, module.thresholds) == ("OEM", False, {}, {})


@pytest.mark.parametrize("text, problem", [
    ("", "no 'Identifier' line"),
    ("netlink error: Operation not supported\n", "no 'Identifier' line"),
    ("\tIdentifier : 0x03 (SFP)\n\tModule temperature : hot\n", "'hot': expected a value in degrees C"),
])
def test_module_garbage(text, problem):
    assert "ethtool -m" in str(parse_error(parse_ethtool_module, text, problem))
