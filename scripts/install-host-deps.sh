#!/usr/bin/env bash
# Installs what this machine needs, if it is missing (Debian/Ubuntu, as root).
#   scripts/install-host-deps.sh unit    the app's tests: PostgreSQL's server binaries, venv
#   scripts/install-host-deps.sh         everything: also the test hosts (Docker engine,
#                                        Vagrant, debootstrap) and the page's browser;
#                                        starts the Docker engine if it is not running
# Safe to run again.
set -euo pipefail

scope=${1:-all}
packages=(postgresql python3-venv)
[ "$scope" = unit ] || packages+=(docker.io vagrant debootstrap chromium)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "error: installing ${missing[*]} needs root" >&2; exit 1; }
  echo "==> apt-get install ${missing[*]} (a few minutes the first time)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$scope" = unit ] && exit 0

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker
  else
    # No systemd here (a container, or CI): run the engine in the background.
    echo "==> starting dockerd"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "error: the Docker engine did not start, see /var/log/dockerd.log" >&2; exit 1; }
fi
