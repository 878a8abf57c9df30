#!/usr/bin/env bash
# End to end, as a user would: a fresh local host, deployed, verified by the
# testinfra suite (first the read-only checks a real server gets, on a database
# with rows in it: they must change no data; then the destructive ones), deployed
# again (must change nothing), checked in --check mode (must predict no change); a
# Debian 12 topology is then upgraded to Debian 13 (tests/upgrade: the deploy refuses
# the old PostgreSQL cluster, upgrade-postgresql.yml moves the data); then torn down,
# also when a step fails. Each step says how long it took.
#
# E2E_CHECKS=read-only leaves out the destructive checks (make e2e
# E2E_TOPOLOGIES=debian13:read-only). A topology with several
# database hosts (the cluster) gets the cluster's own checks (tests/cluster: the tiers'
# firewall matrix, a killed leader, a switchover, a stopped app host) instead of the
# single host's; E2E_CHECKS=verify (make test-full) runs the read-only checks of every
# host first, as `make verify` would on a real cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's Ansible settings (testinfra's inventory then has ansible/group_vars too), and
# the local inventories' vault, which opens with its committed (insecure, local-only) password.
export ANSIBLE_CONFIG="$PWD/ansible/ansible.cfg"
export ANSIBLE_VAULT_PASSWORD_FILE="$PWD/ansible/inventories/${TOPOLOGY:-local}/vault-password-INSECURE-local-only.txt"

playbook() {
  ansible-playbook -i "ansible/inventories/${TOPOLOGY:-local}" ansible/deploy.yml "$@"
}

# Runs a step and says how long it took.
timed() {
  local name=$1 started=$SECONDS
  shift
  "$@"
  echo "==> $name: $((SECONDS - started)) s"
}

# The PLAY RECAP of a run's log; fails unless every host ran without failing.
recap() {
  local recap
  recap=$(sed -n '/^PLAY RECAP/,$p' "$1")
  if [ -z "$recap" ] || grep -qE 'failed=[1-9]|unreachable=[1-9]' <<<"$recap"; then
    echo "FAIL: the run failed:" >&2
    echo "${recap:-no PLAY RECAP}" >&2
    return 1
  fi
  echo "$recap"
}

# A few messages on every web host, so that the read-only checks meet real rows.
seed() {
  local name address key
  key=$(scripts/local-host.sh api-key)
  while read -r name address; do
    for n in 1 2 3; do
      curl -sfk -o /dev/null -X POST -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $key" \
        -d "{\"message\": \"e2e seed $n\"}" "https://$address/messages"
    done
  done < <(scripts/local-host.sh hosts web)
}

# A deploy (with these extra arguments) whose recap says changed=0 on every host.
changes_nothing() {
  local log recap
  log=$(mktemp)
  playbook "$@" | tee "$log"
  recap=$(recap "$log") || { rm -f "$log"; return 1; }
  rm -f "$log"
  if ! grep -q 'changed=0 ' <<<"$recap" || grep -qE 'changed=[1-9]' <<<"$recap"; then
    echo "FAIL: ansible-playbook $* changed something (or would):" >&2
    echo "$recap" >&2
    return 1
  fi
}

# `make verify` against another inventory runs only the read-only checks (unless
# DESTRUCTIVE=1), with the [server] skip allow-list: what the Makefile would run.
real_server_verify_is_read_only() {
  local inventory=ansible/inventories/production dry
  dry=$(ANSIBLE_VAULT_PASSWORD_FILE=/dev/null make -n --no-print-directory verify INVENTORY=$inventory)
  grep -q -- '-m "not destructive" --skips=server' <<<"$dry" || { echo "FAIL: $dry" >&2; return 1; }
  dry=$(ANSIBLE_VAULT_PASSWORD_FILE=/dev/null make -n --no-print-directory verify INVENTORY=$inventory DESTRUCTIVE=1)
  ! grep -q -- 'not destructive' <<<"$dry" || { echo "FAIL: $dry" >&2; return 1; }
}

# Whether every host of the topology boots Debian 12 (the Vagrantfile's default suite).
on_debian_12() {
  python3 - "ansible/inventories/${TOPOLOGY:-local}/hosts.yml" <<'PY'
import sys
import yaml
with open(sys.argv[1]) as inventory:
    hosts = yaml.safe_load(inventory)["all"]["hosts"]
suites = {(variables or {}).get("local_test_host_suite", "bookworm") for variables in hosts.values()}
sys.exit(0 if suites == {"bookworm"} else 1)
PY
}

# Whether the topology has several database hosts (PostgreSQL under Patroni).
is_cluster() {
  [ "$(scripts/local-host.sh hosts db | wc -l)" -gt 1 ]
}

cluster_checks() {
  scripts/local-host.sh check
  pytest tests/cluster -p no:cacheprovider --ansible-inventory="ansible/inventories/${TOPOLOGY:-local}"
}

# The upgrade to Debian 13 and PostgreSQL 17 (the hosts are Debian 13 afterwards).
os_upgrade() {
  scripts/local-host.sh check
  pytest tests/upgrade -p no:cacheprovider --sudo --hosts=ansible://all \
    --ansible-inventory="ansible/inventories/${TOPOLOGY:-local}"
}

# make down: no container of the topology's hosts is left (their network goes with the
# last host on it, which may be another topology's).
teardown() {
  local name address left=""
  echo "==> tearing the local host down"
  scripts/local-host.sh down
  while read -r name address; do
    if docker ps -a --format '{{.Names}}' | grep -qx "fastapi-postgres-$name"; then
      left="$left $name"
    fi
  done < <(scripts/local-host.sh hosts)
  if [ -n "$left" ]; then
    echo "FAIL: make down left these hosts:$left" >&2
    exit 1
  fi
}

real_server_verify_is_read_only
trap teardown EXIT
echo "==> removing a local host left by an earlier run"
timed "removing an old host" scripts/local-host.sh down
timed "a fresh host, deployed" scripts/local-host.sh up

seed
if is_cluster; then
  if [ "${E2E_CHECKS:-all}" = verify ]; then
    echo "==> the read-only checks of every host (what make verify runs on a real cluster)"
    timed "the read-only checks" make --no-print-directory verify
  fi
  echo "==> the cluster's checks: topology, firewall matrix, a killed leader, a switchover, a stopped app host"
  timed "the cluster's checks" cluster_checks
else
  echo "==> the read-only checks (what make verify runs on a real server): no data may change"
  timed "the read-only checks" make --no-print-directory verify PYTEST_ARGS='-m "not destructive"'

  if [ "${E2E_CHECKS:-all}" != read-only ]; then
    echo "==> the destructive checks"
    timed "the destructive checks" make --no-print-directory verify PYTEST_ARGS='-m destructive'
  fi
fi

echo "==> deploying again: nothing may change"
timed "the second deploy" changes_nothing

echo "==> --check --diff on the deployed host: no change predicted"
timed "the check-mode run" changes_nothing --check --diff

if on_debian_12 && ! is_cluster; then
  echo "==> Debian 12 to 13: the deploy refuses the old cluster, upgrade-postgresql.yml moves it"
  timed "the upgrade to Debian 13" os_upgrade
fi

echo "==> end to end: all steps passed"
