"""Lab link shaping: per direction, on the sender's device (tbf) and the receiver's (nftables loss),
always removed."""

from __future__ import annotations

import subprocess

import pytest

from qualify.errors import LabError
from qualify.lab.shaping import Shape, clear_direction, shape_direction, shaped


def qdiscs(lab, node: str, device: str) -> str:
    return subprocess.run(["tc", "-n", lab.netns(node), "qdisc", "show", "dev", device], capture_output=True,
                          text=True, check=True).stdout


def nft_tables(lab, node: str) -> str:
    return subprocess.run(["ip", "netns", "exec", lab.netns(node), "nft", "list", "tables"], capture_output=True,
                          text=True, check=True).stdout


def test_shape_needs_something_and_a_sane_loss():
    with pytest.raises(LabError, match="needs a rate or a loss"):
        Shape()
    with pytest.raises(LabError, match="loss 150 %"):
        Shape(loss_percent=150)


def test_one_direction_shaped_and_cleared(lab):
    with shaped(lab, {("lab-pve1", "lab-pve3"): Shape(rate_bits=123e6, loss_percent=2.5)}):
        shaping = qdiscs(lab, "lab-pve1", "to-lab-pve3")
        assert "tbf 10: root" in shaping and "rate 123Mbit" in shaping
        assert "table netdev qualify_loss_from_lab_pve1" in nft_tables(lab, "lab-pve3")
        rules = subprocess.run(["ip", "netns", "exec", lab.netns("lab-pve3"), "nft", "list", "table", "netdev",
                                "qualify_loss_from_lab_pve1"], capture_output=True, text=True, check=True).stdout
        assert 'device "to-lab-pve1"' in rules and "numgen random mod 100000 < 2500 drop" in rules
        # the other direction is untouched
        assert "tbf" not in qdiscs(lab, "lab-pve3", "to-lab-pve1") and "qualify_loss" not in nft_tables(lab, "lab-pve1")
        shape_direction(lab, "lab-pve1", "lab-pve3", Shape(rate_bits=50e6))  # replaces, does not stack
        assert "rate 50Mbit" in qdiscs(lab, "lab-pve1", "to-lab-pve3")
        assert "qualify_loss" not in nft_tables(lab, "lab-pve3")
    assert "tbf" not in qdiscs(lab, "lab-pve1", "to-lab-pve3") and "qualify_loss" not in nft_tables(lab, "lab-pve3")
    clear_direction(lab, "lab-pve1", "lab-pve3")  # harmless when nothing is shaped


def test_cleared_even_when_the_block_fails(lab):
    with pytest.raises(RuntimeError):
        with shaped(lab, {("lab-pve2", "lab-pve1"): Shape(rate_bits=80e6)}):
            raise RuntimeError("test body failed")
    assert "tbf" not in qdiscs(lab, "lab-pve2", "to-lab-pve1")


def test_unknown_lab_node_is_a_lab_error(lab):
    with pytest.raises(LabError, match='lab-pve1 -> lab-pve9: Cannot find device "to-lab-pve9"'):
        shape_direction(lab, "lab-pve1", "lab-pve9", Shape(rate_bits=1e6))
