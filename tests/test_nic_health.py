"""NIC health: module diagnostics judged against the module's own thresholds (corpus dumps), error
counters as deltas, ping summaries of this machine's ping, and the check end to end on the lab:
veth parts noted as not applicable, an MTU mismatch and a lossy direction named."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import pytest
from test_e2e_lab import lab_workspace  # noqa: F401 (the fixture: the repo's profiles with the lab's overlays)

from corpus import corpus_path
from qualify.checks.nic_health import LinkHealth, NicHealthEvidence, UnderLoad, judge, judge_counters, judge_module
from qualify.errors import ParseError
from qualify.findings import Findings
from qualify.lab.shaping import Shape, shaped
from qualify.parsers.ethtool import (
    NicStatistics,
    parse_ethtool_driver_info,
    parse_ethtool_link,
    parse_ethtool_module,
    parse_ethtool_statistics,
)
from qualify.parsers.lspci import parse_lspci_vv
from qualify.parsers.ping import PingSummary, parse_ping
from qualify.profile import NetworkLink, NicHealthSettings

GOOD_MODULE = corpus_path("ethtool", "m-sfp-10gsr85-fs-module-dom-i40e.txt").read_text()


def judged(text: str) -> Findings:
    findings = Findings("nic_health")
    judge_module("enp6s0f0", parse_ethtool_module(text), findings)
    return findings


def test_healthy_module_within_its_own_limits():
    findings = judged(GOOD_MODULE)
    assert findings.problems == []
    assert "enp6s0f0 FS SFP-10GSR-85: RX optical power 0.649 mW (-1.88 dBm) (limits 0.0617 mW..1 mW)" \
        in findings.reasons
    assert "enp6s0f0 FS SFP-10GSR-85: temperature 39.2°C (limits 0°C..70°C)" in findings.reasons
    voltage = next(m for m in findings.measurements if m.name == "module_supply_voltage_volts")
    assert (voltage.value, voltage.unit, voltage.outcome) == (3.3544, "V", "passed")


def test_hot_module_fails_and_weak_rx_warns():
    text = (GOOD_MODULE.replace("39.18 degrees C / 102.52 degrees F", "85.00 degrees C / 185.00 degrees F")
            .replace("0.6486 mW / -1.88 dBm", "0.0500 mW / -13.01 dBm"))
    findings = judged(text)
    assert findings.problems == ["enp6s0f0 FS SFP-10GSR-85: temperature 85°C (limits -10°C..80°C) — beyond the "
                                 "module's alarm limits"]
    rx = next(m for m in findings.measurements if m.name == "module_rx_power_milliwatts")
    assert (rx.outcome, rx.low, rx.high) == ("warning", 0.0617, 1.0)
    assert rx.sentence == ("warning: enp6s0f0 FS SFP-10GSR-85: RX optical power 0.05 mW (-13.01 dBm) "
                           "(limits 0.0617 mW..1 mW) — beyond the module's warning limits")


def test_raised_alarm_flag_fails():
    findings = judged(GOOD_MODULE.replace("Laser rx power low alarm                  : Off",
                                          "Laser rx power low alarm                  : On"))
    assert findings.problems == ["enp6s0f0: FS SFP-10GSR-85 raises 'Laser rx power low alarm'"]


def test_all_zero_module_is_a_warning_not_a_failure():
    findings = judged(corpus_path("ethtool", "m-sfp-10gsr85-dom-zero-readings-inf-dbm.txt").read_text())
    assert findings.problems == [] and [m.outcome for m in findings.measurements] == ["warning"]
    assert findings.reasons[-1].startswith("warning: enp6s0f0: FS SFP-10GSR-85 reports all-zero diagnostics")


def test_qsfp_held_in_low_power_fails_naming_the_fix_and_a_powered_one_is_judged_per_lane():
    low = judged(corpus_path("ethtool", "m-qsfp28-low-power-mode-all-lanes-0mw-minus-inf-dbm-elided-excerpt.txt")
                 .read_text())
    assert [m.name for m in low.measurements] == ["module_low_power_mode"]
    assert "held in low-power mode" in low.problems[0] and "power-mode-policy high" in low.problems[0]
    powered = judged(corpus_path("ethtool", "m-qsfp28-4-lanes-power-override-mlxsw-elided-excerpt.txt").read_text())
    assert powered.problems == []
    rx = [m for m in powered.measurements if m.name == "module_rx_power_milliwatts"]
    assert [m.subject for m in rx] == [f"enp6s0f0 module lane {lane}" for lane in range(1, 5)]


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
    assert findings.problems[0].startswith("enp6s0f0: NIC error counter growth during the test 4 "
                                           "(rx_crc_errors +4 (5 -> 9)) (limit ≤ 0) — ")
    assert "enp6s0f0: error counters non-zero since the driver loaded (not growing): rx_dropped 2" in findings.reasons


def test_counters_of_the_x520_corpus_are_all_judged():
    stats = parse_ethtool_statistics(corpus_path("ethtool", "ixgbe-x520-da2-i-and-S-head.txt").read_text())
    findings = Findings("nic_health")
    judge_counters("enp6s0f1", stats, stats, findings)
    assert findings.problems == [] and findings.reasons == [
        "enp6s0f1: NIC error counter growth during the test 0 (none of 23 error counters grew) (limit ≤ 0)"]


# -- the whole judge on recorded evidence (the corpus's ethtool and lspci outputs; the pings are built)

X520 = corpus_path("ethtool", "ixgbe-x520-da2-i-and-S-head.txt").read_text()
LINK = NetworkLink(peer="pve3", interface="enp6s0f1", peer_address="10.10.23.3", expected_rate=10e9)
QUIET_PINGS = PingSummary(20, 20, 0, 0.0, 0.05, 0.08, 0.2)  # synthetic: a clean ping summary


def link_health(**changes) -> NicHealthEvidence:
    stats = parse_ethtool_statistics(X520)
    health = LinkHealth(
        link=LINK, state=parse_ethtool_link(corpus_path("ethtool", "ixgbe-10g-sr-link-settings.txt").read_text()),
        driver=parse_ethtool_driver_info(X520), pcie=None, pcie_unread="lspci is not installed (Debian package "
        "pciutils)", module=parse_ethtool_module(GOOD_MODULE), module_unread=None, mtu=9000,
        peer_interface="enp6s0f0", peer_mtu=9000, full_size_ping=PingSummary(3, 3, 0, 0.0, 0.1, 0.1, 0.1),
        load=UnderLoad(stats, stats, QUIET_PINGS, 9.4e9))
    return NicHealthEvidence("pve2", (replace(health, **changes),))


def judge_health(evidence: NicHealthEvidence, **settings) -> Findings:
    findings = Findings("nic_health")
    judge(evidence, NicHealthSettings(**settings), findings)
    return findings


def test_healthy_x520_link_passes_every_measurement():
    findings = judge_health(link_health(), mtu=9000)
    assert findings.problems == []
    assert {m.outcome for m in findings.measurements} == {"passed"}
    names = {m.name for m in findings.measurements}
    assert {"link_speed_bits_per_second", "mtu_bytes", "peer_mtu_bytes", "full_size_ping_replies",
            "ping_loss_percent", "ping_rtt_milliseconds", "nic_error_counter_growth",
            "module_temperature_celsius"} <= names
    assert "enp6s0f1: negotiated speed 10 Gbit/s (Full duplex) (minimum 10 Gbit/s)" in findings.reasons
    assert "enp6s0f1: lspci is not installed (Debian package pciutils): PCIe link not checked" in findings.reasons


def test_downgraded_pcie_link_mtu_mismatch_and_lost_jumbo_frames_fail():
    pcie = parse_lspci_vv(corpus_path("lspci", "nvme-smi2263-x4-gen3-downgraded-2.5gt-x1.txt").read_text())[0]
    findings = judge_health(link_health(pcie=pcie, peer_mtu=1500, full_size_ping=PingSummary(3, 0, 3, 100.0,
                                                                                             None, None, None)))
    failed = {m.name: m.sentence for m in findings.measurements if m.outcome == "failed"}
    assert set(failed) == {"pcie_link_speed_gts", "pcie_link_width_lanes", "peer_mtu_bytes", "full_size_ping_replies"}
    assert failed["pcie_link_width_lanes"] == ("enp6s0f1: PCIe link width 1 lanes at 04:00.0 (minimum 4 lanes) — "
                                               "riser, slot or lanes shared: it may not carry line rate")
    assert failed["peer_mtu_bytes"].startswith("enp6s0f1: MTU of pve3's enp6s0f0 1,500 bytes (expected 9,000 bytes)")


def test_speed_below_the_links_rate_and_pings_lost_under_load_fail():
    slow = replace(parse_ethtool_link(corpus_path("ethtool", "ixgbe-10g-sr-link-settings.txt").read_text()),
                   speed_mbps=1000)
    lossy = PingSummary(20, 15, 0, 25.0, 0.1, 0.3, 2.0)  # synthetic
    findings = judge_health(link_health(state=slow, load=UnderLoad(None, None, lossy, 9.4e8)))
    assert findings.problems == [
        "enp6s0f1: negotiated speed 1 Gbit/s (Full duplex) (minimum 10 Gbit/s) — below the expected rate of the link",
        "enp6s0f1: ping loss to pve3 under load (940 Mbit/s to pve3) 25.0% (15 of 20 answered) (limit ≤ 0.0%) — "
        "the profile's limit"]


def test_speed_ethtool_cannot_tell_is_unknown_against_an_expected_rate():
    unknown = parse_ethtool_link(corpus_path("ethtool", "ixgbe-x553-sfp-10g-no-link-speed-unknown.txt").read_text())
    findings = judge_health(link_health(state=unknown))
    speed = next(m for m in findings.measurements if m.name == "link_speed_bits_per_second")
    assert speed.outcome == "unknown" and "ethtool says Unknown!" in speed.sentence


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
    peers = ",".join(peer for peer in workspace.lab.nodes if peer != node)
    proc = workspace.qualify("run", node, "--checks", "nic_health", "--peers", peers)
    verdict = json.loads((workspace.runs(node)[-1] / "verdict.json").read_text())
    return proc.returncode, next(c for c in verdict["checks"] if c["name"] == "nic_health")


def test_lab_mtu_mismatch_and_lossy_direction_named_veth_parts_not_applicable(lab_workspace, lab):
    subprocess.run(["ip", "-n", lab.netns("lab-pve1"), "link", "set", "dev", "to-lab-pve2", "mtu", "1400"], check=True)
    try:
        with shaped(lab, {("lab-pve2", "lab-pve3"): Shape(loss_percent=25)}):
            code, check = nic_health(lab_workspace)
    finally:
        subprocess.run(["ip", "-n", lab.netns("lab-pve1"), "link", "set", "dev", "to-lab-pve2", "mtu", "1500"],
                       check=True)
    assert code == 1
    problems = check["problems"]
    assert "to-lab-pve1: MTU of lab-pve1's to-lab-pve2 1,400 bytes (expected 1,500 bytes) — frames above the smaller " \
           "one are dropped; set the same MTU on both ends" in problems
    assert "to-lab-pve1: full-size pings (MTU 1500, don't fragment) answered by lab-pve1 0 of 3 to " \
           f"10.{lab.subnet}.12.1 (minimum 1) — something on the path has a smaller MTU" in problems
    lossy = [p for p in problems if p.startswith("to-lab-pve3: ping loss to lab-pve3 under load")]
    assert len(lossy) == 1 and "(limit ≤ 0.0%)" in lossy[0]
    assert len(problems) == 3, problems
    for iface in ("to-lab-pve1", "to-lab-pve3"):
        assert any(r.startswith(f"{iface}: negotiated speed 10 Gbit/s (Full duplex)") for r in check["reasons"])
        assert f"{iface}: no PCI device (veth driver): PCIe link not checked" in check["reasons"]
        assert f"{iface}: the veth driver gives no module EEPROM access: no module diagnostics" in check["reasons"]
        assert any(r.startswith(f"{iface}: NIC error counter growth during the test 0 (none of ")
                   for r in check["reasons"])
    replies = {m["subject"]: m["outcome"] for m in check["measurements"] if m["name"] == "full_size_ping_replies"}
    assert replies == {"to-lab-pve1": "failed", "to-lab-pve3": "passed"}
