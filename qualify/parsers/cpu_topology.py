"""CPU topology from sysfs (pure): cpulist files ("0-3,8") and each logical CPU's core, package and type.

`devices/system/cpu/online`, `cpuN/topology/{core_id,physical_package_id}`; on Intel hybrid parts the
PMU devices list their CPUs: `devices/cpu_core/cpus` (P-cores) and `devices/cpu_atom/cpus` (E-cores).
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.errors import ParseError


def parse_cpulist(text: str, source: str = "cpulist") -> list[int]:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11] (the kernel's cpulist format); '' -> []."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        try:
            low, high = int(first), int(last) if sep else int(first)
        except ValueError:
            raise ParseError(source, f"expected a CPU list like 0-3,8, got {text.strip()!r}") from None
        if high < low or high - low > 65536:
            raise ParseError(source, f"impossible CPU range {part!r}")
        cpus.extend(range(low, high + 1))
    return sorted(set(cpus))


@dataclass(frozen=True)
class LogicalCpu:
    cpu: int
    core: int | None
    package: int | None
    kind: str | None          # "P-core" / "E-core" on hybrid parts, else None

    @property
    def label(self) -> str:
        where = [f"core {self.core}" if self.core is not None else None,
                 f"package {self.package}" if self.package else None, self.kind]
        return f"CPU {self.cpu} ({', '.join(w for w in where if w)})" if any(where) else f"CPU {self.cpu}"


def topology(online: str, files: dict[str, str], p_cores: str | None = None, e_cores: str | None = None
             ) -> list[LogicalCpu]:
    """`files`: {"cpu3/topology/core_id": "2", ...} relative to devices/system/cpu."""
    performance = set(parse_cpulist(p_cores, "cpu_core/cpus")) if p_cores else set()
    efficient = set(parse_cpulist(e_cores, "cpu_atom/cpus")) if e_cores else set()

    def number(key: str) -> int | None:
        value = files.get(key, "").strip()
        return int(value) if value.lstrip("-").isdigit() else None

    cpus = []
    for cpu in parse_cpulist(online, "devices/system/cpu/online"):
        kind = "P-core" if cpu in performance else "E-core" if cpu in efficient else None
        cpus.append(LogicalCpu(cpu, number(f"cpu{cpu}/topology/core_id"),
                               number(f"cpu{cpu}/topology/physical_package_id"), kind))
    return cpus
