"""nvme-cli JSON: every corpus file (1.x keys, "critical_warrning", Kelvin), 2.x spellings, bad output."""

from __future__ import annotations

import json

import pytest
from corpus import corpus_path

from qualify.errors import ParseError
from qualify.parsers.nvme import NvmeController, NvmeSmartLog, parse_nvme_id_ctrl, parse_nvme_smart_log

EXPECTED = {
    "id-ctrl-samsung-pm983-mz1lb960-nvmecli1x.json": NvmeController(
        model="Unknown MZ1LB960HAJQ-000FB", serial="S43ANA0M405593", firmware="EDA76F2Q",
        warning_temperature_c=80, critical_temperature_c=92, capacity_bytes=900185481216),
    "smart-log-netdata-fixture.json": NvmeSmartLog(
        critical_warning=0, temperature_c=37, available_spare=100, available_spare_threshold=5, percentage_used=2,
        data_units_written=136157684, power_on_hours=4974, unsafe_shutdowns=39, media_errors=0,
        error_log_entries=110, warning_temperature_minutes=0, critical_temperature_minutes=0),
    "smart-log-ocp-autoval-nvmecli1x.json": NvmeSmartLog(
        critical_warning=0, temperature_c=33, available_spare=100, available_spare_threshold=10, percentage_used=0,
        data_units_written=47217872, power_on_hours=1244, unsafe_shutdowns=52, media_errors=0,
        error_log_entries=0, warning_temperature_minutes=0, critical_temperature_minutes=0),
}
FILES = sorted(path.name for path in corpus_path("nvme-cli").iterdir())


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name):
    parse = parse_nvme_id_ctrl if name.startswith("id-ctrl") else parse_nvme_smart_log
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
    with pytest.raises(ParseError, match="nvme smart-log") as err:
        parse_nvme_smart_log(text)
    assert problem in str(err.value)


def test_id_ctrl_without_identity():
    with pytest.raises(ParseError, match="nvme id-ctrl.*'mn'"):
        parse_nvme_id_ctrl('{"vid": 5197}')
