"""PCIe: every link of the node at what both ends can do, at idle and under load; AER counters across the run.

Why: the seed's X520 sits on a riser and its U.2 drives behind M.2 -> MiniSAS-HD -> U.2 adapters; a marginal
riser or cable trains the link narrower or slower (x4 of x8, 2.5 of 8 GT/s) and nothing complains, and a bad
one shows as corrected AER errors (RxErr, BadTLP, BadDLLP) long before it fails. Read from sysfs under
paths.sysfs (as OCP's pcicrawler does): a link below min(the device's capability, its upstream port's
capability) fails, named with the port, the device and both figures; empty slots (a port with no link) and
devices without a link (host bridges, root complex integrated endpoints) are not findings. The links are read
again under a short stress-ng load (links retrain, ASPM exits); AER counters are read before and after: any
uncorrectable (nonfatal/fatal) growth fails, corrected growth above `max_correctable_growth` fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.findings import Findings
from qualify.node import Node
from qualify.parsers.pci_sysfs import AER_CLASSES, DUMP_SCRIPT, PciFunction, parse_pci_dump, pci_ids_names
from qualify.profile import PcieExpectation, PcieSettings, Profile
from qualify.store import RunStore

PCI_IDS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids")
GRACE_S = 30.0
_CLASS_NAMES = {0x0108: "NVMe", 0x0106: "SATA", 0x0104: "RAID", 0x0107: "SAS", 0x0200: "Ethernet",
                0x0207: "InfiniBand", 0x0300: "VGA", 0x0302: "3D", 0x0604: "PCI bridge", 0x0c03: "USB"}


@dataclass(frozen=True)
class PcieEvidence:
    idle: list[PciFunction]
    load: list[PciFunction] | None      # None when the load could not run
    after: list[PciFunction]            # AER counters at the end
    names: dict[str, str]               # "8086:10fb" -> "Intel Corporation 82599ES ..."


def check_pcie(node: Node, profile: Profile, findings: Findings, run_store: RunStore) -> None:
    judge(collect(node, profile.checks.pcie, run_store), profile.checks.pcie, findings)


def collect(node: Node, settings: PcieSettings, run_store: RunStore) -> PcieEvidence:
    idle = _read(node, run_store, "idle")
    if not idle:
        return PcieEvidence(idle, None, idle, {})
    load = None
    if node.has_tool("stress-ng"):
        # The second reading is taken while the load runs (its last seconds), not after it ended.
        proc = node.spawn(["stress-ng", "--cpu", "0", "--io", "2", "--timeout", f"{settings.load:.0f}s", "--quiet"])
        try:
            node.run(["sleep", f"{max(1.0, settings.load * 0.75):.1f}"], timeout_s=settings.load + GRACE_S)
            load = _read(node, run_store, "load")
        finally:
            proc.stop()
    after = _read(node, run_store, "after")
    return PcieEvidence(idle, load, after, _names(node, {f.ids for f in idle}))


def _read(node: Node, run_store: RunStore, phase: str) -> list[PciFunction]:
    text = node.run(["sh", "-c", DUMP_SCRIPT, "sh", node.paths.sysfs]).stdout
    run_store.save_raw(f"pcie-sysfs-{phase}.txt", text)
    return parse_pci_dump(text, f"{node.name}: {node.paths.sysfs}/bus/pci/devices")


def _names(node: Node, ids: set[str]) -> dict[str, str]:
    for path in PCI_IDS:
        text = node.read_text(path)
        if text:
            return pci_ids_names(text, ids)
    return {}


# ---------------------------------------------------------------- judge (pure)


def judge(evidence: PcieEvidence, settings: PcieSettings, findings: Findings) -> None:
    if not evidence.idle:
        findings.skip("no PCI device under bus/pci/devices (not a PCI machine, or paths.sysfs points elsewhere)",
                      how="point paths.sysfs at the node's /sys")
    by_address = {f.address: f for f in evidence.idle}
    links = _links(evidence.idle)
    findings.metric("pci_functions", len(evidence.idle))
    findings.metric("pcie_links", len(links))
    idle_down = [f.address for f in evidence.idle if f.is_bridge and f.capability and not f.link_up]
    if idle_down:
        findings.note(f"ports without a link (empty slots, not judged): {', '.join(idle_down)}")
    if not links:
        findings.skip(f"no PCIe link among the {len(evidence.idle)} PCI functions (a virtual machine's devices sit "
                      f"on an emulated bus without link registers)",
                      how="run it on the bare-metal node (the host, for a VM): its links are read from its own sysfs")
    loaded = {f.address: f for f in evidence.load or []}
    for function in links:
        port = by_address.get(function.upstream or "")
        under_load = loaded.get(function.address)
        # a link that trains up under load was saving power at idle (the speed only: lanes do not come and go)
        retrains = under_load is not None and _speed_shortfall(under_load, port, settings) is None
        _link(function, port, "idle", settings, evidence, findings, soft_speed=retrains or _is_gpu(function))
    if evidence.load is None:
        findings.not_qualified("PCIe links under load were not read (stress-ng is not installed)",
                               "install stress-ng (Debian package stress-ng)")
    else:
        for function in links:
            if function.address in loaded:
                _link(loaded[function.address], by_address.get(function.upstream or ""), "load", settings,
                      evidence, findings, soft_speed=_is_gpu(function))
    _aer(evidence, settings, findings)


def _is_gpu(f: PciFunction) -> bool:
    """A display controller (class 03): amdgpu, nouveau/nvidia and i915 lower the link speed whenever the GPU
    itself is idle, which a CPU and I/O load does not change."""
    return (f.class_code or 0) >> 16 == 0x03


def _links(functions: list[PciFunction]) -> list[PciFunction]:
    """One function per link: its downstream end, the first function of a device.

    A port's own link files describe the link below it, so a link is read from the device below: an endpoint,
    or a switch's upstream port. Bridges alternate along a path (root port, then switch upstream and downstream
    ports): a downstream port's files are its child's link, judged at the child.
    """
    by_address = {f.address: f for f in functions}

    def depth(f: PciFunction) -> int:  # bridges above f
        n, up = 0, by_address.get(f.upstream or "")
        while up is not None and n < 64:
            n, up = n + 1, by_address.get(up.upstream or "")
        return n

    seen: set[str] = set()
    out = []
    for f in sorted(functions, key=lambda f: f.address):
        if f.upstream is None or f.capability is None or f.link is None:
            continue  # below a host bridge (root ports, RCiEPs), or no PCIe link files
        if f.is_bridge and depth(f) % 2 == 0:
            continue  # a switch's downstream port
        key = f"{f.upstream}/{f.address.rsplit('.', 1)[0]}"
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _describe(f: PciFunction, names: dict[str, str]) -> str:
    name = names.get(f.ids) or _CLASS_NAMES.get((f.class_code or 0) >> 8, "device")
    return f"{f.address} {name} [{f.ids}]" + (f" ({f.driver})" if f.driver else "")


def _expected(f: PciFunction, port: PciFunction | None, settings: PcieSettings) -> tuple[float, int]:
    """(GT/s, lanes) the link should run at: what both ends can do, or the profile's expectation."""
    assert f.capability is not None
    expected_speed, expected_width = f.capability.speed_gts, f.capability.width
    if port is not None and port.capability is not None:
        expected_speed = min(expected_speed, port.capability.speed_gts)
        expected_width = min(expected_width, port.capability.width)
    expect = _expectation(f, settings.expect)
    if expect and expect.min_speed_gts:
        expected_speed = max(expected_speed, expect.min_speed_gts)
    if expect and expect.min_width:
        expected_width = max(expected_width, expect.min_width)
    return expected_speed, expected_width


def _speed_shortfall(f: PciFunction, port: PciFunction | None, settings: PcieSettings) -> float | None:
    """The speed the link lacks (GT/s), None when it runs at its expected speed."""
    if f.capability is None or f.link is None or f.link.width == 0:
        return None if f.capability is None else f.capability.speed_gts
    expected, _ = _expected(f, port, settings)
    return expected - f.link.speed_gts if f.link.speed_gts < expected else None


def _link(f: PciFunction, port: PciFunction | None, phase: str, settings: PcieSettings, evidence: PcieEvidence,
          findings: Findings, soft_speed: bool = False) -> None:
    """soft_speed: a speed below the expected one is a warning (power management), the width still fails."""
    assert f.capability is not None
    expected_speed, expected_width = _expected(f, port, settings)
    where = f"behind {port.address}" if port else f"behind {f.upstream}"
    subject = f"{_describe(f, evidence.names)} {where} ({phase})"
    ends = (f"the device can do {f.capability.speed_gts:g} GT/s x{f.capability.width}"
            + (f", its port {port.capability.speed_gts:g} GT/s x{port.capability.width}"
               if port and port.capability else ", its port's capability is unknown"))
    because = "the link runs below what both ends can do: riser, adapter, cable or slot"
    if (f.link is None or f.link.width == 0) and f.suspended:
        findings.measure("pcie_link_width_lanes", None, unit="lanes", low=expected_width, subject=subject,
                         text="link", detail=f"not up: the device is runtime-suspended ({f.power_state}); keep it "
                         f"awake (`echo on > /sys/bus/pci/devices/{f.address}/power/control`) or load it to judge "
                         f"its link")
        return
    if f.link is None or f.link.width == 0:
        findings.measure("pcie_link_width_lanes", 0, unit="lanes", low=expected_width, subject=subject,
                         text="link", detail=f"down; {ends}", because="a populated device without a link")
        return
    findings.measure("pcie_link_speed_gts", f.link.speed_gts, unit="GT/s", low=expected_speed, subject=subject,
                     text="link speed", detail=f"at x{f.link.width}; {ends}", warn=soft_speed,
                     because=(("a GPU lowers its link speed while it is idle: read it again under a GPU load"
                               if _is_gpu(f) else "it trained up to full speed under load: link power management")
                              if soft_speed else because))
    findings.measure("pcie_link_width_lanes", f.link.width, unit="lanes", low=expected_width, subject=subject,
                     text="link width", detail=f"at {f.link.speed_gts:g} GT/s; {ends}", because=because)


def _expectation(f: PciFunction, expectations: list[PcieExpectation]) -> PcieExpectation | None:
    for e in expectations:
        if e.slot == f.address or (e.ids and e.ids.lower() == f.ids):
            return e
    return None


def _aer(evidence: PcieEvidence, settings: PcieSettings, findings: Findings) -> None:
    before = {f.address: f for f in evidence.idle if f.aer}
    after = {f.address: f for f in evidence.after if f.aer}
    if not before:
        findings.not_qualified("no AER counters in sysfs (no AER capability, or a kernel without CONFIG_PCIEAER)",
                               "boot a kernel with AER (Debian/Proxmox kernels have it) and firmware that grants "
                               "the OS AER control (kernel log: 'AER: enabled' / '_OSC: OS now controls ...AER')")
        return
    for _address, f in sorted(before.items()):
        old = {kind: {bit: n for bit, n in counts.items() if n} for kind, counts in f.aer.items()}
        if any(old.values()):
            listed = "; ".join(f"{kind} " + ", ".join(f"{bit} {n}" for bit, n in bits.items())
                               for kind, bits in old.items() if bits)
            findings.note(f"{_describe(f, evidence.names)}: AER counts since boot before the run: {listed}")
    limits = {"correctable": settings.max_correctable_growth, "nonfatal": 0, "fatal": 0}
    for kind in AER_CLASSES:
        total = 0
        for address, f in sorted(before.items()):
            end = after.get(address)
            if end is None or kind not in f.aer or kind not in end.aer:
                continue
            start = f.aer[kind]
            grown = {bit: n - start.get(bit, 0) for bit, n in end.aer[kind].items() if n > start.get(bit, 0)}
            growth = sum(grown.values())
            total += growth
            if growth:
                bits = ", ".join(f"{bit} +{n}" for bit, n in sorted(grown.items()))
                findings.measure(f"pcie_aer_{kind}_errors_total", growth, unit="errors", high=limits[kind],
                                 subject=_describe(f, evidence.names), text=f"{kind} AER errors during the run",
                                 detail=f"({bits})", because="the link or device is corrupting transfers")
        findings.measure(f"pcie_aer_{kind}_growth_errors_total", total, unit="errors", high=limits[kind],
                         text=f"{kind} AER errors gained during the run over {len(before)} devices")
