"""drive_integrity: the probe's and the surface's pure judges in milliseconds, a real loop drive through the
whole write-verify, and the guard's every rule on every new write path (probe, surface, the PLP fio jobs),
the device's checksum unchanged after each refusal.

The probe answers below are synthetic (no public source records this program's output): they are made by
simulating a drive in the test - a wrap keeps offset X at X mod N, the last write to a place wins.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_storage_guard import holding_open

from qualify.checks.drive_integrity import (
    IntegrityEvidence,
    judge,
)
from qualify.errors import ParseError
from qualify.profile import DriveIntegritySettings, PowerLossProtectionSettings
from qualify.storage import WriteRefused, guard
from qualify.storage.integrity import (
    Geometry,
    IoError,
    Mismatch,
    ProbeBlock,
    Rate,
    SurfaceOutcome,
    capacity_from_probe,
    parse_probe,
    parse_surface_line,
    probe_offsets,
    run_probe,
    run_surface,
    slow_zones,
    surface_regions,
)
from qualify.storage.plp import plp_jobs
from qualify.storage.runner import run_fio
from qualify.store import read_samples
from storage_loop import (  # noqa: F401  (loops: the fixture)
    MKFS_EXT4,
    checksum,
    local_node,
    loops,
    marker_serial,
    mounted,
    run_integrity_check,
    sh,
)

GIB, MIB, TB = 1 << 30, 1 << 20, 10**12
SETTINGS = DriveIntegritySettings()


def simulated(claimed: int, offsets: list[int], place) -> list[ProbeBlock]:
    """The probe's answers from a drive that stores offset X at place(X) (None: the write is dropped)."""
    stored: dict[int, int] = {}
    for offset in offsets:  # written in order: the last write to a place wins
        where = place(offset)
        if where is not None:
            stored[where] = offset
    answers = []
    for offset in offsets:
        where = place(offset)
        held = stored.get(where) if where is not None else None
        kind = "zeros" if held is None else ("ok" if held == offset else "alias")
        answers.append(ProbeBlock(offset, kind, held if kind == "alias" else None))
    return answers


# ---------------------------------------------------------------- the probe (pure)

def test_probe_offsets_are_exponentially_spaced_over_the_claimed_size():
    offsets = probe_offsets(TB, 4096, 4)
    assert offsets[0] == 0 and offsets[-1] == TB // 4096 * 4096 - 4096
    assert all(o % 4096 == 0 for o in offsets) and offsets == sorted(set(offsets))
    assert {4096 << k for k in range(20)} <= set(offsets)  # every power of two
    assert len(offsets) < 150  # seconds, not hours
    assert probe_offsets(100, 4096, 4) == []


def test_a_drive_that_wraps_at_a_power_of_two_is_named():
    offsets = probe_offsets(TB, 4096, 4)
    capacity = capacity_from_probe(TB, simulated(TB, offsets, lambda x: x % (256 * GIB)))
    assert capacity.fake and capacity.real_bytes == 256 * GIB and capacity.wraps_at == 256 * GIB
    assert capacity.sentence() == "claims 1.00 TB, holds 256 GiB: blocks wrap at 256 GiB"


def test_a_drive_that_drops_writes_beyond_its_capacity_holds_at_most_the_first_lost_block():
    claimed, real = 2 * TB, 300 * GIB
    offsets = probe_offsets(claimed, 4096, 4)
    capacity = capacity_from_probe(claimed, simulated(claimed, offsets, lambda x: x if x < real else None))
    lowest_lost = min(o for o in offsets if o >= real)
    assert capacity.fake and capacity.wraps_at is None and capacity.real_bytes == lowest_lost
    assert capacity.sentence() == "claims 2.00 TB, holds at most 320 GiB: the block at 320 GiB reads back zeros " \
                                  "(the write was dropped)"


def test_an_honest_drive_holds_what_it_claims():
    offsets = probe_offsets(960 * 10**9, 4096, 4)
    capacity = capacity_from_probe(960 * 10**9, simulated(0, offsets, lambda x: x))
    assert not capacity.fake and capacity.real_bytes == 960 * 10**9
    assert capacity.sentence() == (f"claims 960 GB: all {len(offsets)} probe blocks from 0 to 894 GiB "
                                   "read back as written")


def test_probe_output_is_parsed_and_a_torn_line_is_refused():
    assert parse_probe("block 0 alias 268435456\nblock 4096 ok -1\nnoise\n", "t") == \
        [ProbeBlock(0, "alias", 268435456), ProbeBlock(4096, "ok", None)]
    with pytest.raises(ParseError, match="unexpected probe line 'block 0 weird -1'"):
        parse_probe("block 0 weird -1\n", "t")


# ---------------------------------------------------------------- the surface (pure)

def test_surface_regions_cover_all_or_a_spread_share():
    assert surface_regions(10 * GIB + 123, 1.0, 4096, 4 * MIB, 64) == [(0, 10 * GIB)]
    regions = surface_regions(64 * GIB, 0.1, 4096, 4 * MIB, 64)
    assert len(regions) == 64 and all(start % (4 * MIB) == 0 for start, _ in regions)
    assert abs(sum(end - start for start, end in regions) - 6.4 * GIB) < 64 * 4 * MIB
    assert regions[-1][0] >= 63 * GIB  # spread to the end of the surface


def test_surface_lines_are_parsed():
    assert parse_surface_line("rate write 1.0 0 4194304 4194304 4194304 8388608", "t") == \
        Rate("write", 1.0, 0, 4194304, 4194304.0, 4194304, 8388608)
    assert parse_surface_line("mismatch 0 alias 805306368", "t") == Mismatch(0, "alias", 805306368)
    assert parse_surface_line("error read 4096 5 Input/output error", "t") == IoError("read", 4096, 5,
                                                                                       "Input/output error")
    assert parse_surface_line("done read 8388608 0.5", "t") == ("read", 8388608, 0.5)
    assert parse_surface_line("Traceback (most recent call last):", "t") is None
    with pytest.raises(ParseError):
        parse_surface_line("rate write x 0 1 2 3 4", "t")


def rates(phase: str, speeds: list[float], step: int = GIB) -> list[Rate]:
    return [Rate(phase, i + 1.0, i * step, (i + 1) * step, s, (i + 1) * step, len(speeds) * step)
            for i, s in enumerate(speeds)]


def test_a_stretch_below_half_the_median_is_a_slow_zone_with_its_offsets():
    found = slow_zones(rates("write", [1e9] * 6 + [2e8, 3e8] + [1e9] * 4), 0.5, 1.0)
    median, zones = found["write"]
    assert median == 1e9 and len(zones) == 1
    assert (zones[0].start, zones[0].end, zones[0].bytes_per_s) == (6 * GIB, 8 * GIB, 2.5e8)


def evidence(**kw) -> IntegrityEvidence:
    return IntegrityEvidence(**{"label": "QLAB-X", "device": "/dev/loop9", "claimed": 8 * GIB,
                                "regions": [(0, 8 * GIB)], **kw})


def test_a_healthy_surface_is_accepted_with_its_speeds_and_a_slow_zone_is_a_warning():
    surface = SurfaceOutcome(rates=rates("write", [1e9] * 6 + [2e8] + [1e9]) + rates("read", [2e9] * 8),
                             done={"write": (8 * GIB, 9.0), "read": (8 * GIB, 4.0)})
    judgement = judge(evidence(surface=surface, probe=[ProbeBlock(0, "ok")]), SETTINGS)
    assert judgement.line == "accept"
    shorts = [f.short() for f in judgement.figures]
    assert "blocks read back as written 8 GiB (minimum 8 GiB)" in shorts
    assert "median read speed over the surface 2 GB/s" in shorts
    slow = next(f for f in judgement.figures if f.name == "slow_write_zone_bytes_per_second")
    assert slow.outcome == "warning" and slow.what == "write speed from 6 GiB to 7 GiB"
    strict = judge(evidence(surface=surface), SETTINGS.model_copy(update={"slow_zones_fail": True}))
    assert strict.line == "reject: write speed from 6 GiB to 7 GiB 200 MB/s (minimum 500 MB/s)"


def test_the_first_mismatch_is_named_with_its_offset_and_what_it_holds():
    surface = SurfaceOutcome(done={"write": (8 * GIB, 9.0)}, mismatch=Mismatch(3 * GIB, "alias", 7 * GIB))
    figure = judge(evidence(surface=surface), SETTINGS).figures[0]
    assert figure.outcome == "failed" and figure.value == 3 * GIB
    assert figure.detail == "(first mismatch at offset 3,221,225,472 = 3 GiB: it holds the block written at offset " \
                            "7,516,192,768 = 7 GiB)"
    io = judge(evidence(surface=SurfaceOutcome(io_error=IoError("write", 4096, 5, "Input/output error"))), SETTINGS)
    assert io.line == "reject: blocks read back as written 4 KiB (minimum 8 GiB)"
    assert "I/O error while writing at offset 4,096 = 4 KiB: errno 5 Input/output error" in io.figures[0].detail


def test_a_drive_not_allowed_or_refused_is_unknown_never_accepted():
    judgement = judge(evidence(not_run="the profile does not allow destroying its data"), SETTINGS)
    assert judgement.line == "unknown: full-surface integrity could not be checked"
    hung = judge(evidence(surface=SurfaceOutcome(timed_out=True)), SETTINGS)
    assert hung.line == "unknown: blocks read back as written could not be checked"


# ---------------------------------------------------------------- on a real loop drive

@pytest.fixture
def serial(request):
    return marker_serial(request, "i")


def test_a_healthy_loop_drive_passes_the_full_write_verify(loops, serial, tmp_path):
    device = loops.make(serial, size_mib=96, fill=False)
    findings, run_dir = run_integrity_check(tmp_path, [{"serial": serial, "allow_destroy": True}])
    assert not findings.problems, findings.reasons
    assert findings.metrics["verdicts"] == {serial: "accept"}
    assert f"{serial}: blocks read back as written 96 MiB (minimum 96 MiB)" in findings.reasons
    assert any("fake-capacity probe: claims 101 MB: all" in r for r in findings.reasons)
    samples = read_samples(run_dir, "drive_integrity")
    assert {s["phase"] for s in samples} == {"write", "read"} and samples[-1]["done"] == 96 * MIB
    assert (run_dir / f"raw/integrity-probe-{serial}.txt").read_text().count(" ok -1") > 20
    with open(device, "rb") as f:  # the blocks carry their offset and the run's nonce
        f.seek(5 * 4096)
        header = f.read(24)
    assert header[:8] == b"QLFYBLK1" and int.from_bytes(header[16:24], "little") == 5 * 4096


def test_a_share_of_the_surface_is_spread_over_it(loops, serial, tmp_path):
    loops.make(serial, size_mib=128, fill=False)
    findings, _ = run_integrity_check(tmp_path, [{"serial": serial, "allow_destroy": True}], share=0.25, zones=8,
                                      probe=False)
    assert findings.metrics["verdicts"] == {serial: "accept"}
    assert f"{serial}: surface pass over 25% of the drive in 8 stretches (drive_integrity.share)" in findings.reasons
    assert f"{serial}: blocks read back as written 32 MiB (minimum 32 MiB)" in findings.reasons


# ---------------------------------------------------------------- the guard on every new write path

KEY = "checks.storage.drives[0]"


def write_path(kind: str, device: str, serial: str, **flags: bool):
    """A write as each new path does it, asked for directly (the guard must refuse it itself)."""
    node = local_node(drives=[{"serial": serial, **flags}])
    geometry = Geometry(nonce=7, block=4096, chunk=4 * MIB, threads=2, interval_s=1.0)
    if kind == "probe":
        return lambda: run_probe(node, device, geometry, [0, 4096, 8192])
    if kind == "surface":
        return lambda: run_surface(node, device, geometry, [(0, 8 * MIB)], lambda _: None)
    argv = plp_jobs(PowerLossProtectionSettings())[1].argv(device, 1, "psync")
    return lambda: run_fio(node, argv, 1, lambda _: None)


PATHS = ["probe", "surface", "plp"]


def refused(kind: str, device: str, serial: str, **flags: bool) -> list[str]:
    before = checksum(device)
    with pytest.raises(WriteRefused) as refusal:
        write_path(kind, device, serial, **flags)()
    assert checksum(device) == before
    return [r.rule for r in refusal.value.refusals]


@pytest.mark.parametrize("kind", PATHS)
def test_not_allowed_is_refused(loops, serial, kind):
    device = loops.make(serial, size_mib=16)
    assert refused(kind, device, serial) == ["allow_destroy"]


@pytest.mark.parametrize("kind", PATHS)
def test_mounted_is_refused(loops, serial, kind, tmp_path):
    device = loops.make(serial, size_mib=16)
    with mounted(device, tmp_path):
        assert refused(kind, device, serial, allow_destroy=True, wipe=True) == ["mounted"]


@pytest.mark.parametrize("kind", PATHS)
def test_holders_are_refused(loops, serial, kind, tmp_path, monkeypatch):
    """Holders as the kernel lists them (no device-mapper here to stack a real one)."""
    device = loops.make(serial, size_mib=16)
    name = device.removeprefix("/dev/")
    fake = tmp_path / "sys-block" / name
    (fake / "holders" / "dm-3").mkdir(parents=True)
    (fake / "dev").write_text(Path(f"/sys/block/{name}/dev").read_text())
    monkeypatch.setattr(guard, "SYS_BLOCK", str(tmp_path / "sys-block"))
    assert refused(kind, device, serial, allow_destroy=True, wipe=True) == ["holders"]


@pytest.mark.parametrize("kind", PATHS)
def test_a_loop_stacked_at_an_offset_is_refused(loops, serial, kind):
    device = loops.make(serial, size_mib=16)
    loops.stack(device, offset=1 << 20)
    assert refused(kind, device, serial, allow_destroy=True, wipe=True) == ["stacked"]


@pytest.mark.parametrize("kind", PATHS)
def test_a_partition_table_or_a_signature_is_refused(loops, serial, kind):
    device = loops.make(serial, size_mib=16)
    subprocess.run(["sfdisk", "--quiet", device], input="label: dos\n,8M,L\n", text=True, check=True,
                   capture_output=True)
    sh("partx", "--update", device, check=False)
    assert refused(kind, device, serial, allow_destroy=True) == ["partition_table"]
    other = loops.make(f"{serial}s", size_mib=16)
    sh(*MKFS_EXT4, other)
    assert refused(kind, other, f"{serial}s", allow_destroy=True) == ["signature"]


@pytest.mark.parametrize("kind", PATHS)
def test_open_by_another_process_is_refused(loops, serial, kind):
    device = loops.make(serial, size_mib=16)
    user = holding_open(device, "<>")
    try:
        assert refused(kind, device, serial, allow_destroy=True, wipe=True) == ["open"]
    finally:
        user.kill()
        user.wait()


def test_the_check_writes_nothing_to_a_mounted_drive_and_says_why(loops, serial, tmp_path):
    device = loops.make(serial, size_mib=16)
    with mounted(device, tmp_path):
        before = checksum(device)
        findings, run_dir = run_integrity_check(tmp_path, [{"serial": serial, "allow_destroy": True, "wipe": True}])
        assert checksum(device) == before
    assert findings.metrics["verdicts"] == {serial: "unknown: full-surface integrity could not be checked"}
    assert any("[mounted]" in part["reason"] for part in findings.not_qualified_parts)
    assert read_samples(run_dir, "drive_integrity") == []
