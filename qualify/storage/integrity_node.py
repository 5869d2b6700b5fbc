"""The writer/reader that runs ON the node for drive_integrity (sent as `python3 -c <this file>`).

Standard library only (Python 3.6+, as on every Debian/Proxmox node): no qualify import. Every block
(4 KiB by default) carries a header - magic, the run's nonce, its own offset - followed
by a payload that is random per block position (from the nonce), so a block that comes back from
another offset, from an earlier run, or as zeros is told apart from a corrupted one. I/O is O_DIRECT
from page-aligned buffers (the page cache never answers a read), the write pass ends with fsync (the
drive's cache is flushed) and the device's cached pages are dropped before reading.

    probe   DEVICE NONCE BLOCK CHUNK THREADS INTERVAL OFFSETS   write one block at each offset, then read
                                                                 them all back: "block <offset> <kind> <held>"
    surface DEVICE NONCE BLOCK CHUNK THREADS INTERVAL REGIONS   write every block of the regions
                                                                 ("start-end,..."), then read them back

Output lines (one fact each, parsed by qualify/storage/integrity.py):
    rate <phase> <t_s> <from> <to> <bytes_per_s> <done> <total>   every INTERVAL seconds
    done <phase> <bytes> <seconds>
    mismatch <offset> <kind> <held>     first bad block (kind: alias/stale/zeros/foreign/corrupt; held: the
                                        offset whose block it holds, or -1); the pass stops there
    error <phase> <offset> <errno> <message>
    block <offset> <kind> <held>        probe: kind ok/alias/stale/zeros/foreign/corrupt/error
"""

import array
import mmap
import os
import random
import struct
import sys
import threading
import time

MAGIC = 0x314B4C4259464C51  # b"QLFYBLK1"
HEADER = struct.Struct("<QQQ")  # magic, nonce, offset


def template(nonce, block, chunk):
    """CHUNK bytes of payload random per block position, each block headed by magic and nonce."""
    data = bytearray(random.Random(nonce).getrandbits(chunk * 8).to_bytes(chunk, "little"))
    for start in range(0, chunk, block):
        HEADER.pack_into(data, start, MAGIC, nonce, 0)
    return data


class Pattern:
    """The expected content of chunk-aligned blocks, stamped into a page-aligned buffer of CHUNK bytes."""

    def __init__(self, nonce, block, chunk, base):
        self.nonce, self.block, self.chunk, self.base = nonce, block, chunk, base
        self.buffer = mmap.mmap(-1, chunk)
        self.buffer[:] = base
        self.view = memoryview(self.buffer)
        self.words = self.view.cast("Q")
        self.step = block // 8

    def stamp(self, offset, length):
        """view[:length] as the blocks of [offset, offset+length) must read (offset a multiple of CHUNK)."""
        count = length // self.block
        offsets = array.array("Q", range(offset, offset + count * self.block, self.block))
        self.words[2:count * self.step:self.step] = offsets
        return self.view[:length]

    def block_at(self, offset):
        """The one block at `offset` (any multiple of the block size), in its own aligned buffer."""
        start = offset % self.chunk
        out = mmap.mmap(-1, self.block)
        out[:] = self.base[start:start + self.block]
        HEADER.pack_into(out, 0, MAGIC, self.nonce, offset)
        return out


def classify(got, offset, nonce):
    """What a block that is not the expected one holds: (kind, offset of the block it holds or -1)."""
    magic, their_nonce, their_offset = HEADER.unpack_from(got, 0)
    if magic == MAGIC:
        if their_nonce != nonce:
            return "stale", -1
        return ("corrupt", -1) if their_offset == offset else ("alias", their_offset)
    if not any(got):
        return "zeros", -1
    return "foreign", -1


def say(*fields):
    sys.stdout.write(" ".join(str(f) for f in fields) + "\n")
    sys.stdout.flush()


def probe(fd, nonce, block, chunk, offsets):
    pattern = Pattern(nonce, block, chunk, template(nonce, block, chunk))
    failed = {}
    for offset in offsets:
        try:
            os.pwrite(fd, pattern.block_at(offset), offset)
        except OSError as error:
            failed[offset] = error.errno
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    got = mmap.mmap(-1, block)
    for offset in offsets:
        if offset in failed:
            say("block", offset, "error", failed[offset])
            continue
        try:
            os.preadv(fd, [got], offset)
        except OSError as error:
            say("block", offset, "error", error.errno)
            continue
        if got.find(pattern.block_at(offset), 0, block) == 0:
            say("block", offset, "ok", -1)
        else:
            say("block", offset, *classify(got, offset, nonce))


class Surface:
    """One pass over the regions by THREADS workers, chunk by chunk in order of offset."""

    def __init__(self, fd, nonce, block, chunk, threads, regions):
        self.fd, self.nonce, self.block, self.chunk, self.threads = fd, nonce, block, chunk, threads
        self.base = template(nonce, block, chunk)
        self.items = [(at, min(chunk, end - at)) for start, end in regions for at in range(start, end, chunk)]
        self.total = sum(length for _, length in self.items)
        self.lock = threading.Lock()
        self.stop = False
        self.mismatches = []  # (offset, kind, held)
        self.errors = []  # (offset, errno, message)

    def run(self, phase, interval):
        self.next = 0
        self.done = 0
        self.high = self.items[0][0] if self.items else 0
        workers = [threading.Thread(target=self.work, args=(phase,), daemon=True) for _ in range(self.threads)]
        started = last_t = time.monotonic()
        last_done, last_high = 0, self.high
        for worker in workers:
            worker.start()
        while True:
            alive = any(w.is_alive() for w in workers)
            time.sleep(0.05 if alive else 0)
            now = time.monotonic()
            if now - last_t >= interval or not alive:
                with self.lock:
                    done, high = self.done, self.high
                if now > last_t and done > last_done:
                    say("rate", phase, round(now - started, 3), last_high, high,
                        round((done - last_done) / (now - last_t)), done, self.total)
                last_t, last_done, last_high = now, done, high
            if not alive:
                break
        if phase == "write" and not self.errors:
            os.fsync(self.fd)
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        say("done", phase, self.done, round(time.monotonic() - started, 3))

    def work(self, phase):
        pattern = Pattern(self.nonce, self.block, self.chunk, self.base)
        got = mmap.mmap(-1, self.chunk) if phase == "read" else None
        view = memoryview(got) if got is not None else None
        while True:
            with self.lock:
                if self.stop or self.next >= len(self.items):
                    return
                offset, length = self.items[self.next]
                self.next += 1
            expected = pattern.stamp(offset, length)
            try:
                if phase == "write":
                    os.pwrite(self.fd, expected, offset)
                else:
                    os.preadv(self.fd, [view[:length]], offset)
            except OSError as error:
                with self.lock:
                    self.errors.append((offset, error.errno, error.strerror or ""))
                    self.stop = True
                return
            if phase == "read" and got.find(expected, 0, length) != 0:  # memcmp speed (memoryview == is per item)
                for start in range(0, length, self.block):
                    if view[start:start + self.block] != expected[start:start + self.block]:
                        kind, held = classify(view[start:start + self.block], offset + start, self.nonce)
                        with self.lock:
                            self.mismatches.append((offset + start, kind, held))
                            self.stop = True
                        return
            with self.lock:
                self.done += length
                self.high = max(self.high, offset + length)


def surface(fd, nonce, block, chunk, threads, interval, regions):
    passes = Surface(fd, nonce, block, chunk, threads, regions)
    for phase in ("write", "read"):
        passes.run(phase, interval)
        if passes.errors:
            offset, number, message = min(passes.errors)
            say("error", phase, offset, number, message)
            return
        if passes.mismatches:
            say("mismatch", *min(passes.mismatches))
            return


def main(argv):
    mode, device = argv[1], argv[2]
    nonce, block, chunk, threads = (int(a) for a in argv[3:7])
    interval, spec = float(argv[7]), argv[8]
    fd = os.open(device, os.O_RDWR | os.O_DIRECT)
    try:
        if mode == "probe":
            probe(fd, nonce, block, chunk, [int(o) for o in spec.split(",") if o])
        else:
            regions = [tuple(int(x) for x in r.split("-")) for r in spec.split(",") if r]
            surface(fd, nonce, block, chunk, threads, interval, regions)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main(sys.argv)
