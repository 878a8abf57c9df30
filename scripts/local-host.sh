#!/usr/bin/env bash
# The local host (Vagrant's `web`, 192.168.56.10, docker provider by default).
#   scripts/local-host.sh up       create or start it and deploy to it
#   scripts/local-host.sh create   create or start it, without deploying
#   scripts/local-host.sh down     destroy it and its network, also when made by another checkout
#   scripts/local-host.sh check    fail unless 192.168.56.10 is on a local bridge
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_IP=192.168.56.10
LOCAL_NET=192.168.56.0/24
CONTAINER=fastapi-postgres-web
export VAGRANT_DEFAULT_PROVIDER=${VAGRANT_DEFAULT_PROVIDER:-docker}
export ANSIBLE_CONFIG=ansible/ansible.cfg

# With no local host up, the default route would carry these packets off the
# machine: nothing is sent to the address unless it is directly connected.
check() {
  local route
  route=$(ip route get "$LOCAL_IP" 2>/dev/null || true)
  if [ -z "$route" ] || grep -q ' via ' <<<"$route"; then
    echo "the local host is not up: run make up" >&2
    exit 1
  fi
}

link_key() {
  local key
  key=$(ls .vagrant/machines/web/*/private_key 2>/dev/null | head -n 1)
  [ -n "$key" ] || { echo "error: Vagrant made no ssh key for web" >&2; exit 1; }
  ln -sfn "$(realpath "$key")" .vagrant/local-vm-key
}

create() {
  echo "==> vagrant up ($VAGRANT_DEFAULT_PROVIDER)"
  vagrant up --no-provision
  link_key
  check
}

up() {
  create
  echo "==> deploying (ansible/deploy.yml)"
  vagrant provision
}

down() {
  vagrant destroy --force >/dev/null 2>&1 || true
  # A host made from another checkout (CI's clone, an earlier run) is not in
  # this checkout's .vagrant, but holds the same name and address.
  docker rm --force "$CONTAINER" >/dev/null 2>&1 || true
  local network
  for network in $(docker network ls --quiet 2>/dev/null); do
    if docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$network" | grep -qw "$LOCAL_NET"; then
      docker network inspect --format '{{range .Containers}}{{.Name}} {{end}}' "$network" \
        | xargs --no-run-if-empty docker rm --force >/dev/null
      docker network rm "$network" >/dev/null
    fi
  done
  rm -f .vagrant/local-vm-key
}

case "${1:-}" in
  up) up ;;
  create) create ;;
  down) down ;;
  check) check ;;
  link-key) link_key ;;
  *) echo "usage: $0 up|create|down|check|link-key" >&2; exit 2 ;;
esac
