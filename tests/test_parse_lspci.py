"""lspci -vv: every corpus file (new format with markers, old format without, tabs or spaces), garbage."""

from __future__ import annotations

import pytest
from corpus import corpus_path

from qualify.errors import ParseError
from qualify.parsers.lspci import PciDevice, PciLink, parse_lspci_vv

GEN3_X4 = PciLink(speed_gts=8.0, width=4)
EXPECTED: dict[str, PciDevice] = {
    "nvme-pm983-x4-gen3-old-lspci-format.txt": PciDevice(
        slot="3b:00.0", description="Non-Volatile memory controller: Unknown Vendor NVMe SSD Controller "
                                    "SM981/PM981/PM983 (prog-if 02 [NVM Express])",
        link_capability=GEN3_X4, link_status=GEN3_X4),
    "nvme-samsung-sm961-x4-gen3-ok-tabbed.txt": PciDevice(
        slot="06:00.0", description="Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD "
                                    "Controller SM961/PM961 (prog-if 02 [NVM Express])",
        link_capability=GEN3_X4, link_status=GEN3_X4),
    "nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt": PciDevice(
        slot="04:00.0", description="Non-Volatile memory controller [0108]: Silicon Motion, Inc. Device "
                                    "[126f:2263] (rev 03) (prog-if 02 [NVM Express])",
        link_capability=GEN3_X4, link_status=PciLink(speed_gts=2.5, width=1)),
}
FILES = sorted(path.name for path in corpus_path("lspci").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    assert parse_lspci_vv(corpus_path("lspci", name).read_text()) == [EXPECTED[name]]


def test_downgraded_from_the_numbers_not_the_markers():
    assert EXPECTED["nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt"].downgraded
    assert not EXPECTED["nvme-samsung-sm961-x4-gen3-ok-tabbed.txt"].downgraded
    narrower = PciDevice("01:00.0", "x", GEN3_X4, PciLink(8.0, 2))  # old format: no marker at all
    slower = PciDevice("01:00.0", "x", PciLink(16.0, 4), GEN3_X4)
    unknown = PciDevice("01:00.0", "x", GEN3_X4, None)
    assert narrower.downgraded and slower.downgraded and not unknown.downgraded


SEVERAL = """0000:00:1c.0 PCI bridge: Intel Corporation Device 7ab8 (rev 11) (prog-if 00 [Normal decode])
\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00
\t\tLnkCap:\tPort #1, Speed 16GT/s, Width x4, ASPM L1, Exit Latency L1 <64us
\t\tLnkSta:\tSpeed 16GT/s, Width x4
\t\tLnkCap2: Supported Link Speeds: 2.5-16GT/s, Crosslink- Retimer+ 2Retimers+ DRS-
\t\tLnkSta2: Current De-emphasis Level: -6dB, EqualizationComplete+ EqualizationPhase1+

0000:01:00.0 Ethernet controller: Intel Corporation 82599ES 10-Gigabit SFI/SFP+ Network Connection (rev 01)
\tCapabilities: <access denied>

0000:02:00.0 Non-Volatile memory controller: Vendor Device (prog-if 02 [NVM Express])
\t\tLnkCap:\tPort #0, Speed 32GT/s, Width x4, ASPM L1, Exit Latency L1 <64us
\t\tLnkSta:\tSpeed 5GT/s (downgraded), Width x2 (downgraded)
"""


def test_several_devices_with_domain_gen5_and_access_denied():
    bridge, nic, nvme = parse_lspci_vv(SEVERAL)
    assert bridge.slot == "0000:00:1c.0" and bridge.link_status == PciLink(16.0, 4)  # LnkCap2/LnkSta2 ignored
    assert nic.link_capability is None and nic.link_status is None and not nic.downgraded
    assert nvme.link_capability == PciLink(32.0, 4) and nvme.link_status == PciLink(5.0, 2) and nvme.downgraded


def test_unknown_speed_is_no_link():
    text = "05:00.0 X: Y\n\t\tLnkCap:\tPort #0, Speed 8GT/s, Width x4\n\t\tLnkSta:\tSpeed unknown, Width x0\n"
    assert parse_lspci_vv(text)[0].link_status is None


def test_empty_output_is_no_device():
    assert parse_lspci_vv("") == []


@pytest.mark.parametrize("text", ["lspci: Unable to load libkmod resources\n", "{\"json\": true}"])
def test_garbage_names_the_tool(text):
    with pytest.raises(ParseError, match="lspci -vv"):
        parse_lspci_vv(text)
