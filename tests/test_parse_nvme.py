"""nvme-cli JSON: every corpus file (1.x keys, "critical_warrning", Kelvin), 2.x spellings, id-ns LBA formats,
nvme list of 1.x and 2.x, the self-test log, bad output."""

from __future__ import annotations

import json

import pytest

from corpus import corpus_path, parse_error
from qualify.errors import ParseError
from qualify.parsers.nvme import (
    LbaFormat,
    NvmeController,
    NvmeListEntry,
    NvmeSmartLog,
    parse_nvme_id_ctrl,
    parse_nvme_id_ns,
    parse_nvme_list,
    parse_nvme_self_test_log,
    parse_nvme_smart_log,
)

# netdata's smart-log fixture, and the same log with its numbers written as floats and as strings
NETDATA_SMART_LOG = NvmeSmartLog(
    critical_warning=0, temperature_c=37, available_spare=100, available_spare_threshold=5, percentage_used=2,
    data_units_written=136157684, power_on_hours=4974, unsafe_shutdowns=39, media_errors=0,
    error_log_entries=110, warning_temperature_minutes=0, critical_temperature_minutes=0)
EXPECTED = {
    "id-ctrl-samsung-pm983-mz1lb960-nvmecli1x.json": NvmeController(
        model="Unknown MZ1LB960HAJQ-000FB", serial="S43ANA0M405593", firmware="EDA76F2Q",
        warning_temperature_c=80, critical_temperature_c=92, capacity_bytes=900185481216, unallocated_bytes=0,
        volatile_write_cache=False, firmware_slots=3, firmware_slot1_read_only=True, self_test_supported=False,
        extended_test_minutes=None),
    "list-ocp-autoval-nvmecli1x.json": [NvmeListEntry(
        device_path="/dev/nvme0n1", serial="Sxxxxx", model="Unknown", firmware="X123", namespace=None,
        physical_size_bytes=512110190592, sector_size=4096)],
    "smart-log-netdata-fixture.json": NETDATA_SMART_LOG,
    "smart-log-ocp-autoval-nvmecli1x.json": NvmeSmartLog(
        critical_warning=0, temperature_c=33, available_spare=100, available_spare_threshold=10, percentage_used=0,
        data_units_written=47217872, power_on_hours=1244, unsafe_shutdowns=52, media_errors=0,
        error_log_entries=0, warning_temperature_minutes=0, critical_temperature_minutes=0),
    # the same log as numbers written as floats ("temperature": 310.0) and as strings ("310"), as nvme-cli builds do
    "smart-log-netdata-float-values.json": NETDATA_SMART_LOG,
    "smart-log-netdata-string-values.json": NETDATA_SMART_LOG,
    "list-netdata-empty-devices.json": [],
    # was: physical size -2147483648 (nvme-cli 2.x int32 overflow on an 8 TB drive)
    "list-intel-p4510-8tb-nvmecli2x-negative-int32-overflow.json": [NvmeListEntry(
        device_path="/dev/nvme0n1", serial="PHLJ13xxxxxxxxxxxxxxx", model="INTEL SSDPE2KX080T8", firmware="VDV10182",
        namespace=1, physical_size_bytes=None, sector_size=512)],
    # was: ParseError ("run nvme list -o json without -v"): the subsystem tree of `nvme list -v -o json`
    "list-v-subsystems-dell-boss-n1-skhynix-ps1030-nvmecli116.json": [
        NvmeListEntry(device_path="/dev/nvme0n1", serial="CN03YGWTFCP0051E00H5", model="Dell BOSS-N1",
                      firmware="11131069", namespace=1, physical_size_bytes=480036519936, sector_size=512),
        NvmeListEntry(device_path="/dev/nvme1n1", serial="BID8N0071I1908N3W", model="Dell NVMe ISE PS1030 MU U.2 6.4TB",
                      firmware="1.2.0", namespace=1, physical_size_bytes=6401252745216, sector_size=512),
        NvmeListEntry(device_path="/dev/nvme2n1", serial="BID8N0071I1908N3T", model="Dell NVMe ISE PS1030 MU U.2 6.4TB",
                      firmware="1.2.0", namespace=1, physical_size_bytes=6401252745216, sector_size=512)],
}
# excerpts the tests below wrap (see SOURCES.md)
EXCERPTS = {"list-device-vastdata-nvmecli2x-excerpt.json", "id-ns-lbafs-5-formats-512+8-in-use-nvmecli2x-excerpt.json",
            "self-test-log-entry-extended-passed-nvmecli-excerpt.json"}
FILES = sorted(path.name for path in corpus_path("nvme-cli").iterdir() if path.name not in EXCERPTS)
PARSERS = {"id-ctrl": parse_nvme_id_ctrl, "list": parse_nvme_list, "smart-log": parse_nvme_smart_log}


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    parse = next(parse for prefix, parse in PARSERS.items() if name.startswith(prefix))
    assert parse(corpus_path("nvme-cli", name).read_text()) == EXPECTED[name]


def test_nvme_cli_2_spellings_and_string_counters():
    log = json.loads(corpus_path("nvme-cli", "smart-log-netdata-fixture.json").read_text())
    log["percentage_used"] = log.pop("percent_used")
    log["data_units_written"] = str(log["data_units_written"])  # 128-bit counters as strings
    parsed = parse_nvme_smart_log(json.dumps(log))
    assert parsed.percentage_used == 2 and parsed.data_units_written == 136157684


@pytest.mark.parametrize("text, problem", [
    ("Error: No such file or directory", "not JSON"),
    ("[]", "JSON object"),
    ('{"temperature": 300}', "'critical_warning'"),
])
def test_bad_smart_log_names_the_tool(text, problem):
    assert "nvme smart-log" in str(parse_error(parse_nvme_smart_log, text, problem))


@pytest.mark.parametrize("warning, value", [
    ({"value": 4, "available_spare": 0, "temp_threshold": 0, "reliability_degraded": 1, "ro": 0, "vmbu_failed": 0,
      "pmr_ro": 0}, 4),
    ({"available_spare": 1, "temp_threshold": 0, "reliability_degraded": 1, "ro": 1, "vmbu_failed": 0, "pmr_ro": 0},
     0b1101),
])
def test_critical_warning_decoded_into_an_object(warning, value):
    # synthetic: `nvme smart-log -H -o json` writes critical_warning as an object of its bits (keys as in
    # nvme-cli's nvme-print-json.c json_smart_log); the rest of the log is the netdata fixture
    log = json.loads(corpus_path("nvme-cli", "smart-log-netdata-fixture.json").read_text())
    log["critical_warning"] = warning
    assert parse_nvme_smart_log(json.dumps(log)).critical_warning == value


def test_id_ctrl_without_identity():
    with pytest.raises(ParseError, match="nvme id-ctrl.*'mn'"):
        parse_nvme_id_ctrl('{"vid": 5197}')


def test_excerpts_are_all_used():
    assert EXCERPTS <= {path.name for path in corpus_path("nvme-cli").iterdir()}


def test_id_ns_format_in_use_and_best_of_a_drive_formatted_512_plus_8():
    # lbafs real (nvme-cli issue #2811); flbas 1 ("in use" in the same issue's text output) and nsze synthetic
    lbafs = json.loads(corpus_path("nvme-cli", "id-ns-lbafs-5-formats-512+8-in-use-nvmecli2x-excerpt.json").read_text())
    ns = parse_nvme_id_ns(json.dumps({"nsze": 1875385008, "ncap": 1875385008, "flbas": 1, "lbafs": lbafs}))
    assert ns.format_in_use == LbaFormat(index=1, data_bytes=512, metadata_bytes=8, relative_performance=3)
    assert ns.best_format == LbaFormat(index=2, data_bytes=4096, metadata_bytes=0, relative_performance=0)
    assert ns.size_bytes == 1875385008 * 512


def test_id_ns_flbas_high_bits_of_nvme_2():
    lbafs = [{"ms": 0, "ds": 9, "rp": 0}] * 17 + [{"ms": 0, "ds": 12, "rp": 0}]
    assert parse_nvme_id_ns(json.dumps({"nsze": 8, "flbas": 0x21, "lbafs": lbafs})).in_use == 17


def test_nvme_cli_2_list_entry():
    entry = json.loads(corpus_path("nvme-cli", "list-device-vastdata-nvmecli2x-excerpt.json").read_text())
    assert parse_nvme_list(json.dumps({"Devices": [entry]})) == [NvmeListEntry(
        device_path="/dev/nvme1n1", serial="VastData", model="VastData", firmware="24.05", namespace=2,
        physical_size_bytes=10737418240, sector_size=512)]


def test_self_test_log_entry_and_unused_entries():
    # the entry is real (nvme-cli issue #1758); the wrapper keys are those nvme-cli's json_self_test_log prints
    entry = json.loads(corpus_path("nvme-cli", "self-test-log-entry-extended-passed-nvmecli-excerpt.json").read_text())
    log = parse_nvme_self_test_log(json.dumps({
        "Current Device Self-Test Operation": 0, "Current Device Self-Test Completion": 0,
        "List of Valid Reports": [entry, {"Self test result": 15}]}))
    assert (log.running, log.completion_percent, len(log.results)) == (0, None, 1)
    assert (log.results[0].code, log.results[0].result, log.results[0].power_on_hours) == (2, 0, 285)


def test_self_test_running_with_its_completion():
    log = parse_nvme_self_test_log(
        '{"Current Device Self-Test Operation": 1, "Current Device Self-Test Completion": 40}')
    assert (log.running, log.completion_percent, log.results) == (1, 40, ())


@pytest.mark.parametrize("parse, text, problem", [
    (parse_nvme_id_ns, '{"nsze": 1}', "'nsze'/'flbas'/'lbafs'"),
    (parse_nvme_id_ns, '{"nsze": 1, "flbas": 3, "lbafs": [{"ds": 9}]}', "LBA format 3"),
    (parse_nvme_list, '{"Devices": 3}', "'Devices'"),
    (parse_nvme_self_test_log, '{}', "Current Device Self-Test Operation"),
])
def test_bad_identity_and_log_outputs(parse, text, problem):
    with pytest.raises(ParseError, match=problem):
        parse(text)
