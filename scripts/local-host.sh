#!/usr/bin/env bash
# The local test hosts: one Vagrant machine per host of the inventory
# ansible/inventories/$TOPOLOGY (default: local, the single host `local-host`),
# docker provider by default. The inventory names them and gives their addresses.
#   scripts/local-host.sh up       create or start them and deploy to them
#   scripts/local-host.sh create   create or start them, without deploying
#   scripts/local-host.sh down     destroy them (also when made by another checkout), and
#                                  their network once no other host uses it
#   scripts/local-host.sh check    fail unless every host's address is on a local bridge
#   scripts/local-host.sh hosts [GROUP]   print "NAME ADDRESS" for each host (of GROUP)
#   scripts/local-host.sh api-key  print the first valid API key of the inventory's vault
set -euo pipefail
cd "$(dirname "$0")/.."

export TOPOLOGY=${TOPOLOGY:-local}
INVENTORY=ansible/inventories/$TOPOLOGY
# Vagrant's private network: the one the Vagrantfile puts the test hosts on.
LOCAL_NET=192.168.56.0/24
export VAGRANT_DEFAULT_PROVIDER=${VAGRANT_DEFAULT_PROVIDER:-docker}
export ANSIBLE_CONFIG=ansible/ansible.cfg

# "NAME ADDRESS" for each host of the inventory, or of one of its groups.
hosts() {
  python3 - "$INVENTORY/hosts.yml" "${1:-}" <<'PY'
import sys
import yaml
with open(sys.argv[1]) as inventory:
    everything = yaml.safe_load(inventory)["all"]
group = (everything.get("children") or {}).get(sys.argv[2], {}) if sys.argv[2] else everything
for name in group.get("hosts") or {}:
    print(name, everything["hosts"][name]["ansible_host"])
PY
}

# The local vault opens with its committed password.
api_key() {
  ansible-vault view --vault-password-file "$INVENTORY/vault-password-INSECURE-local-only.txt" \
    "$INVENTORY/group_vars/all/vault.yml" | python3 -c '
import sys
import yaml
keys = yaml.safe_load(sys.stdin)["vault_app_api_keys"]
print(next(entry["key"] for entry in keys if not entry.get("revoked")))'
}

# With no test host up, the default route would carry these packets off the
# machine: nothing is sent to an address unless it is directly connected.
check() {
  local name address route
  while read -r name address; do
    route=$(ip route get "$address" 2>/dev/null || true)
    if [ -z "$route" ] || grep -q ' via ' <<<"$route"; then
      echo "the local host $name ($address) is not up: run make up" >&2
      exit 1
    fi
  done < <(hosts)
}

# The inventory reaches each host with the key Vagrant made for it.
link_keys() {
  local name address key
  mkdir -p .vagrant/keys
  while read -r name address; do
    key=$(ls .vagrant/machines/"$name"/*/private_key 2>/dev/null | head -n 1)
    [ -n "$key" ] || { echo "error: Vagrant made no ssh key for $name" >&2; exit 1; }
    ln -sfn "$(realpath "$key")" ".vagrant/keys/$name"
  done < <(hosts)
}

create() {
  echo "==> vagrant up ($VAGRANT_DEFAULT_PROVIDER, $INVENTORY)"
  vagrant up --no-provision
  link_keys
  check
}

up() {
  create
  echo "==> deploying (ansible/deploy.yml)"
  vagrant provision
}

down() {
  vagrant destroy --force >/dev/null 2>&1 || true
  docker info >/dev/null 2>&1 || return 0
  # Hosts made from another checkout (CI's clone, an earlier run) are not in this
  # checkout's .vagrant, but hold the same names and addresses. make bench's bare host
  # belongs to the local topology: another topology's down leaves it alone.
  local name address
  while read -r name address; do
    docker rm --force "fastapi-postgres-$name" >/dev/null 2>&1 || true
    rm -f ".vagrant/keys/$name"
  done < <(hosts; [ "$TOPOLOGY" != local ] || echo bench-bare -)
  # The network goes with the last host on it (other topologies may still use it).
  local network
  for network in $(docker network ls --quiet 2>/dev/null); do
    if docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$network" | grep -qw "$LOCAL_NET" \
       && [ -z "$(docker network inspect --format '{{range .Containers}}{{.Name}}{{end}}' "$network")" ]; then
      docker network rm "$network" >/dev/null
    fi
  done
}

case "${1:-}" in
  up) up ;;
  create) create ;;
  down) down ;;
  check) check ;;
  hosts) hosts "${2:-}" ;;
  link-keys) link_keys ;;
  api-key) api_key ;;
  *) echo "usage: $0 up|create|down|check|hosts [GROUP]|link-keys|api-key" >&2; exit 2 ;;
esac
