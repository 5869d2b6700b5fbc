"""stress-ng metrics on every real output in the corpus: the old and new tables and the YAML."""

import pytest

from corpus import corpus_path
from qualify.errors import ParseError
from qualify.parsers.stress_ng import parse_stress_ng

EXPECTED = {  # file -> (stressor, bogo ops, bogo ops/s real time, bogo ops/s usr+sys)
    "hwbench-v0.15-qsort-metrics-brief-stderr.txt": ("qsort", 194, 97.00, 3.03),
    "hwbench-v0.17-qsort-128inst-metrics.txt": ("qsort", 15341, 1534.09, 11.99),
    "hwbench-v0.21.03-yaml-cpu-matrixprod-640-instances.yaml": ("cpu", 3257280, 217929.506101, 341.256408),
    "wca-v0.09.28-yaml-stdout-interleaved-with-metrics-brief-stderr.txt": ("stream", 2250, 374.121510, 54.611650),
    # --timestamp prefixes ("stress-ng: 10:48:33.34 metrc: ...") and a table whose header is not in the excerpt:
    # unread before (no metrics found)
    "issue580-v0.17-timestamped-metrc-prefix-flock-fork-pci-table-tail-excerpt.txt":
        ("flock", 293388215356, 1139818.82, 988387.69),
}
STRESSORS = {"issue580-v0.17-timestamped-metrc-prefix-flock-fork-pci-table-tail-excerpt.txt": ["flock", "fork", "pci"]}


def test_every_corpus_file_is_covered():
    assert {p.name for p in corpus_path("stress-ng").iterdir()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_metrics(name):
    stressor, ops, per_s, per_cpu_s = EXPECTED[name]
    found = parse_stress_ng(corpus_path("stress-ng", name).read_text(), name)
    assert [m.stressor for m in found] == STRESSORS.get(name, [stressor])
    metrics = found[0]
    assert (metrics.stressor, metrics.bogo_ops) == (stressor, ops)
    assert metrics.bogo_ops_per_s == pytest.approx(per_s)
    assert metrics.bogo_ops_per_cpu_s == pytest.approx(per_cpu_s)
    assert metrics.real_time_s > 0 and metrics.user_time_s > 0


def test_yaml_ignores_per_instance_entries():
    [metrics] = parse_stress_ng(corpus_path("stress-ng", "hwbench-v0.21.03-yaml-cpu-matrixprod-640-instances.yaml")
                                .read_text())
    assert metrics.real_time_s == pytest.approx(14.946485) and metrics.system_time_s == pytest.approx(0.376845)


def test_the_installed_stress_ng_output_parses():
    import subprocess

    proc = subprocess.run(["stress-ng", "--cpu", "1", "--cpu-method", "matrixprod", "--timeout", "1s",
                           "--metrics-brief"], capture_output=True, text=True, timeout=60)
    [metrics] = parse_stress_ng(proc.stdout + proc.stderr)
    assert metrics.stressor == "cpu" and metrics.bogo_ops > 0 and metrics.bogo_ops_per_s > 0


@pytest.mark.parametrize("text", ["", "stress-ng: info:  [1] successful run completed in 2.00s\n", "metrics:\n"])
def test_no_metrics_is_a_parse_error_naming_the_tool(text):
    with pytest.raises(ParseError, match="stress-ng"):
        parse_stress_ng(text)
