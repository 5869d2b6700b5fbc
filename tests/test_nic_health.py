"""NIC health: module diagnostics judged against the module's own thresholds (corpus dumps), error
counters as deltas, ping summaries of this machine's ping, and the check end to end on the lab:
veth parts noted as not applicable, an MTU mismatch and a lossy direction named."""

from __future__ import annotations

import json
import subprocess

import pytest
from corpus import corpus_path

from qualify.checks.nic_health import judge_counters, judge_module
from qualify.errors import ParseError
from qualify.findings import Findings
from qualify.lab.shaping import Shape, shaped
from qualify.parsers.ethtool import NicStatistics, parse_ethtool_module
from qualify.parsers.ping import PingSummary, parse_ping

from test_e2e_lab import lab_workspace  # noqa: F401 (the fixture: the repo's profiles with the lab's overlays)

GOOD_MODULE = corpus_path("ethtool", "m-sfp-10gsr85-fs-module-dom-i40e.txt").read_text()


def judged(text: str) -> Findings:
    findings = Findings("nic_health")
    judge_module("enp6s0f0", parse_ethtool_module(text), findings)
    return findings


def test_healthy_module_within_its_own_limits():
    findings = judged(GOOD_MODULE)
    assert findings.problems == []
    assert "enp6s0f0: FS SFP-10GSR-85 RX optical power 0.6486 mW (-1.88 dBm), within the module's limits" in findings.reasons
    assert "enp6s0f0: FS SFP-10GSR-85 temperature 39.18 °C, within the module's limits" in findings.reasons
    assert findings.metrics["enp6s0f0_dom"]["voltage_v"] == [3.3544]


def test_hot_module_fails_and_weak_rx_warns():
    text = (GOOD_MODULE.replace("39.18 degrees C / 102.52 degrees F", "85.00 degrees C / 185.00 degrees F")
            .replace("0.6486 mW / -1.88 dBm", "0.0500 mW / -13.01 dBm"))
    findings = judged(text)
    assert findings.problems == ["enp6s0f0: FS SFP-10GSR-85 temperature 85 °C is beyond the module's alarm limits "
                                 "-10 °C .. 80 °C"]
    assert ("warning: enp6s0f0: FS SFP-10GSR-85 RX optical power 0.0500 mW (-13.01 dBm) is beyond the module's "
            "warning limits 0.0617 mW (-12.10 dBm) .. 1.0000 mW (0.00 dBm)") in findings.reasons


def test_raised_alarm_flag_fails():
    findings = judged(GOOD_MODULE.replace("Laser rx power low alarm                  : Off",
                                          "Laser rx power low alarm                  : On"))
    assert findings.problems == ["enp6s0f0: FS SFP-10GSR-85 raises 'Laser rx power low alarm'"]


def test_all_zero_module_is_a_warning_not_a_failure():
    findings = judged(corpus_path("ethtool", "m-sfp-10gsr85-dom-zero-readings-inf-dbm.txt").read_text())
    assert findings.problems == []
    assert findings.reasons[-1].startswith("warning: enp6s0f0: FS SFP-10GSR-85 reports all-zero diagnostics")


def test_module_without_dom():
    findings = judged("\tIdentifier : 0x03 (SFP)\n\tVendor name : OEM\n\tVendor PN : SFP-10G-LR\n"
                      "\tOptical diagnostics support : No\n")
    assert findings.reasons == ["enp6s0f0: OEM SFP-10G-LR has no diagnostics (DOM): temperature and optical power "
                                "not checked"]


def test_counter_growth_fails_and_old_errors_are_noted():
    before = NicStatistics({"rx_crc_errors": 5, "rx_missed_errors": 0, "tx_packets": 10, "rx_dropped": 2})
    after = NicStatistics({"rx_crc_errors": 9, "rx_missed_errors": 0, "tx_packets": 99, "rx_dropped": 2})
    findings = Findings("nic_health")
    judge_counters("enp6s0f0", before, after, findings)
    assert findings.problems == ["enp6s0f0: NIC counter rx_crc_errors grew by 4 during the test (5 -> 9)"]
    assert "enp6s0f0: error counters non-zero since the driver loaded (not growing): rx_dropped 2" in findings.reasons


def test_counters_of_the_x520_corpus_are_all_judged():
    from qualify.parsers.ethtool import parse_ethtool_statistics
    stats = parse_ethtool_statistics(corpus_path("ethtool", "ixgbe-x520-da2-i-and-S-head.txt").read_text())
    findings = Findings("nic_health")
    judge_counters("enp6s0f1", stats, stats, findings)
    assert findings.problems == [] and findings.reasons == ["enp6s0f1: none of 23 NIC error counters grew during the test"]


# -- ping

def test_ping_of_this_machine():
    out = subprocess.run(["ping", "-c", "2", "-i", "0.2", "127.0.0.1"], capture_output=True, text=True).stdout
    summary = parse_ping(out)
    assert (summary.transmitted, summary.received, summary.loss_percent) == (2, 2, 0.0)
    assert summary.rtt_avg_ms is not None and summary.rtt_min_ms <= summary.rtt_avg_ms <= summary.rtt_max_ms


def test_ping_with_errors_and_nothing_back():
    text = ("PING 10.1.1.2 (10.1.1.2) 8972(9000) bytes of data.\n\n--- 10.1.1.2 ping statistics ---\n"
            "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2041ms\n\n")
    assert parse_ping(text) == PingSummary(3, 0, 3, 100.0, None, None, None)


def test_busybox_ping():
    text = "--- 10.0.0.1 ping statistics ---\n4 packets transmitted, 3 packets received, 25% packet loss\n" \
           "round-trip min/avg/max = 0.101/0.202/0.303 ms\n"
    assert parse_ping(text) == PingSummary(4, 3, 0, 25.0, 0.101, 0.202, 0.303)


def test_ping_garbage():
    with pytest.raises(ParseError, match="ping: no 'N packets transmitted"):
        parse_ping("ping: connect: Network is unreachable\n")


# -- on the lab

def nic_health(workspace, node: str = "lab-pve2") -> tuple[int, dict]:
    proc = workspace.qualify("run", node, "--checks", "nic_health")
    verdict = json.loads((workspace.runs(node)[-1] / "verdict.json").read_text())
    return proc.returncode, next(c for c in verdict["checks"] if c["name"] == "nic_health")


def test_lab_mtu_mismatch_and_lossy_direction_named_veth_parts_not_applicable(lab_workspace, lab):
    subprocess.run(["ip", "-n", lab.netns("lab-pve1"), "link", "set", "dev", "to-lab-pve2", "mtu", "1400"], check=True)
    try:
        with shaped(lab, {("lab-pve2", "lab-pve3"): Shape(loss_percent=25)}):
            code, check = nic_health(lab_workspace)
    finally:
        subprocess.run(["ip", "-n", lab.netns("lab-pve1"), "link", "set", "dev", "to-lab-pve2", "mtu", "1500"], check=True)
    assert code == 1
    problems = check["problems"]
    assert "to-lab-pve1: MTU 1500 here but 1400 on lab-pve1's to-lab-pve2: frames above the smaller one are dropped; " \
           "set the same MTU on both ends" in problems
    assert "to-lab-pve1: full-size frames (MTU 1500, don't fragment) do not reach lab-pve1 at " \
           f"10.{lab.subnet}.12.1: something on the path has a smaller MTU" in problems
    lossy = [p for p in problems if p.startswith("to-lab-pve3: ping to lab-pve3 under load")]
    assert len(lossy) == 1 and "the profile allows 0 % loss" in lossy[0]
    assert len(problems) == 3, problems
    for iface in ("to-lab-pve1", "to-lab-pve3"):
        assert f"{iface}: link up at 10000 Mb/s, Full duplex" in check["reasons"]
        assert f"{iface}: no PCI device (veth driver): PCIe link not checked" in check["reasons"]
        assert f"{iface}: the veth driver gives no module EEPROM access: no module diagnostics" in check["reasons"]
        assert any(r.startswith(f"{iface}: none of ") for r in check["reasons"])
    assert "to-lab-pve3: full-size frames (MTU 1500, don't fragment) reach lab-pve3" in check["reasons"]
