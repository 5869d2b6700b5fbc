"""dmidecode -t memory: current (MT/s, Configured Memory Speed) and old (MHz, MB, Configured Clock Speed)
wording, empty slots, a VM without SMBIOS, and this machine's own dmidecode."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.parsers.dmidecode import Dimm, parse_dmidecode_memory, parse_memory_error_correction

CURRENT = """# dmidecode 3.4
Getting SMBIOS data from sysfs.
SMBIOS 3.3.0 present.

Handle 0x003E, DMI type 16, 23 bytes
Physical Memory Array
\tLocation: System Board Or Motherboard
\tUse: System Memory
\tMaximum Capacity: 64 GB
\tNumber Of Devices: 2

Handle 0x003F, DMI type 17, 92 bytes
Memory Device
\tArray Handle: 0x003E
\tTotal Width: 64 bits
\tData Width: 64 bits
\tSize: 32 GB
\tForm Factor: SODIMM
\tLocator: Controller0-ChannelA-DIMM0
\tBank Locator: BANK 0
\tType: DDR4
\tSpeed: 3200 MT/s
\tManufacturer: Samsung
\tSerial Number: 1A2B3C4D
\tPart Number: M471A4G43AB1-CWE\x20\x20\x20\x20
\tConfigured Memory Speed: 3200 MT/s

Handle 0x0040, DMI type 17, 92 bytes
Memory Device
\tArray Handle: 0x003E
\tSize: No Module Installed
\tLocator: Controller1-ChannelA-DIMM0
\tBank Locator: BANK 0
\tType: Unknown
\tSpeed: Unknown
\tManufacturer: Not Specified
\tSerial Number: Not Specified
\tPart Number: Not Specified
\tConfigured Memory Speed: Unknown
"""

OLD = """# dmidecode 3.0
SMBIOS 2.8 present.

Handle 0x0022, DMI type 17, 40 bytes
Memory Device
\tSize: 16384 MB
\tLocator: DIMM_A1
\tBank Locator: NODE 1
\tType: DDR4
\tSpeed: 2400 MHz
\tManufacturer: Kingston
\tSerial Number: 5F2E1A00
\tPart Number: KHX2400C15/16G
\tConfigured Clock Speed: 2133 MHz
"""


def test_current_wording_with_an_empty_slot():
    filled, empty = parse_dmidecode_memory(CURRENT)
    assert filled == Dimm(locator="Controller0-ChannelA-DIMM0", bank_locator="BANK 0", size_mib=32768, type="DDR4",
                          speed_mts=3200, configured_speed_mts=3200, manufacturer="Samsung",
                          part_number="M471A4G43AB1-CWE", serial="1A2B3C4D")
    assert filled.populated and not empty.populated
    assert empty.locator == "Controller1-ChannelA-DIMM0" and empty.speed_mts is None and empty.manufacturer is None


def test_old_wording_megabytes_and_clock_speed():
    [dimm] = parse_dmidecode_memory(OLD)
    assert (dimm.size_mib, dimm.speed_mts, dimm.configured_speed_mts) == (16384, 2400, 2133)


@pytest.mark.parametrize("text, problem", [
    ("# dmidecode 3.4\nScanning /dev/mem for entry point.\n/dev/mem: No such file or directory\n",
     "exposes no SMBIOS tables"),
    ("hello\n", "no 'Memory Device' block"),
    (CURRENT.replace("Size: 32 GB", "Size: lots"), "Size is 'lots'"),
])
def test_garbage_names_the_tool(text, problem):
    with pytest.raises(ParseError, match=problem) as err:
        parse_dmidecode_memory(text, "dmidecode on pve2")
    assert "dmidecode on pve2" in str(err.value)


@pytest.mark.skipif(shutil.which("dmidecode") is None, reason="dmidecode is not installed")
def test_this_machines_dmidecode():
    """Bare metal lists its DIMMs; a VM without SMBIOS gets the clear error, never a traceback."""
    out = subprocess.run(["dmidecode", "-t", "memory"], capture_output=True, text=True)
    try:
        dimms = parse_dmidecode_memory(out.stdout + out.stderr)
    except ParseError as exc:
        assert "SMBIOS" in str(exc) or "Memory Device" in str(exc)
    else:
        assert dimms and all(d.locator for d in dimms)


# real dmidecode outputs (linuxhw/DMI excerpts, see SOURCES.md): name -> (populated DIMMs, empty slots, ECC types)
EXPECTED = {
    # was: serial "--" (Supermicro's placeholder) read as a serial number
    "supermicro-h8dgu-dmidecode32-ddr3-serial-dashes-excerpt.txt": (
        [Dimm(locator="P1_DIMM1B", bank_locator="BANK0", size_mib=4096, type="DDR3", speed_mts=1066,
              configured_speed_mts=None, manufacturer="Samsung", part_number="M393B5170EH1-CF8", serial=None),
         Dimm(locator="P1_DIMM1A", bank_locator="BANK1", size_mib=4096, type="DDR3", speed_mts=1066,
              configured_speed_mts=None, manufacturer="Samsung", part_number="M393B5170EH1-CF8", serial=None)],
        0, ["Multi-bit ECC"]),
    # DDR5-5600 RDIMM the board runs at 4000 MT/s, six empty slots around it
    "supermicro-sys-511e-wr-ddr5-5600-at-4000-empty-slots-excerpt.txt": (
        [Dimm(locator="DIMMG1", bank_locator="P0_Node1_Channel2_Dimm0", size_mib=32768, type="DDR5", speed_mts=5600,
              configured_speed_mts=4000, manufacturer="Samsung", part_number="M321R4GA3PB0-CWMKJ", serial=None)],
        6, []),
}
FILES = sorted(path.name for path in corpus_path("dmidecode").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    text = corpus_path("dmidecode", name).read_text()
    populated, empty, ecc = EXPECTED[name]
    dimms = parse_dmidecode_memory(text)
    assert [d for d in dimms if d.populated] == populated
    assert len([d for d in dimms if not d.populated]) == empty
    assert parse_memory_error_correction(text) == ecc
