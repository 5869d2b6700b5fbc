"""/proc/cpuinfo and sysfs microcode files: real x86 output, generated many-CPU files, VMs, ARM."""

from __future__ import annotations

import re

import pytest

from corpus import corpus_path, parse_error
from qualify.errors import ParseError
from qualify.parsers.cpu_topology import parse_cpulist
from qualify.parsers.cpuinfo import (
    cpuid_signature,
    intel_ucode_filename,
    is_engineering_sample,
    parse_cpuinfo,
    parse_hex_value,
)

# family, model, stepping, microcode, signature of each corpus cpuinfo
CPUINFO_EXPECTED = {
    "cpuinfo-i5-12400-alderlake-microcode-0x2c-cpu0.txt": (6, 151, 5, 0x2C, 0x90675),
    # Zen 4: family 25 = base 0xF + extended 0xA, the signature AMD's microcode files are keyed by
    "cpuinfo-amd-epyc-9354-genoa-family-25-microcode-0xa101148-cpu0.txt": (25, 17, 1, 0xA101148, 0xA10F11),
    # arm64: no family/model/stepping/microcode lines; two CPUs
    "cpuinfo-arm64-cortex-a57-kata-containers-test-template-2cpus.txt": (None, None, None, None, None),
}
CPU_COUNT = {"cpuinfo-arm64-cortex-a57-kata-containers-test-template-2cpus.txt": 2}
CPUINFO_FILES = sorted(path.name for path in corpus_path("microcode").glob("cpuinfo-*.txt"))


def alder_lake_stanza() -> str:
    return corpus_path("microcode", "cpuinfo-i5-12400-alderlake-microcode-0x2c-cpu0.txt").read_text()


def test_every_corpus_cpuinfo_has_an_expectation():
    assert set(CPUINFO_FILES) == set(CPUINFO_EXPECTED)


@pytest.mark.parametrize("name", CPUINFO_FILES)
def test_corpus_cpuinfo(name):
    family, model, stepping, microcode, signature = CPUINFO_EXPECTED[name]
    cpus = parse_cpuinfo(corpus_path("microcode", name).read_text())
    assert len(cpus) == CPU_COUNT.get(name, 1) and [c.processor for c in cpus] == list(range(len(cpus)))
    cpu = cpus[0]
    assert (cpu.family, cpu.model, cpu.stepping, cpu.microcode) == (family, model, stepping, microcode)
    assert cpu.signature == signature


def test_alder_lake_fields():
    [cpu] = parse_cpuinfo(alder_lake_stanza())
    assert cpu.processor == 0
    assert cpu.vendor_id == "GenuineIntel"
    assert cpu.model_name == "12th Gen Intel(R) Core(TM) i5-12400"
    assert (cpu.physical_id, cpu.core_id) == (0, 0)
    assert {"avx2", "hfi", "split_lock_detect", "vmx"} <= cpu.flags
    assert "preemption_timer" not in cpu.flags  # that is "vmx flags", not "flags"
    assert not is_engineering_sample(cpu.model_name)


def sixteen_cpus(odd_one: int, odd_microcode: str) -> str:
    """16 logical CPUs built from the real stanza; one of them reports another microcode revision."""
    stanza = alder_lake_stanza()
    cpus = []
    for n in range(16):
        text = re.sub(r"^processor\t: 0$", f"processor\t: {n}", stanza, flags=re.M)
        text = re.sub(r"^core id\t\t: 0$", f"core id\t\t: {n // 2}", text, flags=re.M)
        if n == odd_one:
            text = text.replace("microcode\t: 0x2c", f"microcode\t: {odd_microcode}")
        cpus.append(text)
    return "".join(cpus)


def test_sixteen_cpus_with_one_different_microcode():
    cpus = parse_cpuinfo(sixteen_cpus(odd_one=11, odd_microcode="0x2a"))
    assert [cpu.processor for cpu in cpus] == list(range(16))
    assert [cpu.core_id for cpu in cpus] == [n // 2 for n in range(16)]
    differing = [cpu.processor for cpu in cpus if cpu.microcode != 0x2C]
    assert differing == [11]
    assert cpus[11].microcode == 0x2A


def test_crlf_and_no_trailing_blank_line():
    text = sixteen_cpus(odd_one=3, odd_microcode="0x2b").rstrip("\n").replace("\n", "\r\n")
    cpus = parse_cpuinfo(text)
    assert len(cpus) == 16
    assert cpus[3].microcode == 0x2B
    assert cpus[15].model_name == "12th Gen Intel(R) Core(TM) i5-12400"


def test_vm_without_microcode_line():
    text = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
            "model name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu hypervisor\n\n")
    [cpu] = parse_cpuinfo(text)
    assert cpu.microcode is None
    assert cpu.signature == 0xA00F11
    assert "hypervisor" in cpu.flags
    assert (cpu.physical_id, cpu.core_id) == (None, None)


def test_arm_cpuinfo_does_not_crash():
    text = ("processor\t: 0\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
            "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n"
            "processor\t: 1\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n")
    cpus = parse_cpuinfo(text)
    assert [cpu.processor for cpu in cpus] == [0, 1]
    assert cpus[0].flags == frozenset({"fp", "asimd"})
    assert (cpus[0].vendor_id, cpus[0].family, cpus[0].model_name, cpus[0].microcode) == (None, None, None, None)
    assert cpus[0].signature is None


def test_old_arm_with_header_and_hardware_stanzas():
    text = ("Processor\t: ARMv7 Processor rev 5 (v7l)\nprocessor\t: 0\nBogoMIPS\t: 38.40\n"
            "processor\t: 1\nBogoMIPS\t: 38.40\n\nHardware\t: BCM2835\nRevision\t: a21041\n")
    assert [cpu.processor for cpu in parse_cpuinfo(text)] == [0, 1]


def test_decimal_microcode_of_old_kernels():
    [cpu] = parse_cpuinfo("processor\t: 0\ncpu family\t: 6\nmodel\t\t: 23\nstepping\t: unknown\nmicrocode\t: 17\n")
    assert cpu.microcode == 17
    assert cpu.stepping is None


@pytest.mark.parametrize("text, problem", [
    ("", "no 'processor : N' lines"),
    ("<html><body>502 Bad Gateway</body></html>\n", "line 1: expected 'key : value'"),
    ("processor\t: 0\nmicrocode\t: 0xzz\n", "processor 0: 'microcode' should be a number"),
    ("processor\t: first\n", "'processor' should be a number"),
])
def test_garbage_raises_parse_error_naming_the_source(text, problem):
    assert parse_error(lambda t: parse_cpuinfo(t, source="pve2:/proc/cpuinfo"), text, problem).source == \
        "pve2:/proc/cpuinfo"


@pytest.mark.parametrize("family, model, stepping, signature, filename", [
    (6, 154, 3, 0x906A3, "06-9a-03"),  # Alder Lake-P (the seed's i7-1280P)
    (6, 151, 5, 0x90675, "06-97-05"),  # Alder Lake-S i5-12400
    (6, 70, 1, 0x40661, "06-46-01"),  # Haswell-H of the haswell dmesg
    (0x19, 0x21, 0, 0xA20F10, "19-21-00"),  # AMD Zen 3 (Vermeer)
    (0x17, 0x71, 0, 0x870F10, "17-71-00"),  # AMD Zen 2 (Matisse)
    (0xF, 4, 1, 0xF41, "0f-04-01"),  # Pentium 4: base family 0xF, no extended family
])
def test_cpuid_signature_and_intel_filename(family, model, stepping, signature, filename):
    assert cpuid_signature(family, model, stepping) == signature
    assert intel_ucode_filename(family, model, stepping) == filename


def test_cpuid_signature_rejects_out_of_range_values():
    with pytest.raises(ValueError):
        cpuid_signature(6, 154, 16)


@pytest.mark.parametrize("name", [
    "Genuine Intel(R) 0000 @ 1.80GHz",
    "Intel(R) Core(TM) i7-1280P 0000",
    "Genuine Intel(R) CPU 0000 @ 2.40GHz",
    "Intel(R) Xeon(R) CPU 0000 @ 2.10GHz",
    "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz Engineering Sample",
    "Intel(R) Core(TM) i9-12900K ES",
    "Intel(R) Xeon(R) Gold 6338 CPU QS @ 2.00GHz",
    "AMD Eng Sample: 100-000000008-04_43/28_N",
])
def test_engineering_samples(name):
    assert is_engineering_sample(name)


@pytest.mark.parametrize("name", [
    "12th Gen Intel(R) Core(TM) i5-12400",
    "AMD EPYC",
    "AMD Ryzen 9 5950X 16-Core Processor",
    "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz",
    "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz",  # "0" marks the v1 generation, not a sample
    "Intel(R) Xeon(R) CPU @ 2.20GHz",  # cloud VMs
    "Genuine Intel(R) CPU U7300 @ 1.30GHz",
])
def test_production_cpus(name):
    assert not is_engineering_sample(name)


def test_sysfs_hex_values():
    assert parse_hex_value("0x435\n", "cpu0/microcode/version") == 0x435
    assert parse_hex_value("0x80", "cpu0/microcode/processor_flags") == 0x80


@pytest.mark.parametrize("text", ["", "435", "0x", "0x4g5", "0x435 0x436"])
def test_sysfs_hex_garbage(text):
    with pytest.raises(ParseError, match=r"cannot parse cpu0/microcode/version: expected one hexadecimal"):
        parse_hex_value(text, "cpu0/microcode/version")


@pytest.mark.parametrize("text, problem", [("0-x", "expected a CPU list like 0-3,8"), ("7-3", "impossible CPU range")])
def test_a_bad_cpulist_is_a_parse_error_naming_the_file(text, problem):
    """It was a TypeError (ParseError called with one argument): a traceback instead of the file's name."""
    error = parse_error(lambda t: parse_cpulist(t, "pve2:/sys/devices/system/cpu/online"), text, problem)
    assert error.source == "pve2:/sys/devices/system/cpu/online"
