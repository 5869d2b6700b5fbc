"""ethtool text output: every corpus file (except `ethtool -m` dumps), and cut-short or garbage outputs."""

from __future__ import annotations

import pytest
from corpus import corpus_path

from qualify.errors import ParseError
from qualify.parsers.ethtool import DriverInfo, LinkSettings, parse_ethtool_driver_info, parse_ethtool_link

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
    with pytest.raises(ParseError) as caught:
        parse_ethtool_link(text, source="ethtool enp1s0f0 on pve2")
    assert caught.value.source == "ethtool enp1s0f0 on pve2"
    assert problem in caught.value.problem


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
    with pytest.raises(ParseError) as caught:
        parse_ethtool_driver_info(text, source="ethtool -i eth0")
    assert problem in caught.value.problem
