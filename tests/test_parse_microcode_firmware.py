"""Microcode update files: the lab's writers and the parsers round-trip; garbage is rejected.

The layouts were checked by hand against Debian's intel-microcode 3.20251111 and amd64-microcode
3.20250311 (every file parses, revisions match the release notes); test_real_firmware_files
repeats that on machines that have the packages installed.
"""

from __future__ import annotations

import datetime
import re
import struct
from pathlib import Path

import pytest

from qualify.errors import ParseError
from qualify.lab.firmware import amd_microcode_container, intel_microcode_file
from qualify.parsers.cpuinfo import cpuid_signature
from qualify.parsers.microcode_firmware import (
    dword_sum,
    newest_revision_for,
    parse_amd_microcode,
    parse_intel_microcode,
)

ALDER_LAKE_P = 0x906A3  # i7-1280P / i7-1260P, platform id 7 -> processor_flags 0x80
ALDER_LAKE_P_R0 = 0x906A4


def test_single_intel_update_round_trip():
    data = intel_microcode_file(ALDER_LAKE_P, 0x80, 0x435, date="2024-02-05")
    assert len(data) == 48 + 2000
    assert dword_sum(data) == 0  # the checksum the kernel verifies
    [update] = parse_intel_microcode(data, "06-9a-03")
    assert update.revision == 0x435
    assert update.date == datetime.date(2024, 2, 5)
    assert update.signatures == [(ALDER_LAKE_P, 0x80)]


def extended_table_offset(update: bytes) -> int:
    return 48 + struct.unpack_from("<I", update, 28)[0]  # after header and data


def test_header_fields_as_the_kernel_reads_them():
    data = intel_microcode_file(ALDER_LAKE_P, 0x80, 0x42C, date="2023-04-18", data_size=976)
    header_version, revision, date, signature, _, loader, flags, data_size, total_size = struct.unpack_from(
        "<9I", data)
    assert (header_version, revision, date, signature, loader, flags) == (1, 0x42C, 0x04182023, ALDER_LAKE_P, 1, 0x80)
    assert (data_size, total_size) == (976, 1024)


def test_total_size_is_rounded_up_to_whole_kilobytes_like_intels():
    assert struct.unpack_from("<II", intel_microcode_file(ALDER_LAKE_P, 0x80, 0x42C, data_size=1024), 28) == (
        2000, 2048)


def test_legacy_update_cannot_have_an_extended_table():
    with pytest.raises(ValueError, match="data_size 0"):
        intel_microcode_file(0x6B4, 0x10, 0x2, data_size=0, extended=[(0x6B1, 0x10)])


def test_concatenated_updates_in_one_file():
    data = (intel_microcode_file(ALDER_LAKE_P, 0x80, 0x42C, date="2023-04-18")
            + intel_microcode_file(ALDER_LAKE_P_R0, 0x40, 0xB, date="2025-06-13", data_size=512))
    updates = parse_intel_microcode(data, "06-9a-04")
    assert [(u.revision, u.date.isoformat()) for u in updates] == [(0x42C, "2023-04-18"), (0xB, "2025-06-13")]
    assert updates[1].signatures == [(ALDER_LAKE_P_R0, 0x40)]


def test_extended_signature_table():
    extended = [(ALDER_LAKE_P, 0x80), (ALDER_LAKE_P_R0, 0x80)]
    data = intel_microcode_file(ALDER_LAKE_P, 0x80, 0x43A, extended=extended)
    assert len(data) == 3072
    assert len(data) - extended_table_offset(data) == 20 + 2 * 12
    assert dword_sum(data[extended_table_offset(data):]) == 0
    [update] = parse_intel_microcode(data, "06-9a-03")
    assert update.signatures == [(ALDER_LAKE_P, 0x80), *extended]
    assert update.applies_to(ALDER_LAKE_P_R0, 0x80)


def test_extended_entry_checksum_stands_in_for_the_header():
    """Swapping an extended entry into the header must give a valid update (what the kernel does)."""
    data = bytearray(intel_microcode_file(ALDER_LAKE_P, 0x80, 0x43A, extended=[(ALDER_LAKE_P_R0, 0x20)]))
    table = extended_table_offset(data)
    sig, flags, checksum = struct.unpack_from("<III", data, table + 20)
    struct.pack_into("<I", data, 12, sig)
    struct.pack_into("<I", data, 16, checksum)
    struct.pack_into("<I", data, 24, flags)
    assert dword_sum(bytes(data[:table])) == 0


def test_wrong_extended_entry_checksum_is_rejected():
    data = bytearray(intel_microcode_file(ALDER_LAKE_P, 0x80, 0x43A, extended=[(ALDER_LAKE_P_R0, 0x80)]))
    table = extended_table_offset(data)
    struct.pack_into("<I", data, table + 20 + 8, struct.unpack_from("<I", data, table + 20 + 8)[0] + 1)
    struct.pack_into("<I", data, table + 8, 0xFFFFFFFF)  # a reserved word keeps the table checksum right
    with pytest.raises(ParseError, match="extended signature checksum mismatch"):
        parse_intel_microcode(bytes(data), "06-9a-03")


def test_data_size_zero_means_2000():
    data = intel_microcode_file(0x6B4, 0x10, 0x2, date="2001-03-09", data_size=0)
    assert struct.unpack_from("<II", data, 28) == (0, 0)  # data_size and total_size fields
    assert len(data) == 2048
    [update] = parse_intel_microcode(data, "06-0b-04")
    assert (update.revision, update.signatures) == (0x2, [(0x6B4, 0x10)])


def test_revisions_compare_unsigned():
    data = intel_microcode_file(0x806F8, 0x87, 0x2B000590) + intel_microcode_file(0x806F8, 0x87, 0xAB000010)
    assert newest_revision_for(parse_intel_microcode(data, "06-8f-08"), 0x806F8, 0x80)[0] == 0xAB000010


def test_processor_flags_matching():
    updates = parse_intel_microcode(
        intel_microcode_file(ALDER_LAKE_P, 0x80, 0x435) + intel_microcode_file(ALDER_LAKE_P, 0x40, 0x500),
        "06-9a-03")
    assert newest_revision_for(updates, ALDER_LAKE_P, 0x80) == (0x435, updates[0])
    assert newest_revision_for(updates, ALDER_LAKE_P, 0x40) == (0x500, updates[1])
    assert newest_revision_for(updates, ALDER_LAKE_P, None) == (0x500, updates[1])  # flags unknown: any
    assert newest_revision_for(updates, ALDER_LAKE_P, 0x01) is None
    assert newest_revision_for(updates, 0x90675, 0x80) is None


def test_amd_container_with_two_patches():
    data = amd_microcode_container([(0xA20F10, 0x0A20102D), (0xA50F00, 0x0A500011)])
    assert data[:4] == b"DMA\0"
    patches = parse_amd_microcode(data, "amd-ucode/microcode_amd_fam19h.bin")
    assert [(p.revision, p.equiv_cpu, p.signatures) for p in patches] == [
        (0x0A20102D, 0xA210, [0xA20F10]), (0x0A500011, 0xA500, [0xA50F00])]
    assert newest_revision_for(patches, 0xA50F00, 0x80) == (0x0A500011, patches[1])  # flags ignored
    assert newest_revision_for(patches, 0xA20F12, None) is None


def test_concatenated_amd_containers():
    data = amd_microcode_container([(0x800F82, 0x0800820D)]) + amd_microcode_container([(0x870F10, 0x08701034)])
    patches = parse_amd_microcode(data, "microcode_amd_fam17h.bin")
    assert [p.revision for p in patches] == [0x0800820D, 0x08701034]
    assert newest_revision_for(patches, 0x870F10)[0] == 0x08701034


def intel_with_header_word(index: int, value: int, fix_checksum: bool = True) -> bytes:
    """A good update with one header dword changed (and the checksum made to fit again, unless told not to)."""
    data = bytearray(intel_microcode_file(ALDER_LAKE_P, 0x80, 0x435))
    struct.pack_into("<I", data, index * 4, value)
    if fix_checksum:
        struct.pack_into("<I", data, 16, 0)
        struct.pack_into("<I", data, 16, -dword_sum(bytes(data)) & 0xFFFFFFFF)
    return bytes(data)


GOOD_INTEL = intel_microcode_file(ALDER_LAKE_P, 0x80, 0x435)


@pytest.mark.parametrize("data, problem", [
    (b"", "empty file"),
    (GOOD_INTEL[:40], "40 bytes left, a header needs 48"),
    (GOOD_INTEL[:1000], "runs past the end of the file"),
    (GOOD_INTEL + GOOD_INTEL[:20], "at byte 2048: 20 bytes left"),
    (b"<html>404 Not Found</html>" * 4, "header version"),
    (intel_with_header_word(0, 2), "header version 2, expected 1"),
    (intel_with_header_word(1, 0x436, fix_checksum=False), "checksum mismatch"),
    (intel_with_header_word(7, 1001), "inconsistent sizes"),
    (intel_with_header_word(8, 1024), "inconsistent sizes"),
    (intel_with_header_word(8, 2048 + 8) + bytes(8), "extended signature table of 8 bytes is truncated"),
    (intel_with_header_word(8, 2048 + 20 + 12) + struct.pack("<II", 2, 0) + bytes(24),
     "extended signature table of 32 bytes does not hold 2 signatures"),
    (intel_microcode_file(ALDER_LAKE_P, 0x80, 0x435, extended=[(ALDER_LAKE_P_R0, 0x80)])[:-12] + bytes(12),
     "extended signature table checksum mismatch"),
    (intel_with_header_word(2, 0x13312024), "date field 0x13312024 is not a BCD date"),
    (intel_with_header_word(2, 0x0A012024), "date field 0x0a012024 is not a BCD date"),
])
def test_intel_garbage(data, problem):
    with pytest.raises(ParseError) as caught:
        parse_intel_microcode(data, "pve2:/lib/firmware/intel-ucode/06-9a-03")
    assert caught.value.source == "pve2:/lib/firmware/intel-ucode/06-9a-03"
    assert problem in caught.value.problem


GOOD_AMD = amd_microcode_container([(0xA20F10, 0x0A20102D)])


@pytest.mark.parametrize("data, problem", [
    (b"", "empty file"),
    (b"\x7fELF" + bytes(60), "magic 0x464c457f, expected 0x00414d44"),
    (GOOD_AMD[:10], "section header needs 8 bytes, only 6 left"),
    (GOOD_AMD[:40], "section of type 0 needs 32 bytes"),
    (GOOD_AMD[:-100], "section of type 1 needs 3200 bytes"),
    (GOOD_AMD[:4] + struct.pack("<II", 1, 16) + bytes(16), "section type 1, expected 0"),
    (GOOD_AMD[:4] + struct.pack("<II", 0, 15) + bytes(15), "not a whole number of entries"),
    (GOOD_AMD[:4] + struct.pack("<II", 0, 16) + bytes(16) + struct.pack("<II", 1, 8) + bytes(8),
     "patch of 8 bytes, its header alone needs 64"),
    (GOOD_AMD + b"junk", "magic 0x6b6e756a"),
])
def test_amd_garbage(data, problem):
    with pytest.raises(ParseError) as caught:
        parse_amd_microcode(data, "amd-ucode/microcode_amd_fam19h.bin")
    assert caught.value.source == "amd-ucode/microcode_amd_fam19h.bin"
    assert problem in caught.value.problem


FIRMWARE = Path("/lib/firmware")


def intel_files(firmware: Path) -> list[Path]:
    """intel-ucode/FF-MM-SS files (not Debian's *.initramfs variants)."""
    return sorted(p for p in firmware.glob("intel-ucode/*") if re.fullmatch(r"(?:[0-9a-f]{2}-){2}[0-9a-f]{2}", p.name))


def check_firmware_tree(firmware: Path) -> None:
    """Every file parses, and each intel-ucode/FF-MM-SS file has an update for the CPU it is named after."""
    for path in intel_files(firmware):
        signature = cpuid_signature(*(int(part, 16) for part in path.name.split("-")))
        assert newest_revision_for(parse_intel_microcode(path.read_bytes(), str(path)), signature), path
    for path in firmware.glob("amd-ucode/microcode_amd*.bin"):
        assert parse_amd_microcode(path.read_bytes(), str(path)), path


@pytest.mark.skipif(not intel_files(FIRMWARE) and not list(FIRMWARE.glob("amd-ucode/microcode_amd*.bin")),
                    reason="no microcode files in /lib/firmware (packages intel-microcode, amd64-microcode)")
def test_real_firmware_files():
    check_firmware_tree(FIRMWARE)
