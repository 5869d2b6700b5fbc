"""fio JSON/json+: every corpus file (fio 2.x KiB/µs units, noise line, fio 3.1 duplicate keys, gtod_reduce, 2 jobs,
bins), bad output."""

from __future__ import annotations

import pytest

from corpus import corpus_path, parse_error
from qualify.errors import ParseError
from qualify.parsers.fio import parse_fio_json

# name -> (version, [(job, direction, iops, bandwidth B/s, p99 ns or None, histogram bins)])
EXPECTED = {
    # fio 2.x: "bw" in KiB/s and clat in µs, so the p99 is the file's number x1000.
    "fio-2.1.4-5jobs-seq-rand-read-write-kib-usec-pkb.json":
        ("fio-2.1.4", [("sequential_write", "write", 133, 68118 * 1024, 823296_000, 0),
                       ("sequential_read", "read", 253, 129836 * 1024, 473088_000, 0),
                       ("random_write_test", "write", 1610, 6443 * 1024, 1688_000, 0),
                       ("random_read_test", "read", 317, 1269 * 1024, 3728_000, 0),
                       ("random_read_test_parallel", "read", 323, 1292 * 1024, 209920_000, 0)]),
    "fio-3.1-randwrite-4k-qd1-sata-ssd-raid-ctrl.json":
        ("fio-3.1", [("random-read", "write", 7428.909518, 29715 * 1024, 5079040, 0)]),
    "fio-3.20-2jobs-randread-randwrite-4k-qd64-rbd-kubestr.json":
        ("fio-3.20", [("read_iops", "read", 982.05078, 4039322, None, 0),
                      ("write_iops", "write", 390.525218, 1616406, None, 0)]),
    "fio-3.28-randrw-75-25-4k-qd64-gtod_reduce.json":
        ("fio-3.28", [("test", "read", 170075.741182, 696630235, None, 0),
                      ("test", "write", 56839.645098, 232815186, None, 0)]),
    "fio-3.33-write-4k-falloc-xfs-hdd-with-leading-note-line.txt":
        ("fio-3.33", [("task_0", "write", 476118.226321, 1950180255, 2256, 0)]),
    # fio 2.17 (the last 2.x line): still KiB and µs; numjobs=2 with group_reporting gives one job per group
    "fio-2.17-numjobs2-group_reporting-randread-randwrite-16k-kib-usec-pkb.json":
        ("fio-2.17", [("rand_16k_read_100%-io-depth-1-num-jobs-2", "read", 8086.673998, 129386 * 1024, 1352_000, 0),
                      ("rand_16k_write_100%-io-depth-1-num-jobs-2", "write", 2457.017193, 39312 * 1024, 2384_000, 0)]),
    "fio-3.39-jsonplus-randwrite-1k-qd8-posixaio-macos-clat-bins.json":
        ("fio-3.39", [("/Users/alexander/CrystalDiskMark/CrystalDiskMark195681fd01a/CrystalDiskMark195681fd01a.tmp",
                       "write", 19621.556886, 20092474, 3489792, 434)]),
}
# outputs fio did not finish writing: the ParseError says so and repeats fio's own last message
ERRORS = {"fio-3.36-io_u-error-lines-before-json-head-truncated-excerpt.txt":
          r"cut short.*fio said: fio: pid=5509, err=5/file:io_u\.c:1896, func=io_u error, error=Input/output error"}
FILES = sorted(path.name for path in corpus_path("fio").iterdir() if path.name not in ERRORS)


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)
    assert set(ERRORS) <= {path.name for path in corpus_path("fio").iterdir()}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_unfinished_output_names_fios_message(name):
    with pytest.raises(ParseError, match=ERRORS[name]):
        parse_fio_json(corpus_path("fio", name).read_text())


def test_fio_messages_inside_the_document_are_dropped_and_kept():
    # synthetic placement, real lines: fio issue #1685 shows fio's error lines landing in the same stream as the
    # JSON; here they are put inside the document (after its first line) of a real fio-3.28 result
    lines = corpus_path("fio", "fio-3.28-randrw-75-25-4k-qd64-gtod_reduce.json").read_text().splitlines(keepends=True)
    noise = ["fio: io_u error on file /dev/sdb: Input/output error: read offset=184912257024, buflen=4096\n",
             "fio: pid=5509, err=5/file:io_u.c:1896, func=io_u error, error=Input/output error\n"]
    result = parse_fio_json("".join(lines[:1] + noise + lines[1:]))
    assert result.jobs[0].name == "test" and len(result.messages) == 2


def test_io_kbytes_says_bytes_whatever_the_version():
    # synthetic: a fio 3.x direction under a "fio-2.99" version string (the 3.0 pre-release) keeps bytes and ns
    text = corpus_path("fio", "fio-3.33-write-4k-falloc-xfs-hdd-with-leading-note-line.txt").read_text()
    write = parse_fio_json(text.replace('"fio-3.33"', '"fio-2.99"')).jobs[0].write
    assert write.bandwidth_bytes_s == 1950180255 and write.completion_latency.percentile(99.0) == 2256
    assert write.io_bytes == parse_fio_json(text).jobs[0].write.io_bytes


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    result = parse_fio_json(corpus_path("fio", name).read_text())
    version, directions = EXPECTED[name]
    assert result.version == version
    seen = [(job, direction) for job in result.jobs for direction in ("read", "write")
            if getattr(job, direction).io_bytes]
    assert [(job.name, direction) for job, direction in seen] == [d[:2] for d in directions]
    for (job, direction), (_, _, iops, bandwidth, p99, bins) in zip(seen, directions, strict=True):
        measured = getattr(job, direction)
        assert measured.iops == pytest.approx(iops) and measured.bandwidth_bytes_s == bandwidth
        latency = measured.completion_latency
        assert (latency.percentile(99.0) if latency else None) == p99
        assert (len(latency.histogram_ns) if latency else 0) == bins
        assert job.error == 0


def test_fio_2_io_bytes_in_kib_and_latency_in_microseconds_are_converted():
    result = parse_fio_json(corpus_path("fio", "fio-2.1.4-5jobs-seq-rand-read-write-kib-usec-pkb.json").read_text())
    write = result.jobs[0].write
    # 361984 KiB written at 68118 KiB/s in 5314 ms: io_bytes, bandwidth and runtime agree only in the same unit
    assert write.io_bytes == 361984 * 1024
    assert write.io_bytes == pytest.approx(write.bandwidth_bytes_s * write.runtime_ms / 1000, rel=0.001)
    assert write.completion_latency.mean_ns == pytest.approx(477734.84e3)
    assert write.completion_latency.max_ns == 869891_000
    assert write.total_ios == 0  # fio 2.1 does not count them


def test_units_follow_the_version_string_else_the_latency_keys():
    text = corpus_path("fio", "fio-2.1.4-5jobs-seq-rand-read-write-kib-usec-pkb.json").read_text()
    unversioned = text.replace('"fio version" : "fio-2.1.4",', "")
    assert parse_fio_json(unversioned).jobs[0].write.io_bytes == 361984 * 1024
    with pytest.raises(ParseError, match="older than fio 2"):
        parse_fio_json(text.replace("fio-2.1.4", "fio-1.59"))


def test_fio_3_1_duplicate_zero_keys_are_dropped_not_kept_as_percentile_0():
    job = parse_fio_json(corpus_path("fio", "fio-3.1-randwrite-4k-qd1-sata-ssd-raid-ctrl.json").read_text()).jobs[0]
    percentiles = job.write.completion_latency.percentiles_ns
    assert 0.0 not in percentiles and len(percentiles) == 17 and percentiles[99.99] > percentiles[50.0]


def test_json_plus_histogram_counts_every_io():
    name = "fio-3.39-jsonplus-randwrite-1k-qd8-posixaio-macos-clat-bins.json"
    write = parse_fio_json(corpus_path("fio", name).read_text()).jobs[0].write
    assert sum(write.completion_latency.histogram_ns.values()) == write.total_ios == 16384


def test_global_options_kept():
    name = "fio-3.20-2jobs-randread-randwrite-4k-qd64-rbd-kubestr.json"
    assert parse_fio_json(corpus_path("fio", name).read_text()).global_options["gtod_reduce"] == "1"


def test_trailing_error_line_after_the_document_is_ignored():
    text = corpus_path("fio", "fio-3.28-randrw-75-25-4k-qd64-gtod_reduce.json").read_text()
    assert parse_fio_json(text + "fio: pid=123, got signal=15\n").jobs[0].name == "test"


@pytest.mark.parametrize("text, problem", [
    ("fio: failed parsing ioengine=io_uring\n", "no JSON document"),
    ('{\n  "fio version" : "fio-3.33",\n  "jobs" : [ {"jobname": "x", ', "cut short"),
    ('{\n "fio version": "fio-3.33"}\n', "'jobs'"),
    ('{\n "jobs": [{"jobname": "x"}]}\n', "lacks"),
])
def test_bad_output_names_fio_and_the_start(text, problem):
    assert "fio" in str(parse_error(parse_fio_json, text, problem))
