"""The cluster view: configuration differences and outliers between siblings, history bands, mesh rounds."""

from __future__ import annotations

import json
import random

import pytest

from qualify.cluster.history import shifts
from qualify.cluster.schedule import round_of, round_robin
from qualify.cluster.siblings import differences, outliers
from qualify.cluster.view import ClusterOptions, build_cluster
from qualify.errors import UsageError


def verdict(node: str, bios: str = "5.19", firmware: str = "EDA7602Q", sync_iops: float = 20000.0,
            link_bps: float = 9.4e9, run_id: str = "20261201T000000Z", **extra) -> dict:
    """A verdict.json as qualify writes it (the fields the cluster view reads)."""
    return {
        "node": node, "run_id": run_id, "verdict": "pass", "finished": "2026-12-01T01:00:00Z",
        "profile_sources": ["profiles/base/erying-g660.yaml", f"profiles/{node}.yaml"],
        "inventory": {"cpu_model": "12th Gen Intel(R) Core(TM) i5-12650H", "cpu_stepping": 3, "microcode": "0x432",
                      "board": {"bios_vendor": "American Megatrends", "bios_version": bios},
                      "kernel": "6.8.12-4-pve", "disks": [{"name": "nvme0n1", "serial": f"S{node}", "model":
                                                           "SAMSUNG MZQLB960HAJR-00007", "firmware": firmware}],
                      "dimms": [{"size_mib": 16384, "speed_mts": 3200}, {"size_mib": 16384, "speed_mts": 3200}]},
        "checks": [
            {"name": "storage", "measurements": [
                {"name": "sync_write_iops", "value": sync_iops, "unit": "IOPS", "low": 5000, "high": None,
                 "outcome": "passed", "subject": f"S{node}"}]},
            {"name": "network", "measurements": [
                {"name": "throughput_bits_per_second", "value": link_bps, "unit": "bit/s", "low": 9e9,
                 "high": None, "outcome": "passed", "subject": f"{node} → peer (forward)"}]},
        ],
        **extra,
    }


def test_the_odd_node_is_named_with_both_values():
    found = differences({"pve1": verdict("pve1"), "pve2": verdict("pve2"),
                         "pve3": verdict("pve3", bios="5.27", firmware="EDA7802Q")})
    assert {d.field for d in found} == {"BIOS version", "drive 1 firmware"}
    bios = next(d for d in found if d.field == "BIOS version")
    assert bios.odd_nodes == ("pve3",)
    assert bios.sentence == "pve3 has BIOS version '5.27', the others '5.19'"


def test_a_fact_of_a_drive_the_inventory_does_not_list_is_paired_across_nodes_by_position():
    """A lab loop drive (or one lsblk cannot see): its serial is the subject, one per node."""
    def with_firmware(node, firmware):
        serial = f"QLAB-{sum(map(ord, node)):X}"  # the serials have nothing in common
        identity = {"name": "drive_identity", "measurements": [
            {"name": "firmware_revision", "value": firmware, "outcome": "info", "subject": serial}]}
        found = verdict(node)
        found["checks"].append(identity)
        return found

    found = differences({"pve1": with_firmware("pve1", "EDA7602Q"), "pve2": with_firmware("pve2", "EDA7602Q"),
                         "pve3": with_firmware("pve3", "EDA7902Q")})
    assert [(d.field, d.odd_nodes) for d in found] == [("drive_identity: firmware_revision (#1)", ("pve3",))]
    assert found[0].sentence == "pve3 has drive_identity: firmware_revision (#1) 'EDA7902Q', the others 'EDA7602Q'"


def test_a_mesh_nic_named_after_its_peer_is_missing_on_that_peer_only_and_no_difference():
    def with_mesh_nics(node, driver="ixgbe"):
        found = verdict(node)
        found["inventory"]["nics"] = [{"name": f"to-{peer}", "driver": driver}
                                      for peer in ("pve1", "pve2", "pve3") if peer != node]
        return found

    assert differences({n: with_mesh_nics(n) for n in ("pve1", "pve2", "pve3")}) == []
    found = differences({"pve1": with_mesh_nics("pve1"), "pve2": with_mesh_nics("pve2"),
                         "pve3": with_mesh_nics("pve3", driver="i40e")})
    assert [(d.field, d.values) for d in found] == [("NIC to-pve1 driver", {"pve2": "ixgbe", "pve3": "i40e"}),
                                                    ("NIC to-pve2 driver", {"pve1": "ixgbe", "pve3": "i40e"})]
    assert all("nothing" not in d.sentence for d in found)


def test_identical_nodes_differ_in_nothing():
    assert differences({n: verdict(n) for n in ("a", "b", "c")}) == []


def test_the_slow_node_is_the_outlier_against_the_median():
    found = outliers({"pve1": verdict("pve1"), "pve2": verdict("pve2", sync_iops=21000),
                      "pve3": verdict("pve3", sync_iops=12400)})
    assert [(o.node, o.measurement) for o in found] == [("pve3", "sync_write_iops")]
    assert found[0].sentence.startswith("pve3 Spve3: storage sync_write_iops 12,400 IOPS is 38% below the median")


def test_a_capped_link_is_the_network_outlier():
    found = outliers({"a": verdict("a"), "b": verdict("b"), "c": verdict("c", link_bps=3.0e9)})
    assert [(o.node, o.check) for o in found] == [("c", "network")]


def test_golden_node_is_the_reference():
    found = outliers({"a": verdict("a", sync_iops=30000), "b": verdict("b"), "c": verdict("c")}, golden="a")
    assert {o.node for o in found} == {"b", "c"} and all("golden node a" in o.sentence for o in found)


def test_within_tolerance_is_no_outlier():
    assert outliers({"a": verdict("a"), "b": verdict("b", sync_iops=19000), "c": verdict("c", sync_iops=21500)}) == []


def test_history_names_a_figure_20_percent_worse():
    rng = random.Random(7)
    earlier = [verdict("pve2", sync_iops=20000 * (1 + rng.uniform(-0.02, 0.02)), run_id=f"2026110{i}T000000Z")
               for i in range(5)]
    found, notes = shifts(verdict("pve2", sync_iops=16000), earlier)
    assert notes == [] and [(s.measurement, s.worse) for s in found] == [("sync_write_iops", True)]
    assert "20% below the node's last 5 runs" in found[0].sentence


def test_history_noise_inside_the_band_is_not_named():
    rng = random.Random(3)
    earlier = [verdict("pve2", sync_iops=20000 * (1 + rng.uniform(-0.03, 0.03))) for _ in range(5)]
    assert shifts(verdict("pve2", sync_iops=20500), earlier) == ([], [])


def test_history_needs_three_earlier_runs_and_says_so():
    found, notes = shifts(verdict("pve2", sync_iops=1000), [verdict("pve2"), verdict("pve2")])
    assert found == [] and "at least 3 are needed" in notes[0]


def test_history_compares_only_runs_of_the_same_profile_and_checks():
    other = [dict(verdict("pve2", sync_iops=40000), profile_sources=["profiles/base/lab.yaml"]) for _ in range(5)]
    found, notes = shifts(verdict("pve2"), other)
    assert found == [] and notes


@pytest.mark.parametrize("n", range(3, 51))
def test_mesh_rounds_cover_every_pair_once_with_no_node_twice_in_a_round(n):
    nodes = [f"n{i}" for i in range(n)]
    rounds = round_robin(nodes)
    pairs = [frozenset(p) for r in rounds for p in r]
    assert len(pairs) == len(set(pairs)) == n * (n - 1) // 2
    for r in rounds:
        members = [m for p in r for m in p]
        assert len(members) == len(set(members))
    assert len(rounds) == (n - 1 if n % 2 == 0 else n)


def test_round_of_a_pair():
    assert round_of(["a", "b", "c", "d"], "d", "a") == 0
    with pytest.raises(ValueError):
        round_of(["a", "b"], "a", "z")


def test_cluster_files_from_stored_runs(tmp_path):
    for node, bios in (("pve1", "5.19"), ("pve2", "5.19"), ("pve3", "5.27")):
        run = tmp_path / node / "20261201T000000Z"
        run.mkdir(parents=True)
        (run / "run.jsonl").write_text("")
        (run / "verdict.json").write_text(json.dumps(verdict(node, bios=bios)))
    data = build_cluster(tmp_path, ["pve1", "pve2", "pve3"], ClusterOptions())
    assert [tuple(d["odd_nodes"]) for d in data["differences"]] == [("pve3",)]
    with pytest.raises(UsageError, match="no stored run of pve9"):
        build_cluster(tmp_path, ["pve1", "pve9"], ClusterOptions())


def test_link_tests_of_disjoint_pairs_run_at_once_and_sharing_a_node_take_turns(tmp_path):
    import multiprocessing
    import time

    from qualify.network.lock import link_test_lock

    def hold(nodes, seconds):
        with link_test_lock(tmp_path, 30, nodes):
            time.sleep(seconds)

    def seconds_for_both(*pairs) -> float:
        """Two processes, each holding its pair's locks for 1 s."""
        context = multiprocessing.get_context("fork")
        started = time.monotonic()
        processes = [context.Process(target=hold, args=(pair, 1.0)) for pair in pairs]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        return time.monotonic() - started

    assert seconds_for_both(("a", "b"), ("c", "d")) < 1.8, "disjoint pairs waited for each other"
    assert seconds_for_both(("a", "b"), ("b", "c")) >= 2.0, "two tests loading node b ran at once"
