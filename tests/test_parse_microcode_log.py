"""Microcode lines of kernel logs: every corpus log, and each kernel generation's wording."""

from __future__ import annotations

import pytest

from corpus import corpus_path
from qualify.parsers.microcode_log import MicrocodeLog, parse_microcode_log

HASWELL_CPUS = {cpu: 0x12 for cpu in range(8)}

# Every dmesg-*/syslog-* file of corpus/microcode; a new file without an entry fails the suite.
EXPECTED = {
    "dmesg-alderlake-i7-1260p-galaxybook2pro-updated-early-0x42c.txt": MicrocodeLog(
        early_updated=True, early_from=None, early_to=0x42C, current_revision=None, late_updates=[],
        cpu_revisions={}, cpu_signatures={},
        lines=["[    0.000000] microcode: microcode updated early to revision 0x42c, date = 2023-04-18"]),
    "dmesg-amd-current-revision-updated-early-from.txt": MicrocodeLog(
        early_updated=True, early_from=0x0A50000D, early_to=0x0A500011, current_revision=0x0A500011,
        late_updates=[], cpu_revisions={}, cpu_signatures={},
        lines=["[    1.932827] microcode: Current revision: 0x0a500011",
               "[    1.932829] microcode: Updated early from: 0x0a50000d"]),
    "dmesg-haswell-old-format-cpu-sig-pf-revision.txt": MicrocodeLog(
        early_updated=True, early_from=None, early_to=0x12, current_revision=None, late_updates=[],
        cpu_revisions=HASWELL_CPUS, cpu_signatures={cpu: (0x40661, 0x20) for cpu in HASWELL_CPUS},
        lines=corpus_path("microcode", "dmesg-haswell-old-format-cpu-sig-pf-revision.txt").read_text().splitlines()),
    "dmesg-tigerlake-framework-fedora38-updated-early-0xa4.txt": MicrocodeLog(
        early_updated=True, early_from=None, early_to=0xA4, current_revision=None, late_updates=[],
        cpu_revisions={}, cpu_signatures={},
        lines=["[    0.000000] microcode: microcode updated early to revision 0xa4, date = 2022-02-01"]),
    "syslog-intel-current-revision-updated-early-from.txt": MicrocodeLog(
        early_updated=True, early_from=0xE, early_to=0x1A, current_revision=0x1A, late_updates=[],
        cpu_revisions={}, cpu_signatures={},
        lines=corpus_path("microcode", "syslog-intel-current-revision-updated-early-from.txt")
        .read_text().splitlines()),
}
LOG_FILES = sorted(path.name for pattern in ("dmesg-*", "syslog-*")
                   for path in corpus_path("microcode").glob(pattern))


def test_every_corpus_log_has_an_expectation():
    assert set(LOG_FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", LOG_FILES)
def test_corpus_log(name):
    assert parse_microcode_log(corpus_path("microcode", name).read_text()) == EXPECTED[name]


def test_kernel_6_4_arrow_wording():
    log = parse_microcode_log("[    0.000000] microcode: updated early: 0x42a -> 0x42c, date = 2023-04-18\n")
    assert (log.early_updated, log.early_from, log.early_to) == (True, 0x42A, 0x42C)


def test_current_revision_without_early_line_means_no_early_update():
    log = parse_microcode_log("[    0.493790] microcode: Current revision: 0x00000435\n"
                              "[    0.493800] x86/cpu: SGX disabled by BIOS.\n")
    assert (log.early_updated, log.early_from, log.early_to) == (False, None, None)
    assert log.current_revision == 0x435


def test_journalctl_and_dmesg_t_prefixes():
    text = ("Feb 05 10:00:01 pve2 kernel: microcode: Current revision: 0x00000435\n"
            "[Mon Feb  5 10:00:01 2024] microcode: Updated early from: 0x00000430\n")
    log = parse_microcode_log(text)
    assert (log.early_from, log.early_to, log.current_revision) == (0x430, 0x435, 0x435)
    assert log.lines == text.splitlines()


def test_journalctl_short_monotonic_prefix():
    log = parse_microcode_log("[    0.493790] pve2 kernel: microcode: microcode updated early to revision 0x4121, "
                              "date = 2023-12-07\n")
    assert log.early_to == 0x4121


def test_old_amd_patch_level_wordings():
    text = ("[    0.000000] microcode: microcode updated early to new patch_level=0x0800820d\n"
            "[    1.046011] microcode: CPU0: patch_level=0x0800820d\n"
            "[    1.046015] microcode: CPU1: patch_level=0x0800820d\n"
            "[    1.046133] microcode: CPU2: update failed for patch_level=0x08001250\n"
            "[    1.046300] microcode: Microcode Update Driver: v2.2.\n")
    log = parse_microcode_log(text)
    assert (log.early_updated, log.early_from, log.early_to) == (True, None, 0x0800820D)
    assert log.cpu_revisions == {0: 0x0800820D, 1: 0x0800820D}
    assert log.cpu_signatures == {}
    assert len(log.lines) == 3


def test_kernel_3_early_wording_without_prefix():
    log = parse_microcode_log("[    0.000000] CPU0 microcode updated early to revision 0x1c, date = 2014-05-29\n")
    assert (log.early_updated, log.early_to) == (True, 0x1C)


def test_boot_cpu_signature_line_of_5_x_kernels_is_the_current_revision():
    log = parse_microcode_log("[    0.000000] microcode: microcode updated early to revision 0xf0, date = 2021-11-12\n"
                              "[    1.206154] microcode: sig=0x906ea, pf=0x2, revision=0xf0\n")
    assert (log.early_to, log.current_revision, log.cpu_revisions) == (0xF0, 0xF0, {})


@pytest.mark.parametrize("text, revisions", [
    ("[  120.1] microcode: updated to revision 0xde, date = 2020-05-24\n", [0xDE]),
    ("[  120.1] x86/microcode: Updated to revision 0xde, date = 2020-05-24\n", [0xDE]),
    ("[  120.1] microcode: CPU0 updated to revision 0x28, date = 2012-04-24\n"
     "[  120.2] microcode: CPU1 updated to revision 0x28, date = 2012-04-24\n", [0x28]),
    ("[  120.1] microcode: CPU0: new patch_level=0x0a20102d\n", [0x0A20102D]),
    ("[  120.1] microcode: Reload completed, microcode revision: 0xf0\n", [0xF0]),
    ("[  120.1] microcode: Reload completed, microcode revision: 0xea -> 0xf0\n", [0xF0]),
    ("[   50.958919] microcode: load: updated on 6 primary CPUs with 0 siblings\n"
     "[   50.965856] microcode: revision: 0xbe -> 0xf0\n", [0xF0]),
    ("[  120.1] microcode: Reload failed, current microcode revision: 0xbe\n", []),
])
def test_late_loading(text, revisions):
    log = parse_microcode_log(text)
    assert log.late_updates == revisions
    assert not log.early_updated


def test_log_without_microcode_lines():
    text = ("[    0.000000] Linux version 6.8.12-4-pve (build@proxmox)\n"
            "[    0.152000] Speculative Return Stack Overflow: IBPB-extending microcode not applied!\n"
            "[    0.152001] Speculative Return Stack Overflow: WARNING: See https://kernel.org/doc/html/latest/"
            "admin-guide/hw-vuln/srso.html for mitigation options.\n"
            "[    2.100000] mce: [Hardware Error]: PROCESSOR 0:906ea TIME 1700000000 SOCKET 0 APIC 0 microcode f0\n")
    assert parse_microcode_log(text) == MicrocodeLog(
        early_updated=False, early_from=None, early_to=None, current_revision=None, late_updates=[],
        cpu_revisions={}, cpu_signatures={}, lines=[])
    assert parse_microcode_log("") == parse_microcode_log(text)
