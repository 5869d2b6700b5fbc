"""lsblk -J: every corpus file (old util-linux: flags as "0"/"1" strings, `mountpoint`, sizes without -b), sizes as
numbers or strings of digits, padded fields, bad output."""

from __future__ import annotations

import json

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.parsers.lsblk import parse_lsblk, parse_lsblk_tree

# name -> [(name, type, size_bytes, mountpoints of the device and everything on it)]
EXPECTED = {
    # was: ValueError traceback on "size": "100G" (lsblk run without -b); a rounded size is no byte count: None
    "ocp-autoval-lsblk-J-old-util-linux-string-flags-human-sizes.json": [
        ("loop0", "loop", None, ["/var/oss/autoval/agent/control"]),
        ("sda", "disk", None, ["/boot/efi", "/boot", "[SWAP]", "/"]),
        ("nvme0n1", "disk", None, []),
    ],
}
FILES = sorted(path.name for path in corpus_path("lsblk").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    text = corpus_path("lsblk", name).read_text()
    trees = parse_lsblk_tree(text)
    assert [(t.name, t.type, t.size_bytes, [m for node in t.walk() for m in node.mountpoints]) for t in trees] == \
        EXPECTED[name]
    assert [(d.name, d.size_bytes) for d in parse_lsblk(text)] == [(n, size) for n, _, size, _ in EXPECTED[name]]


@pytest.mark.parametrize("size, expected", [
    (53687091200, 53687091200),      # util-linux >= 2.33 with -b: a number
    ("500107862016", 500107862016),  # older util-linux with -b: a string of digits
    ("477G", None), (None, None), (True, None),
])
def test_sizes(size, expected):
    # synthetic records in the shapes of util-linux issues #3621 (-OJb, numbers and booleans) and #1368
    # (util-linux 2.34: "rm": false, "size": "477G", serial padded with leading spaces)
    record = {"name": "nvme0n1", "type": "disk", "size": size, "rm": False, "serial": "      SXXXXXXXXXXXX0"}
    [device] = parse_lsblk(json.dumps({"blockdevices": [record]}))
    assert (device.size_bytes, device.serial) == (expected, "SXXXXXXXXXXXX0")


@pytest.mark.parametrize("text", ["", "lsblk: unknown column: PATH", '{"blockdevices": 3}', "[]"])
def test_bad_output_names_lsblk(text):
    with pytest.raises(ParseError, match="lsblk"):
        parse_lsblk_tree(text)
    with pytest.raises(ParseError, match="lsblk"):
        parse_lsblk(text)
