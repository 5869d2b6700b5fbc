"""The telemetry sampler: discovery on hwmon trees built from real `sensors -j` dumps, RAPL wrap-around,
garbage and vanished files as gaps, a VM without sensors, and streaming over SSH from the lab."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.lab import NodeSpec, build_node_tree
from qualify.lab.thermal_model import write_hwmon
from qualify.node import connect
from qualify.parsers.sensors import parse_sensors_json
from qualify.profile import Profile
from qualify.store import RunStore, read_samples
from qualify.telemetry import load_telemetry, sampler, start_telemetry, telemetry_from_records

SENSORS = {  # corpus file -> {series: value} the sampler must find (names as people know them)
    "intel-8p8e-hybrid-coretemp-2x-nvme-sensors-j.json": {
        "temp:coretemp/Package id 0": 27.0, "temp:coretemp/Core 0": 24.0, "temp:coretemp/Core 32": 24.0,
        "temp:nvme/Composite": 32.85, "temp:nvme#2/Composite": None, "temp:acpitz/temp1": 27.8},
    "asrock-nct6798-intel-6p8e-hybrid-nvme-sensors-j.json": {
        "temp:coretemp/Package id 0": 37.0, "temp:coretemp/Core 20": 33.0, "temp:coretemp/Core 31": 35.0,
        "fan:nct6798/fan1": 1278, "fan:nct6798/fan7": 0, "temp:nct6798/PECI Agent 0": 37.5,
        "temp:nvme/Sensor 1": 34.85},
    "amd-k10temp-tctl-tdie-amdgpu-sensors-j.json": {
        "temp:k10temp/Tctl": 53.125, "temp:k10temp/Tdie": 53.125, "temp:amdgpu/edge": 53.0,
        "fan:amdgpu/fan1": 730, "power:amdgpu/power1": 11.018},
    "amd-epyc-7252-k10temp-unlabelled-temp1-only-sensors-j.json": {"temp:k10temp/temp1": 58.0},
    "proxmox-amd-k10temp-tctl-tccd1-tccd2-nvme-sensor1-2-sensors-j.json": {
        "temp:k10temp/Tctl": 51.625, "temp:k10temp/Tccd1": 48.75, "temp:k10temp/Tccd2": 45.0,
        "temp:nvme/Composite": 36.85, "temp:nvme/Sensor 2": 41.85},
}
PACKAGE = {"intel-8p8e-hybrid-coretemp-2x-nvme-sensors-j.json": ["temp:coretemp/Package id 0"],
           "asrock-nct6798-intel-6p8e-hybrid-nvme-sensors-j.json": ["temp:coretemp/Package id 0"],
           "amd-k10temp-tctl-tdie-amdgpu-sensors-j.json": ["temp:k10temp/Tctl"],
           "amd-epyc-7252-k10temp-unlabelled-temp1-only-sensors-j.json": ["temp:k10temp/temp1"],  # was none
           "proxmox-amd-k10temp-tctl-tccd1-tccd2-nvme-sensor1-2-sensors-j.json": ["temp:k10temp/Tctl"]}


def test_every_sensors_corpus_file_is_covered():
    assert {p.name for p in corpus_path("lm-sensors").iterdir()} == set(SENSORS)


@pytest.mark.parametrize("name", sorted(SENSORS))
def test_hwmon_tree_from_real_dump_is_discovered_with_real_names(tmp_path, name):
    chips = parse_sensors_json(corpus_path("lm-sensors", name).read_text(), name)
    write_hwmon(tmp_path / "sys", chips)
    sources, unreadable = sampler.discover(str(tmp_path / "sys"), str(tmp_path / "proc"))
    values, bad = sampler.sample(sources, time.monotonic())
    assert not bad and not unreadable
    for series, expected in SENSORS[name].items():
        assert series in values, f"{series} not among {sorted(values)}"
        if expected is not None:
            assert values[series] == pytest.approx(expected)
    # the stored form picks the package sensor the check judges
    telemetry = telemetry_from_records([{"series": {s.name: s.unit for s in sources}}, {"t": 0, "v": values}])
    assert telemetry.package_temps() == PACKAGE[name]


def test_hybrid_core_numbering_follows_the_labels_not_the_file_numbers(tmp_path):
    name = "asrock-nct6798-intel-6p8e-hybrid-nvme-sensors-j.json"
    write_hwmon(tmp_path / "sys", parse_sensors_json(corpus_path("lm-sensors", name).read_text()))
    sources, _ = sampler.discover(str(tmp_path / "sys"), str(tmp_path / "proc"))
    by_name = {s.name: s.path for s in sources}
    assert by_name["temp:coretemp/Core 24"].endswith("temp26_input")  # E-cores after P-cores 0, 4 ... 20
    assert [n for n in by_name if n.startswith("temp:coretemp/Core")] == \
        [f"temp:coretemp/Core {c}" for c in (0, 4, 8, 12, 16, 20, *range(24, 32))]


def test_sensors_garbage_is_a_parse_error():
    with pytest.raises(ParseError, match="sensors -j"):
        parse_sensors_json("not json")


def _rapl_tree(root: Path, energy: int, max_range: int) -> Path:
    zone = root / "sys/class/powercap/intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    (zone / "energy_uj").write_text(f"{energy}\n")
    return zone / "energy_uj"


def _rewrite(path: Path, text: str) -> None:
    """In place, as the kernel's files change (the sampler keeps them open)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, text.encode(), 0)
        os.ftruncate(fd, len(text))
    finally:
        os.close(fd)


def test_rapl_energy_wrap_around_gives_watts_not_a_negative_spike(tmp_path):
    max_range = 262143328850
    energy = _rapl_tree(tmp_path, max_range - 1_000_000, max_range)
    sources, _ = sampler.discover(str(tmp_path / "sys"), str(tmp_path / "proc"))
    decoder = sampler.Decoder(sampler.header(sources, []))  # the controller's side keeps the previous pass
    assert sampler.sample(sources, 100.0, decoder)[0] == {}   # the first reading only sets the baseline
    _rewrite(energy, "4000000\n")                             # wrapped: 1 J before the wrap + 4 J after
    values, _ = sampler.sample(sources, 102.0, decoder)
    assert values == {"rapl:package-0": pytest.approx(2.5)}
    _rewrite(energy, "10000000\n")
    assert sampler.sample(sources, 103.0, decoder)[0] == {"rapl:package-0": pytest.approx(6.0)}


def _local(tmp_path: Path, tree: Path, interval: float = 0.1, **telemetry):
    profile = Profile(host="localhost", paths={"sysfs": str(tree / "sys"), "procfs": str(tree / "proc")},
                      telemetry={"interval": interval, **telemetry})
    return connect("local", profile), profile, RunStore.create("local", tmp_path / "reports")


def test_garbage_and_vanished_sensor_files_are_gaps_not_a_crash(tmp_path):
    tree = tmp_path / "tree"
    build_node_tree(tree, NodeSpec(sensors=True))
    node, profile, store = _local(tmp_path, tree, ignore=["freq:*"], rename={"zone:acpitz": "ambient"})
    package = next(tree.glob("sys/class/hwmon/*/temp1_input"))  # acpitz's temp1 comes first
    stream = start_telemetry(node, store, profile.telemetry)
    assert "ambient" in stream.series and not any(n.startswith("freq:") for n in stream.series)
    time.sleep(0.5)
    _rewrite(package, "garbage\n")
    time.sleep(0.5)
    core = next(p for p in tree.glob("sys/class/hwmon/*/temp*_label") if p.read_text() == "Core 4\n")
    Path(str(core).replace("_label", "_input")).unlink()
    time.sleep(1.5)
    summary = stream.stop()
    assert summary.samples >= 15 and not summary.error
    assert summary.bad_reads["temp:acpitz/temp1"] >= 2 and summary.bad_reads["temp:coretemp/Core 4"] >= 1
    assert any("could not be read" in s for s in summary.sentences(0.1))
    telemetry = load_telemetry(store.run_dir)
    assert np.isnan(telemetry.values["temp:acpitz/temp1"][-1]) and telemetry.values["ambient"][-1] == 40.0
    seqs = [r["seq"] for r in read_samples(store.run_dir, "telemetry") if "seq" in r]
    assert seqs == list(range(len(seqs)))


def test_gap_in_node_time_is_recorded(tmp_path):
    from qualify.telemetry.stream import TelemetryStream

    tree = tmp_path / "tree"
    build_node_tree(tree, NodeSpec(sensors=True))
    node, profile, store = _local(tmp_path, tree, interval=0.2)
    stream = start_telemetry(node, store, profile.telemetry)
    assert isinstance(stream, TelemetryStream)
    os.kill(_sampler_pid(stream), 19)  # SIGSTOP: the node stops answering for a while
    time.sleep(1.0)
    os.kill(_sampler_pid(stream), 18)
    time.sleep(0.6)
    summary = stream.stop()
    assert summary.gaps and max(g.seconds for g in summary.gaps) >= 0.8
    assert load_telemetry(store.run_dir).gaps


def _sampler_pid(stream) -> int:
    """The python3 sampler under the sh wrapper that ties it to our stdin."""
    wrapper = stream._process._proc.pid
    children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
    return int(children[0])


def test_vm_without_sensors_has_no_temperature_series(tmp_path):
    tree = tmp_path / "tree"
    build_node_tree(tree, NodeSpec(flags=("fpu", "hypervisor")))
    node, profile, store = _local(tmp_path, tree)
    summary = start_telemetry(node, store, profile.telemetry).stop()
    assert "C" not in summary.series.values()


def test_streams_over_ssh_from_a_lab_node(lab, monkeypatch, tmp_path):
    from qualify.overlays import resolve_profile

    monkeypatch.setenv("QUALIFY_LAB_DIR", str(lab.lab_dir))
    monkeypatch.setenv("QUALIFY_LAB_PREFIX", lab.prefix)
    monkeypatch.setenv("QUALIFY_LAB_SUBNET", str(lab.subnet))
    profile = resolve_profile("lab-pve2", None).profile.model_copy(update={"host": "lab-pve2"})
    node = connect("lab-pve2", profile)
    try:
        store = RunStore.create("lab-pve2", tmp_path)
        stream = start_telemetry(node, store, profile.telemetry.model_copy(update={"interval": 0.25}))
        time.sleep(2.0)
        summary = stream.stop()
    finally:
        node.close()
    assert summary.samples >= 5 and not summary.error
    telemetry = load_telemetry(store.run_dir)
    assert telemetry.package_temps() == ["temp:coretemp/Package id 0"]
    assert len(telemetry.names("freq")) == 16 and "rapl:package-0" in telemetry.values
    assert not np.isnan(telemetry.values["temp:coretemp/Package id 0"]).any()


def test_node_without_python3_is_told_which_package_to_install(tmp_path, monkeypatch):
    from qualify.errors import ToolMissing

    node, profile, store = _local(tmp_path, tmp_path)
    monkeypatch.setattr(node, "has_tool", lambda tool: tool != "python3")
    with pytest.raises(ToolMissing, match=r"'python3' is not installed on the node; install the Debian package "
                                          r"'python3-minimal'"):
        start_telemetry(node, store, profile.telemetry)


def test_sampler_that_dies_at_start_is_a_clear_error(tmp_path, monkeypatch):
    from qualify.errors import QualifyError

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\necho 'SyntaxError: invalid syntax' >&2\nexit 1\n")
    (fake / "python3").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr("qualify.telemetry.stream.HEADER_TIMEOUT_S", 2.0)
    node, profile, store = _local(tmp_path, tmp_path)
    with pytest.raises(QualifyError, match=r"local: the telemetry sampler \(python3\) did not start within 2 s "
                                           r"\(exit status \d+\): SyntaxError: invalid syntax"):
        start_telemetry(node, store, profile.telemetry)


def test_each_check_reads_its_own_stream_and_older_runs_the_shared_one(tmp_path):
    from qualify.telemetry import load_check_telemetry, stream_for

    store = RunStore.create("local", tmp_path)
    store.samples("telemetry").append({"series": {"temp:k10temp/Tctl": "C"}})       # a run from before
    store.samples("telemetry").append({"t": 1.0, "v": {"temp:k10temp/Tctl": 40.0}})
    store.close()
    assert load_check_telemetry(store.run_dir, "thermal").values["temp:k10temp/Tctl"][0] == 40.0
    own = RunStore(store.run_dir).samples(stream_for("thermal"))
    own.append({"series": {"temp:k10temp/Tctl": "C"}})
    own.append({"t": 5.0, "v": {"temp:k10temp/Tctl": 70.0}})
    own.close()
    assert stream_for("thermal") == "telemetry-thermal"
    assert list(load_check_telemetry(store.run_dir, "thermal").values["temp:k10temp/Tctl"]) == [70.0]


def test_the_sampler_sends_raw_integers_the_controller_scales(tmp_path):
    tree = tmp_path / "tree"
    build_node_tree(tree, NodeSpec(sensors=True))
    for name in ("stat", "loadavg"):  # this machine's own
        (tree / "proc" / name).write_bytes(Path(f"/proc/{name}").read_bytes())
    sources, _ = sampler.discover(str(tree / "sys"), str(tree / "proc"))
    sampling = sampler.Pass(sources)
    names = [s.name for s in sampling.sources]
    tokens = sampling.tokens().decode().split(" ")
    package = names.index("temp:coretemp/Package id 0")
    assert len(tokens) == len(names) and tokens[package] == "45000"  # millidegrees, as the kernel wrote it
    assert tokens[names.index("util:cpu")].count(",") == 7  # /proc/stat's counters: busy % is the controller's
    tokens[package] = "?"
    decoder = sampler.Decoder(sampler.header(sampling.sources, []))
    values, unread = decoder(tokens, 100.0)
    assert values["freq:cpu0"] == 800.0 and "rapl:package-0" not in values and "util:cpu" not in values  # first pass
    assert unread == ["temp:coretemp/Package id 0"]
    assert isinstance(values["load:1m"], float)
    counters = [int(v) for v in tokens[names.index("util:cpu")].split(",")]
    tokens[names.index("util:cpu")] = ",".join(str(v + d) for v, d in zip(counters, (75, 0, 25, 100, 0, 0, 0, 0),
                                                                          strict=True))
    assert decoder(tokens, 101.0)[0]["util:cpu"] == 50.0  # half of the 200 ticks since the first pass were busy


def test_a_pass_with_an_odd_file_reads_each_file_alone(tmp_path):
    """Garbage with spaces, an empty file or a vanished one cannot shift the other series' tokens."""
    tree = tmp_path / "tree"
    build_node_tree(tree, NodeSpec(sensors=True))
    sources, _ = sampler.discover(str(tree / "sys"), str(tree / "proc"))
    sampling = sampler.Pass(sources)
    names = [s.name for s in sampling.sources]
    by_name = {s.name: s for s in sources}
    _rewrite(Path(by_name["temp:acpitz/temp1"].path), "not a number\n")
    _rewrite(Path(by_name["temp:coretemp/Core 0"].path), "")
    Path(by_name["temp:coretemp/Core 4"].path).unlink()
    sampling.recheck()
    tokens = sampling.tokens().decode().split(" ")
    assert len(tokens) == len(names)
    values, unread = sampler.Decoder(sampler.header(sampling.sources, []))(tokens, 100.0)
    assert unread == ["temp:acpitz/temp1", "temp:coretemp/Core 0", "temp:coretemp/Core 4"]
    assert values["temp:coretemp/Package id 0"] == 45.0 and values["freq:cpu0"] == 800.0
