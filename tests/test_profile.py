"""Profiles: bases merge, the shipped profiles validate, and every mistake names file, key and expectation."""

import time
import tracemalloc
from pathlib import Path

import pytest

from qualify.errors import ProfileError, UsageError
from qualify.profile import known_nodes, load_profile

REPO_PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("node", known_nodes(REPO_PROFILES))
def test_shipped_node_profiles_validate(node):
    loaded = load_profile(node, directory=REPO_PROFILES)
    assert loaded.profile.host


def test_seed_nodes_inherit_the_erying_base():
    loaded = load_profile("pve2", directory=REPO_PROFILES)
    assert loaded.profile.host == "pve2"
    assert loaded.profile.checks.microcode.require_early_load is True
    assert loaded.profile.checks.microcode.min_revision == 0x42C
    assert loaded.sources[0].endswith("base/erying-g660.yaml")


def test_a_profile_of_just_host_is_valid_with_defaults(tmp_path):
    write(tmp_path, "n1.yaml", "host: n1.example\n")
    profile = load_profile("n1", directory=tmp_path).profile
    assert profile.paths.sysfs == "/sys" and profile.paths.procfs == "/proc"
    assert profile.ssh.strict_host_key_checking is True
    assert profile.checks.microcode.min_revision is None


def test_bases_merge_key_by_key_and_the_node_wins(tmp_path):
    write(tmp_path, "base/hw.yaml", "checks:\n  microcode:\n    min_revision: 0x10\n    require_early_load: true\n")
    write(tmp_path, "base/site.yaml", "extends: hw.yaml\nssh:\n  user: admin\n  connect_timeout: 30s\n")
    write(tmp_path, "n1.yaml", "extends: [base/site.yaml]\nhost: n1\nchecks:\n  microcode:\n    min_revision: '0x20'\n")
    profile = load_profile("n1", directory=tmp_path).profile
    assert profile.checks.microcode.min_revision == 0x20
    assert profile.checks.microcode.require_early_load is True
    assert profile.ssh.user == "admin" and profile.ssh.connect_timeout == 30


def test_overlay_goes_on_top(tmp_path):
    write(tmp_path, "n1.yaml", "host: n1\npaths:\n  sysfs: /sys\n")
    overlay = write(tmp_path, "lab/n1.yaml", "host: n1\nssh:\n  config_file: /run/lab/ssh_config\n"
                                             "paths:\n  sysfs: /run/lab/n1/sys\n")
    profile = load_profile("n1", overlays=[overlay], directory=tmp_path).profile
    assert profile.paths.sysfs == "/run/lab/n1/sys" and profile.paths.procfs == "/proc"


def test_unknown_node_lists_the_known_ones(tmp_path):
    write(tmp_path, "pve1.yaml", "host: pve1\n")
    with pytest.raises(ProfileError, match=r"no profile for node 'pve9'.*known nodes: pve1"):
        load_profile("pve9", directory=tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("host: n1\nchecks:\n  microcode:\n    min_revisoin: 0x10\n",
     r"n1.yaml: checks.microcode.min_revisoin: unknown key \(expected one of: min_revision, require_early_load"),
    ("host: n1\nchecks:\n  microcode:\n    require_early_load: maybe\n",
     r"n1.yaml: checks.microcode.require_early_load: .*bool.*'maybe'"),
    ("host: n1\ncommand_timeout: abc\n", r"n1.yaml: command_timeout: expected a duration like 90s, 30m, 12h"),
    ("host: n1\nssh:\n  port: 70000\n", r"n1.yaml: ssh.port: .*65535"),
    ("host: n1\npaths:\n  sysfs: relative/sys\n", r"n1.yaml: paths.sysfs: expected an absolute path"),
    ("host: -oProxyCommand=evil\n", r"n1.yaml: host: expected a host name"),
    ("paths:\n  sysfs: /sys\n", r"n1.yaml: host: required key is missing"),
    ("host: n1\nchecks:\n  microcode:\n    min_revision: zz\n", r"min_revision: expected a hexadecimal revision"),
    ("host: n1\n  bad indent: [\n", r"n1.yaml: not valid YAML"),
    ("- just\n- a list\n", r"n1.yaml: expected a mapping of keys"),
    ("extends: nowhere.yaml\nhost: n1\n", r"n1.yaml: extends: nowhere.yaml not found"),
])
def test_mistakes_name_file_key_and_expectation(tmp_path, text, expected):
    write(tmp_path, "n1.yaml", text)
    with pytest.raises(ProfileError, match=expected):
        load_profile("n1", directory=tmp_path)


def test_error_names_the_base_file_that_set_the_bad_key(tmp_path):
    write(tmp_path, "base/hw.yaml", "command_timeout: forever\n")
    write(tmp_path, "n1.yaml", "extends: base/hw.yaml\nhost: n1\n")
    with pytest.raises(ProfileError, match=r"base/hw.yaml: command_timeout"):
        load_profile("n1", directory=tmp_path)


def test_extends_cycle_is_reported(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nhost: a\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ProfileError, match="extends itself"):
        load_profile("a", directory=tmp_path)


# -- hostile or broken files (issue 17): exit-2 errors naming file and key, in bounded time and memory


def _billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb (488 bytes at 9 levels): 9**9 strings once expanded."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    return text


def _dict_bomb(levels: int = 40) -> str:
    """Mappings aliasing the previous one twice: 2**40 keys for a merge that walks them."""
    text = "x0: &x0 {k: v}\n" + "".join(f"x{i}: &x{i} {{a: *x{i - 1}, b: *x{i - 1}}}\n" for i in range(1, levels))
    return "host: n1\nchecks:\n" + "".join(f"  {line}\n" for line in text.splitlines())


@pytest.mark.parametrize("content, expected", [
    (b"host: n1\ndescription: caf\xe9\n", r"n1.yaml: line 2: not UTF-8 text \(byte 0xe9\)"),
    ("host: n1\nlabels: " + "[" * 20000 + "\n", r"n1.yaml: line 2: nested deeper than 32 levels"),
    ("host: n1\nlabels:\n" + "".join(f"  {line}\n" for line in _billion_laughs().splitlines()),
     r"n1.yaml: more than 20000 values once anchors and aliases"),
    (_dict_bomb(), r"n1.yaml: more than 20000 values once anchors and aliases"),
    ("host: n1\nlabels: &a [*a]\n", r"n1.yaml: line 2: an alias refers to the collection it is part of"),
    ("host: n1\ndescription: x\nhost: n2\n", r"n1.yaml: line 3: key 'host' appears twice \(lines 1 and 3\)"),
    ("host: n1\nchecks:\n  thermal:\n    slice: 1m\n    slice: 2m\n", r"key 'slice' appears twice \(lines 4 and 5\)"),
    ("host: n1\ncommand_timeout: .inf\n", r"n1.yaml: command_timeout: a duration can be at most 30d, got inf"),
    ("host: n1\nduration: .nan\n", r"n1.yaml: duration: expected a duration like 90s, 30m, 12h, got nan"),
    ("host: n1\nchecks:\n  thermal:\n    max_package_temp_c: .nan\n",
     r"checks.thermal.max_package_temp_c: Input should be a finite number"),
    ("host: n1\nduration: 0\n", r"n1.yaml: duration: Input should be greater than 0 \(got 0\)"),
    ("host: n1\nchecks:\n  thermal:\n    slice: 0s\n", r"checks.thermal.slice: Input should be greater than 0"),
    ("host: n1\nduration: 99999999999999d\n", r"n1.yaml: duration: a duration can be at most 30d"),
    ("host: n1\ncommand_timeout: " + "9" * 5000 + "\n", r"n1.yaml: not valid YAML: a value cannot be read"),
    ("host: n1\nwatch:\n  heartbeat_interval: 1ms\n", r"watch.heartbeat_interval: Input should be greater than or "
                                                       r"equal to 0.2 \(got 0.001\)"),
    ("host: n1\nchecks:\n  storage:\n    drives:\n      - {serial: S1}\n      - {serial: S2}\n      - {serial: S1}\n",
     r"n1.yaml: checks.storage.drives: a drive is listed more than once: serial S1"),
    ("host: n1\n---\nhost: n2\n", r"n1.yaml: not valid YAML: line 2, column 1: but found another document"),
    ("host: n1\ndescription: " + "x" * 70_000 + "\n", r"n1.yaml: larger than 64 KiB"),
])
def test_hostile_profiles_are_refused_quickly(tmp_path, content, expected):
    path = tmp_path / "n1.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ProfileError, match=expected) as refused:
            load_profile("n1", directory=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 3
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert len(str(refused.value)) < 2000


def test_unknown_key_in_a_list_item_names_the_item_keys(tmp_path):
    write(tmp_path, "n1.yaml", "host: n1\nchecks:\n  storage:\n    drives:\n      - serail: S1\n")
    with pytest.raises(ProfileError, match=r"checks.storage.drives.0.serail: unknown key "
                                           r"\(expected one of: serial, wwn, allow_destroy"):
        load_profile("n1", directory=tmp_path)


def test_the_value_is_shown_once(tmp_path):
    write(tmp_path, "n1.yaml", "host: n1\ncommand_timeout: abc\nssh:\n  port: 0\n")
    with pytest.raises(ProfileError) as refused:
        load_profile("n1", directory=tmp_path)
    message = str(refused.value)
    assert message.count("abc") == 1 and "got 'abc'" in message
    assert "ssh.port: Input should be greater than or equal to 1 (got 0)" in message


def test_many_errors_are_cut_short(tmp_path):
    write(tmp_path, "n1.yaml", "host: n1\nchecks:\n  storage:\n    drives:\n" + "      - bogus: 1\n" * 500)
    with pytest.raises(ProfileError, match=r"\.\.\. and \d+ more") as refused:
        load_profile("n1", directory=tmp_path)
    assert str(refused.value).count("\n") <= 22


def test_extends_fanning_out_is_bounded(tmp_path):
    write(tmp_path, "c.yaml", "description: leaf\n")
    write(tmp_path, "b.yaml", "extends: [c.yaml, c.yaml, c.yaml, c.yaml, c.yaml, c.yaml]\n")
    write(tmp_path, "n1.yaml", "extends: [b.yaml, b.yaml, b.yaml, b.yaml, b.yaml, b.yaml]\nhost: n1\n")
    with pytest.raises(ProfileError, match=r"n1.yaml: extends: more than 32 files"):
        load_profile("n1", directory=tmp_path)


@pytest.mark.parametrize("node", ["../../x", "..", "/abs/path", "a;b", "a b", "-oProxyCommand=x", "x" * 65, "n1\n", ""])
def test_node_names_are_names(tmp_path, node):
    write(tmp_path, "n1.yaml", "host: n1\n")
    with pytest.raises(UsageError, match="a node name is letters, digits"):
        load_profile(node, directory=tmp_path)


def test_a_file_that_is_no_profile_is_refused_without_its_lines_echoed(tmp_path):
    secret = tmp_path / "secrets.yaml"
    secret.write_text("root:$6$salt$hash:20228:0:99999:7:::\n")  # /etc/shadow's shape, under a .yaml name
    for base, said in (("/etc/shadow", "is not a profile (expected a .yaml or .yml file)"),
                       (str(secret), "<not a key name>: unknown key")):
        profile = tmp_path / "node.yaml"
        profile.write_text(f"host: localhost\nextends: {base}\n")
        with pytest.raises(ProfileError) as error:
            load_profile("node", directory=tmp_path)
        assert said in str(error.value) and "20228" not in str(error.value) and "salt" not in str(error.value)
