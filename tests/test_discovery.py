"""Discovery from the node's own outputs: what uses a drive, which drives are drives, which interface leads to
which peer. The lsblk and ip inputs are synthetic (built here in util-linux 2.38's and iproute2's JSON layout,
the layout of this machine's own `lsblk -J -O -b` and `ip -j addr`); the last tests read this machine's real
outputs."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from qualify.discovery.complete import drive_entries
from qualify.discovery.drives import drive_uses, select_drives
from qualify.discovery.peers import match_links
from qualify.parsers.iproute import parse_ip_addr
from qualify.parsers.lsblk import parse_lsblk_tree
from qualify.storage.identity import BlockDevice


def dev(name, type_="disk", children=(), mountpoints=(None,), fstype=None, **extra):
    return {"name": name, "path": f"/dev/{name}", "type": type_, "fstype": fstype, "mountpoints": list(mountpoints),
            "size": 1920383410176, "children": list(children), **extra} if children else \
        {"name": name, "path": f"/dev/{name}", "type": type_, "fstype": fstype, "mountpoints": list(mountpoints),
         "size": 1920383410176, **extra}


# A Proxmox VE + Ceph node: the boot drive with / on LVM, a Ceph OSD drive, an empty drive, a ZFS member,
# zram swap, an unmarked loop device and a marked one (the lab's).
LSBLK = json.dumps({"blockdevices": [
    dev("nvme0n1", model="SAMSUNG MZVL2512HCJQ", serial="S64JNX0R", rev="GXA7401Q", tran="nvme", children=[
        dev("nvme0n1p2", "part", mountpoints=["/boot/efi"], fstype="vfat"),
        dev("nvme0n1p3", "part", fstype="LVM2_member", children=[
            dev("pve-swap", "lvm", mountpoints=["[SWAP]"], fstype="swap"),
            dev("pve-root", "lvm", mountpoints=["/"], fstype="ext4")])]),
    dev("nvme1n1", model="INTEL SSDPE2KX020T8", serial="PHLJ9123", wwn="eui.01000000", rev="VDV10131", tran="nvme",
        fstype="LVM2_member", children=[dev("ceph--8a1b--osd--block--77c2", "lvm", fstype="ceph_bluestore")]),
    dev("nvme2n1", model="SAMSUNG MZQLB1T9HAJR-00007", serial="S439NA0N", rev="EDA5202Q", tran="nvme"),
    dev("sda", model="ST4000NM0035", serial="ZC1A2B3C", wwn="0x5000c500a1b2c3d4", rev="TN04", tran="sata",
        children=[dev("sda1", "part", fstype="zfs_member")]),
    dev("zram0"),
    dev("loop0", "loop", mountpoints=["/snap/core/1"], fstype="squashfs"),
    dev("loop3", "loop"),
]})


def identities(trees):
    found = {t.name: BlockDevice(t.name, t.path, t.serial, t.wwn, t.model, t.size_bytes, None) for t in trees}
    found["loop3"] = BlockDevice("loop3", "/dev/loop3", "QLAB-1A2B3C", None, None, 1, "/lab/u2.img")
    found["loop0"] = BlockDevice("loop0", "/dev/loop0", None, None, None, 1, "/var/lib/snapd/core.snap")
    return found


def test_each_use_of_a_drive_is_named_root_first():
    trees = {t.name: t for t in parse_lsblk_tree(LSBLK)}
    assert drive_uses(trees["nvme0n1"]) == (
        "holds / (the root filesystem) (pve-root)", "mounted at /boot/efi (nvme0n1p2)",
        "LVM physical volume (nvme0n1p3)", "swap (pve-swap)")
    assert drive_uses(trees["nvme1n1"]) == (
        "LVM physical volume", "Ceph OSD (BlueStore) (ceph--8a1b--osd--block--77c2)",
        "Ceph OSD (ceph--8a1b--osd--block--77c2)")
    assert drive_uses(trees["sda"]) == ("ZFS pool member (sda1)",)
    assert drive_uses(trees["nvme2n1"]) == ()


def test_drives_are_disks_and_marked_loops_of_the_kernel_view():
    trees = parse_lsblk_tree(LSBLK)
    everything = {t.name for t in trees}
    drives = select_drives(trees, identities(trees), everything, loops=True)
    assert [d.name for d in drives] == ["nvme0n1", "nvme1n1", "nvme2n1", "sda", "loop3"]
    # on a real node's /sys no loop device is a drive, marked or not
    assert "loop3" not in [d.name for d in select_drives(trees, identities(trees), everything)]
    by_name = {d.name: d for d in drives}
    assert by_name["loop3"].serial == "QLAB-1A2B3C" and by_name["nvme2n1"].firmware == "EDA5202Q"
    assert by_name["sda"].transport == "sata" and by_name["sda"].wwn == "0x5000c500a1b2c3d4"
    # a lab node's tree lists its own drive only
    assert [d.name for d in select_drives(trees, identities(trees), {"loop3"}, loops=True)] == ["loop3"]


def test_an_emmc_is_one_drive_not_its_boot_and_rpmb_partitions():
    """An ARM board's eMMC: lsblk lists mmcblk0boot0/1 as disks with the eMMC's serial; counted as drives they
    would make the serial ambiguous and the eMMC itself unnameable."""
    trees = parse_lsblk_tree(json.dumps({"blockdevices": [
        dev("mmcblk0", serial="0x8b2c4f01", tran="mmc", children=[dev("mmcblk0p1", "part", mountpoints=["/"])]),
        dev("mmcblk0boot0", serial="0x8b2c4f01", tran="mmc"), dev("mmcblk0boot1", serial="0x8b2c4f01", tran="mmc"),
        dev("ram0"), dev("sr0", "rom")]}))
    drives = select_drives(trees, identities(trees), {t.name for t in trees})
    assert [d.name for d in drives] == ["mmcblk0"] and drives[0].uses == ("holds / (the root filesystem) (mmcblk0p1)",)
    assert [e.serial for e in drive_entries(drives)] == ["0x8b2c4f01"]


def test_old_lsblk_single_mountpoint_is_read():
    trees = parse_lsblk_tree(json.dumps({"blockdevices": [
        {"name": "sda", "type": "disk", "mountpoint": None, "children": [
            {"name": "sda1", "type": "part", "mountpoint": "/", "fstype": "ext4"}]}]}))
    assert drive_uses(trees[0]) == ("holds / (the root filesystem) (sda1)",)


def ip_addr(*interfaces):
    return json.dumps([{"ifname": name, "operstate": "UP", "mtu": 9000, "address": "a0:36:9f:00:00:01",
                        "addr_info": [{"family": "inet6" if ":" in a else "inet", "local": a.split("/")[0],
                                       "prefixlen": int(a.split("/")[1]),
                                       "scope": "link" if a.startswith("fe80") else "global"} for a in addrs]}
                       for name, addrs in interfaces])


def test_each_interface_sharing_a_subnet_with_the_peer_is_a_link():
    pve2 = parse_ip_addr(ip_addr(("lo", ["127.0.0.1/8"]), ("vmbr0", ["192.168.1.12/24", "fe80::1/64"]),
                                 ("enp6s0f0", ["10.15.15.2/30", "fe80::2/64"]),
                                 ("enp6s0f1", ["10.15.16.1/30", "fd00:16::1/64"]), ("enp7s0", [])))
    pve1 = parse_ip_addr(ip_addr(("vmbr0", ["192.168.1.11/24"]), ("enp6s0f0", ["10.15.15.1/30", "fe80::9/64"]),
                                 ("enp6s0f1", ["10.15.17.1/30"])))
    pve3 = parse_ip_addr(ip_addr(("vmbr0", ["192.168.1.13/24"]), ("enp6s0f1", ["fd00:16::2/64", "10.15.16.2/30"])))
    links = match_links(pve2, "pve1", pve1, management={"vmbr0"}) + match_links(pve2, "pve3", pve3, {"vmbr0"})
    assert [(link.peer, link.interface, link.peer_address) for link in links] == [
        ("pve1", "enp6s0f0", "10.15.15.1"), ("pve3", "enp6s0f1", "10.15.16.2")]  # IPv4 preferred, no link-local
    # without knowing the management interface, the shared management subnet is a link too
    assert [link.interface for link in match_links(pve2, "pve1", pve1)] == ["vmbr0", "enp6s0f0"]


@pytest.mark.skipif(not shutil.which("lsblk"), reason="no lsblk here")
def test_this_machines_lsblk_is_read():
    out = subprocess.run(["lsblk", "-J", "-O", "-b"], capture_output=True, text=True, check=True).stdout
    trees = parse_lsblk_tree(out)
    assert trees and all(t.name and t.type for t in trees)


def test_this_machines_ip_addr_is_read():
    out = subprocess.run(["ip", "-j", "-d", "addr", "show"], capture_output=True, text=True, check=True).stdout
    assert "lo" in {i.link.name for i in parse_ip_addr(out)}
