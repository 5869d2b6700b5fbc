"""An Ansible inventory as the node list: groups, host vars as connection settings, patterns."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qualify.cluster.ansible import connection_overlay, expand, load_inventory, select
from qualify.errors import UsageError

# The layout of Ansible's documented examples (docs "How to build your inventory"), with the seed's nodes.
YAML_INVENTORY = """\
all:
  vars:
    ansible_user: root
  children:
    proxmox:
      hosts:
        pve1:
          ansible_host: 10.0.0.11
        pve2:
          ansible_host: 10.0.0.12
          ansible_port: 2222
        pve3:
      vars:
        ansible_ssh_private_key_file: /root/.ssh/id_ed25519
    ceph:
      hosts:
        pve[2:3]:
    spares:
      hosts:
        spare[01:03]:
          ansible_user: admin
"""

INI_INVENTORY = """\
# the seed's cluster
[proxmox]
pve1 ansible_host=10.0.0.11
pve2 ansible_host=10.0.0.12 ansible_port=2222
pve3

[ceph]
pve[2:3]

[proxmox:vars]
ansible_user=root

[datacenter:children]
proxmox
"""


@pytest.fixture(params=["yaml", "ini"])
def inventory(request, tmp_path):
    path = tmp_path / ("hosts.yml" if request.param == "yaml" else "hosts")
    path.write_text(YAML_INVENTORY if request.param == "yaml" else INI_INVENTORY)
    return load_inventory(path)


def test_groups_and_patterns(inventory):
    assert select(inventory, "proxmox") == ["pve1", "pve2", "pve3"]
    assert select(inventory, "ceph") == ["pve2", "pve3"]
    assert select(inventory, "proxmox:!ceph") == ["pve1"]
    assert select(inventory, "proxmox:&ceph") == ["pve2", "pve3"]
    assert select(inventory, "pve[13]") == ["pve1", "pve3"]
    assert select(inventory, "~pve[12]") == ["pve1", "pve2"]
    assert select(inventory, "pve1,pve3") == ["pve1", "pve3"]


def test_host_vars_become_connection_settings(inventory):
    assert connection_overlay(inventory, "pve2") == {"ssh": {"user": "root", "port": 2222}, "host": "10.0.0.12"} \
        or connection_overlay(inventory, "pve2")["ssh"]["port"] == 2222
    pve3 = connection_overlay(inventory, "pve3")
    assert pve3["host"] == "pve3" and pve3["ssh"]["user"] == "root"


def test_yaml_group_vars_and_closest_wins(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(YAML_INVENTORY)
    inventory = load_inventory(path)
    assert connection_overlay(inventory, "pve1") == {
        "ssh": {"user": "root", "identity_file": "/root/.ssh/id_ed25519"}, "host": "10.0.0.11"}
    assert select(inventory, "spares") == ["spare01", "spare02", "spare03"]
    assert connection_overlay(inventory, "spare02")["ssh"]["user"] == "admin"


def test_ranges():
    assert expand("pve[1:3]") == ["pve1", "pve2", "pve3"]
    assert expand("db-[a:c]") == ["db-a", "db-b", "db-c"]
    assert expand("n[08:10]") == ["n08", "n09", "n10"]


def test_bad_inventories_are_named(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("all: [1, 2]\n")
    with pytest.raises(UsageError, match="bad.yml"):
        load_inventory(bad)
    ini = tmp_path / "bad.ini"
    ini.write_text("[g]\nhost novalue\n")
    with pytest.raises(UsageError, match=r"bad.ini:2: expected key=value"):
        load_inventory(ini)


def test_a_run_from_an_inventory_uses_its_host_vars(tmp_path):
    (tmp_path / "profiles").mkdir()
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    here:\n      hosts:\n        invnode:\n"
                         "          ansible_host: localhost\n")
    env = {"QUALIFY_PROFILES": str(tmp_path / "profiles"), "QUALIFY_REPORTS": str(tmp_path / "reports"),
           "QUALIFY_LAB_DIR": str(tmp_path / "no-lab"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "qualify", "run", "here", "--inventory", str(inventory),
                           "--checks", "microcode"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    runs = sorted((tmp_path / "reports" / "invnode").glob("*T*Z"))
    assert runs, proc.stderr
    verdict = json.loads((runs[0] / "verdict.json").read_text())
    assert verdict["host"] == "localhost" and verdict["node"] == "invnode"
    assert {c["name"]: c["outcome"] for c in verdict["checks"]}["microcode"] == "passed"
