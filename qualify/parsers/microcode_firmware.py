"""Microcode update files as shipped in /lib/firmware (intel-ucode/FF-MM-SS, amd-ucode/*.bin).

They tell which revision the node *could* run, to compare with the one it does run.
The layouts are the ones the Linux loaders read (arch/x86/kernel/cpu/microcode/{intel,amd}.c);
the struct formats here are shared with the writer in qualify.lab.firmware.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from qualify.errors import ParseError

DWORD_MASK = 0xFFFFFFFF

# Intel: header_version, update_revision, date (BCD 0xMMDDYYYY), processor_signature, checksum,
# loader_revision, processor_flags, data_size, total_size, 12 reserved bytes.
INTEL_HEADER = struct.Struct("<9I12x")
INTEL_DEFAULT_DATA_SIZE = 2000  # a data_size of 0 (pre-2002 updates) means these two sizes
INTEL_DEFAULT_TOTAL_SIZE = 2048
INTEL_EXT_HEADER = struct.Struct("<II12x")  # count, checksum, 12 reserved bytes
INTEL_EXT_SIGNATURE = struct.Struct("<III")  # signature, processor_flags, checksum

# AMD: a file is one or more containers, each: magic, equivalence table section, patch sections.
AMD_MAGIC = 0x00414D44  # b"DMA\0"
AMD_EQUIV_TABLE_TYPE = 0
AMD_PATCH_TYPE = 1
AMD_SECTION = struct.Struct("<II")  # type, size of what follows
AMD_EQUIV_ENTRY = struct.Struct("<IIIHH")  # installed_cpu, errata mask, errata compare, equiv_cpu, reserved
# data_code, patch_id, patch_data_id, patch_data_len, init_flag, patch_data_checksum, nb_dev_id,
# sb_dev_id, processor_rev_id (= equiv_cpu), nb_rev_id, sb_rev_id, bios_api_rev, 3 reserved, 8 match regs.
AMD_PATCH_HEADER = struct.Struct("<IIHBBIIIHBBB3x32x")


def dword_sum(data: bytes) -> int:
    """Sum of the little-endian 32-bit words of data, mod 2**32: 0 for a correctly checksummed block."""
    return sum(struct.unpack(f"<{len(data) // 4}I", data[: len(data) // 4 * 4])) & DWORD_MASK


@dataclass(frozen=True)
class IntelMicrocodeUpdate:
    """One update of an intel-ucode file; it applies to every (signature, processor_flags) listed."""

    revision: int  # unsigned, as the kernel compares them
    date: datetime.date
    signatures: list[tuple[int, int]]  # header signature first, then the extended table's

    def applies_to(self, signature: int, processor_flags: int | None = None) -> bool:
        """processor_flags is the CPU's platform bit (sysfs processor_flags); None matches any platform."""
        return any(
            sig == signature and (processor_flags is None or flags & processor_flags != 0
                                  or flags == processor_flags == 0)  # CPUs without platform ids
            for sig, flags in self.signatures
        )


@dataclass(frozen=True)
class AmdMicrocodePatch:
    """One patch of an amd-ucode container, with the CPUID signatures the equivalence table maps to it."""

    revision: int  # patch_id
    equiv_cpu: int
    signatures: list[int]

    def applies_to(self, signature: int, processor_flags: int | None = None) -> bool:
        """AMD patches have no platform flags; processor_flags is accepted and ignored."""
        return signature in self.signatures


class _Update(Protocol):
    @property
    def revision(self) -> int: ...

    def applies_to(self, signature: int, processor_flags: int | None = None) -> bool: ...


_U = TypeVar("_U", bound=_Update)


def newest_revision_for(updates: Iterable[_U], signature: int,
                        processor_flags: int | None = None) -> tuple[int, _U] | None:
    """The highest revision among updates that apply to this CPU, with its update; None if none does."""
    matching = [update for update in updates if update.applies_to(signature, processor_flags)]
    if not matching:
        return None
    best = max(matching, key=lambda update: update.revision)
    return best.revision, best


_Fail = Callable[[str], ParseError]  # builds the error for a problem, naming file and offset


def parse_intel_microcode(data: bytes, source: str) -> list[IntelMicrocodeUpdate]:
    """All updates of an Intel microcode file (one or more concatenated, e.g. intel-ucode/06-9a-03)."""
    if not data:
        raise ParseError(source, "empty file; expected Intel microcode updates")
    updates, offset = [], 0
    while offset < len(data):
        update, offset = _intel_update(data, offset, source)
        updates.append(update)
    return updates


def _intel_update(data: bytes, offset: int, source: str) -> tuple[IntelMicrocodeUpdate, int]:
    """Parse and verify the update at offset; returns it and the offset of the next one."""

    def fail(problem: str) -> ParseError:
        return ParseError(source, f"Intel microcode update at byte {offset}: {problem}")

    if len(data) - offset < INTEL_HEADER.size:
        raise fail(f"{len(data) - offset} bytes left, a header needs {INTEL_HEADER.size}")
    (header_version, revision, date, signature, checksum, _loader, flags, data_size,
     total_size) = INTEL_HEADER.unpack_from(data, offset)
    if header_version != 1:
        raise fail(f"header version {header_version}, expected 1")
    if data_size == 0:  # legacy header: both sizes are implied, whatever total_size says (SDM 9.11.1)
        data_size, total_size = INTEL_DEFAULT_DATA_SIZE, INTEL_DEFAULT_TOTAL_SIZE
    if data_size % 4 or total_size % 4 or total_size < INTEL_HEADER.size + data_size:
        raise fail(f"inconsistent sizes: data {data_size}, total {total_size}")
    if offset + total_size > len(data):
        raise fail(f"total size {total_size} runs past the end of the file ({len(data)} bytes)")
    if dword_sum(data[offset:offset + INTEL_HEADER.size + data_size]):
        raise fail("checksum mismatch")
    extended_at = offset + INTEL_HEADER.size + data_size
    extended = _intel_extended(data[extended_at:offset + total_size], signature + flags + checksum, fail)
    update = IntelMicrocodeUpdate(revision=revision, date=_bcd_date(date, fail),
                                  signatures=[(signature, flags), *extended])
    return update, offset + total_size


def _intel_extended(table: bytes, header_sum: int, fail: _Fail) -> list[tuple[int, int]]:
    """(signature, processor_flags) pairs of an extended signature table; table may be empty.

    Each entry's checksum makes the update sum to 0 with its signature and flags in the header's place,
    i.e. signature + flags + checksum equals the header's (header_sum).
    """
    if not table:
        return []
    if len(table) < INTEL_EXT_HEADER.size:
        raise fail(f"extended signature table of {len(table)} bytes is truncated")
    count, _checksum = INTEL_EXT_HEADER.unpack_from(table)
    if len(table) != INTEL_EXT_HEADER.size + count * INTEL_EXT_SIGNATURE.size:
        raise fail(f"extended signature table of {len(table)} bytes does not hold {count} signatures")
    if dword_sum(table):
        raise fail("extended signature table checksum mismatch")
    entries = [INTEL_EXT_SIGNATURE.unpack_from(table, INTEL_EXT_HEADER.size + i * INTEL_EXT_SIGNATURE.size)
               for i in range(count)]
    if any((sig + flags + checksum - header_sum) & DWORD_MASK for sig, flags, checksum in entries):
        raise fail("extended signature checksum mismatch")
    return [(sig, flags) for sig, flags, _ in entries]


def _bcd_date(value: int, fail: _Fail) -> datetime.date:
    """0xMMDDYYYY, each digit a BCD nibble: 0x04182023 is 2023-04-18."""
    digits = f"{value:08x}"
    try:
        return datetime.date(int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    except ValueError:
        raise fail(f"date field 0x{digits} is not a BCD date MMDDYYYY") from None


def parse_amd_microcode(data: bytes, source: str) -> list[AmdMicrocodePatch]:
    """All patches of an AMD microcode file (one or more concatenated containers)."""
    if not data:
        raise ParseError(source, "empty file; expected an AMD microcode container")
    reader = _Reader(data, source)
    patches: list[AmdMicrocodePatch] = []
    while not reader.at_end():
        patches.extend(_amd_container(reader))
    return patches


def _amd_container(reader: _Reader) -> Iterator[AmdMicrocodePatch]:
    (magic,) = reader.unpack(struct.Struct("<I"), "container magic")
    if magic != AMD_MAGIC:
        raise reader.fail(f"magic 0x{magic:08x}, expected 0x{AMD_MAGIC:08x} ('DMA\\0')")
    equivalence = _amd_equivalence(reader.section(AMD_EQUIV_TABLE_TYPE), reader)
    while not reader.at_end() and reader.peek_u32() == AMD_PATCH_TYPE:
        patch = reader.section(AMD_PATCH_TYPE)
        if len(patch) < AMD_PATCH_HEADER.size:
            raise reader.fail(f"patch of {len(patch)} bytes, its header alone needs {AMD_PATCH_HEADER.size}")
        # data_code is a date, but its digit order changed over the years (DDMMYYYY, MMDDYYYY): not parsed.
        _data_code, revision, *_, equiv_cpu, _, _, _ = AMD_PATCH_HEADER.unpack_from(patch)
        yield AmdMicrocodePatch(revision=revision, equiv_cpu=equiv_cpu,
                                signatures=[cpu for cpu, equiv in equivalence if equiv == equiv_cpu])


def _amd_equivalence(table: bytes, reader: _Reader) -> list[tuple[int, int]]:
    """(installed_cpu signature, equiv_cpu) pairs, up to the terminating all-zero entry."""
    if len(table) % AMD_EQUIV_ENTRY.size:
        raise reader.fail(f"equivalence table of {len(table)} bytes is not a whole number of entries")
    entries = []
    for installed_cpu, _mask, _compare, equiv_cpu, _ in AMD_EQUIV_ENTRY.iter_unpack(table):
        if installed_cpu == 0:
            break
        entries.append((installed_cpu, equiv_cpu))
    return entries


class _Reader:
    """A cursor over bytes that turns running past the end into a ParseError naming the offset."""

    def __init__(self, data: bytes, source: str):
        self.data, self.source, self.offset = data, source, 0

    def fail(self, problem: str) -> ParseError:
        return ParseError(self.source, f"AMD microcode at byte {self.offset}: {problem}")

    def at_end(self) -> bool:
        return self.offset >= len(self.data)

    def take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise self.fail(f"{what} needs {size} bytes, only {len(self.data) - self.offset} left")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple:
        return layout.unpack(self.take(layout.size, what))

    def peek_u32(self) -> int:
        return int.from_bytes(self.data[self.offset:self.offset + 4], "little")

    def section(self, expected_type: int) -> bytes:
        """The body of a (type, size) section, which must be of expected_type."""
        section_type, size = self.unpack(AMD_SECTION, "section header")
        if section_type != expected_type:
            raise self.fail(f"section type {section_type}, expected {expected_type}")
        return self.take(size, f"section of type {section_type}")
