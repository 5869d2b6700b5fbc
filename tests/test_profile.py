"""Profiles: bases merge, the shipped profiles validate, and every mistake names file, key and expectation."""

from pathlib import Path

import pytest

from qualify.errors import ProfileError
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
