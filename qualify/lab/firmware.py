"""Microcode update files for the lab's /lib/firmware trees and for tests.

The bytes are laid out and checksummed like real intel-ucode / amd-ucode files, so the parsers
(and the kernel's own sanity checks) accept them; the payload is deterministic filler.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence

from qualify.parsers.microcode_firmware import (
    AMD_EQUIV_ENTRY,
    AMD_EQUIV_TABLE_TYPE,
    AMD_MAGIC,
    AMD_PATCH_HEADER,
    AMD_PATCH_TYPE,
    AMD_SECTION,
    DWORD_MASK,
    INTEL_DEFAULT_DATA_SIZE,
    INTEL_EXT_HEADER,
    INTEL_EXT_SIGNATURE,
    INTEL_HEADER,
    dword_sum,
)

INTEL_TOTAL_SIZE_UNIT = 1024  # Intel's total sizes are multiples of this (iucode_tool --strict-checks)
AMD_PATCH_SIZE = 3200  # the size of a family 17h patch; the loaders only check an upper bound
AMD_DATA_CODE = 0x02052024  # the patch date, BCD MMDDYYYY as in current amd-ucode files


def intel_microcode_file(signature: int, processor_flags: int, revision: int, date: str = "2024-02-05",
                         data_size: int = 2000, extended: Sequence[tuple[int, int]] = ()) -> bytes:
    """One Intel microcode update for a CPUID signature and platform-flag mask.

    data_size is the payload size, grown where needed so that the total size is a multiple of
    1024 as in Intel's files. data_size 0 writes the legacy header whose sizes are implied
    (2000 + 48); it cannot carry an extended table of further (signature, processor_flags) pairs.
    """
    if data_size % 4:
        raise ValueError(f"data_size {data_size} is not a multiple of 4")
    if data_size == 0 and extended:
        raise ValueError("a legacy update (data_size 0) has no room for an extended signature table")
    table_size = INTEL_EXT_HEADER.size + len(extended) * INTEL_EXT_SIGNATURE.size if extended else 0
    payload_size = data_size or INTEL_DEFAULT_DATA_SIZE
    payload_size += -(INTEL_HEADER.size + payload_size + table_size) % INTEL_TOTAL_SIZE_UNIT
    body = _filler(payload_size, seed=signature << 32 | revision)
    size_fields = (0, 0) if data_size == 0 else (payload_size, INTEL_HEADER.size + payload_size + table_size)

    def header(checksum: int) -> bytes:
        return INTEL_HEADER.pack(1, revision, _bcd_date(date), signature, checksum, 1, processor_flags,
                                 *size_fields)

    checksum = -dword_sum(header(0) + body) & DWORD_MASK
    return header(checksum) + body + _intel_extended_table(signature + processor_flags + checksum, extended)


def _intel_extended_table(header_sum: int, extended: Sequence[tuple[int, int]]) -> bytes:
    """Extended signature table; each entry's checksum stands in for the header's sig+flags+checksum."""
    if not extended:
        return b""
    entries = b"".join(INTEL_EXT_SIGNATURE.pack(sig, flags, (header_sum - sig - flags) & DWORD_MASK)
                       for sig, flags in extended)
    table_checksum = -dword_sum(INTEL_EXT_HEADER.pack(len(extended), 0) + entries) & DWORD_MASK
    return INTEL_EXT_HEADER.pack(len(extended), table_checksum) + entries


def _bcd_date(iso_date: str) -> int:
    """"2023-04-18" -> 0x04182023, the BCD MMDDYYYY of Intel headers."""
    day = datetime.date.fromisoformat(iso_date)
    return int(f"{day.month:02d}{day.day:02d}{day.year:04d}", 16)


def amd_microcode_container(patches: Sequence[tuple[int, int]]) -> bytes:
    """One AMD container with a patch per (CPUID signature, revision)."""
    signatures = list(dict.fromkeys(signature for signature, _ in patches))
    equiv_table = b"".join(AMD_EQUIV_ENTRY.pack(sig, 0, 0, amd_equiv_cpu(sig), 0) for sig in signatures)
    equiv_table += AMD_EQUIV_ENTRY.pack(0, 0, 0, 0, 0)  # the terminating entry real files carry
    out = AMD_MAGIC.to_bytes(4, "little") + AMD_SECTION.pack(AMD_EQUIV_TABLE_TYPE, len(equiv_table)) + equiv_table
    for signature, revision in patches:
        header = AMD_PATCH_HEADER.pack(AMD_DATA_CODE, revision, 0x8004, 0, 0, 0, 0, 0, amd_equiv_cpu(signature),
                                       0, 0, 0)
        patch = header + _filler(AMD_PATCH_SIZE - len(header), seed=signature << 32 | revision)
        out += AMD_SECTION.pack(AMD_PATCH_TYPE, len(patch)) + patch
    return out


def amd_equiv_cpu(signature: int) -> int:
    """AMD's equivalence id of a signature: extended family/model byte + model/stepping byte (0xA20F10 -> 0xA210)."""
    return (signature >> 8) & 0xFF00 | signature & 0xFF


def _filler(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)
