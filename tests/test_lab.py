"""The built-in lab, for real: namespaces, sshd, mesh, loop devices, freezer cgroups (as root).

The lab tests use their own LabConfig (own lab dir, prefix and subnet) so they never touch a lab a
user has up, and a module fixture that always runs lab_down, also when a test fails.
The node-tree and config tests need no root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from helpers import free_subnet, test_lab_config
from qualify.errors import LabError
from qualify.lab import (
    LabConfig,
    LabState,
    NodeSpec,
    build_node_tree,
    freeze_node,
    lab_down,
    lab_status,
    lab_up,
    node_frozen,
    overlay_path,
    thaw_node,
)
from qualify.lab import cgroup as lab_cgroup
from qualify.parsers.microcode_firmware import parse_intel_microcode

CORPUS = Path(__file__).resolve().parent / "corpus" / "microcode"
IS_ROOT = os.geteuid() == 0
MISSING = [t for t in ("/usr/sbin/sshd", "ip", "losetup", "ssh", "ssh-keygen", "unshare", "nsenter")
           if not (os.access(t, os.X_OK) if "/" in t else shutil.which(t))]
needs_root = pytest.mark.skipif(
    not IS_ROOT or bool(MISSING),
    reason="the lab needs root" if not IS_ROOT else f"the lab needs {', '.join(MISSING)}",
)


# ---------------------------------------------------------------- node tree (no root needed)

def _stanzas(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.strip("\n").split("\n\n")]


def test_default_tree_is_the_seed_node(tmp_path: Path) -> None:
    build_node_tree(tmp_path, NodeSpec())
    cpuinfo = (tmp_path / "proc/cpuinfo").read_text()
    blocks = _stanzas(cpuinfo)
    assert [b[0] for b in blocks] == [f"processor\t: {i}" for i in range(16)]
    assert cpuinfo.count("model name\t: 12th Gen Intel(R) Core(TM) i5-12650H\n") == 16
    assert cpuinfo.count("microcode\t: 0x435\n") == 16
    for key, value in (("cpu family", "6"), ("model\t", "154"), ("stepping", "3"), ("siblings", "16"),
                       ("cpu cores", "10"), ("physical id", "0"), ("vendor_id", "GenuineIntel")):
        assert cpuinfo.count(f"{key}\t: {value}\n") == 16, key
    assert " hypervisor" not in cpuinfo
    # 6 two-thread P-cores then 4 E-cores: 10 distinct core ids.
    assert len(set(re.findall(r"^core id\t\t: (\d+)$", cpuinfo, re.M))) == 10

    cpu = tmp_path / "sys/devices/system/cpu"
    for i in range(16):
        assert (cpu / f"cpu{i}/microcode/version").read_text() == "0x435\n"
        assert (cpu / f"cpu{i}/microcode/processor_flags").read_text() == "0x80\n"
    assert not (cpu / "cpu16").exists()
    assert (cpu / "online").read_text() == "0-15\n"
    assert (cpu / "vulnerabilities/meltdown").read_text() == "Not affected\n"
    assert (cpu / "vulnerabilities/spectre_v2").read_text().startswith("Mitigation: Enhanced / Automatic IBRS")
    assert (cpu / "vulnerabilities/reg_file_data_sampling").read_text() == "Mitigation: Clear Register File\n"

    dmi = tmp_path / "sys/class/dmi/id"
    assert (dmi / "sys_vendor").read_text() == "Erying\n"
    assert (dmi / "board_name").read_text() == "G660\n"
    assert (dmi / "bios_vendor").read_text() == "American Megatrends International, LLC.\n"
    assert (tmp_path / "proc/sys/kernel/osrelease").read_text() == "6.8.12-4-pve\n"
    assert (tmp_path / "proc/version").read_text().startswith("Linux version 6.8.12-4-pve ")
    assert "MemTotal:       65536000 kB\n" in (tmp_path / "proc/meminfo").read_text()

    log = (tmp_path / "kernel.log").read_text()
    assert "[    0.000000] Linux version 6.8.12-4-pve " in log
    assert "[    0.000000] microcode: Current revision: 0x00000435\n" in log
    assert "[    0.000000] microcode: Updated early from: 0x0000042c\n" in log
    assert "DMI: Erying G660/G660, BIOS " in log
    assert all(re.match(r"^\[ *\d+\.\d{6}\] ", line) for line in log.splitlines())

    (update,) = parse_intel_microcode((tmp_path / "firmware/intel-ucode/06-9a-03").read_bytes(), "06-9a-03")
    assert update.revision == 0x435
    assert update.applies_to(0x906A3, 0x80)


def test_cpuinfo_is_formatted_like_the_real_one(tmp_path: Path) -> None:
    """Same keys, order and tab layout as a real Alder Lake /proc/cpuinfo stanza."""
    real = (CORPUS / "cpuinfo-i5-12400-alderlake-microcode-0x2c-cpu0.txt").read_text()
    build_node_tree(tmp_path, NodeSpec())
    ours = _stanzas((tmp_path / "proc/cpuinfo").read_text())[0]

    def labels(lines: list[str]) -> list[str]:
        return [line.split(": ")[0] if ": " in line else line for line in lines]

    assert labels(ours) == labels(real.strip("\n").splitlines())


def test_tree_variations(tmp_path: Path) -> None:
    spec = NodeSpec(model_name="Genuine Intel(R) 0000", cpus=8, cores=4, microcode=0x4121,
                    microcode_per_cpu={5: 0x4122}, firmware_revision=None, early_update_from=None,
                    mem_kb=16_000_000, dmi={"sys_vendor": "Acme"}, vulnerabilities={"meltdown": "Vulnerable"})
    build_node_tree(tmp_path, spec)
    cpuinfo = (tmp_path / "proc/cpuinfo").read_text()
    assert len(_stanzas(cpuinfo)) == 8
    assert re.findall(r"^microcode\t: (\S+)$", cpuinfo, re.M) == ["0x4121"] * 5 + ["0x4122"] + ["0x4121"] * 2
    assert (tmp_path / "sys/devices/system/cpu/cpu5/microcode/version").read_text() == "0x4122\n"
    assert (tmp_path / "sys/devices/system/cpu/online").read_text() == "0-7\n"
    assert not any((tmp_path / "firmware").iterdir())
    log = (tmp_path / "kernel.log").read_text()
    assert "Current revision: 0x00004121" in log and "Updated early" not in log
    assert (tmp_path / "sys/devices/system/cpu/vulnerabilities/meltdown").read_text() == "Vulnerable\n"
    assert "MemTotal:       16000000 kB\n" in (tmp_path / "proc/meminfo").read_text()

    legacy = tmp_path / "legacy"
    build_node_tree(legacy, NodeSpec(log_style="legacy", firmware_revision=0x436))
    log = (legacy / "kernel.log").read_text()
    assert "microcode: microcode updated early to revision 0x435, date = " in log
    assert "Current revision" not in log
    (update,) = parse_intel_microcode((legacy / "firmware/intel-ucode/06-9a-03").read_bytes(), "fw")
    assert update.revision == 0x436


def test_bad_specs_and_configs_are_rejected() -> None:
    with pytest.raises(ValueError, match="cpus"):
        NodeSpec(cpus=4, cores=8)
    with pytest.raises(ValueError, match="no such CPU"):
        NodeSpec(microcode_per_cpu={99: 1})
    with pytest.raises(LabError, match="longer than 15"):
        LabConfig(lab_dir=Path("/run/x"), prefix="a-very-long-prefix-")
    with pytest.raises(LabError, match="subnet"):
        LabConfig(lab_dir=Path("/run/x"), subnet=300)


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALIFY_LAB_DIR", "/run/elsewhere")
    monkeypatch.setenv("QUALIFY_LAB_PREFIX", "zz-")
    monkeypatch.setenv("QUALIFY_LAB_SUBNET", "99")
    cfg = LabConfig.from_env()
    assert (cfg.lab_dir, cfg.prefix, cfg.subnet, cfg.nodes) == (Path("/run/elsewhere"), "zz-", 99,
                                                                ("lab-pve1", "lab-pve2", "lab-pve3"))
    monkeypatch.setenv("QUALIFY_LAB_SUBNET", "abc")
    with pytest.raises(LabError, match="QUALIFY_LAB_SUBNET"):
        LabConfig.from_env()


def test_lab_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    cfg = LabConfig(lab_dir=tmp_path / "lab", prefix="qn-", subnet=250)
    for fn in (lab_up, lab_down):
        with pytest.raises(LabError, match="the lab needs root: run as root"):
            fn(cfg)
    assert not (tmp_path / "lab").exists()


def test_missing_tool_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from qualify.lab import _cmd

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(_cmd, "REQUIRED_TOOLS", ("/nonexistent/sbin/sshd",))
    with pytest.raises(LabError, match="apt-get install openssh-server"):
        lab_up(LabConfig(lab_dir=tmp_path / "lab", prefix="qn-", subnet=250))
    with pytest.raises(LabError, match="'ip-does-not-exist', which is not installed"):
        _cmd.run(["ip-does-not-exist"])  # unknown tools still give a clear error
    with pytest.raises(LabError, match=r"`false` failed \(exit 1\)"):
        _cmd.run(["false"])


# ---------------------------------------------------------------- the real lab (root)

def _ssh(state: LabState, node: str, command: str, *extra: str,
         timeout: float = 20) -> subprocess.CompletedProcess[str]:
    # extra first: ssh keeps the first value it is given for an option.
    return subprocess.run(["ssh", "-F", str(state.ssh_config), *extra, "-o", "BatchMode=yes",
                           "-o", "ConnectTimeout=5", node, command], capture_output=True, text=True, timeout=timeout)


def _leftovers(cfg: LabConfig, pids: list[int]) -> list[str]:
    out = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    out += [f"netns {line}" for line in netns.splitlines() if line.startswith(cfg.prefix)]
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    out += [f"link {line.split()[0]}" for line in links.splitlines() if line.startswith(cfg.prefix)]
    # Any loop device still backed by a file of the lab dir.
    for dev in Path("/sys/block").glob("loop*/loop/backing_file"):
        if dev.read_text().startswith(f"{cfg.lab_dir}/"):
            out.append(f"loop {dev.parent.parent.name}")
    found = lab_cgroup.find_freezer()
    if found and (found[1] / lab_cgroup.group_name(cfg.prefix)).exists():
        out.append(f"cgroup {found[1] / lab_cgroup.group_name(cfg.prefix)}")
    out += [f"pid {p}" for p in pids if Path(f"/proc/{p}").exists()
            and f"{cfg.lab_dir}/" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
    if cfg.lab_dir.exists():
        out.append(f"dir {cfg.lab_dir}")
    if Path(f"/run/lock/qualify-lab-{cfg.prefix}.lock").exists():
        out.append("lock file")
    return out


@needs_root
def test_lab_down_when_nothing_is_up_is_harmless() -> None:
    cfg = test_lab_config("n")
    lab_down(cfg)
    lab_down(cfg)
    assert lab_status(cfg) is None
    assert overlay_path(cfg, "lab-pve1") is None
    # A namespace left by a crash before state.json was written is still ours by name: removed.
    subprocess.run(["ip", "netns", "add", cfg.netns("lab-pve1")], check=True)
    try:
        lab_down(cfg)
        assert cfg.netns("lab-pve1") not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                        text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", cfg.netns("lab-pve1")], capture_output=True)
    assert _leftovers(cfg, []) == []


@needs_root
def test_lab_dir_not_made_by_the_lab_is_refused(tmp_path: Path) -> None:
    cfg = LabConfig(lab_dir=tmp_path, prefix=f"qt{os.getpid() % 10000}d-", subnet=free_subnet())
    (tmp_path / "precious.txt").write_text("keep me")
    try:
        with pytest.raises(LabError, match="refusing to use"):
            lab_up(cfg)
        lab_down(cfg)
        assert (tmp_path / "precious.txt").read_text() == "keep me"
    finally:
        lab_down(cfg)


@pytest.fixture(scope="module")
def cfg() -> Iterator[LabConfig]:
    """A test-only lab; lab_down always runs, also when a test (or lab_up) fails."""
    if not IS_ROOT or MISSING:
        pytest.skip("the lab needs root" if not IS_ROOT else f"the lab needs {', '.join(MISSING)}")
    config = test_lab_config()
    try:
        yield config
    finally:
        lab_down(config)


@pytest.fixture(scope="module")
def seen() -> list[int]:
    """Every sshd pid the module's labs had, to check none survives lab_down."""
    return []


@pytest.fixture()
def lab(cfg: LabConfig, seen: list[int]) -> LabState:
    state = lab_up(cfg)
    seen += [n.sshd_pid for n in state.nodes.values()]
    return state


@needs_root
def test_lab_up_twice_is_harmless(cfg: LabConfig, lab) -> None:
    again = lab_up(cfg)
    assert again == lab
    assert {n: s.sshd_pid for n, s in again.nodes.items()} == {n: s.sshd_pid for n, s in lab.nodes.items()}
    assert lab_status(cfg) == lab
    state = json.loads((cfg.lab_dir / "state.json").read_text())
    assert sorted(state["nodes"]) == ["lab-pve1", "lab-pve2", "lab-pve3"]
    assert len(state["links"]) == 3


@needs_root
def test_ssh_reaches_each_node_with_host_key_checking(cfg: LabConfig, lab) -> None:
    for i, node in enumerate(cfg.nodes):
        cp = _ssh(lab, node, "hostname; ip -br addr; cat /proc/self/cgroup")
        assert cp.returncode == 0, cp.stderr
        lines = cp.stdout.splitlines()
        assert lines[0] == node
        assert f"10.{cfg.subnet}.0.{11 + i}/24" in cp.stdout
        others = [o for o in cfg.nodes if o != node]
        assert all(f"to-{o}" in cp.stdout for o in others)
        if lab.cgroup_kind == lab_cgroup.V1:  # the session runs inside the node's freezer cgroup
            assert f":freezer:/{lab_cgroup.group_name(cfg.prefix)}/{node}\n" in cp.stdout
    config = lab.ssh_config.read_text()
    assert f"Host lab-pve2\n  HostName 10.{cfg.subnet}.0.12\n  User root\n" in config
    assert "StrictHostKeyChecking yes" in config
    # Checking is really on: with no known host key the login is refused.
    cp = _ssh(lab, "lab-pve2", "true", "-o", "UserKnownHostsFile=/dev/null")
    assert cp.returncode != 0 and "Host key verification failed" in cp.stderr


def _ns_reaches(cfg: LabConfig, src: str, dst: str, ip: str) -> None:
    """ping when installed; otherwise a TCP connection from src's namespace to a listener in dst's."""
    if shutil.which("ping"):
        cp = subprocess.run(["ip", "netns", "exec", cfg.netns(src), "ping", "-c1", "-W1", ip],
                            capture_output=True, text=True, timeout=10)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        return
    server = subprocess.Popen(
        ["ip", "netns", "exec", cfg.netns(dst), sys.executable, "-c",
         f"import socket; s=socket.create_server(({ip!r}, 5099)); print('ready', flush=True); "
         "s.settimeout(10); c,_=s.accept(); c.sendall(b'hello'); c.close()"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        cp = subprocess.run(["ip", "netns", "exec", cfg.netns(src), sys.executable, "-c",
                             f"import socket; print(socket.create_connection(({ip!r}, 5099), timeout=3).recv(5))"],
                            capture_output=True, text=True, timeout=10)
        assert cp.returncode == 0 and "hello" in cp.stdout, cp.stderr
    finally:
        server.kill()
        server.wait()


@needs_root
def test_full_mesh_between_nodes(cfg: LabConfig, lab) -> None:
    assert [(ln.a, ln.b) for ln in lab.links] == [
        ("lab-pve1", "lab-pve2"), ("lab-pve1", "lab-pve3"), ("lab-pve2", "lab-pve3")]
    for ln in lab.links:
        for node, dev, addr in ((ln.a, ln.dev_a, ln.addr_a), (ln.b, ln.dev_b, ln.addr_b)):
            out = subprocess.run(["ip", "-n", cfg.netns(node), "-br", "addr", "show", "dev", dev],
                                 capture_output=True, text=True, check=True).stdout
            assert " UP " in out and addr in out, out
    assert lab.links[0].addr_b == f"10.{cfg.subnet}.12.2/24"
    _ns_reaches(cfg, "lab-pve1", "lab-pve2", f"10.{cfg.subnet}.12.2")
    _ns_reaches(cfg, "lab-pve3", "lab-pve2", f"10.{cfg.subnet}.23.1")


@needs_root
def test_each_node_runs_in_its_freezer_cgroup(cfg: LabConfig, lab) -> None:
    if lab.cgroup_kind is None:
        pytest.skip("no cgroup freezer on this host; the lab runs without one")
    for node, st in lab.nodes.items():
        assert st.cgroup is not None and st.cgroup.name == node
        assert st.sshd_pid in lab_cgroup.pids(st.cgroup)
    # Everything the node runs is frozen as a whole, and thaws again.
    freeze_node(cfg, "lab-pve3")
    try:
        assert node_frozen(cfg, "lab-pve3")
        cp = _ssh(lab, "lab-pve3", "true", "-o", "ConnectTimeout=2")
        assert cp.returncode != 0
    finally:
        thaw_node(cfg, "lab-pve3")
    assert not node_frozen(cfg, "lab-pve3")
    assert _ssh(lab, "lab-pve3", "true").returncode == 0


@needs_root
def test_each_node_has_its_own_loop_device(cfg: LabConfig, lab) -> None:
    devices = set()
    for node, st in lab.nodes.items():
        name = Path(st.loop_device).name
        backing = Path(f"/sys/block/{name}/loop/backing_file").read_text().strip()
        assert backing == str(cfg.lab_dir / "nodes" / node / "u2.img") == str(st.backing_file)
        assert int(Path(f"/sys/block/{name}/size").read_text()) * 512 == 256 * 1024 * 1024
        devices.add(st.loop_device)
    assert len(devices) == 3


@needs_root
def test_overlay_points_the_checks_at_the_node_tree(cfg: LabConfig, lab) -> None:
    path = overlay_path(cfg, "lab-pve2")
    assert path == cfg.lab_dir / "overlay" / "lab-pve2.yaml"
    nd = cfg.lab_dir / "nodes" / "lab-pve2"
    overlay = yaml.safe_load(path.read_text())
    assert {k: overlay[k] for k in ("host", "ssh", "paths")} == {
        "host": "lab-pve2",
        "ssh": {"config_file": str(cfg.lab_dir / "ssh_config")},
        "paths": {"sysfs": str(nd / "sys"), "procfs": str(nd / "proc"), "firmware": str(nd / "firmware"),
                  "kernel_log": str(nd / "kernel.log")},
    }
    # only how to reach the node and how short its checks are: its drive and links are discovered
    assert "links" not in overlay["checks"]["network"] and "drives" not in overlay["checks"]["storage"]
    assert overlay["checks"]["network"]["expected_rate"] == "500M"
    assert overlay_path(cfg, "lab-pve9") is None
    cp = _ssh(lab, "lab-pve2", f"grep -c ^processor {nd / 'proc/cpuinfo'}")
    assert cp.stdout.strip() == "16"
    assert (nd / "firmware/intel-ucode/06-9a-03").is_file()


@needs_root
def test_half_built_lab_is_rebuilt(cfg: LabConfig, lab) -> None:
    victim = lab.nodes["lab-pve2"]
    assert str(victim.sshd_config) in Path(f"/proc/{victim.sshd_pid}/cmdline").read_text(errors="replace")
    os.kill(victim.sshd_pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{victim.sshd_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab_status(cfg) is None
    rebuilt = lab_up(cfg)
    assert rebuilt.nodes["lab-pve2"].sshd_pid != victim.sshd_pid
    assert lab_status(cfg) == rebuilt
    assert _ssh(rebuilt, "lab-pve2", "hostname").stdout.strip() == "lab-pve2"


@needs_root
def test_lab_down_leaves_nothing(cfg: LabConfig, lab, seen: list[int]) -> None:
    # A lingering session on a frozen node must not keep anything alive.
    session = subprocess.Popen(["ssh", "-F", str(lab.ssh_config), "lab-pve1", "sleep 600"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        if lab.cgroup_kind is not None:
            freeze_node(cfg, "lab-pve1")
        lab_down(cfg)
        session.wait(timeout=10)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    assert lab_status(cfg) is None
    assert overlay_path(cfg, "lab-pve1") is None
    assert _leftovers(cfg, seen) == []


@needs_root
def test_lab_uses_the_cgroup2_freezer_where_v1_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stock Debian 12 has only cgroup v2: the node is then frozen with cgroup.freeze."""
    v2 = next((Path(line.split()[1]) for line in Path("/proc/self/mounts").read_text().splitlines()
               if line.split()[2] == "cgroup2"), None)
    if v2 is None:
        pytest.skip("no cgroup2 mount here")
    monkeypatch.setattr(lab_cgroup, "find_freezer", lambda: (lab_cgroup.V2, v2))
    cfg = LabConfig(lab_dir=Path(f"/run/qualify-test-{os.getpid()}v"), prefix=f"qt{os.getpid() % 10000}v-",
                    subnet=free_subnet(), nodes=("lab-pve1",))
    pids: list[int] = []
    try:
        state = lab_up(cfg)
        pids.append(state.nodes["lab-pve1"].sshd_pid)
        assert state.cgroup_kind == lab_cgroup.V2
        assert state.nodes["lab-pve1"].cgroup == v2 / lab_cgroup.group_name(cfg.prefix) / "lab-pve1"
        assert state.nodes["lab-pve1"].sshd_pid in lab_cgroup.pids(state.nodes["lab-pve1"].cgroup)
        freeze_node(cfg, "lab-pve1")
        deadline = time.monotonic() + 5
        while not node_frozen(cfg, "lab-pve1") and time.monotonic() < deadline:
            time.sleep(0.05)  # v2 reports frozen once every task has stopped
        assert node_frozen(cfg, "lab-pve1")
        assert _ssh(state, "lab-pve1", "true", "-o", "ConnectTimeout=2").returncode != 0
        # Left frozen on purpose: lab_down must thaw before it can stop the node.
    finally:
        lab_down(cfg)
    assert not (v2 / lab_cgroup.group_name(cfg.prefix)).exists()
    assert _leftovers(cfg, pids) == []
