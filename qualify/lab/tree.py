"""A node's prepared sysfs/procfs tree: what the checks read instead of /sys and /proc.

`build_node_tree(root, spec)` writes `proc/`, `sys/`, `firmware/` and `kernel.log` under root.
NodeSpec's default is the seed build's node (Erying G660, Intel Core i5-12650H, Proxmox 6.8);
tests vary single fields (microcode, CPU model, firmware offer, ...) to build other hardware.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from qualify.parsers.cpuinfo import cpuid_signature, intel_ucode_filename

# Flags of a real Alder Lake (no "hypervisor": this is bare metal).
ALDER_LAKE_FLAGS: tuple[str, ...] = tuple(
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx "
    "fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts "
    "rep_good nopl xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq dtes64 monitor "
    "ds_cpl vmx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid sse4_1 sse4_2 x2apic movbe popcnt "
    "tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb ssbd ibrs "
    "ibpb stibp ibrs_enhanced tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 "
    "smep bmi2 erms invpcid rdseed adx smap clflushopt clwb intel_pt sha_ni xsaveopt xsavec xgetbv1 "
    "xsaves split_lock_detect user_shstk avx_vnni dtherm ida arat pln pts hwp hwp_notify "
    "hwp_act_window hwp_epp hwp_pkg_req hfi vnmi umip pku ospke waitpkg gfni vaes vpclmulqdq rdpid "
    "movdiri movdir64b fsrm md_clear serialize arch_lbr ibt flush_l1d arch_capabilities".split()
)
ALDER_LAKE_VMX_FLAGS = (
    "vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad ept_1gb flexpriority apicv "
    "tsc_offset vtpr mtf vapic ept vpid unrestricted_guest vapic_reg vid ple shadow_vmcs pml "
    "ept_mode_based_exec tsc_scaling usr_wait_pause"
)
ALDER_LAKE_BUGS: tuple[str, ...] = ("spectre_v1", "spectre_v2", "spec_store_bypass", "swapgs",
                                    "eibrs_pbrsb", "rfds", "bhi")

# What a 6.8 kernel reports for an Alder Lake H part.
ALDER_LAKE_VULNERABILITIES: dict[str, str] = {
    "gather_data_sampling": "Not affected",
    "itlb_multihit": "Not affected",
    "l1tf": "Not affected",
    "mds": "Not affected",
    "meltdown": "Not affected",
    "mmio_stale_data": "Not affected",
    "reg_file_data_sampling": "Mitigation: Clear Register File",
    "retbleed": "Not affected",
    "spec_rstack_overflow": "Not affected",
    "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
    "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
    "spectre_v2": "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; "
                  "PBRSB-eIBRS: SW sequence; BHI: BHI_DIS_S",
    "srbds": "Not affected",
    "tsx_async_abort": "Not affected",
}

ERYING_G660_DMI: dict[str, str] = {
    "sys_vendor": "Erying",
    "product_name": "G660",
    "board_vendor": "Erying",
    "board_name": "G660",
    "bios_vendor": "American Megatrends International, LLC.",
    "bios_version": "5.27",
    "bios_date": "07/20/2023",
}


# ---------------------------------------------------------------- PCI devices and platform facts

# The kernel's AER bit names in bit order (drivers/pci/pcie/aer.c), as aer_dev_* lists them.
AER_CORRECTABLE_BITS = ("RxErr", "BadTLP", "BadDLLP", "Rollover", "Timeout", "NonFatalErr", "CorrIntErr", "HeaderOF")
AER_UNCORRECTABLE_BITS = ("Undefined", "DLP", "SDES", "TLP", "FCP", "CmpltTO", "CmpltAbrt", "UnxCmplt", "RxOF",
                          "MalfTLP", "ECRC", "UnsupReq", "ACSViol", "UncorrIntErr", "BlockedTLP", "AtomicOpBlocked",
                          "TLPBlockedErr", "PoisonTLPBlocked")
_AER_TOTALS = {"correctable": "ERR_COR", "nonfatal": "ERR_NONFATAL", "fatal": "ERR_FATAL"}


@dataclass(frozen=True)
class PciSpec:
    """One PCI function as the kernel shows it under /sys/devices/pci<domain>:<bus>/... ."""

    address: str                      # "0000:03:00.0"
    parent: str | None                # the upstream port's address; None directly below the host bridge
    vendor: int
    device: int
    class_code: int                   # 0x060400 PCI bridge, 0x020000 Ethernet, 0x010802 NVMe, 0x060000 host bridge
    driver: str | None = None
    max_link: tuple[float, int] | None = None   # (GT/s, lanes) this end can do; None: no PCIe link files
    link: tuple[float, int] | None = None       # current (GT/s, lanes); width 0 = no link (empty slot)
    aer: bool = True                  # aer_dev_* files (only with a link)
    aer_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # {"correctable": {"RxErr": 2}}
    power_state: str = "D0"           # power_state (5.10+): "D3cold" for a runtime-suspended device


def aer_file_text(kind: str, counts: Mapping[str, int] | None = None) -> str:
    """An aer_dev_<kind> file exactly as the kernel writes it: every named bit, then the TOTAL_ line."""
    counts = counts or {}
    names = AER_CORRECTABLE_BITS if kind == "correctable" else AER_UNCORRECTABLE_BITS
    lines = [f"{name} {counts.get(name, 0)}" for name in names]
    return "\n".join([*lines, f"TOTAL_{_AER_TOTALS[kind]} {sum(counts.values())}"]) + "\n"


def link_speed_text(gts: float) -> str:
    """current_link_speed / max_link_speed as kernels >= 4.20 write them ("2.5 GT/s PCIe", "8.0 GT/s PCIe")."""
    return f"{gts:.1f} GT/s PCIe"


RISER_PORT = "0000:00:1c.0"
# The seed's board (Erying G660, Alder Lake-H): the X520 on a riser in the x8 slot, the U.2 drive on an
# M.2 -> MiniSAS-HD -> U.2 adapter in the CPU's x4 M.2 slot (passive adapters: no bridge of their own),
# an empty x1 slot, and chipset functions without a PCIe link.
SEED_PCI: tuple[PciSpec, ...] = (
    PciSpec("0000:00:00.0", None, 0x8086, 0x4641, 0x060000, max_link=None),
    PciSpec("0000:00:06.0", None, 0x8086, 0x464D, 0x060400, "pcieport", (16.0, 4), (8.0, 4)),
    PciSpec("0000:01:00.0", "0000:00:06.0", 0x8086, 0x0A54, 0x010802, "nvme", (8.0, 4), (8.0, 4)),  # P4510 U.2
    PciSpec(RISER_PORT, None, 0x8086, 0x51B8, 0x060400, "pcieport", (8.0, 8), (5.0, 8)),
    PciSpec("0000:03:00.0", RISER_PORT, 0x8086, 0x10FB, 0x020000, "ixgbe", (5.0, 8), (5.0, 8)),
    PciSpec("0000:03:00.1", RISER_PORT, 0x8086, 0x10FB, 0x020000, "ixgbe", (5.0, 8), (5.0, 8)),
    PciSpec("0000:00:1d.0", None, 0x8086, 0x51B0, 0x060400, "pcieport", (8.0, 1), (2.5, 0)),  # empty x1 slot
    PciSpec("0000:00:1f.0", None, 0x8086, 0x5182, 0x060100),                                 # LPC/eSPI
    PciSpec("0000:00:1f.4", None, 0x8086, 0x51A3, 0x0C0500, "i801_smbus"),
)


def riser_downtrained(pci: tuple[PciSpec, ...]) -> tuple[PciSpec, ...]:
    """The same devices with the X520 trained at x4 on a marginal riser (both ends can do x8)."""
    return tuple(replace(d, link=(d.link[0], 4)) if RISER_PORT in (d.address, d.parent) and d.link else d
                 for d in pci)


@dataclass(frozen=True)
class NodeSpec:
    """The hardware and kernel a simulated node presents."""

    vendor_id: str = "GenuineIntel"
    model_name: str = "12th Gen Intel(R) Core(TM) i5-12650H"
    family: int = 6
    model: int = 154
    stepping: int = 3
    cpus: int = 16                    # logical CPUs
    cores: int = 10                   # physical cores; the first cpus-cores cores carry 2 threads
    microcode: int = 0x435            # running revision on every CPU ...
    microcode_per_cpu: Mapping[int, int] = field(default_factory=dict)  # ... unless overridden here
    processor_flags: int = 0x80       # platform id bit, as in sysfs microcode/processor_flags
    firmware_revision: int | None = 0x435  # what firmware/intel-ucode offers; None = no file
    firmware_date: str = "2024-02-05"
    early_update_from: int | None = 0x42C  # revision before the early update; None = log shows none
    log_style: str = "current"        # "current" (>= 6.7 wording) or "legacy" ("updated early to revision")
    kernel_release: str = "6.8.12-4-pve"
    kernel_build: str = "#1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4 (2024-11-06T15:04Z)"
    mem_kb: int = 65536000
    vulnerabilities: Mapping[str, str] = field(default_factory=lambda: dict(ALDER_LAKE_VULNERABILITIES))
    dmi: Mapping[str, str] = field(default_factory=lambda: dict(ERYING_G660_DMI))
    flags: tuple[str, ...] = ALDER_LAKE_FLAGS
    bugs: tuple[str, ...] = ALDER_LAKE_BUGS
    cache_kb: int = 24576
    mhz: float = 2700.0
    boot_id: str | None = None        # None = a fresh random one
    sensors: bool = False             # hwmon, thermal zones, cpufreq, RAPL, throttle counters (the lab's nodes)
    cpufreq_driver: str = "intel_pstate"  # with sensors: intel_pstate, amd-pstate-epp or acpi-cpufreq (AMD_RYZEN_7600)
    uptime_s: float = 43200.0         # proc/uptime (the seed's board froze about 12 h after boot)
    pci: tuple[PciSpec, ...] = SEED_PCI  # under sys/devices/pci0000:00, linked from sys/bus/pci/devices
    riser_downtrained_node: str | None = "lab-pve3"  # the tree (lab node folder) whose X520 trains at x4
    watchdogs: tuple[str, ...] = ("iTCO_wdt",)  # class/watchdog/watchdogN/identity ("Software Watchdog": softdog)
    iommu: bool = True                # class/iommu/dmar0 and the kernel's "DMAR: IOMMU enabled"
    ecc: bool = False                 # the laptop CPU has no ECC: EDAC's DIMMs say edac_mode "None"
    edac_layout: str = "dimm"         # EDAC's per-DIMM folders: "dimm" (mc0/dimmN), "rank" (mc0/rankN, drivers
                                      # with chip-select rows) or "csrow" (only the legacy mc0/csrowN)

    def __post_init__(self) -> None:
        if not 0 < self.cores <= self.cpus <= 2 * self.cores:
            raise ValueError(f"NodeSpec: need cores <= cpus <= 2*cores, got cpus={self.cpus} cores={self.cores}")
        if self.edac_layout not in ("dimm", "rank", "csrow"):
            raise ValueError(f"NodeSpec.edac_layout: expected dimm, rank or csrow, got {self.edac_layout!r}")
        if self.log_style not in ("current", "legacy"):
            raise ValueError(f"NodeSpec.log_style: expected 'current' or 'legacy', got {self.log_style!r}")
        bad = [c for c in self.microcode_per_cpu if not 0 <= c < self.cpus]
        if bad:
            raise ValueError(f"NodeSpec.microcode_per_cpu: no such CPU {bad} (cpus={self.cpus})")

    def revision(self, cpu: int) -> int:
        return self.microcode_per_cpu.get(cpu, self.microcode)

    @property
    def signature(self) -> int:
        """CPUID(1).EAX as microcode headers carry it (e.g. 0x906A3 for family 6 model 0x9A stepping 3)."""
        return cpuid_signature(self.family, self.model, self.stepping)

    @property
    def ucode_name(self) -> str:
        """File name under intel-ucode/, e.g. 06-9a-03."""
        return intel_ucode_filename(self.family, self.model, self.stepping)

    def topology(self) -> list[tuple[int, int]]:
        """(core id, thread) per logical CPU: two-thread cores first, sibling threads adjacent (as on Alder Lake)."""
        smt_cores = self.cpus - self.cores
        out = []
        for core in range(self.cores):
            for thread in range(2 if core < smt_cores else 1):
                out.append((core, thread))
        return out


def _cpuinfo(spec: NodeSpec) -> str:
    blocks = []
    for cpu, (core, thread) in enumerate(spec.topology()):
        apic = 2 * core + thread
        lines = [
            f"processor\t: {cpu}",
            f"vendor_id\t: {spec.vendor_id}",
            f"cpu family\t: {spec.family}",
            f"model\t\t: {spec.model}",
            f"model name\t: {spec.model_name}",
            f"stepping\t: {spec.stepping}",
            f"microcode\t: {spec.revision(cpu):#x}",
            f"cpu MHz\t\t: {spec.mhz:.3f}",
            f"cache size\t: {spec.cache_kb} KB",
            "physical id\t: 0",
            f"siblings\t: {spec.cpus}",
            f"core id\t\t: {core}",
            f"cpu cores\t: {spec.cores}",
            f"apicid\t\t: {apic}",
            f"initial apicid\t: {apic}",
            "fpu\t\t: yes",
            "fpu_exception\t: yes",
            "cpuid level\t: 32",
            "wp\t\t: yes",
            f"flags\t\t: {' '.join(spec.flags)}",
        ]
        if "vmx" in spec.flags:
            lines.append(f"vmx flags\t: {ALDER_LAKE_VMX_FLAGS}")
        lines += [
            f"bugs\t\t: {' '.join(spec.bugs)}",
            f"bogomips\t: {2 * spec.mhz:.2f}",
            "clflush size\t: 64",
            "cache_alignment\t: 64",
            "address sizes\t: 39 bits physical, 48 bits virtual",
            "power management:",
            "",
        ]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"


def _meminfo(kb: int) -> str:
    free, avail, cached = kb * 80 // 100, kb * 93 // 100, kb * 10 // 100
    rows: list[tuple[str, int, bool]] = [
        ("MemTotal", kb, True), ("MemFree", free, True), ("MemAvailable", avail, True),
        ("Buffers", kb // 400, True), ("Cached", cached, True), ("SwapCached", 0, True),
        ("Active", kb * 6 // 100, True), ("Inactive", kb * 7 // 100, True),
        ("Active(anon)", kb * 3 // 100, True), ("Inactive(anon)", kb // 200, True),
        ("Active(file)", kb * 3 // 100, True), ("Inactive(file)", kb * 6 // 100, True),
        ("Unevictable", 0, True), ("Mlocked", 0, True), ("SwapTotal", 8388604, True),
        ("SwapFree", 8388604, True), ("Zswap", 0, True), ("Zswapped", 0, True), ("Dirty", 188, True),
        ("Writeback", 0, True), ("AnonPages", kb * 3 // 100, True), ("Mapped", kb // 100, True),
        ("Shmem", kb // 500, True), ("KReclaimable", kb // 100, True), ("Slab", kb * 2 // 100, True),
        ("SReclaimable", kb // 100, True), ("SUnreclaim", kb // 100, True), ("KernelStack", 14336, True),
        ("PageTables", 21504, True), ("SecPageTables", 0, True), ("NFS_Unstable", 0, True),
        ("Bounce", 0, True), ("WritebackTmp", 0, True), ("CommitLimit", kb // 2 + 8388604, True),
        ("Committed_AS", kb * 5 // 100, True), ("VmallocTotal", 34359738367, True),
        ("VmallocUsed", 98304, True), ("VmallocChunk", 0, True), ("Percpu", 21760, True),
        ("HardwareCorrupted", 0, True), ("AnonHugePages", 0, True), ("ShmemHugePages", 0, True),
        ("ShmemPmdMapped", 0, True), ("FileHugePages", 0, True), ("FilePmdMapped", 0, True),
        ("Unaccepted", 0, True), ("HugePages_Total", 0, False), ("HugePages_Free", 0, False),
        ("HugePages_Rsvd", 0, False), ("HugePages_Surp", 0, False), ("Hugepagesize", 2048, True),
        ("Hugetlb", 0, True), ("DirectMap4k", 412672, True), ("DirectMap2M", kb // 2, True),
        ("DirectMap1G", kb // 2, True),
    ]
    # Kernel layout: "Name:" padded to 16 columns, value right-aligned in 8, then " kB".
    return "".join(f"{name + ':':<16}{val:>8}{' kB' if unit else ''}\n" for name, val, unit in rows)


def _command_line(spec: NodeSpec) -> str:
    return f"BOOT_IMAGE=/boot/vmlinuz-{spec.kernel_release} root=/dev/mapper/pve-root ro quiet intel_iommu=on"


def _linux_version(spec: NodeSpec) -> str:
    return (f"Linux version {spec.kernel_release} (build@proxmox) (gcc (Debian 12.2.0-14) 12.2.0, "
            f"GNU ld (GNU Binutils for Debian) 2.40) {spec.kernel_build}")


def _kernel_log(spec: NodeSpec) -> str:
    rev = spec.revision(0)
    dmi = spec.dmi
    lines: list[tuple[float, str]] = []
    if spec.log_style == "legacy" and spec.early_update_from is not None:
        lines.append((0.0, f"microcode: microcode updated early to revision {rev:#x}, date = {spec.firmware_date}"))
    lines += [
        (0.0, _linux_version(spec)),
        (0.0, f"Command line: {_command_line(spec)}"),
        (0.0, "KERNEL supported cpus:"),
        (0.0, "  Intel GenuineIntel"),
        (0.0, "  AMD AuthenticAMD"),
        (0.0, "x86/split lock detection: #AC: crashing the kernel on kernel split_locks and warning on "
              "user-space split_locks"),
        (0.0, "BIOS-provided physical RAM map:"),
        (0.0, f"DMI: {dmi.get('sys_vendor', '')} {dmi.get('product_name', '')}/{dmi.get('board_name', '')}, "
              f"BIOS {dmi.get('bios_version', '')} {dmi.get('bios_date', '')}"),
        (0.0, f"tsc: Detected {spec.mhz:.3f} MHz processor"),
    ]
    if spec.log_style == "current":
        # >= 6.7 wording, printed by the early loader.
        lines.append((0.0, f"microcode: Current revision: 0x{rev:08x}"))
        if spec.early_update_from is not None:
            lines.append((0.0, f"microcode: Updated early from: 0x{spec.early_update_from:08x}"))
    lines += [
        (0.021873, f"Memory: {spec.mem_kb - 1234567}K/{spec.mem_kb}K available"),
        (0.108412, f"smpboot: CPU0: {spec.model_name} (family: {spec.family:#x}, model: {spec.model:#x}, "
                   f"stepping: {spec.stepping:#x})"),
        (0.112305, f"smp: Brought up 1 node, {spec.cpus} CPUs"),
    ]
    if spec.log_style == "legacy":
        lines.append((0.779255, f"microcode: sig={spec.signature:#x}, pf={spec.processor_flags:#x}, "
                                f"revision={rev:#x}"))
        lines.append((0.779301, "microcode: Microcode Update Driver: v2.2."))
    lines += [
        *([(0.412301, "DMAR: IOMMU enabled"),
           (0.981112, "DMAR: Intel(R) Virtualization Technology for Directed I/O")] if spec.iommu else []),
        (1.102341, "nvme nvme0: pci function 0000:01:00.0"),
        (1.163020, "nvme nvme0: 16/0/0 default/read/poll queues"),
        (1.911210, "ixgbe 0000:03:00.0: Intel(R) 10 Gigabit Network Connection"),
        (2.214510, "EXT4-fs (dm-1): mounted filesystem with ordered data mode. Quota mode: none."),
        (4.502113, "vmbr0: port 1(enp3s0f0) entered forwarding state"),
    ]
    return "".join(f"[{t:12.6f}] {msg}\n" for t, msg in lines)


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def write_pci_devices(sys: Path, devices: tuple[PciSpec, ...]) -> None:
    """Each function in the kernel's layout: its directory under devices/ (nested below its port), the
    bus/pci/devices symlink, the driver symlink, ids, link and AER files."""
    by_address = {d.address: d for d in devices}

    def directory(device: PciSpec) -> Path:
        chain = []
        d: PciSpec | None = device
        while d is not None:
            chain.append(d.address)
            d = by_address.get(d.parent) if d.parent else None
        domain, bus = chain[-1].split(":")[:2]
        return sys / "devices" / f"pci{domain}:{bus}" / Path(*reversed(chain))

    for d in devices:
        path = directory(d)
        files = {"vendor": f"0x{d.vendor:04x}", "device": f"0x{d.device:04x}", "class": f"0x{d.class_code:06x}",
                 "power_state": d.power_state}
        if d.max_link is not None:
            files |= {"max_link_speed": link_speed_text(d.max_link[0]), "max_link_width": str(d.max_link[1])}
            current = d.link or d.max_link
            files |= {"current_link_speed": link_speed_text(current[0]), "current_link_width": str(current[1])}
            if d.aer:
                files |= {f"aer_dev_{kind}": aer_file_text(kind, d.aer_counts.get(kind)).rstrip("\n")
                          for kind in ("correctable", "nonfatal", "fatal")}
        for name, text in files.items():
            _write(path / name, text + "\n")
        link = sys / "bus/pci/devices" / d.address
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(Path("../../..") / path.relative_to(sys))
        if d.driver:
            drv = sys / "bus/pci/drivers" / d.driver
            drv.mkdir(parents=True, exist_ok=True)
            if (path / "driver").is_symlink():
                (path / "driver").unlink()
            up = Path(*[".."] * len(path.relative_to(sys).parts))
            (path / "driver").symlink_to(up / "bus/pci/drivers" / d.driver)


def _write_platform(sys: Path, spec: NodeSpec) -> None:
    """Watchdogs, IOMMU and the ECC mode of EDAC's DIMMs."""
    for n, identity in enumerate(spec.watchdogs):
        _write(sys / f"class/watchdog/watchdog{n}/identity", identity + "\n")
        _write(sys / f"class/watchdog/watchdog{n}/state", "inactive\n")
    if spec.iommu:
        _write(sys / "class/iommu/dmar0/intel-iommu/version", "1:0\n")
    _write(sys / "module/intel_idle/parameters/max_cstate", "9\n")
    mode = "SECDED" if spec.ecc else "None"
    for dimm in sorted((sys / "devices/system/edac/mc").glob("mc*/dimm*")):
        _write(dimm / "dimm_edac_mode", mode + "\n")
        if spec.edac_layout == "rank":
            dimm.rename(dimm.with_name("rank" + dimm.name.removeprefix("dimm")))
        elif spec.edac_layout == "csrow":  # one csrow per DIMM, its channel counters and labels
            row = dimm.with_name("csrow" + dimm.name.removeprefix("dimm"))
            files = {"edac_mode": mode, "size_mb": (dimm / "size").read_text().strip(),
                     "mem_type": (dimm / "dimm_mem_type").read_text().strip(), "dev_type": "x8",
                     "ce_count": "0", "ue_count": "0", "ch0_ce_count": "0",
                     "ch0_dimm_label": (dimm / "dimm_label").read_text().strip()}
            for name, text in files.items():
                _write(row / name, text + "\n")
            shutil.rmtree(dimm)


def build_node_tree(root: Path, spec: NodeSpec | None = None) -> None:
    """Write the node's proc/, sys/, firmware/ and kernel.log under root (existing files are replaced)."""
    spec = spec or NodeSpec()
    root = Path(root)
    proc, sys = root / "proc", root / "sys"

    _write(proc / "cpuinfo", _cpuinfo(spec))
    _write(proc / "meminfo", _meminfo(spec.mem_kb))
    _write(proc / "version", _linux_version(spec) + "\n")
    _write(proc / "sys/kernel/osrelease", spec.kernel_release + "\n")
    _write(proc / "sys/kernel/random/boot_id", (spec.boot_id or str(uuid.uuid4())) + "\n")
    _write(proc / "uptime", f"{spec.uptime_s:.2f} {spec.uptime_s * spec.cpus * 0.9:.2f}\n")

    cpu_dir = sys / "devices/system/cpu"
    span = f"0-{spec.cpus - 1}" if spec.cpus > 1 else "0"
    for name in ("online", "possible", "present"):
        _write(cpu_dir / name, span + "\n")
    for cpu in range(spec.cpus):
        _write(cpu_dir / f"cpu{cpu}/microcode/version", f"{spec.revision(cpu):#x}\n")
        _write(cpu_dir / f"cpu{cpu}/microcode/processor_flags", f"{spec.processor_flags:#x}\n")
    for name, text in spec.vulnerabilities.items():
        _write(cpu_dir / "vulnerabilities" / name, text + "\n")
    for name, text in spec.dmi.items():
        _write(sys / "class/dmi/id" / name, text + "\n")

    fw_dir = root / "firmware"
    fw_dir.mkdir(parents=True, exist_ok=True)
    if spec.firmware_revision is not None:
        # Imported here: only the firmware files need the builder.
        from qualify.lab import firmware

        if spec.vendor_id == "AuthenticAMD":
            # linux-firmware's names: one container per family from 15h, microcode_amd.bin before.
            name = f"microcode_amd_fam{spec.family:02x}h.bin" if spec.family >= 0x15 else "microcode_amd.bin"
            _write(fw_dir / "amd-ucode" / name,
                   firmware.amd_microcode_container([(spec.signature, spec.firmware_revision)]))
        else:
            blob = firmware.intel_microcode_file(signature=spec.signature, processor_flags=spec.processor_flags,
                                                 revision=spec.firmware_revision, date=spec.firmware_date)
            _write(fw_dir / "intel-ucode" / spec.ucode_name, blob)

    _write(root / "kernel.log", _kernel_log(spec))
    if spec.sensors:
        from qualify.lab import thermal_model  # the model owns the layout of the files it drives

        thermal_model.write_sensor_files(sys, spec)
    pci = riser_downtrained(spec.pci) if root.name == spec.riser_downtrained_node else spec.pci
    write_pci_devices(sys, pci)
    _write_platform(sys, spec)  # after the sensors: EDAC's DIMMs are theirs, their ECC mode is ours
    _write(proc / "cmdline", _command_line(spec) + "\n")
