# qualify — see README.md. Every target installs what it needs first (idempotent, quick once done).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
QUALIFY := $(VENV)/bin/qualify
PYTHON ?= python3

# Tools the checks and the built-in lab run (installed when run as root; see `qualify prepare` for nodes).
DEBIAN_TOOLS := openssh-server openssh-client fio iperf3 stress-ng smartmontools nvme-cli ethtool \
                pciutils dmidecode iproute2 iputils-ping util-linux fdisk lvm2 nftables kmod procps \
                coreutils python3-minimal

RUN_OPTS = $(if $(PROFILE),--profile "$(PROFILE)") $(if $(CHECKS),--checks "$(CHECKS)") \
           $(if $(DURATION),--duration "$(DURATION)") $(if $(LABEL),--label "$(LABEL)")

.PHONY: help install tools test demo qualify soak nightly report export compare lab-up lab-down bench

help:
	@echo "make test | demo | qualify NODE=<name> [PROFILE= CHECKS= DURATION= LABEL=] | soak NODE= [DURATION=] | nightly NODE= [AT=] | report RUN=<dir> | export RUN=<dir> | compare RUNS=\"<dir> <dir>\" | lab-up | lab-down | bench"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

tools:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "not root: not installing Debian tools ($(DEBIAN_TOOLS)); what needs them will say so"; exit 0; fi; \
	missing=$$(for p in $(DEBIAN_TOOLS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: install tools
	$(PY) -m pytest

demo: install tools
	$(QUALIFY) lab up
	$(QUALIFY) run lab-pve2 --profile profiles/base/lab.yaml $(if $(CHECKS),--checks "$(CHECKS)")
	@echo "--- second-hand SSD acceptance: lab node lab-pve3 carries a worn-out drive, its rejection is expected:"
	-$(QUALIFY) run lab-pve3 --profile profiles/base/lab.yaml --checks ssd_health

qualify: install
	@[ -n "$(NODE)" ] || { echo "usage: make qualify NODE=<name> [PROFILE=<file>] [CHECKS=<expr>] [DURATION=12h] [LABEL=k=v,...]"; exit 2; }
	$(QUALIFY) run $(NODE) $(RUN_OPTS)

report: install
	@[ -n "$(RUN)" ] || { echo "usage: make report RUN=reports/<node>/<run-id>"; exit 2; }
	$(QUALIFY) report "$(RUN)"

soak: install
	@[ -n "$(NODE)" ] || { echo "usage: make soak NODE=<name> [DURATION=12h] [PROFILE=<file>] [LABEL=k=v,...]"; exit 2; }
	$(QUALIFY) soak $(NODE) $(if $(PROFILE),--profile "$(PROFILE)") $(if $(DURATION),--duration "$(DURATION)") $(if $(LABEL),--label "$(LABEL)")

nightly: install
	@[ -n "$(NODE)" ] || { echo "usage: make nightly NODE=<name...> [AT=22:00] [DURATION=8h]"; exit 2; }
	$(QUALIFY) nightly install $(NODE) $(if $(AT),--at $(AT)) $(if $(DURATION),--duration "$(DURATION)")

export: install
	@[ -n "$(RUN)" ] || { echo "usage: make export RUN=reports/<node>/<run-id> [OUTPUT=<file>.prom]"; exit 2; }
	$(QUALIFY) export prometheus "$(RUN)" $(if $(OUTPUT),--output "$(OUTPUT)")

compare: install
	@[ -n "$(RUNS)" ] || { echo "usage: make compare RUNS=\"reports/<node>/<run-id> reports/<node>/<run-id> ...\""; exit 2; }
	$(QUALIFY) compare $(RUNS)

lab-up: install tools
	$(QUALIFY) lab up

lab-down: install
	$(QUALIFY) lab down

bench: install tools
	$(QUALIFY) lab up
	$(PY) benchmarks/node_commands.py lab-pve2 30
	$(PY) benchmarks/telemetry_sampler.py
	$(PY) benchmarks/report_72h.py
	$(PY) benchmarks/fio_overhead.py 5 5
	$(PY) benchmarks/iperf_overhead.py lab-pve2 lab-pve1 5 3 2e9
	$(PY) benchmarks/freeze_detection.py lab-pve2 20 5
