"""iperf3 -J: every file of corpus/iperf3, the real iperf3 of this machine, and broken outputs."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from corpus import corpus_path, parse_error
from qualify.errors import ParseError
from qualify.parsers.iperf3 import parse_iperf3

# name -> (protocol, streams, reverse, [(client_sends, bits/s received, retransmits, intervals)], cpu host/remote,
#          error)
EXPECTED = {
    "iperf-3.1.3-udp-10000-blocks-1000M-0.69pct-loss-arch.json":
        ("UDP", 1, False, [(True, 834711189.017002, None, 1)], (17.76954, 0.136453), None),
    "iperf-3.14-udp-reverse-R-32mbit-receiver-client-macos.json":
        ("UDP", 1, True, [(False, 32034981.770479407, None, 11)], (1.5869042751396987, 0.587058), None),
    "iperf-3.6-tcp-4streams-P4-60s-mininet-duplicate-keys.json":
        ("TCP", 4, False, [(True, 17535714055.21963, 2, 60)], (49.70591834351505, 37.843069314427936), None),
    "openwisp-iperf-3.7-openwrt-error-connection-refused.json":
        (None, None, False, [], None, "error - unable to connect to server: Connection refused"),
    "openwisp-iperf-3.9-tcp-1stream-loopback-client.json":
        ("TCP", 1, False, [(True, 44042139781.797935, 0, 10)], (99.49882081069975, 0.377797593572381), None),
    "openwisp-iperf-3.9-udp-1mbps-loopback-client.json":
        ("UDP", 1, False, [(True, 1048569.7085817485, None, 10)], (0.6057128493969417, 0.016163250220207454), None),
}
EXCERPT = "issue1143-excerpts-json-tail-with-trailing-error-line-and-server-error-key.txt"
# Real documents that end mid-way (the run was killed or the capture cut): a ParseError saying so, never zeros.
CUT_SHORT = {"cloudpilot-iperf-3.9-tcp-n-10k-bytes-mode-document-cut-short-tab-indented.json"}
FILES = sorted(path.name for path in corpus_path("iperf3").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED) | {EXCERPT} | CUT_SHORT


@pytest.mark.parametrize("name", sorted(CUT_SHORT))
def test_a_real_document_cut_short_is_a_parse_error_that_says_so(name):
    with pytest.raises(ParseError, match="cut short"):
        parse_iperf3(corpus_path("iperf3", name).read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name):
    protocol, streams, reverse, flows, cpu, error = EXPECTED[name]
    result = parse_iperf3(corpus_path("iperf3", name).read_text())
    assert (result.protocol, result.streams, result.reverse, result.error) == (protocol, streams, reverse, error)
    assert [(f.client_sends, f.bits_per_second, f.retransmits, len(f.intervals)) for f in result.flows] == flows
    assert (result.cpu.host_total, result.cpu.remote_total) == cpu if cpu else result.cpu is None
    assert result.failure == error


def test_duplicate_keys_and_per_interval_sums_of_four_streams():
    result = parse_iperf3(corpus_path("iperf3", "iperf-3.6-tcp-4streams-P4-60s-mininet-duplicate-keys.json")
                          .read_text())
    flow = result.flows[0]
    assert result.tcp_mss == 1448 and result.remote_port == 5201
    assert flow.intervals[0].bits_per_second == pytest.approx(16979382602.686094)
    assert flow.intervals[0].retransmits == 0 and not flow.intervals[0].omitted
    assert sum(i.bytes for i in flow.intervals) == flow.sent.bytes


def test_old_udp_format_gives_loss_from_the_single_sum():
    result = parse_iperf3(corpus_path("iperf3", "iperf-3.1.3-udp-10000-blocks-1000M-0.69pct-loss-arch.json")
                          .read_text())
    assert result.flows[0].received.lost_percent == pytest.approx(0.690276)
    assert result.flows[0].received.jitter_ms == pytest.approx(0.092)


def test_the_issue_excerpt_alone_is_a_clear_parse_error():
    with pytest.raises(ParseError, match="iperf3 -J output.*no JSON object starting a line"):
        parse_iperf3(corpus_path("iperf3", EXCERPT).read_text())


GOOD = corpus_path("iperf3", "openwisp-iperf-3.9-tcp-1stream-loopback-client.json").read_text()


def test_trailing_error_line_after_the_document_is_kept():
    # issue #1143: the client prints a non-JSON error line after a complete document
    broken = "iperf3: error - unable to send control message: Broken pipe\n"
    result = parse_iperf3("warning: noise before\n" + GOOD + broken)
    assert result.trailing == "iperf3: error - unable to send control message: Broken pipe"
    assert result.flows and result.failure is None


def test_error_key_with_empty_end_is_a_failure_not_a_parse_error():
    # the server-side document of issue #1143
    text = ('{\n"start": {"connected": []},\n"intervals": [],\n"end": {\n},\n'
            '"error": "error - select failed: Bad file descriptor"\n}\n')
    result = parse_iperf3(text)
    assert result.flows == () and result.failure == "error - select failed: Bad file descriptor"


def test_document_cut_short_says_so():
    with pytest.raises(ParseError, match="cut short"):
        parse_iperf3(GOOD[: len(GOOD) // 2])


@pytest.mark.parametrize("text, problem", [
    ("", "no JSON object"),
    ("iperf3: error - unable to connect to server: Connection refused\n", "no JSON object"),
    ('{"foo": 1}\n', "not iperf3 -J output"),
    ('{"start": {}, "intervals": [], "end": {}}\n', "'end' is empty"),
    ('{"start": {}, "intervals": [{"sum": {"start": 0}}], "end": {"sum_sent": {}}}\n', "interval 0 lacks"),
    ('{"start": {}, "intervals": "x", "end": {}}\n', "'intervals' is not a list"),
])
def test_garbage_names_the_tool_and_the_problem(text, problem):
    assert "iperf3" in str(parse_error(parse_iperf3, text, problem))


def test_real_iperf3_bidir_on_loopback(tmp_path):
    """This machine's iperf3: --bidir gives two flows, the server's in the reverse one."""
    server = subprocess.Popen(["iperf3", "-s", "-1", "-p", "5391", "-B", "127.0.0.1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        output = ""
        for _ in range(20):  # until the server listens
            client = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", "5391", "-t", "1", "-J", "--bidir"],
                                    capture_output=True, text=True, timeout=30)
            output = client.stdout
            if '"error"' not in output:
                break
            time.sleep(0.2)
        result = parse_iperf3(output)
    finally:
        server.kill()
        server.wait()
    assert result.bidir and [flow.client_sends for flow in result.flows] == [True, False]
    assert all(flow.bits_per_second > 0 and flow.intervals for flow in result.flows)
    assert result.protocol == "TCP" and result.cpu is not None


def test_bidir_of_3_7_to_3_10_repeats_the_sum_keys_for_the_reverse_flow():
    """Synthetic, in the layout esnet/iperf#952 shows for iperf 3.7 --bidir -J (no `bidir` flag, no
    `*_bidir_reverse` keys: `sum`, `sum_sent`, `sum_received` twice); json.loads kept only the second, the
    server's flow, and called it the client's."""
    def total(bps: float, **extra: object) -> str:
        fields = {"start": 0, "end": 10, "seconds": 10, "bytes": int(bps * 10 / 8), "bits_per_second": bps, **extra}
        return "{" + ", ".join(f'"{k}": {json.dumps(v)}' for k, v in fields.items()) + "}"
    text = ('{"start": {"version": "iperf 3.7", "test_start": {"protocol": "TCP", "num_streams": 1, "reverse": 0}},'
            f' "intervals": [{{"streams": [], "sum": {total(9.4e8, sender=True)}, "sum": {total(3.1e8)}}}],'
            f' "end": {{"streams": [], "sum_sent": {total(9.4e8, retransmits=7)}, "sum_received": {total(9.3e8)},'
            f' "sum_sent": {total(3.2e8, retransmits=0)}, "sum_received": {total(3.1e8)}}}}}\n')
    result = parse_iperf3(text)
    assert result.bidir
    assert [(f.client_sends, f.bits_per_second, f.retransmits, len(f.intervals)) for f in result.flows] == [
        (True, 9.3e8, 7, 1), (False, 3.1e8, 0, 1)]
