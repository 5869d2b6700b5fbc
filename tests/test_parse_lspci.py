"""lspci -vv: every corpus file (new format with markers, old format without, tabs or spaces, VMD domains, empty
slots, DevSta/AER bits), garbage."""

from __future__ import annotations

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.parsers.lspci import PciDevice, PciLink, parse_lspci_vv

GEN3_X4 = PciLink(speed_gts=8.0, width=4)
NO_AER: dict = {"aer_uncorrectable": (), "aer_correctable": ()}
EXPECTED: dict[str, list[PciDevice]] = {
    "nvme-pm983-x4-gen3-old-lspci-format.txt": [PciDevice(
        slot="3b:00.0", description="Non-Volatile memory controller: Unknown Vendor NVMe SSD Controller "
                                    "SM981/PM981/PM983 (prog-if 02 [NVM Express])",
        link_capability=GEN3_X4, link_status=GEN3_X4, device_status_errors=("CorrErr", "UnsuppReq"), **NO_AER)],
    "nvme-samsung-sm961-x4-gen3-ok-tabbed.txt": [PciDevice(
        slot="06:00.0", description="Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD "
                                    "Controller SM961/PM961 (prog-if 02 [NVM Express])",
        link_capability=GEN3_X4, link_status=GEN3_X4, **NO_AER)],
    "nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt": [PciDevice(
        slot="04:00.0", description="Non-Volatile memory controller [0108]: Silicon Motion, Inc. Device "
                                    "[126f:2263] (rev 03) (prog-if 02 [NVM Express])",
        link_capability=GEN3_X4, link_status=PciLink(speed_gts=2.5, width=1), **NO_AER)],
    "marvell-88e8053-sky2-legacy-endpoint-devsta-correrr-uncorrerr-cesta-rxerr.txt": [PciDevice(
        slot="01:00.0", description="Ethernet controller: Marvell Technology Group Ltd. 88E8053 PCI-E Gigabit "
                                    "Ethernet Controller (rev 22)",
        link_capability=PciLink(2.5, 1), link_status=PciLink(2.5, 1),
        device_status_errors=("CorrErr", "UncorrErr", "UnsuppReq"), aer_uncorrectable=(),
        aer_correctable=("RxErr",))],
    "vmd-domain-10000-root-port-and-nvme-excerpt-linux-pci-2024.txt": [
        PciDevice(slot="10000:e0:06.0", description="PCI bridge: Intel Corporation 11th Gen Core Processor PCIe "
                                                    "Controller (rev 01) (prog-if 00 [Normal decode])",
                  link_capability=None, link_status=None),
        PciDevice(slot="10000:e1:00.0", description="Non-Volatile memory controller: Sandisk Corp WD Blue SN550 "
                                                    "NVMe SSD (rev 01) (prog-if 02 [NVM Express])",
                  link_capability=None, link_status=None)],
    # pciutils 3.13 (AER bits wrapped over three lines, new names like PCRC_CHECK), PCIe 5.0 root port
    "stats-collect-genoa0-rcec-and-gen5-x16-root-port-pciutils-3.13-new-aer-bits-excerpt.txt": [
        PciDevice(slot="00:00.3", description="Generic system peripheral [0807]: Advanced Micro Devices, Inc. "
                                              "[AMD] Genoa/Bergamo RCEC",
                  link_capability=None, link_status=None, **NO_AER),
        PciDevice(slot="00:07.1", description="PCI bridge: Advanced Micro Devices, Inc. [AMD] Genoa/Bergamo "
                                              "Internal PCIe GPP Bridge to Bus [D:B] (rev 01) (prog-if 00 "
                                              "[Normal decode])",
                  link_capability=PciLink(32.0, 16), link_status=PciLink(32.0, 16), data_link_active=True)],
}
IVY = "ivybridge-panther-point-root-ports-empty-slots-width-x0-rciep-speed-unknown-excerpt.txt"
FILES = sorted(path.name for path in corpus_path("lspci").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED) | {IVY}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name):
    assert parse_lspci_vv(corpus_path("lspci", name).read_text()) == EXPECTED[name]


def test_root_ports_of_empty_slots_are_link_down_not_downgraded():
    devices = {d.slot: d for d in parse_lspci_vv(corpus_path("lspci", IVY).read_text())}
    assert list(devices) == ["00:01.0", "00:02.0", "00:14.0", "00:16.0", "00:1a.0", "00:1b.0", "00:1c.0", "00:1c.4"]
    x16_slot, x4_slot, used = devices["00:01.0"], devices["00:1c.0"], devices["00:1c.4"]
    # x16 slot: "Width x0" (the port does not report DLActive: LLActRep-); x4 slot: "DLActive-" with LLActRep+
    assert x16_slot.link_status == PciLink(2.5, 0) and x16_slot.data_link_active is None
    assert x4_slot.data_link_active is False
    assert not x16_slot.link_up and not x4_slot.link_up
    assert not x16_slot.downgraded and not x4_slot.downgraded
    # the occupied port: trained at 2.5 GT/s x1 of its 5 GT/s; which end caps it lspci alone cannot tell
    assert used.link_up and used.data_link_active is True and used.downgraded
    # root complex integrated endpoint: "Speed unknown, Width x0" is no link
    assert devices["00:1b.0"].link_status is None and not devices["00:1b.0"].downgraded
    assert all(d.aer_correctable is None for d in devices.values())  # no AER capability on this board


def test_legacy_endpoint_printing_dlactive_minus_has_a_link():
    [nic] = parse_lspci_vv(corpus_path(
        "lspci", "marvell-88e8053-sky2-legacy-endpoint-devsta-correrr-uncorrerr-cesta-rxerr.txt").read_text())
    assert nic.link_up and nic.data_link_active is None  # LLActRep-: its DLActive- means nothing


# Synthetic, in the shape of pciutils >= 3.8 (LnkSta's flags and UESta/CESta wrapped onto continuation lines),
# with set bits where no public output had them.
WRAPPED = """0000:03:00.0 Ethernet controller: Intel Corporation 82599ES 10-Gigabit SFI/SFP+ Network Connection (rev 01)
	Capabilities: [a0] Express (v2) Endpoint, MSI 00
		DevSta:	CorrErr+ NonFatalErr- FatalErr- UnsupReq+ AuxPwr- TransPend-
		LnkCap:	Port #0, Speed 5GT/s, Width x8, ASPM L0s, Exit Latency L0s <1us
			ClockPM- Surprise- LLActRep- BwNot- ASPMOptComp-
		LnkSta:	Speed 5GT/s, Width x4 (downgraded)
			TrErr- Train- SlotClk+ DLActive- BWMgmt- ABWMgmt-
	Capabilities: [100 v2] Advanced Error Reporting
		UESta:	DLP- SDES- TLP- FCP- CmpltTO+ CmpltAbrt- UnxCmplt- RxOF- MalfTLP-
			ECRC- UnsupReq- ACSViol- UncorrIntErr- BlockedTLP- AtomicOpBlocked- TLPBlockedErr-
		UEMsk:	DLP- SDES- TLP- FCP- CmpltTO- CmpltAbrt- UnxCmplt- RxOF- MalfTLP-
		CESta:	RxErr- BadTLP+ BadDLLP+ Rollover- Timeout- AdvNonFatalErr+ CorrIntErr- HeaderOF-
		CEMsk:	RxErr- BadTLP- BadDLLP- Rollover- Timeout- AdvNonFatalErr+ CorrIntErr- HeaderOF-
	Kernel driver in use: ixgbe
10000:e1:00.0 Non-Volatile memory controller: Vendor Device (prog-if 02 [NVM Express])
		LnkCap:	Port #0, Speed 16GT/s, Width x4, ASPM L1, Exit Latency L1 <64us
		LnkSta:	Speed 16GT/s, Width x4
"""


def test_wrapped_flags_aer_bits_and_a_vmd_domain():
    nic, nvme = parse_lspci_vv(WRAPPED)
    assert nic.link_status == PciLink(5.0, 4) and nic.downgraded and nic.link_up
    assert nic.device_status_errors == ("CorrErr", "UnsupReq")
    assert nic.aer_uncorrectable == ("CmpltTO",)
    assert nic.aer_correctable == ("BadTLP", "BadDLLP", "AdvNonFatalErr")
    assert nvme.slot == "10000:e1:00.0" and nvme.link_status == PciLink(16.0, 4) and not nvme.downgraded


def test_downgraded_from_the_numbers_not_the_markers():
    assert EXPECTED["nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt"][0].downgraded
    assert not EXPECTED["nvme-samsung-sm961-x4-gen3-ok-tabbed.txt"][0].downgraded
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


def test_pciutils_before_3_0_wrote_gb_per_s():
    # Synthetic, in the wording of pciutils 2.x ("Speed 2.5Gb/s"); no public output of it was found.
    text = ("01:00.0 Ethernet controller: Broadcom Corporation NetXtreme II BCM5708 Gigabit Ethernet (rev 12)\n"
            "\t\tLnkCap:\tPort #0, Speed 2.5Gb/s, Width x4, ASPM L0s L1, Latency L0 <4us, L1 <64us\n"
            "\t\tLnkSta:\tSpeed 2.5Gb/s, Width x1, TrErr- Train- SlotClk+ DLActive- BWMgmt- ABWMgmt-\n")
    [device] = parse_lspci_vv(text)
    assert device.link_status == PciLink(2.5, 1) and device.downgraded
