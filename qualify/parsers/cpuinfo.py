"""Linux /proc/cpuinfo and the per-CPU microcode files in sysfs.

x86 is what the microcode check needs, but other architectures must parse too:
fields they do not print (family, microcode, ...) become None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.errors import ParseError


@dataclass(frozen=True)
class CpuInfo:
    """One logical CPU, i.e. one "processor : N" stanza."""

    processor: int
    vendor_id: str | None
    family: int | None
    model: int | None
    model_name: str | None
    stepping: int | None
    microcode: int | None  # absent in many VMs
    flags: frozenset[str]  # x86 "flags", or ARM "Features"
    physical_id: int | None
    core_id: int | None

    @property
    def signature(self) -> int | None:
        """CPUID(1).EAX, what microcode files are keyed by; None unless family/model/stepping are known."""
        if self.family is None or self.model is None or self.stepping is None:
            return None
        return cpuid_signature(self.family, self.model, self.stepping)


def cpuid_signature(family: int, model: int, stepping: int) -> int:
    """Encode family/model/stepping (as /proc/cpuinfo shows them) the way CPUID(1).EAX does.

    Families from 0xF up are split into base family 0xF plus an extended family (AMD Zen: 0x17, 0x19).
    """
    if not (0 <= stepping <= 0xF and 0 <= model <= 0xFF and 0 <= family <= 0xF + 0xFF):
        raise ValueError(f"family {family}, model {model}, stepping {stepping} out of CPUID range")
    base_family, ext_family = (0xF, family - 0xF) if family >= 0xF else (family, 0)
    return stepping | (model & 0xF) << 4 | base_family << 8 | (model >> 4) << 16 | ext_family << 20


def intel_ucode_filename(family: int, model: int, stepping: int) -> str:
    """Name of the file under /lib/firmware/intel-ucode/ for this CPU, e.g. "06-9a-03"."""
    return f"{family:02x}-{model:02x}-{stepping:02x}"


# Engineering/qualification samples hide the model number behind "0000" or say ES/QS outright;
# AMD ones say "AMD Eng Sample". A single "0" (e.g. "Xeon(R) CPU E5-2680 0 @") is a normal v1 part.
_SAMPLE_NAME = re.compile(r"\b(?:0000|ES|QS)\b|(?i:\beng(?:ineering)?\.?\s+sample\b)")


def is_engineering_sample(model_name: str) -> bool:
    """True when the CPU's model name marks it as an engineering or qualification sample."""
    return _SAMPLE_NAME.search(model_name) is not None


_HEX_VALUE = re.compile(r"0x[0-9a-f]+", re.IGNORECASE)


def parse_hex_value(text: str, source: str) -> int:
    """A sysfs file holding one hex number such as "0x435\\n" (microcode/version, processor_flags)."""
    value = text.strip()
    if not _HEX_VALUE.fullmatch(value):
        raise ParseError(source, f"expected one hexadecimal number like 0x435, got {value[:40]!r}")
    return int(value, 16)


def parse_cpuinfo(text: str, source: str = "/proc/cpuinfo") -> list[CpuInfo]:
    """All logical CPUs in /proc/cpuinfo text, in file order."""
    cpus = [_cpu(stanza, source) for stanza in _stanzas(text, source) if "processor" in stanza]
    if not cpus:
        raise ParseError(source, "no 'processor : N' lines; expected the text of /proc/cpuinfo")
    return cpus


def _stanzas(text: str, source: str) -> list[dict[str, str]]:
    """Split into key/value blocks: one per blank-line separated stanza, or per repeated "processor"."""
    stanzas: list[dict[str, str]] = [{}]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            stanzas.append({})
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise ParseError(source, f"line {number}: expected 'key : value', got {line[:60]!r}")
        key = key.strip()
        if key == "processor" and key in stanzas[-1]:
            stanzas.append({})
        stanzas[-1][key] = value.strip()
    return [stanza for stanza in stanzas if stanza]


def _cpu(stanza: dict[str, str], source: str) -> CpuInfo:
    def number(key: str) -> int | None:
        value = stanza.get(key)
        if value is None or value == "unknown":  # x86 prints "stepping : unknown" for some old CPUs
            return None
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            raise ParseError(source, f"processor {stanza['processor']}: '{key}' should be a number, "
                                     f"got {value!r}") from None

    processor = number("processor")
    assert processor is not None  # only stanzas with a "processor" key get here
    return CpuInfo(
        processor=processor,
        vendor_id=stanza.get("vendor_id"),
        family=number("cpu family"),
        model=number("model"),
        model_name=stanza.get("model name"),
        stepping=number("stepping"),
        microcode=number("microcode"),  # hex since Linux 3.x; plain decimal on older kernels
        flags=frozenset(stanza.get("flags", stanza.get("Features", "")).split()),
        physical_id=number("physical id"),
        core_id=number("core id"),
    )
