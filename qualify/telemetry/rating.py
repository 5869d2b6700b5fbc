"""The CPU's own rated (nominal, non-boost) clock, read from what its cpufreq driver exposes.

The sustained all-core clock under load is judged against this figure rather than an absolute MHz:
a CPU that runs well below its own nominal clock under load is throttled (or power-capped) whatever
its vendor, and AMD parts show no thermal_throttle counters at all. Where each driver keeps it:

- intel_pstate / intel_cpufreq: cpufreq/base_frequency (kHz);
- amd-pstate: cpufreq/amd_pstate_nominal_freq (kHz) where the kernel has it, else acpi_cppc/nominal_freq
  (MHz; the CPPC figure amd-pstate derives its nominal from; 0 on firmware that leaves it out);
- acpi-cpufreq: cpuinfo_max_freq when boost is off (cpufreq/boost = 0); with boost on that file may hold
  the boost clock, so the P0 state (highest of scaling_available_frequencies, skipping Intel's "base + 1 MHz"
  turbo entry), else bios_limit;
- none of these (intel_pstate without HWP on older Xeons, no cpufreq at all): the rated clock Intel prints in
  the model name ("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"), said as such.

    files = node.read_glob(node.sys_path("devices/system/cpu"), NOMINAL_FILES)
    rating = nominal_clock(files)   # NominalClock(mhz={0: 3800.0, ...}, source="acpi-cpufreq P0 ...") or None
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_PER_CPU = ("cpufreq/scaling_driver", "cpufreq/base_frequency", "cpufreq/amd_pstate_nominal_freq",
            "acpi_cppc/nominal_freq", "cpufreq/cpuinfo_max_freq", "cpufreq/scaling_available_frequencies",
            "cpufreq/bios_limit", "cpufreq/boost")
# relative to devices/system/cpu, for Node.read_glob
NOMINAL_FILES = " ".join([*(f"cpu[0-9]*/{name}" for name in _PER_CPU), "cpufreq/boost", "intel_pstate/no_turbo"])
INTEL_TURBO_STEP_KHZ = 1000   # acpi-cpufreq on Intel lists turbo as base + 1 MHz


@dataclass(frozen=True)
class NominalClock:
    mhz: dict[int, float]   # per CPU (hybrid parts differ per core type)
    source: str             # the driver and the file it came from, for the sentence

    @property
    def mean_mhz(self) -> float:
        return sum(self.mhz.values()) / len(self.mhz)


_RATED_IN_NAME = re.compile(r"@\s*(\d+(?:\.\d+)?)\s*GHz\b", re.I)


def nominal_clock(files: dict[str, str], model_name: str | None = None) -> NominalClock | None:
    """The nominal clock of every CPU that has one, from one source for all; else the clock in the CPU's model
    name; None when neither says."""
    per_cpu: dict[int, dict[str, str]] = {}
    for rel, value in files.items():
        head, _, name = rel.partition("/")
        if head.startswith("cpu") and head[3:].isdigit():
            per_cpu.setdefault(int(head[3:]), {})[name] = value.strip()
    found = {cpu: hit for cpu, cpu_files in per_cpu.items() if (hit := _one_cpu(cpu_files, files)) is not None}
    if not found:
        rated = _RATED_IN_NAME.search(model_name or "")
        if rated is None:
            return None
        mhz = float(rated[1]) * 1000
        return NominalClock(mhz=dict.fromkeys(sorted(per_cpu) or [0], mhz),
                            source=f"the model name ('{model_name.strip() if model_name else ''}')")
    source = Counter(source for _, source in found.values()).most_common(1)[0][0]
    return NominalClock(mhz={cpu: mhz for cpu, (mhz, s) in sorted(found.items()) if s == source}, source=source)


def _khz(text: str | None) -> float | None:
    try:
        value = float((text or "").split()[0])
    except (ValueError, IndexError):
        return None
    return value if value > 0 else None


def _one_cpu(cpu: dict[str, str], files: dict[str, str]) -> tuple[float, str] | None:
    """(MHz, source) of one CPU's nominal clock."""
    driver = cpu.get("cpufreq/scaling_driver", "")
    if driver.startswith("intel_") and (khz := _khz(cpu.get("cpufreq/base_frequency"))):
        return khz / 1000, f"{driver} base_frequency"
    if khz := _khz(cpu.get("cpufreq/amd_pstate_nominal_freq")):
        return khz / 1000, f"{driver or 'amd-pstate'} amd_pstate_nominal_freq"
    if mhz := _khz(cpu.get("acpi_cppc/nominal_freq")):  # MHz here
        return mhz, f"{driver + ' ' if driver else ''}ACPI CPPC nominal_freq"
    if driver == "acpi-cpufreq":
        boost = cpu.get("cpufreq/boost", files.get("cpufreq/boost", "")).strip()
        if boost == "0" and (khz := _khz(cpu.get("cpufreq/cpuinfo_max_freq"))):
            return khz / 1000, "acpi-cpufreq cpuinfo_max_freq (boost off)"
        steps = sorted((v for v in map(_khz, cpu.get("cpufreq/scaling_available_frequencies", "").split())
                        if v), reverse=True)
        if len(steps) > 1 and steps[0] - steps[1] == INTEL_TURBO_STEP_KHZ:
            steps = steps[1:]
        if steps:
            return steps[0] / 1000, "acpi-cpufreq P0 state (highest of scaling_available_frequencies)"
        if khz := _khz(cpu.get("cpufreq/bios_limit")):
            return khz / 1000, "acpi-cpufreq bios_limit"
    if khz := _khz(cpu.get("cpufreq/base_frequency")):
        return khz / 1000, f"{driver + ' ' if driver else ''}base_frequency"
    return None
