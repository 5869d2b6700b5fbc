# qualify — see README.md. Every target installs what it needs first (idempotent, quick once done).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
QUALIFY := $(VENV)/bin/qualify
PYTHON ?= python3

# Tools the checks and the built-in lab run (installed when run as root; see `qualify prepare` for nodes).
DEBIAN_TOOLS := openssh-server openssh-client fio iperf3 stress-ng smartmontools nvme-cli ethtool \
                pciutils dmidecode iproute2 iputils-ping util-linux fdisk lvm2 nftables kmod procps \
                coreutils python3-minimal perl chromium

# What a user passes (NODE= PROFILE= CHECKS= DURATION= LABEL= AT= RUN= RUNS= OUTPUT=) never becomes shell
# text. Each is taken unexpanded ($(value): a '$' stays a '$') into an exported variable QUALIFY_ARG_<name>;
# make hands it to the recipe's shell in the environment, and recipes name only "$$QUALIFY_ARG_<name>" in
# double quotes, which the shell replaces by the value without parsing it again (no ; ` $( | & or word
# splitting). Options are passed as --option=value and node/run arguments after --, so a value that
# begins with '-' is not read as an option either. qualify itself then checks what each value may be.
# make exports command-line variables itself, expanding them on the way ($(shell ...) in a value would
# run): only the QUALIFY_ARG_ copies go to the environment. In the $(eval) below, `$$(value X)` reaches
# make's parser as `$(value X)`, which `:=` takes once, unexpanded, as the original lines did.
# FORCE and DIFF are only tested in make ($(if)), never exported.
QUALIFY_ARGS := NODE PROFILE CHECKS DURATION LABEL AT RUN RUNS OUTPUT PEERS NODES GOLDEN
unexport $(QUALIFY_ARGS) FORCE DIFF
$(foreach arg,$(QUALIFY_ARGS),$(eval export QUALIFY_ARG_$(arg) := $$(value $(arg))))
QUALIFY_ARG_FORCE := $(value FORCE)
QUALIFY_ARG_DIFF := $(value DIFF)

# $(if) tests the value in make; only the constant text after the comma reaches the shell.
PROFILE_OPT = $(if $(QUALIFY_ARG_PROFILE),"--profile=$$QUALIFY_ARG_PROFILE")
CHECKS_OPT = $(if $(QUALIFY_ARG_CHECKS),"--checks=$$QUALIFY_ARG_CHECKS")
DURATION_OPT = $(if $(QUALIFY_ARG_DURATION),"--duration=$$QUALIFY_ARG_DURATION")
LABEL_OPT = $(if $(QUALIFY_ARG_LABEL),"--label=$$QUALIFY_ARG_LABEL")
RUN_OPTS = $(PROFILE_OPT) $(CHECKS_OPT) $(DURATION_OPT) $(LABEL_OPT)

.PHONY: help install tools lint test demo profile qualify soak nightly report export compare cluster lab-up lab-down screenshots bench

help:
	@echo "make test | lint | demo | profile NODE=<name> [PEERS=a,b FORCE=1 DIFF=1] | qualify NODE=<name> [PROFILE= CHECKS= DURATION= LABEL=] | soak NODE= [DURATION=] | nightly NODE= [AT=] | report RUN=<dir> | export RUN=<dir> | compare RUNS=\"<dir> <dir>\" | cluster NODES=\"a b c\" | lab-up | lab-down | screenshots | bench"

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

# ruff over the code, tests and benchmarks; mypy over qualify/ ([tool.mypy] in pyproject.toml)
lint: install
	$(PY) -m ruff check qualify tests benchmarks
	$(PY) -m mypy

test: install tools lint
	$(PY) -m pytest

# The real-node path on the lab: a profile written from the live node, its drive allowed to be
# destroyed (the lab's own loop file; on a real node this is a step you take by hand), then the run.
DEMO_PROFILE := reports/demo/lab-pve2.yaml
demo: install tools
	$(QUALIFY) lab up
	@mkdir -p reports/demo && echo "extends: base/lab.yaml" > $(DEMO_PROFILE)
	$(QUALIFY) profile init lab-pve2 --peers lab-pve1,lab-pve3 --profile $(DEMO_PROFILE) --output $(DEMO_PROFILE) --force
	sed -i 's/allow_destroy: false/allow_destroy: true/' $(DEMO_PROFILE)
	$(QUALIFY) run lab-pve2 --profile $(DEMO_PROFILE) $(CHECKS_OPT)
	@echo "--- second-hand SSD acceptance: lab node lab-pve3 carries a worn-out drive, its rejection is expected:"
	-$(QUALIFY) run lab-pve3 --profile profiles/base/lab.yaml --checks ssd_health

profile: install
	@[ -n "$$QUALIFY_ARG_NODE" ] || { echo "usage: make profile NODE=<name> [PEERS=a,b] [OUTPUT=<file>] [FORCE=1] [DIFF=1]"; exit 2; }
	$(QUALIFY) profile $(PROFILE_OPT) $(if $(QUALIFY_ARG_PEERS),"--peers=$$QUALIFY_ARG_PEERS") $(if $(QUALIFY_ARG_OUTPUT),"--output=$$QUALIFY_ARG_OUTPUT") $(if $(QUALIFY_ARG_FORCE),--force) $(if $(QUALIFY_ARG_DIFF),--diff) -- init "$$QUALIFY_ARG_NODE"

qualify: install
	@[ -n "$$QUALIFY_ARG_NODE" ] || { echo "usage: make qualify NODE=<name> [PROFILE=<file>] [CHECKS=<expr>] [DURATION=12h] [LABEL=k=v,...]"; exit 2; }
	$(QUALIFY) run $(RUN_OPTS) -- "$$QUALIFY_ARG_NODE"

report: install
	@[ -n "$$QUALIFY_ARG_RUN" ] || { echo "usage: make report RUN=reports/<node>/<run-id>"; exit 2; }
	$(QUALIFY) report -- "$$QUALIFY_ARG_RUN"

soak: install
	@[ -n "$$QUALIFY_ARG_NODE" ] || { echo "usage: make soak NODE=<name> [DURATION=12h] [PROFILE=<file>] [LABEL=k=v,...]"; exit 2; }
	$(QUALIFY) soak $(PROFILE_OPT) $(DURATION_OPT) $(LABEL_OPT) -- "$$QUALIFY_ARG_NODE"

nightly: install
	@[ -n "$$QUALIFY_ARG_NODE" ] || { echo "usage: make nightly NODE=<name...> [AT=22:00] [DURATION=8h]"; exit 2; }
	$(QUALIFY) nightly install $(if $(QUALIFY_ARG_AT),"--at=$$QUALIFY_ARG_AT") $(DURATION_OPT) -- "$$QUALIFY_ARG_NODE"

export: install
	@[ -n "$$QUALIFY_ARG_RUN" ] || { echo "usage: make export RUN=reports/<node>/<run-id> [OUTPUT=<file>.prom]"; exit 2; }
	$(QUALIFY) export prometheus $(if $(QUALIFY_ARG_OUTPUT),"--output=$$QUALIFY_ARG_OUTPUT") -- "$$QUALIFY_ARG_RUN"

compare: install
	@[ -n "$$QUALIFY_ARG_RUNS" ] || { echo "usage: make compare RUNS=\"reports/<node>/<run-id> reports/<node>/<run-id> ...\""; exit 2; }
	$(QUALIFY) compare -- "$$QUALIFY_ARG_RUNS"

cluster: install
	@[ -n "$$QUALIFY_ARG_NODES" ] || { echo "usage: make cluster NODES=\"pve1 pve2 pve3\" [GOLDEN=pve1]"; exit 2; }
	$(QUALIFY) cluster $(if $(QUALIFY_ARG_GOLDEN),"--golden=$$QUALIFY_ARG_GOLDEN") -- "$$QUALIFY_ARG_NODES"

lab-up: install tools
	$(QUALIFY) lab up

lab-down: install
	$(QUALIFY) lab down

screenshots: install tools
	$(PY) -m qualify.report.screenshots

bench: install tools
	$(QUALIFY) lab up
	$(PY) benchmarks/node_commands.py lab-pve2 30
	$(PY) benchmarks/telemetry_sampler.py
	$(PY) benchmarks/report_72h.py
	$(PY) benchmarks/fio_overhead.py 5 5
	$(PY) benchmarks/integrity_write_verify.py 1024 3
	$(PY) benchmarks/iperf_overhead.py lab-pve2 lab-pve1 5 3 2e9
	$(PY) benchmarks/freeze_detection.py lab-pve2 20 5
	$(PY) benchmarks/node_side_cpu.py lab-pve2 120
	$(PY) benchmarks/mesh_wall.py 3 3
	$(PY) benchmarks/mesh_wall.py 4 3
