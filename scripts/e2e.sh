#!/usr/bin/env bash
# End to end, as a user would, for each topology given (scripts/e2e.sh
# TOPOLOGY[:CHECKS] ..., in order; `make e2e` passes E2E_TOPOLOGIES): fresh hosts,
# deployed, verified by the testinfra suite (first the read-only checks a real server
# gets, on a database with rows in it: they must change no data; then the destructive
# ones), deployed again (must change nothing), checked in --check mode (must predict no
# change); a Debian 12 topology is then upgraded to Debian 13 (tests/upgrade: the deploy
# refuses the old PostgreSQL cluster, upgrade-postgresql.yml moves the data); then torn
# down, also when a step fails. Each step says how long it took.
#
# CHECKS: read-only leaves out the destructive checks (debian13:read-only). A topology
# with several database hosts (the cluster) gets the cluster's own checks (tests/cluster:
# the tiers' firewall matrix, a killed leader, a switchover, a stopped app host) instead
# of the single host's; verify (make test-full) runs the read-only checks of every host
# first, as `make verify` would on a real cluster.
#
# The next topology's hosts are made and deployed in the background while this one's
# last steps run (the second deploy, the check-mode run, the upgrade): those time
# nothing, and no check that counts failures or seconds (the fault tests, the rate
# limits) ever shares the machine with a deploy. Topologies never share an address.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's Ansible settings (testinfra's inventory then has ansible/group_vars too).
export ANSIBLE_CONFIG="$PWD/ansible/ansible.cfg"
# The background deploys' output, shown when their topology's turn comes.
LOGS=test-output/e2e

# The topology the steps below act on, and its vault, which opens with its committed
# (insecure, local-only) password.
use_topology() {
  export TOPOLOGY=$1
  export ANSIBLE_VAULT_PASSWORD_FILE="$PWD/ansible/inventories/$1/vault-password-INSECURE-local-only.txt"
}

# Whether a topology's hosts may still be up (they are torn down on exit, whatever happened).
UP=()
forget_topology() {
  local topology kept=()
  for topology in "${UP[@]}"; do
    [ "$topology" = "$1" ] || kept+=("$topology")
  done
  UP=("${kept[@]}")
}

playbook() {
  ansible-playbook -i "ansible/inventories/$TOPOLOGY" ansible/deploy.yml "$@"
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
  python3 - "ansible/inventories/$TOPOLOGY/hosts.yml" <<'PY'
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
  pytest tests/cluster -p no:cacheprovider --ansible-inventory="ansible/inventories/$TOPOLOGY"
}

# The upgrade to Debian 13 and PostgreSQL 17 (the hosts are Debian 13 afterwards).
os_upgrade() {
  scripts/local-host.sh check
  pytest tests/upgrade -p no:cacheprovider --sudo --hosts=ansible://all \
    --ansible-inventory="ansible/inventories/$TOPOLOGY"
}

# make down: no container of the topology's hosts is left (their network goes with the
# last host on it, which may be another topology's).
teardown() {
  local name address left=""
  echo "==> tearing $TOPOLOGY down"
  scripts/local-host.sh down
  while read -r name address; do
    if docker ps -a --format '{{.Names}}' | grep -qx "fastapi-postgres-$name"; then
      left="$left $name"
    fi
  done < <(scripts/local-host.sh hosts)
  if [ -n "$left" ]; then
    echo "FAIL: make down left these hosts ($TOPOLOGY):$left" >&2
    return 1
  fi
}

# Hosts left by an earlier run go first; then fresh ones, deployed.
fresh_hosts() {
  timed "removing old hosts" scripts/local-host.sh down
  timed "fresh hosts, deployed" scripts/local-host.sh up
}

# The topology whose hosts are being made in the background, then made (PREPARED).
PREPARING="" PREPARING_PID="" PREPARING_SINCE=0 PREPARED=""

# The next topology's fresh hosts, in the background, in a process group of their own
# (setsid) that an exit stops whole.
prepare_in_background() {
  mkdir -p "$LOGS"
  PREPARING=$1 PREPARING_SINCE=$SECONDS
  UP+=("$1")
  echo "==> $1: making and deploying its hosts in the background ($LOGS/$1.log)"
  (
    use_topology "$1"
    exec setsid bash -c "set -euo pipefail; $(declare -f timed fresh_hosts); fresh_hosts" >"$LOGS/$1.log" 2>&1
  ) &
  PREPARING_PID=$!
}

# Waits for the background deploy, shows its output, and fails if it failed.
wait_for_preparation() {
  local waited_from=$SECONDS status=0
  wait "$PREPARING_PID" || status=$?
  PREPARING_PID="" PREPARED=$PREPARING PREPARING=""
  echo "==> $PREPARED: its hosts, made and deployed in the background (output below)"
  cat "$LOGS/$PREPARED.log"
  echo "==> $PREPARED: waited $((SECONDS - waited_from)) s for its hosts (the background deploy started $((SECONDS - PREPARING_SINCE)) s before; its own time is above)"
  [ "$status" -eq 0 ] || { echo "FAIL: making or deploying $PREPARED's hosts failed (exit $status)" >&2; return 1; }
}

tear_everything_down() {
  local status=$? topology
  trap - EXIT
  if [ -n "$PREPARING_PID" ]; then
    echo "==> stopping the background deploy of $PREPARING"
    kill -TERM -- "-$PREPARING_PID" 2>/dev/null || true
    wait "$PREPARING_PID" 2>/dev/null || true
    tail -n 40 "$LOGS/$PREPARING.log" || true
  fi
  for topology in "${UP[@]}"; do
    use_topology "$topology"
    teardown || status=1
  done
  exit "$status"
}

# One topology, from fresh hosts to their teardown; NEXT's are prepared meanwhile.
end_to_end() {
  local topology=${1%%:*} checks=all next=${2%%:*}
  [ "$1" = "$topology" ] || checks=${1#*:}
  use_topology "$topology"
  echo "==> $topology: end to end (checks: $checks)"
  if [ "$PREPARED" != "$topology" ]; then
    UP+=("$topology")
    fresh_hosts
  fi

  seed
  if is_cluster; then
    if [ "$checks" = verify ]; then
      echo "==> the read-only checks of every host (what make verify runs on a real cluster)"
      timed "the read-only checks" make --no-print-directory verify
    fi
    echo "==> the cluster's checks: topology, firewall matrix, a killed leader, a switchover, a stopped app host"
    timed "the cluster's checks" cluster_checks
  else
    echo "==> the read-only checks (what make verify runs on a real server): no data may change"
    timed "the read-only checks" make --no-print-directory verify PYTEST_ARGS='-m "not destructive"'

    if [ "$checks" != read-only ]; then
      echo "==> the destructive checks"
      timed "the destructive checks" make --no-print-directory verify PYTEST_ARGS='-m destructive'
    fi
  fi

  [ -z "$next" ] || prepare_in_background "$next"
  echo "==> deploying again: nothing may change"
  timed "the second deploy" changes_nothing

  echo "==> --check --diff on the deployed host: no change predicted"
  timed "the check-mode run" changes_nothing --check --diff

  if on_debian_12 && ! is_cluster; then
    echo "==> Debian 12 to 13: the deploy refuses the old cluster, upgrade-postgresql.yml moves it"
    timed "the upgrade to Debian 13" os_upgrade
  fi
  echo "==> $topology: all steps passed"

  # Its hosts go once the next topology's are made: one Vagrant run at a time.
  [ -z "$next" ] || wait_for_preparation
  teardown
  forget_topology "$topology"
}

[ "$#" -gt 0 ] || set -- "${TOPOLOGY:-local}"
use_topology "${1%%:*}"
real_server_verify_is_read_only
trap tear_everything_down EXIT
# A stopped run (Ctrl-C, CI's timeout) tears down too.
trap 'exit 130' INT
trap 'exit 143' TERM
entries=("$@")
for index in "${!entries[@]}"; do
  end_to_end "${entries[$index]}" "${entries[$((index + 1))]:-}"
done
echo "==> end to end: all steps passed"
