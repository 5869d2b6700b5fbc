"""Platform: the facts an HA Proxmox/Ceph node needs before it takes work (as LBNL NHC checks them).

- ECC memory present and enabled: EDAC memory controllers (`mc*` with a non-zero size_mb; their DIMMs'
  dimm_edac_mode "SECDED"/"S4ECD4ED"/..., "None" without ECC) and, on a real node, `dmidecode -t 16`'s
  Error Correction Type. The seed's laptop CPU has none: its base profile says `ecc: none`.
- A hardware watchdog for HA fencing (`class/watchdog/*/identity`: iTCO_wdt, sp5100_tco, IPMI); softdog
  ("Software Watchdog") cannot reset a hung board.
- IOMMU (VT-d / AMD-Vi) active for passthrough: `class/iommu/*`, the kernel log's DMAR / AMD-Vi lines.
- The kernel command line and the C-state/ASPM parameters, recorded so freeze investigations can compare runs
  (`pcie_aspm=off`, `intel_idle.max_cstate=1`, ...).
- The BIOS version against the profile's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.dmidecode import parse_memory_error_correction
from qualify.profile import PlatformSettings, Profile
from qualify.store import RunStore

SOFTDOG = "Software Watchdog"
# EDAC's per-DIMM ECC mode: dimmN on most drivers, rankN where the driver counts chip-select rows
# (mci->csbased: amd64_edac on older kernels, i5000/e752x ...), csrowN/edac_mode in the legacy layout.
EDAC_MODE_FILES = "mc*/dimm*/dimm_edac_mode mc*/rank*/dimm_edac_mode mc*/csrow*/edac_mode"
# Kernel parameters that change idle states, ASPM, the IOMMU or the watchdogs.
_PARAMETERS = re.compile(r"^(?:pcie_aspm(?:\.policy)?|intel_idle\.max_cstate|processor\.max_cstate|idle|"
                         r"intel_pstate|amd_pstate|intel_iommu|amd_iommu|iommu|iommu\.passthrough|nmi_watchdog|"
                         r"nowatchdog|nosoftlockup|mce|pci|acpi)$")
_IOMMU_LOG = re.compile(r"DMAR: IOMMU enabled|DMAR: Intel\(R\) Virtualization Technology for Directed I/O|"
                        r"AMD-Vi: .*(?:Interrupt remapping enabled|IOMMUv2|Found IOMMU)|AMD-Vi: Lazy IO/TLB")
_NO_ECC_MODES = {"None", "Unknown", "Reserved", ""}


@dataclass(frozen=True)
class PlatformEvidence:
    edac_sizes_mb: dict[str, int]       # {"mc0": 65536}
    edac_modes: dict[str, str]          # {"mc0/dimm0": "SECDED"}
    dmi_error_correction: list[str] | None  # dmidecode -t 16; None when not read (prepared tree, no tool)
    watchdogs: dict[str, str]           # {"watchdog0": "iTCO_wdt"}
    iommus: list[str]                   # ["dmar0"]
    iommu_log: list[str]                # the kernel log's IOMMU lines
    cmdline: str | None
    module_parameters: dict[str, str]   # {"pcie_aspm/parameters/policy": "[default] performance ..."}
    bios: dict[str, str]                # bios_vendor, bios_version, bios_date
    dmi_unread: str = "SMBIOS not read"  # why dmi_error_correction is None


def check_platform(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    judge(collect(node, run_store), profile.checks.platform, findings)


def collect(node: Node, run_store: RunStore) -> PlatformEvidence:
    edac = node.sys_path("devices/system/edac/mc")
    sizes = {rel.split("/")[0]: int(v) for rel, v in node.read_glob(edac, "mc*/size_mb").items() if v.isdigit()}
    modes = {rel.rsplit("/", 1)[0]: v.strip()
             for rel, v in node.read_glob(edac, EDAC_MODE_FILES).items()}
    dmi, unread = None, "SMBIOS not read (a prepared tree)"
    if node.paths.sysfs == "/sys" and not node.has_tool("dmidecode"):
        unread = "SMBIOS not read (dmidecode is not installed)"
    elif node.paths.sysfs == "/sys":  # a prepared tree has no SMBIOS of its own
        result = node.run(["dmidecode", "-t", "16"], check=False)
        run_store.save_raw("platform-dmidecode-t16.txt", result.stdout + result.stderr)
        dmi = parse_memory_error_correction(result.stdout) if result.returncode == 0 else None
        said = (result.stderr or result.stdout).strip().splitlines()
        unread = f"SMBIOS not read (dmidecode: {said[-1][:120] if said else f'exit {result.returncode}'})"
    watchdogs = {rel.split("/")[0]: v.strip()
                 for rel, v in node.read_glob(node.sys_path("class/watchdog"), "*/identity").items()}
    iommu_dir = node.sys_path("class/iommu")
    iommus = node.run(["sh", "-c", 'ls "$1" 2>/dev/null; exit 0', "sh", iommu_dir]).stdout.split()
    log = node.kernel_log()
    cmdline = node.read_text(node.proc_path("cmdline"))
    parameters = node.read_glob(node.sys_path("module"),
                                "pcie_aspm/parameters/policy intel_idle/parameters/max_cstate "
                                "processor/parameters/max_cstate intel_pstate/parameters/* softdog/parameters/*")
    bios = node.read_glob(node.sys_path("class/dmi/id"), "bios_vendor bios_version bios_date")
    evidence = PlatformEvidence(sizes, modes, dmi, watchdogs, iommus,
                                [line.strip() for line in log.splitlines() if _IOMMU_LOG.search(line)][:5],
                                cmdline.strip() if cmdline else None, parameters, bios, unread)
    run_store.save_raw("platform-facts.txt", repr(evidence))
    return evidence


# ---------------------------------------------------------------- judge (pure)


def _limit(mode: str) -> tuple[float | None, bool]:
    """(low, warn) of a yes/no figure: required fails without it, expected warns, none/off only records."""
    return (1, mode == "expected") if mode in ("required", "expected") else (None, False)


def ecc_enabled(evidence: PlatformEvidence) -> bool | None:
    """True with ECC evidence, False when EDAC or SMBIOS say there is none, None when nothing tells.

    EDAC's mode is what the memory controller runs; SMBIOS type 16 says what the board can do (many boards
    say "Multi-bit ECC" with non-ECC DIMMs fitted), so a DIMM mode of "None" outweighs it."""
    dmi = evidence.dmi_error_correction or []
    modes = set(evidence.edac_modes.values())
    if modes - _NO_ECC_MODES:
        return True
    if modes and modes <= {"None"}:
        return False
    if any("ECC" in t or t == "CRC" for t in dmi):
        return True
    if evidence.edac_sizes_mb and not evidence.edac_modes and any(evidence.edac_sizes_mb.values()):
        return True  # an EDAC controller with memory and no mode files: EDAC drivers load only with ECC on
    if dmi or evidence.edac_modes:
        return False
    return None


def judge(evidence: PlatformEvidence, settings: PlatformSettings, findings: Findings) -> None:
    _ecc(evidence, settings, findings)
    _watchdog(evidence, settings, findings)
    _iommu(evidence, settings, findings)
    _boot_parameters(evidence, findings)
    _bios(evidence, settings, findings)


def _ecc(evidence: PlatformEvidence, settings: PlatformSettings, findings: Findings) -> None:
    enabled = ecc_enabled(evidence)
    sources = []
    if evidence.edac_sizes_mb:
        sources.append("EDAC " + ", ".join(f"{mc} {size} MB" for mc, size in sorted(evidence.edac_sizes_mb.items())))
    if evidence.edac_modes:
        sources.append("ECC mode " + ", ".join(f"{k} {v}" for k, v in sorted(evidence.edac_modes.items())[:4]))
    if evidence.dmi_error_correction is not None:
        sources.append(f"SMBIOS error correction {', '.join(evidence.dmi_error_correction) or 'not listed'}")
    if evidence.dmi_error_correction is None:
        sources.append(evidence.dmi_unread)
    if not evidence.edac_sizes_mb:
        sources.insert(0, "no EDAC memory controller")
    detail = f"({'; '.join(sources)})"
    low, warn = _limit(settings.ecc)
    if settings.ecc == "none":
        findings.measure("ecc_memory_enabled", enabled, text="ECC memory", detail=detail)
        if not enabled:
            findings.note("the profile says this board has no ECC memory: memory errors are not corrected nor counted")
        return
    findings.measure("ecc_memory_enabled", enabled, low=low, warn=warn, text="ECC memory", detail=detail,
                     because="without ECC a flipped bit corrupts data (Ceph, ZFS) silently; set `ecc: none` "
                             "for a board that has none")


def _watchdog(evidence: PlatformEvidence, settings: PlatformSettings, findings: Findings) -> None:
    hardware = {name: ident for name, ident in evidence.watchdogs.items() if ident != SOFTDOG}
    listed = ", ".join(f"{name} {ident}" for name, ident in sorted(evidence.watchdogs.items())) or "none"
    findings.metric("watchdogs", dict(sorted(evidence.watchdogs.items())))
    if evidence.watchdogs and not hardware:
        detail = f"(only softdog: {listed}; it cannot reset a hung board)"
    else:
        detail = f"({listed})"
    low, warn = _limit(settings.watchdog)
    findings.measure("hardware_watchdog", bool(hardware), low=low, warn=warn, text="hardware watchdog", detail=detail,
                     because="Proxmox HA fences a node through its watchdog; load iTCO_wdt/sp5100_tco/ipmi_watchdog")


def _iommu(evidence: PlatformEvidence, settings: PlatformSettings, findings: Findings) -> None:
    active = bool(evidence.iommus) or bool(evidence.iommu_log)
    seen = ", ".join(evidence.iommus) or "no class/iommu entry"
    detail = f"({seen}{'; kernel log: ' + evidence.iommu_log[0] if evidence.iommu_log else ''})"
    low, warn = _limit(settings.iommu)
    findings.measure("iommu_active", active, low=low, warn=warn, text="IOMMU", detail=detail,
                     because="PCI passthrough needs VT-d/AMD-Vi on in the BIOS and intel_iommu=on on older kernels")


def boot_parameters(cmdline: str | None) -> dict[str, str]:
    """The kernel command line's idle/ASPM/IOMMU/watchdog parameters: {"pcie_aspm": "off", "nowatchdog": ""}."""
    out = {}
    for token in (cmdline or "").split():
        key, _, value = token.partition("=")
        if _PARAMETERS.match(key):
            out[key] = value
    return out


def _boot_parameters(evidence: PlatformEvidence, findings: Findings) -> None:
    findings.metric("kernel_cmdline", evidence.cmdline)
    chosen = boot_parameters(evidence.cmdline)
    findings.metric("boot_parameters", chosen)
    findings.metric("module_parameters", dict(sorted(evidence.module_parameters.items())))
    if evidence.cmdline is None:
        findings.note("the kernel command line could not be read (proc/cmdline)")
        return
    listed = " ".join(f"{k}={v}" if v else k for k, v in chosen.items()) or "none"
    modules = "; ".join(f"{k.split('/')[0]}.{k.rsplit('/', 1)[-1]} {v}"
                        for k, v in sorted(evidence.module_parameters.items())) or "none readable"
    findings.note(f"kernel command line: {evidence.cmdline} — idle/ASPM/IOMMU parameters: {listed}; "
                  f"module parameters: {modules}")


def _bios(evidence: PlatformEvidence, settings: PlatformSettings, findings: Findings) -> None:
    version = evidence.bios.get("bios_version")
    findings.metric("bios", dict(sorted(evidence.bios.items())))
    running = f"BIOS {version or 'unknown'}" + (f" ({evidence.bios['bios_date']})" if "bios_date" in evidence.bios
                                                 else "")
    if settings.bios_version is None:
        findings.note(f"{running}; the profile names no expected version")
    elif version == settings.bios_version:
        findings.note(f"{running}, as the profile expects")
    else:
        findings.problem(f"{running}, the profile expects {settings.bios_version}: update (or downgrade) the "
                         f"firmware, or change checks.platform.bios_version", name="bios_version")
