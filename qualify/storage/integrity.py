"""Full-surface integrity and the fake-capacity probe: running the node-side writer/reader behind the
guard, and what its output means.

The program that writes and reads on the node is qualify/storage/integrity_node.py (standard library
only, sent as `python3 -c`); this module builds its arguments, streams its lines and interprets them
with pure functions: where the probe blocks go (exponentially spaced over the claimed size), what a
set of probe answers says about the real capacity (blocks that come back from another offset: the
drive wraps), which stretches of the surface were slow. Every run of the program writes, so it goes
through the guard exactly as a fio write job does: the device is held exclusively for the whole run
and the guard is asked once more under the hold (qualify/storage/hold.py), under the node's run lock,
tethered to the controller.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qualify.errors import ParseError
from qualify.findings import format_value
from qualify.node import Node
from qualify.storage.hold import drive_at, held_for_writing

NODE_PROGRAM = Path(__file__).with_name("integrity_node.py").read_text()
SLOWEST_BYTES_S = 20_000_000  # a pass slower than this over the whole surface counts as hung
GRACE_S = 60.0
KINDS = {"ok", "alias", "stale", "zeros", "foreign", "corrupt", "error"}
# What a block that is not the one written holds, as a sentence reads it
HOLDS = {"alias": "the block written at {held}", "stale": "a block of an earlier run (the write was dropped)",
         "zeros": "zeros (the write was dropped)", "foreign": "other data (the write was dropped)",
         "corrupt": "its own header with corrupted data", "error": "an I/O error"}


# ---------------------------------------------------------------- the probe (pure)

@dataclass(frozen=True)
class ProbeBlock:
    offset: int
    kind: str  # ok / alias / stale / zeros / foreign / corrupt / error
    held: int | None = None  # alias: the offset whose block this one holds; error: the errno


def probe_offsets(claimed: int, block: int, per_octave: int) -> list[int]:
    """Block offsets from 0 to the last block: `per_octave` per doubling (block * 2^k * (1 + m/per_octave)).

    Offsets that are powers of two catch the common fake (the controller drops the high address bits:
    every offset wraps modulo a power-of-two flash size); the steps between catch coarser wraps sooner.
    """
    last = (claimed // block - 1) * block
    if last < 0:
        return []
    offsets = {0, last}
    power = block
    while power <= last:
        for step in range(per_octave):
            offset = (power + power * step // per_octave) // block * block
            if offset <= last:
                offsets.add(offset)
        power *= 2
    return sorted(offsets)


def parse_probe(text: str, source: str) -> list[ProbeBlock]:
    """The node program's "block <offset> <kind> <held>" lines."""
    blocks = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] != "block":
            continue
        numbers = (fields[1], fields[3]) if len(fields) == 4 else ()
        if not numbers or fields[2] not in KINDS or not all(f.lstrip("-").isdigit() for f in numbers):
            raise ParseError(source, f"unexpected probe line {line!r}")
        held = int(fields[3])
        blocks.append(ProbeBlock(int(fields[1]), fields[2], None if held < 0 else held))
    return blocks


@dataclass(frozen=True)
class Capacity:
    claimed: int
    real_bytes: int  # what the drive really stores (claimed when every probe block read back)
    wraps_at: int | None  # blocks alias with a period of this many bytes
    first_bad: ProbeBlock | None
    blocks: int  # probe blocks written and read

    @property
    def fake(self) -> bool:
        return self.first_bad is not None

    @property
    def claims(self) -> str:
        """"claims 1.00 TB": decimal, as drives are sold."""
        return f"claims {decimal_size(self.claimed)}"

    @property
    def holds(self) -> str:
        return "holds" if self.wraps_at or not self.fake else "holds at most"

    def why(self) -> str:
        """"blocks wrap at 238 GiB", or what the first bad block read back."""
        bad = self.first_bad
        if bad is None:
            return f"all {self.blocks} probe blocks from 0 to {binary_size(self.claimed)} read back as written"
        if self.wraps_at:
            return f"blocks wrap at {binary_size(self.wraps_at)}"
        held = HOLDS[bad.kind].format(held=binary_size(bad.held or 0))
        return f"the block at {binary_size(bad.offset)} reads back {held}"

    def sentence(self) -> str:
        """"claims 1.00 TB, holds 238 GiB: blocks wrap at 238 GiB" (binary sizes for what it holds)."""
        if not self.fake:
            return f"{self.claims}: {self.why()}"
        return f"{self.claims}, {self.holds} {binary_size(self.real_bytes)}: {self.why()}"


def capacity_from_probe(claimed: int, blocks: Sequence[ProbeBlock]) -> Capacity:
    """The real capacity the probe answers show.

    A wrapping drive stores offset X at X mod N: blocks N apart land on one place, so a block reads back
    as another one written a multiple of N away. N is the greatest common divisor of those distances.
    A drive that drops writes beyond its capacity reads back zeros, stale or foreign data there: it holds
    at most the lowest such offset.
    """
    ordered = sorted(blocks, key=lambda b: b.offset)
    bad = [b for b in ordered if b.kind != "ok"]
    if not bad:
        return Capacity(claimed, claimed, None, None, len(ordered))
    distances = [abs(b.offset - b.held) for b in bad if b.kind == "alias" and b.held is not None and b.held != b.offset]
    wrap = math.gcd(*distances) if distances else 0
    if wrap:
        return Capacity(claimed, min(wrap, claimed), wrap, bad[0], len(ordered))
    return Capacity(claimed, bad[0].offset, None, bad[0], len(ordered))


def decimal_size(size: int) -> str:
    """As drives are sold: 1.00 TB, 960 GB."""
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if size >= factor:
            value = size / factor
            return f"{value:.2f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size:,} bytes"


def binary_size(size: int) -> str:
    return format_value(size, "B")


# ---------------------------------------------------------------- the surface (pure)

@dataclass(frozen=True)
class Rate:
    """One sample of a pass: the bytes done in the last interval and where on the surface they were."""

    phase: str  # write / read
    t_s: float
    start: int
    end: int
    bytes_per_s: float
    done: int
    total: int


@dataclass(frozen=True)
class Mismatch:
    offset: int
    kind: str
    held: int | None


@dataclass(frozen=True)
class IoError:
    phase: str
    offset: int
    errno: int
    message: str


@dataclass
class SurfaceOutcome:
    rates: list[Rate] = field(default_factory=list)
    done: dict[str, tuple[int, float]] = field(default_factory=dict)  # phase: (bytes, seconds)
    mismatch: Mismatch | None = None
    io_error: IoError | None = None
    exit_status: int = 0
    stderr: str = ""
    timed_out: bool = False

    @property
    def failed(self) -> str | None:
        """Why the run says nothing about the drive (the program did not finish), or None."""
        if self.timed_out:
            return "the writer/reader did not finish in time and was stopped (the drive may have stopped answering)"
        if self.mismatch or self.io_error:
            return None
        if self.exit_status != 0 or "read" not in self.done:
            detail = "; ".join(self.stderr.strip().splitlines()[-3:]) or "no error output"
            return f"the writer/reader ended with status {self.exit_status}: {detail}"
        return None


def parse_surface_line(line: str, source: str) -> Rate | Mismatch | IoError | tuple[str, int, float] | None:
    """One line of the node program's surface output; None for anything else it may print."""
    fields = line.split()
    try:
        if fields[:1] == ["rate"] and len(fields) == 8:
            return Rate(fields[1], float(fields[2]), int(fields[3]), int(fields[4]), float(fields[5]),
                        int(fields[6]), int(fields[7]))
        if fields[:1] == ["done"] and len(fields) == 4:
            return fields[1], int(fields[2]), float(fields[3])
        if fields[:1] == ["mismatch"] and len(fields) == 4:
            held = int(fields[3])
            return Mismatch(int(fields[1]), fields[2], None if held < 0 else held)
        if fields[:1] == ["error"] and len(fields) >= 4:
            return IoError(fields[1], int(fields[2]), int(fields[3]), " ".join(fields[4:]))
    except ValueError:
        raise ParseError(source, f"unexpected line {line!r}") from None
    return None


def surface_regions(claimed: int, share: float, block: int, chunk: int, zones: int) -> list[tuple[int, int]]:
    """The stretches [start, end) to write: all of it, or `share` of it as the start of `zones` equal zones.

    Starts are multiples of the chunk (each chunk's blocks line up with the node program's pattern),
    ends multiples of the block; a last piece smaller than a block is not tested.
    """
    end = claimed // block * block
    if share >= 1 or zones <= 0:
        return [(0, end)] if end else []
    zone = max(chunk, math.ceil(end / zones / chunk) * chunk)
    length = max(block, int(zone * share) // block * block)
    return [(start, min(start + length, end)) for start in range(0, end, zone)]


@dataclass(frozen=True)
class Zone:
    phase: str
    start: int
    end: int
    bytes_per_s: float  # mean over the zone
    median: float  # of the whole pass
    threshold: float


def slow_zones(rates: Sequence[Rate], share: float, interval_s: float) -> dict[str, tuple[float, list[Zone]]]:
    """Per pass: (median rate, the stretches whose rate stayed below `share` of it), adjacent samples joined.

    Samples that cover less than half an interval (the last moments of a pass) are too short to judge.
    """
    out: dict[str, tuple[float, list[Zone]]] = {}
    for phase in dict.fromkeys(r.phase for r in rates):
        samples = [r for r in rates if r.phase == phase]
        timed = [(r, r.t_s - (samples[i - 1].t_s if i else 0.0)) for i, r in enumerate(samples)]
        judged = [r for r, seconds in timed if seconds >= interval_s / 2 and r.end > r.start]
        if not judged:
            continue
        speeds = sorted(r.bytes_per_s for r in judged)
        median = speeds[len(speeds) // 2]
        threshold = median * share
        zones: list[list[Rate]] = []
        for r in judged:
            if r.bytes_per_s >= threshold:
                continue
            if zones and zones[-1][-1].end == r.start:
                zones[-1].append(r)
            else:
                zones.append([r])
        out[phase] = (median, [Zone(phase, z[0].start, z[-1].end,
                                    sum(r.bytes_per_s for r in z) / len(z), median, threshold) for z in zones])
    return out


# ---------------------------------------------------------------- running it on the node (I/O)

@dataclass(frozen=True)
class Geometry:
    nonce: int
    block: int
    chunk: int
    threads: int
    interval_s: float

    def argv(self, mode: str, device: str, spec: str) -> list[str]:
        return ["python3", "-c", NODE_PROGRAM, mode, device, str(self.nonce), str(self.block), str(self.chunk),
                str(self.threads), f"{self.interval_s:g}", spec]


def run_probe(node: Node, device: str, geometry: Geometry, offsets: Sequence[int]) -> tuple[list[ProbeBlock], str, str]:
    """Write the probe blocks, read them back: (blocks, the program's output, why it failed or '')."""
    lines: list[str] = []
    status, stderr, timed_out = _run_guarded(node, device, geometry.argv("probe", device, ",".join(map(str, offsets))),
                                             GRACE_S + len(offsets) * 0.1, lines.append)
    text = "\n".join(lines) + "\n"
    if timed_out:
        return [], text, "the probe did not finish in time and was stopped (the drive may have stopped answering)"
    blocks = parse_probe(text, f"{node.name}: drive integrity probe of {device}")
    if status != 0 or len(blocks) != len(offsets):
        detail = "; ".join(stderr.strip().splitlines()[-3:]) or "no error output"
        return blocks, text, (f"the probe ended with status {status} after {len(blocks)} of {len(offsets)} blocks: "
                              f"{detail}")
    return blocks, text, ""


def run_surface(node: Node, device: str, geometry: Geometry, regions: Sequence[tuple[int, int]],
                on_rate: Callable[[Rate], None]) -> SurfaceOutcome:
    """Write every block of the regions, then read all of them back; stops at the first mismatch."""
    outcome = SurfaceOutcome()
    source = f"{node.name}: drive integrity surface pass on {device}"

    def take(line: str) -> None:
        fact = parse_surface_line(line, source)
        if isinstance(fact, Rate):
            outcome.rates.append(fact)
            on_rate(fact)
        elif isinstance(fact, Mismatch):
            outcome.mismatch = fact
        elif isinstance(fact, IoError):
            outcome.io_error = fact
        elif fact is not None:
            outcome.done[fact[0]] = (fact[1], fact[2])

    total = sum(end - start for start, end in regions)
    spec = ",".join(f"{start}-{end}" for start, end in regions)
    outcome.exit_status, outcome.stderr, outcome.timed_out = _run_guarded(
        node, device, geometry.argv("surface", device, spec), 2 * total / SLOWEST_BYTES_S + GRACE_S, take)
    return outcome


def _run_guarded(node: Node, device: str, argv: list[str], time_allowed_s: float,
                 on_line: Callable[[str], None]) -> tuple[int, str, bool]:
    """Run the node program on a device the guard allows, held for its whole run: (status, stderr, timed out)."""
    node.require("python3")
    with node.exclusive("drive integrity"), held_for_writing(node, *drive_at(node, device)):
        process = node.spawn(argv, load=True)
        timed_out = threading.Event()

        def stop_hung() -> None:
            timed_out.set()
            process.stop()

        watchdog = threading.Timer(time_allowed_s, stop_hung)
        watchdog.start()
        try:
            for line in process.lines():
                on_line(line)
        finally:
            watchdog.cancel()
            status = process.stop()
        return status, process.stderr(), timed_out.is_set()
