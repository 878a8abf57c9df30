# The quick start is two commands: `make up` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible/ansible.cfg
export VAGRANT_DEFAULT_PROVIDER ?= docker

# The local test hosts: the hosts of ansible/inventories/$(TOPOLOGY), which the
# Vagrantfile boots (local: the single local host; debian13: the same on Debian 13).
export TOPOLOGY ?= local
# A local inventory named by INVENTORY (ansible/inventories/cluster) is its
# topology: its vault opens with its committed password, as with TOPOLOGY=cluster.
ifneq ($(wildcard $(INVENTORY)/vault-password-INSECURE-local-only.txt),)
TOPOLOGY := $(notdir $(patsubst %/,%,$(INVENTORY)))
endif
# What `make test` deploys and verifies, one after the other (or only the TOPOLOGY
# given): the local host on Debian 12, the five-host cluster, then the local host on
# Debian 13 (each one's hosts are deployed while the one before finishes: scripts/e2e.sh).
# An entry TOPOLOGY:read-only leaves out its destructive checks: Debian 13 gets a fresh
# deploy, the read-only checks, the second deploy and the check-mode run (what differs
# between releases); its destructive checks run the same code as Debian 12's and would
# add 17 minutes (make e2e E2E_TOPOLOGIES=debian13 runs them).
E2E_TOPOLOGIES := $(if $(filter file,$(origin TOPOLOGY)),local cluster debian13:read-only,$(TOPOLOGY))
LOCAL_INVENTORY := ansible/inventories/$(TOPOLOGY)
INVENTORY ?= $(LOCAL_INVENTORY)
# A local inventory's vault opens with its committed (insecure, local-only)
# password; any other inventory's vault password is asked for, or read from the
# file that ANSIBLE_VAULT_PASSWORD_FILE names.
ifeq ($(patsubst %/,%,$(INVENTORY)),$(LOCAL_INVENTORY))
export ANSIBLE_VAULT_PASSWORD_FILE := $(CURDIR)/$(LOCAL_INVENTORY)/vault-password-INSECURE-local-only.txt
LOCAL_CHECK := scripts/local-host.sh check
# A local inventory of several hosts (the cluster) is verified as a real cluster
# would be: the read-only checks with the [server] skips (its fault tests are
# tests/cluster's, in make test).
VERIFY_ARGS := $(if $(filter-out 1,$(shell grep -sc 'ansible_host:' $(LOCAL_INVENTORY)/hosts.yml)),-m "not destructive" --skips=server)
else
LOCAL_CHECK := true
VAULT_ARGS := $(if $(ANSIBLE_VAULT_PASSWORD_FILE),,--ask-vault-pass)
# A real server gets the checks that change nothing; DESTRUCTIVE=1 adds those that
# stop PostgreSQL, kill instances, reboot and flood (the local host always gets them).
# Its skips must be on the [server] allow-list of tests/skips.toml (a local host's: [local]).
VERIFY_ARGS := $(if $(DESTRUCTIVE),,-m "not destructive") --skips=server
endif
PLAYBOOK = ansible-playbook -i $(INVENTORY) $(VAULT_ARGS)

.PHONY: help venv host-deps unit-deps image up down deploy release rollback releases backup backups restore switchover cluster-status upgrade-postgresql verify lint role-docs unit e2e test test-full bench

help:
	@echo "make up       bring up the local host and deploy to it"
	@echo "make test     everything CI runs: lint, the app's tests, fresh Debian 12 and 13 hosts and a five-host cluster deployed and verified"
	@echo "make test-full make test, plus Debian 13's destructive checks and make verify on every cluster host (about 95 minutes)"
	@echo "make down     destroy the local host and its network"
	@echo "make deploy   deploy to INVENTORY (default: the local host)"
	@echo "make release  only a code change: build, ship, migrate, gate on a canary, roll the instances"
	@echo "make rollback back to the previous good release (TO=ID: to that one), gated like a deploy"
	@echo "make releases the releases on each app host: good, bad (and why), current"
	@echo "make backup   a backup now (TYPE=full|diff|incr, default incr)"
	@echo "make backups  the backups: label, type, times, size, WAL range; the recovery window; the last restore test"
	@echo "make restore  the database back to the latest state, TARGET_TIME='YYYY-MM-DD HH:MM:SS+00' or TARGET=LABEL"
	@echo "make switchover  a planned change of the PostgreSQL leader (Patroni), to the synchronous replica or TO=NAME"
	@echo "make cluster-status  the PostgreSQL cluster as Patroni sees it: members, roles, lag"
	@echo "make upgrade-postgresql  after Debian 12 -> 13: move the data to the new PostgreSQL (pg_upgradecluster), then deploy"
	@echo "make verify   run the host checks (testinfra) against INVENTORY (DESTRUCTIVE=1: also the fault tests)"
	@echo "make lint     ruff, mypy, yamllint, ansible-lint (production profile), role READMEs vs argument specs"
	@echo "make role-docs  rewrite the Role Variables of each role's README from its argument specs"
	@echo "make unit     the app's tests against a throwaway PostgreSQL"
	@echo "make bench    load and deploy-speed benchmark on new local hosts (about 15 min; replaces the local host)"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "==> Python tools into $(VENV)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

host-deps:
	scripts/install-host-deps.sh

unit-deps:
	scripts/install-host-deps.sh unit

# The host images of Debian 12 and 13 (each built once, from Debian's packages).
image: host-deps
	image/build.sh bookworm
	image/build.sh trixie

up: host-deps venv image
	scripts/local-host.sh up
	@key=$$(scripts/local-host.sh api-key); \
	scripts/local-host.sh hosts web | while read -r name address; do \
	  echo; \
	  echo "$$name is up: https://$$address/ (self-signed certificate)"; \
	  echo "  its API key (writes need it; the page asks for it): $$key"; \
	  echo "  curl http://$$address/health/ready"; \
	  echo "  curl -k -X POST -H 'Authorization: Bearer $$key' -H 'Content-Type: application/json' -d '{\"message\": \"hello\"}' https://$$address/messages"; \
	done

down: venv
	scripts/local-host.sh down

deploy: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/deploy.yml

release: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/release.yml

rollback: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/rollback.yml $(if $(TO),-e app_rollback_to=$(TO))

releases: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/releases.yml

backup: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/backup.yml $(if $(TYPE),-e backup_type=$(TYPE))

backups: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/backups.yml

restore: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/restore.yml $(if $(TARGET_TIME),-e "backup_restore_target_time='$(TARGET_TIME)'") \
	  $(if $(TARGET),-e backup_restore_target=$(TARGET))

switchover: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/switchover.yml $(if $(TO),-e postgresql_switchover_to=$(TO))

cluster-status: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/cluster-status.yml

upgrade-postgresql: venv
	@$(LOCAL_CHECK)
	$(PLAYBOOK) ansible/upgrade-postgresql.yml

# PYTEST_ARGS: more pytest arguments, e.g. PYTEST_ARGS='-m "not destructive"' (scripts/e2e.sh).
verify: venv
	@$(LOCAL_CHECK)
	pytest tests/infra -p no:cacheprovider --sudo --hosts=ansible://all --ansible-inventory=$(INVENTORY) $(VERIFY_ARGS) $(PYTEST_ARGS)

lint: venv
	ruff check app tests bench scripts
	ruff format --check app tests bench scripts
	mypy app
	yamllint --strict .
	ansible-lint --offline --profile production ansible bench
	python scripts/role_docs.py --check
	python scripts/local_vault_digests.py --check

unit: venv unit-deps
	pytest tests/app

# Each entry TOPOLOGY[:read-only|:verify].
e2e: host-deps venv image
	scripts/e2e.sh $(E2E_TOPOLOGIES)

test: lint unit e2e

# Everything, about 95 minutes: make test, and what would take it past its 60
# minutes: Debian 13's destructive checks (the same code as Debian 12's) and
# the read-only checks of every host of the cluster (the single host's checks,
# each where its topology puts it; the cluster's own behaviour is in make test).
test-full: lint unit
	$(MAKE) --no-print-directory e2e E2E_TOPOLOGIES="local cluster:verify debian13"

role-docs: venv
	python scripts/role_docs.py

$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $@

# Never part of `make test`: it takes the machine for about 15 minutes.
# BENCH_ARGS are passed on, e.g. BENCH_ARGS="--no-deploy-timing --connections 64".
bench: host-deps venv image $(VENV)/.bench-installed
	ANSIBLE_VAULT_PASSWORD_FILE=$(CURDIR)/$(LOCAL_INVENTORY)/vault-password-INSECURE-local-only.txt \
	  $(VENV)/bin/python bench/run.py $(BENCH_ARGS)
