# oceanid.fleet: the two commands a newcomer needs, and the steps they are made of.
#   make site   the main job: bring up the lab fleet and converge playbooks/site.yml on it
#   make test   every test: lint, sanity, unit, integration, and every molecule scenario on lab hosts
# Both install what they need (apt packages as root, Python tools into .venv) and are safe to re-run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
# The Python .venv is built on. Empty: tools/venv-python picks Debian's python3 (an optimized build) when it is
# 3.11+ with venv, else python3 from PATH. make PYTHON=/path/to/python3 chooses another.
PYTHON ?=
# The interpreter behind a python command: the real file, not a pyenv shim or a venv's link.
PRINT_BASE_PYTHON = -c 'import os, sys; print(os.path.realpath(sys._base_executable))'
# Tools from .venv first; scenarios live in molecule/ (molecule would look in extensions/ for a collection).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MOLECULE_GLOB := molecule/*/molecule.yml
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0

# What the lab and the tests need from Debian: nspawn, debootstrap, iptables, ssh, FUSE; PostgreSQL and
# psycopg2 for the labelfish_db tests (a throw-away server; the community.postgresql modules run on /usr/bin/python3);
# containerd, whose `containerd config dump` (a real containerd parser) loads the nvidia_runtime role's template.
APT_PACKAGES := systemd-container debootstrap iptables iproute2 openssh-client fuse3 git python3-venv \
                postgresql python3-psycopg2 containerd apt-cacher-ng

INVENTORY ?= inventories/lab
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help deps venv lab-up lab-down lab-status site lint sanity unit integration molecule test clean \
        test-lane-molecule test-lane-checks

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

deps:  ## Install the Debian packages the lab needs (root; no-op when present)
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  [ "$$(id -u)" = 0 ] || { echo "deps: need root to install:$$missing" >&2; exit 1; }; \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed  ## Create .venv with the pinned tools (re-done when requirements-dev.txt changes)
	@tools/link-collection >/dev/null

$(VENV)/.installed: requirements-dev.txt tools/venv-python
	@python="$$($(if $(PYTHON),$(PYTHON) $(PRINT_BASE_PYTHON),tools/venv-python))"; \
	if [ -e $(VENV)/pyvenv.cfg ] && [ "$$($(VENV)/bin/python $(PRINT_BASE_PYTHON))" != "$$python" ]; then \
	  echo "venv: $(VENV) was built on another Python; building it again on $$python"; rm -rf $(VENV); fi; \
	echo "venv: $$python -m venv $(VENV)"; "$$python" -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

lab-up: deps venv  ## Boot every host of INVENTORY (default inventories/lab) as a lab host (keeps running ones)
	$(VENV)/bin/python -m lab up -i $(INVENTORY)

lab-down:  ## Stop and remove every lab host and the lab's network
	$(or $(PYTHON),python3) -m lab down

lab-status:  ## Show lab hosts and the egress packets dropped
	$(or $(PYTHON),python3) -m lab status

site: lab-up  ## The main job: lab up, converge playbooks/site.yml, then the smoke report and what serves where
	ansible-playbook -i $(INVENTORY) playbooks/site.yml
	ansible-playbook -i $(INVENTORY) playbooks/smoke.yml

lint: venv  ## ruff (Python lint, format check), role contracts (defaults = specs = READMEs), ansible-lint
	ruff check .
	ruff format --check .
	tools/check-role-contracts
	ansible-lint

sanity: venv  ## ansible-test sanity on a copy of the collection, offline
	tools/sanity

unit: venv  ## pytest tests/unit: plugins, roles (rendered units, manifests), triton-models, the lab, tools/
	pytest tests/unit

integration: deps venv  ## pytest tests/integration: lab lifecycle, S3 on SeaweedFS, a real Triton and its models, EC2 inventory (moto)
	pytest tests/integration

molecule: deps venv  ## Every molecule scenario on lab hosts (prepare, converge, idempotence, check, verify)
	@tools/molecule-scenarios $(SCENARIOS)

# `make test` runs two lanes at once: the molecule scenarios keep about one of the two cores busy (the rest of their
# time is lab hosts installing packages and services starting), so lint, unit and integration tests run beside
# them (sanity follows the scenarios). The scenarios' output goes to tests/output/molecule/<scenario>.log with one line each here (and the
# log's tail when one fails). TEST_LANES=1 runs everything one after the other, all output here. Times: README.
TEST_LANES ?= 2

# When the checks lane fails, the molecule lane stops before its next scenario (make would wait for the whole lane).
LANE_FAILED := tests/output/.checks-lane-failed

test: deps venv  ## Every test; what CI runs
ifeq ($(TEST_LANES),1)
	@$(MAKE) --no-print-directory lint sanity unit integration molecule
else
	@rm -f $(LANE_FAILED)
	@$(MAKE) --no-print-directory -j2 test-lane-molecule test-lane-checks
endif
	@echo "make test: all passed"

# Sanity runs after the scenarios, in their lane: the checks lane (unit and integration tests) is the longer one.
test-lane-molecule:
	@MOLECULE_LOG_DIR="$(CURDIR)/tests/output/molecule" MOLECULE_STOP_FILE="$(CURDIR)/$(LANE_FAILED)" \
	  tools/molecule-scenarios $(SCENARIOS)
	@$(MAKE) --no-print-directory sanity

test-lane-checks:
	@$(MAKE) --no-print-directory -j1 lint unit integration \
	  || { mkdir -p $(dir $(LANE_FAILED)) && touch $(LANE_FAILED); exit 1; }

clean: lab-down  ## Remove the lab hosts, .venv and caches (the base image stays in /var/cache/oceanid-lab)
	rm -rf $(VENV) .cache tests/output
