# The two commands: `make run` (train the main test case here) and `make test` (everything).
# `make help` lists the rest. Each target sets up what it needs on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
NOX := $(VENV)/bin/nox
# pip >= 25.1 reads pyproject dependency groups (--group); it is the only tool that sees the
# local torch wheel, so the venv is built with pip, torch first.
PIP_VERSION := 25.3
MAIN_CASE := 3.test_cases/pytorch/FSDP
RUN_DIR ?= $(CURDIR)/runs/fsdp-tiny
NODES ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup lock system-deps run test lint security docs bench gpu-check sync sync-check cluster-up cluster-down emulator-up emulator-down clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

setup: $(VENV)/.setup-done ## create .venv: torch==2.13.0 first (CPU wheel here), then the train/infra/dev groups

# locks/venv.txt (make lock) holds every version of the two groups and all they pull in: pip takes those.
$(VENV)/.setup-done: pyproject.toml locks/venv.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python locks/lock.py --check venv
	$(VENV)/bin/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(VENV)/bin/pip install --quiet -c locks/venv.txt --group torch
	$(VENV)/bin/pip install --quiet -c locks/venv.txt --group dev
	touch $@

lock: ## rewrite locks/*.txt, every install set's versions, after a pin changed (needs the package index; ARGS=--upgrade)
	test -x $(VENV)/bin/uv || { test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV); $(VENV)/bin/pip install --quiet -c locks/venv.txt uv; }
	$(VENV)/bin/python locks/lock.py $(ARGS)

system-deps: ## Debian packages for the test bed (Slurm, munge, Prometheus, envsubst); needs root
	testbed/system-deps.sh

run: setup ## train the FSDP tiny Llama here with torchrun (2 CPU ranks), then say what is next
	$(MAKE) --no-print-directory -C $(MAIN_CASE) local VENV=$(CURDIR)/$(VENV) RUN_DIR=$(RUN_DIR) PRESET=tiny ARGS="$(ARGS)"
	@echo
	@echo "Run folder: $(RUN_DIR) (config.json, metrics.jsonl, result.json, checkpoints/)"
	@echo "Resume:     make run ARGS='--max-steps 120'  (continues from the newest complete checkpoint)"
	@echo "Slurm:      cd $(MAIN_CASE) && sbatch slurm/llama3_1_8b.sbatch   (here: make cluster-up, then sbatch slurm/tiny.sbatch)"
	@echo "EKS:        cd $(MAIN_CASE) && make k8s PRESET=llama3_1_8b IMAGE=<registry>/fsdp:<tag> && kubectl apply -f build/llama3_1_8b.yaml"

# Two nox runs side by side (noxfile.py says which session goes where): `-t main` prints as it goes,
# `-t side` into .testbed/nox-side.log, printed when both have ended; the exit status is the worse one.
test: setup system-deps ## everything: lint, security scan, unit + integration tests (local Slurm), each framework case's session, docs
	@mkdir -p .testbed
	@echo "nox -t side (lint, scans, docs, the other framework cases) runs beside it: .testbed/nox-side.log"
	@$(NOX) -t side > .testbed/nox-side.log 2>&1 & side=$$!; \
	$(NOX) -t main; main=$$?; \
	wait $$side; side=$$?; \
	echo; echo "----- nox -t side (.testbed/nox-side.log)"; cat .testbed/nox-side.log; \
	echo "----- nox -t main: exit $$main; nox -t side: exit $$side"; \
	test $$main = 0 && test $$side = 0

lint: setup ## ruff, shellcheck, hadolint, yamllint, cfn-lint, then checkov; prints the figures README.md records
	$(NOX) -s lint security

security: setup ## checkov alone (offline)
	$(NOX) -s security

docs: setup ## build the site strictly into site/
	$(NOX) -s docs

bench: setup ## benchmarks -> bench-results/*.json (with machine info)
	$(NOX) -s bench

sync: setup ## write every copied or generated file from its one source (common/, instance-types.yaml, templates)
	$(VENV)/bin/python common/sync.py

sync-check: setup ## name every copied or generated file that differs from its source (the tests run this)
	$(VENV)/bin/python common/sync.py --check

gpu-check: setup ## on a GPU machine: every gpu-marked test + FSDP llama3_2_1b bf16/compile on one GPU (< 8 min) -> bench-results/
	$(VENV)/bin/python benchmarks/gpu_check.py

cluster-up: setup system-deps ## start a local Slurm cluster (NODES=2) and print the SLURM_CONF to export
	$(VENV)/bin/python -m testbed.slurm up --nodes $(NODES)

cluster-down: ## stop the local Slurm cluster started by cluster-up
	$(VENV)/bin/python -m testbed.slurm down

emulator-up: setup ## start the local AWS emulator (moto server) and print the environment to export
	$(VENV)/bin/python -m testbed.aws up

emulator-down: ## stop the local AWS emulator started by emulator-up
	$(VENV)/bin/python -m testbed.aws down

clean: ## remove the venv, nox envs, site, runs and benchmark results
	-test -x $(VENV)/bin/python && $(VENV)/bin/python -m testbed.slurm down 2>/dev/null
	-test -x $(VENV)/bin/python && $(VENV)/bin/python -m testbed.aws down 2>/dev/null
	rm -rf $(VENV) .nox site runs bench-results .pytest_cache .ruff_cache .testbed
