"""The built-in lab: simulated nodes on this machine that the controller reaches over real SSH.

Per node: a network namespace with its own sshd (in its own UTS namespace, so `hostname` is the
node name), a management veth on a root-namespace bridge, a full mesh of veth links between the
nodes, a loop device as its "U.2" drive, a freezer cgroup holding everything the node runs, a
prepared sysfs/procfs tree and a profile overlay pointing the checks at that tree.

What was built is recorded in <lab_dir>/state.json. lab_down removes exactly that, plus anything
named after this config's prefix and nodes (a crash may have left things before state was written).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from qualify.errors import LabError
from qualify.lab import cgroup, loopdev, netns, procs, sshd
from qualify.lab._cmd import require_root, require_tools
from qualify.lab.drive import bin_dir, lab_drive_serial, prepare_lab_drive
from qualify.lab.fakedrive import IMAGE, fake_drive_healthy, fuse_available, make_fake_drive, remove_fake_drive
from qualify.lab.overlay import overlay_content, write_overlay
from qualify.lab.thermal_model import start_model, stop_model
from qualify.lab.tree import NodeSpec, build_node_tree

DEFAULT_LAB_DIR = "/run/qualify-lab"
MARKER = ".qualify-lab"  # lab_down deletes a lab_dir only when this marker says it is ours
LOCK_DIR = Path("/run/lock")
_NODE_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
IFNAMSIZ = 15  # longest Linux interface name


def _default_lab_dir() -> Path:
    return Path(os.environ.get("QUALIFY_LAB_DIR") or DEFAULT_LAB_DIR)


FAKE_DRIVE_NODE = "lab-pve1"  # the lab node that carries a fake drive by default


@dataclass(frozen=True)
class LabConfig:
    lab_dir: Path = field(default_factory=_default_lab_dir)
    prefix: str = "qlab-"      # names of netns, root-side links, cgroups
    subnet: int = 213          # the lab uses 10.<subnet>.0.0/16
    nodes: tuple[str, ...] = ("lab-pve1", "lab-pve2", "lab-pve3")  # never a real node's name
    disk_mib: int = 256        # size of each node's sparse "U.2" backing file
    # A node that also carries a drive claiming 4x what it holds (a second loop device over a FUSE file that
    # wraps onto disk_mib): drive_integrity must reject it. By default lab-pve1, when the lab has it and this
    # machine has FUSE (~0.4 s of `lab up`); None, or QUALIFY_LAB_FAKE_DRIVE=none: no fake drive.
    fake_drive: str | None = FAKE_DRIVE_NODE

    def __post_init__(self) -> None:
        object.__setattr__(self, "lab_dir", Path(self.lab_dir).absolute())
        object.__setattr__(self, "nodes", tuple(self.nodes))
        if not _PREFIX_RE.match(self.prefix):
            raise LabError(f"lab prefix {self.prefix!r}: expected letters, digits, '-', '_' or '.'")
        if not 0 <= self.subnet <= 255:
            raise LabError(f"lab subnet {self.subnet}: expected 0..255 (the lab uses 10.<subnet>.0.0/16)")
        # Mesh subnets are 10.<subnet>.<10*(i+1)+(j+1)>.0/24: unique only for up to 9 nodes.
        if not 1 <= len(self.nodes) <= 9 or len(set(self.nodes)) != len(self.nodes):
            raise LabError(f"lab nodes {self.nodes}: expected 1 to 9 distinct names")
        for node in self.nodes:
            if not _NODE_RE.match(node):
                raise LabError(f"lab node name {node!r}: expected lowercase letters, digits and '-'")
            for name in (self.netns(node), f"to-{node}"):
                if len(name) > IFNAMSIZ:
                    raise LabError(f"lab link name {name!r} is longer than {IFNAMSIZ} characters: "
                                   "use a shorter prefix or node name")
        if len(self.bridge) > IFNAMSIZ:
            raise LabError(f"lab bridge name {self.bridge!r} is longer than {IFNAMSIZ} characters")
        if self.disk_mib < 1:
            raise LabError(f"lab disk size {self.disk_mib} MiB: expected at least 1")
        if self.fake_drive == FAKE_DRIVE_NODE and (FAKE_DRIVE_NODE not in self.nodes or not fuse_available()):
            object.__setattr__(self, "fake_drive", None)  # the default where it cannot be (said by lab_up)
        if self.fake_drive is not None and self.fake_drive not in self.nodes:
            raise LabError(f"lab fake drive node {self.fake_drive!r}: expected one of {', '.join(self.nodes)}")

    @classmethod
    def from_env(cls) -> LabConfig:
        """QUALIFY_LAB_DIR, QUALIFY_LAB_PREFIX, QUALIFY_LAB_SUBNET (and QUALIFY_LAB_NODES) over the defaults."""
        kw: dict[str, object] = {"lab_dir": _default_lab_dir()}
        if os.environ.get("QUALIFY_LAB_PREFIX"):
            kw["prefix"] = os.environ["QUALIFY_LAB_PREFIX"]
        if os.environ.get("QUALIFY_LAB_SUBNET"):
            raw = os.environ["QUALIFY_LAB_SUBNET"]
            try:
                kw["subnet"] = int(raw)
            except ValueError:
                raise LabError(f"QUALIFY_LAB_SUBNET={raw!r}: expected a number 0..255") from None
        if os.environ.get("QUALIFY_LAB_NODES"):
            kw["nodes"] = tuple(os.environ["QUALIFY_LAB_NODES"].replace(",", " ").split())
        if os.environ.get("QUALIFY_LAB_FAKE_DRIVE"):
            raw = os.environ["QUALIFY_LAB_FAKE_DRIVE"]
            kw["fake_drive"] = None if raw.lower() in ("none", "off", "0") else raw
        return cls(**kw)  # type: ignore[arg-type]

    # Names and addresses, derived in one place so up, down and status agree.
    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    @property
    def bridge_cidr(self) -> str:
        return f"10.{self.subnet}.0.1/24"

    def netns(self, node: str) -> str:
        """Namespace and root-side link of a node: the prefix already says "lab", keep names short."""
        return self.prefix + node.removeprefix("lab-")

    def mgmt_ip(self, node: str) -> str:
        return f"10.{self.subnet}.0.{11 + self.nodes.index(node)}"

    def node_dir(self, node: str) -> Path:
        return self.lab_dir / "nodes" / node

    def backing_file(self, node: str) -> Path:
        return self.node_dir(node) / "u2.img"

    def sshd_config(self, node: str) -> Path:
        return self.node_dir(node) / "sshd_config"

    def pidfile(self, node: str) -> Path:
        return self.node_dir(node) / "sshd.pid"

    def overlay(self, node: str) -> Path:
        return self.lab_dir / "overlay" / f"{node}.yaml"

    def fake_drive_dir(self, node: str) -> Path:
        return self.node_dir(node) / "fake-drive"


@dataclass(frozen=True)
class NodeState:
    name: str
    netns: str
    mgmt_ip: str
    sshd_pid: int
    sshd_config: Path
    loop_device: str
    backing_file: Path
    cgroup: Path | None
    tree_root: Path
    overlay: Path


@dataclass(frozen=True)
class LinkState:
    a: str
    b: str
    dev_a: str   # in a's namespace, named to-<b>
    dev_b: str   # in b's namespace, named to-<a>
    addr_a: str  # CIDR
    addr_b: str


@dataclass(frozen=True)
class LabState:
    config: LabConfig
    nodes: dict[str, NodeState]
    links: tuple[LinkState, ...]
    bridge: str
    bridge_addr: str
    ssh_config: Path
    known_hosts: Path
    identity: Path
    cgroup_kind: str | None  # "freezer-v1", "cgroup2" or None (no freezer on this host)
    created: str

    def to_json(self) -> str:
        def conv(o: object) -> object:
            if isinstance(o, Path):
                return str(o)
            if isinstance(o, (LabConfig, NodeState, LinkState)):
                return {k: conv(v) for k, v in vars(o).items()}
            if isinstance(o, dict):
                return {k: conv(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [conv(v) for v in o]
            return o

        data = {k: conv(v) for k, v in vars(self).items()}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        d = json.loads(text)
        c = d["config"]
        config = LabConfig(lab_dir=Path(c["lab_dir"]), prefix=c["prefix"], subnet=c["subnet"],
                           nodes=tuple(c["nodes"]), disk_mib=c.get("disk_mib", 256), fake_drive=c.get("fake_drive"))
        nodes = {}
        for name, n in d["nodes"].items():
            nodes[name] = NodeState(
                name=n["name"], netns=n["netns"], mgmt_ip=n["mgmt_ip"], sshd_pid=int(n["sshd_pid"]),
                sshd_config=Path(n["sshd_config"]), loop_device=n["loop_device"],
                backing_file=Path(n["backing_file"]), cgroup=Path(n["cgroup"]) if n["cgroup"] else None,
                tree_root=Path(n["tree_root"]), overlay=Path(n["overlay"]))
        return cls(
            config=config, nodes=nodes, links=tuple(LinkState(**ln) for ln in d["links"]),
            bridge=d["bridge"], bridge_addr=d["bridge_addr"], ssh_config=Path(d["ssh_config"]),
            known_hosts=Path(d["known_hosts"]), identity=Path(d["identity"]),
            cgroup_kind=d["cgroup_kind"], created=d["created"])


# ---------------------------------------------------------------- state file and lock

def _state_path(cfg: LabConfig) -> Path:
    return cfg.lab_dir / "state.json"


def _load_state(cfg: LabConfig) -> LabState | None:
    try:
        return LabState.from_json(_state_path(cfg).read_text())
    except (OSError, ValueError, KeyError, TypeError, LabError):
        return None  # missing or unreadable: treated as "not up"; lab_down still sweeps by name


def _write_state(state: LabState) -> None:
    path = _state_path(state.config)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, path)  # atomic: readers never see half a state file


@contextlib.contextmanager
def _locked(cfg: LabConfig, remove: bool = False) -> Iterator[None]:
    """Serialise lab_up/lab_down of the same lab (same prefix = same names) across processes.

    lab_down removes the lock file too (remove=True), so a torn-down lab leaves nothing behind.
    """
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    path = LOCK_DIR / f"qualify-lab-{cfg.prefix}.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
            if remove:
                path.unlink(missing_ok=True)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _cgroup_path(cfg: LabConfig, mount: Path, node: str) -> Path:
    return mount / cgroup.group_name(cfg.prefix) / node


# ---------------------------------------------------------------- health

def _sshd_ours(st: NodeState) -> bool:
    return sshd.is_ours(st.sshd_pid, st.sshd_config, netns.netns_inode(st.netns))


def lab_status(cfg: LabConfig) -> LabState | None:
    """The recorded lab when it is up (state present, every node's sshd alive); else None."""
    state = _load_state(cfg)
    if state is None or not state.nodes:
        return None
    if not all(_sshd_ours(n) for n in state.nodes.values()):
        return None
    return state


def _healthy(cfg: LabConfig) -> LabState | None:
    """The state when everything lab_up would build is there and matches cfg; else None."""
    state = lab_status(cfg)
    if state is None or state.config != cfg or set(state.nodes) != set(cfg.nodes):
        return None
    if not netns.link_exists(state.bridge):
        return None
    for n in state.nodes.values():
        if not netns.netns_exists(n.netns) or not netns.link_exists(cfg.netns(n.name)):
            return None
        if n.loop_device not in loopdev.devices_backed_by(n.backing_file):
            return None
        if n.cgroup is not None and n.sshd_pid not in cgroup.pids(n.cgroup):
            return None
        if not (n.overlay.is_file() and (n.tree_root / "proc/cpuinfo").is_file()):
            return None
        try:
            with socket.create_connection((n.mgmt_ip, 22), timeout=2):
                pass
        except OSError:
            return None
    for ln in state.links:
        if not (netns.link_exists(ln.dev_a, cfg.netns(ln.a)) and netns.link_exists(ln.dev_b, cfg.netns(ln.b))):
            return None
    if not all(p.is_file() for p in (state.ssh_config, state.known_hosts, state.identity)):
        return None
    if cfg.fake_drive and not fake_drive_healthy(cfg.fake_drive_dir(cfg.fake_drive)):
        return None
    return state


def _anything_left(cfg: LabConfig) -> bool:
    if cfg.lab_dir.exists():
        return True
    existing = netns.netns_list()
    if any(cfg.netns(n) in existing for n in cfg.nodes):
        return True
    links = set(netns.link_names())
    return cfg.bridge in links or any(cfg.netns(n) in links for n in cfg.nodes)


# ---------------------------------------------------------------- up

def lab_up(cfg: LabConfig, spec: NodeSpec | None = None) -> LabState:
    """Bring the lab up. A healthy lab is left alone; anything else of ours is removed and rebuilt.

    `spec` is the hardware every node's tree presents (default: the seed's Erying G660 node).
    """
    require_root()
    require_tools()
    with _locked(cfg):
        state = _healthy(cfg)
        if state is not None:
            return state
        _check_lab_dir(cfg)
        if FAKE_DRIVE_NODE in cfg.nodes and not fuse_available():  # said, not silently left out
            print(f"lab: {FAKE_DRIVE_NODE} carries no fake drive: this machine has no /dev/fuse (modprobe fuse); "
                  "drive_integrity's fake-capacity rejection is not shown", file=sys.stderr)
        if _anything_left(cfg):
            _down(cfg)
        _check_subnet_free(cfg)
        try:
            return _build(cfg, spec or NodeSpec(sensors=True))
        except BaseException as exc:
            # Never leave a half-built lab: remove what was made, then report the original failure.
            try:
                _down(cfg)
            except LabError as cleanup:
                if isinstance(exc, LabError):
                    raise LabError(f"{exc}; and cleaning up after it failed: {cleanup}") from exc
            raise


def _check_lab_dir(cfg: LabConfig) -> None:
    d = cfg.lab_dir
    if d.exists() and not (d / MARKER).exists() and (not d.is_dir() or any(d.iterdir())):
        raise LabError(f"refusing to use {d} as the lab directory: it exists and was not made by the lab "
                       "(set QUALIFY_LAB_DIR to an empty or new directory)")


def _check_subnet_free(cfg: LabConfig) -> None:
    net = f"10.{cfg.subnet}."
    for link, addr in netns.ipv4_addresses():
        if addr.startswith(net) and link != cfg.bridge:
            raise LabError(f"10.{cfg.subnet}.0.0/16 is already in use here ({addr} on {link}): "
                           "choose another QUALIFY_LAB_SUBNET")


def _build(cfg: LabConfig, spec: NodeSpec) -> LabState:
    d = cfg.lab_dir
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    (d / MARKER).write_text("made by qualify lab-up; lab-down removes this directory\n")
    (d / "overlay").mkdir(exist_ok=True)

    identity = d / "id_ed25519"
    controller_pub = sshd.gen_key(identity, "qualify-lab-controller")
    authorized = d / "authorized_keys"
    authorized.write_text(controller_pub + "\n")

    netns.bridge_create(cfg.bridge, cfg.bridge_cidr)
    for node in cfg.nodes:
        netns.netns_add(cfg.netns(node))
        netns.mgmt_veth(cfg.netns(node), cfg.bridge, cfg.netns(node), f"{cfg.mgmt_ip(node)}/24")

    links = []
    for i, a in enumerate(cfg.nodes):
        for j in range(i + 1, len(cfg.nodes)):
            b = cfg.nodes[j]
            net = f"10.{cfg.subnet}.{10 * (i + 1) + (j + 1)}"
            ln = LinkState(a=a, b=b, dev_a=f"to-{b}", dev_b=f"to-{a}", addr_a=f"{net}.1/24", addr_b=f"{net}.2/24")
            netns.mesh_veth(cfg.netns(a), ln.dev_a, ln.addr_a, cfg.netns(b), ln.dev_b, ln.addr_b)
            links.append(ln)

    found = cgroup.find_freezer()
    kind = found[0] if found else None
    nodes: dict[str, NodeState] = {}
    host_keys: list[tuple[str, str]] = []
    for node in cfg.nodes:
        nd = cfg.node_dir(node)
        nd.mkdir(parents=True, exist_ok=True)
        build_node_tree(nd, spec)
        if spec.sensors:
            start_model(nd)  # drives the tree's temperatures, clocks and throttle counters

        backing = cfg.backing_file(node)
        loopdev.make_backing_file(backing, cfg.disk_mib)
        device = loopdev.attach(backing)
        # The node's kernel view lists its own drive only (discovery reads <paths.sysfs>/block)
        (nd / "sys" / "block").mkdir(parents=True, exist_ok=True)
        (nd / "sys" / "block" / Path(device).name).symlink_to(f"/sys/block/{Path(device).name}")

        host_key = nd / "ssh_host_ed25519_key"
        host_keys.append((cfg.mgmt_ip(node), sshd.gen_key(host_key, f"qualify-lab-{node}")))
        cfg.sshd_config(node).write_text(sshd.sshd_config_text(cfg.mgmt_ip(node), host_key, cfg.pidfile(node),
                                                               authorized, tools=bin_dir(nd)))

        cg: Path | None = None
        if found is not None:
            try:
                cg = _cgroup_path(cfg, found[1], node)
                cgroup.create(cg, found[0])
            except LabError:
                cg, kind = None, None  # freezer present but unusable: run without it, recorded as None
        pid = sshd.start(cfg.netns(node), node, cfg.sshd_config(node), nd / "sshd.log", cfg.pidfile(node))
        if cg is not None:
            # Children of sshd (every session and command on the node) inherit this cgroup.
            cgroup.add_pid(cg, pid)

        overlay = cfg.overlay(node)
        prepare_lab_drive(node, backing)  # its QLAB- serial marker (and SMART fixture)
        if node == cfg.fake_drive:
            folder = cfg.fake_drive_dir(node)
            fake = make_fake_drive(folder, cfg.disk_mib << 22, cfg.disk_mib << 20, lab_drive_serial(folder / IMAGE))
            (nd / "sys" / "block" / Path(fake.loop_device).name).symlink_to(f"/sys/block/{Path(fake.loop_device).name}")
        write_overlay(overlay, overlay_content(d / "ssh_config", node, nd))
        nodes[node] = NodeState(
            name=node, netns=cfg.netns(node), mgmt_ip=cfg.mgmt_ip(node), sshd_pid=pid,
            sshd_config=cfg.sshd_config(node), loop_device=device, backing_file=backing, cgroup=cg,
            tree_root=nd, overlay=overlay)
    if kind is None:  # one node without freezer means the lab has none
        nodes = {k: NodeState(**{**vars(v), "cgroup": None}) for k, v in nodes.items()}

    known_hosts = d / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_text(host_keys))
    ssh_config = d / "ssh_config"
    ssh_config.write_text(sshd.ssh_config_text([(n, cfg.mgmt_ip(n)) for n in cfg.nodes], identity, known_hosts))

    for node in cfg.nodes:
        sshd.check_login(ssh_config, node, cfg.node_dir(node) / "sshd.log")

    state = LabState(
        config=cfg, nodes=nodes, links=tuple(links), bridge=cfg.bridge, bridge_addr=cfg.bridge_cidr,
        ssh_config=ssh_config, known_hosts=known_hosts, identity=identity, cgroup_kind=kind,
        created=datetime.now(UTC).isoformat(timespec="seconds"))
    _write_state(state)
    return state


# ---------------------------------------------------------------- down

def lab_down(cfg: LabConfig) -> None:
    """Remove everything the lab made (harmless when nothing is up). Raises LabError listing leftovers."""
    require_root()
    with _locked(cfg, remove=True):
        _down(cfg)


def _down(cfg: LabConfig) -> None:
    problems: list[str] = []
    state = _load_state(cfg)
    # What state.json recorded, plus everything named after this config (a crash may predate the state).
    configs = [cfg] + ([state.config] if state is not None and state.config != cfg else [])
    found = cgroup.find_freezer()

    def attempt(what: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except (LabError, OSError) as e:
            problems.append(f"{what}: {e}")

    # 1. Processes: thaw first (a frozen process never handles SIGTERM), then stop sshd and every
    #    process still inside the node (its cgroup or its namespace); all of them were started by the lab.
    cgroups: list[tuple[Path, str]] = []
    for c in configs:
        for node in c.nodes:
            paths: list[tuple[Path, str]] = []
            recorded = state.nodes[node].cgroup if state is not None and node in state.nodes else None
            if state is not None and recorded is not None:
                paths.append((recorded, state.cgroup_kind or cgroup.V1))
            if found is not None:
                paths.append((_cgroup_path(c, found[1], node), found[0]))
            paths = [p for p in dict.fromkeys(paths) if p[0].is_dir()]
            cgroups += paths
            for path, kind in paths:
                attempt(f"thawing cgroup {path}", cgroup.thaw, path, kind)

            attempt(f"stopping the thermal model of {node}", stop_model, c.node_dir(node))
            victims: list[int] = []
            pid = sshd.read_pid(c.pidfile(node))
            ns_inode = netns.netns_inode(c.netns(node))
            if pid is not None and sshd.is_ours(pid, c.sshd_config(node), ns_inode):
                victims.append(pid)
            if state is not None and node in state.nodes:
                st = state.nodes[node]
                if sshd.is_ours(st.sshd_pid, st.sshd_config, ns_inode):
                    victims.append(st.sshd_pid)
            for path, _ in paths:
                victims += cgroup.pids(path)
            if netns.netns_exists(c.netns(node)):
                victims += netns.netns_pids(c.netns(node))
            left = procs.terminate(sorted(set(victims)))
            if left:
                problems.append(f"processes of lab node {node} did not exit: {left}")

    # 2. Namespaces (their veth ends, mesh links included, go with them), then root-side links.
    existing = netns.netns_list()
    for c in configs:
        for node in c.nodes:
            if c.netns(node) in existing:
                attempt(f"`ip netns del {c.netns(node)}`", netns.netns_del, c.netns(node))
    links = set(netns.link_names())
    for c in configs:
        for name in [c.netns(n) for n in c.nodes] + [c.bridge]:
            if name in links:
                attempt(f"`ip link del {name}`", netns.link_del, name)

    # 3. Loop devices, only those backed by our files; a fake drive's first, then its FUSE mount and daemon.
    for c in configs:
        for node in c.nodes:
            if c.fake_drive_dir(node).is_dir():
                attempt(f"removing the fake drive of {node}", remove_fake_drive, c.fake_drive_dir(node))
    backing = {c.backing_file(n) for c in configs for n in c.nodes}
    if state is not None:
        backing |= {n.backing_file for n in state.nodes.values()}
    for bf in backing:
        for dev in loopdev.devices_backed_by(bf):
            attempt(f"detaching {dev}", loopdev.detach, dev, bf)

    # 4. cgroups (empty now), then their parent if no other node group is left in it.
    for path, _ in dict.fromkeys(cgroups):
        attempt(f"removing cgroup {path}", cgroup.remove, path)
    parents = {p.parent for p, _ in cgroups}
    if found is not None:  # also a parent left without node groups by a crash
        parents |= {found[1] / cgroup.group_name(c.prefix) for c in configs}
    for parent in parents:
        if not parent.is_dir():
            continue
        with contextlib.suppress(OSError):
            if not any(x.is_dir() for x in parent.iterdir()):
                parent.rmdir()

    # 5. The lab directory, only when the marker says the lab made it.
    for c in configs:
        d = c.lab_dir
        if (d / MARKER).exists():
            attempt(f"removing {d}", shutil.rmtree, d)

    if problems:
        raise LabError("lab-down could not remove everything: " + "; ".join(problems))


# ---------------------------------------------------------------- helpers for the rest of qualify

def overlay_path(cfg: LabConfig, node: str) -> Path | None:
    """The node's profile overlay (host, ssh config, sysfs/procfs paths) when the lab is up and has the node."""
    state = lab_status(cfg)
    if state is None or node not in state.nodes or not state.nodes[node].overlay.is_file():
        return None
    return state.nodes[node].overlay


def _node_cgroup(cfg: LabConfig, node: str) -> tuple[Path, str]:
    state = lab_status(cfg)
    if state is None or node not in state.nodes:
        raise LabError(f"lab node {node} is not up (make lab-up)")
    cg = state.nodes[node].cgroup
    if cg is None or state.cgroup_kind is None:
        raise LabError(f"lab node {node} has no freezer cgroup (no cgroup freezer on this host)")
    return cg, state.cgroup_kind


def freeze_node(cfg: LabConfig, node: str) -> None:
    """Freeze everything the node runs (simulates a hung node: no heartbeat, SSH stalls)."""
    cgroup.freeze(*_node_cgroup(cfg, node))


def thaw_node(cfg: LabConfig, node: str) -> None:
    cgroup.thaw(*_node_cgroup(cfg, node))


def node_frozen(cfg: LabConfig, node: str) -> bool:
    return cgroup.is_frozen(*_node_cgroup(cfg, node))
