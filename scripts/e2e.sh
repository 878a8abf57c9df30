#!/usr/bin/env bash
# End to end, as a user would: a fresh local host, deployed, verified by the
# testinfra suite, deployed again (must change nothing), checked in --check
# mode, then torn down, also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

playbook() {
  ansible-playbook -i "ansible/inventories/${TOPOLOGY:-local}" ansible/deploy.yml "$@"
}

trap 'echo "==> tearing the local host down"; scripts/local-host.sh down' EXIT
echo "==> removing a local host left by an earlier run"
scripts/local-host.sh down
scripts/local-host.sh up

echo "==> verifying the host"
make --no-print-directory verify

echo "==> deploying again: nothing may change"
log=$(mktemp)
playbook | tee "$log"
recap=$(sed -n '/^PLAY RECAP/,$p' "$log")
rm -f "$log"
if ! grep -q 'changed=0 ' <<<"$recap" || grep -qE 'changed=[1-9]|failed=[1-9]|unreachable=[1-9]' <<<"$recap"; then
  echo "FAIL: the second deploy changed something or failed:" >&2
  echo "$recap" >&2
  exit 1
fi

echo "==> --check --diff on the deployed host"
playbook --check --diff >/dev/null

echo "==> end to end: all steps passed"
