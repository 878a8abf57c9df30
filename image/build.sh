#!/usr/bin/env bash
# Builds the systemd-booted Debian image that Vagrant's docker provider boots as
# the local host, from Debian's packages only (no container registry is needed).
# It behaves like a Vagrant box: a `vagrant` user with passwordless sudo and
# Vagrant's insecure key, which `vagrant up` replaces with a fresh one.
#   image/build.sh [SUITE]      (default: bookworm)
# The tag, fastapi-postgres/SUITE:HASH, names this script's content (the
# Vagrantfile computes the same): a changed script builds a new image.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${1:-bookworm}
tag=fastapi-postgres/$suite:$(sha256sum image/build.sh | cut -c1-12)

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag already built"
  exit 0
fi

# The machine's own Debian mirror, so the build works wherever apt does.
mirror=$(grep -rhoE '^(deb|URIs:)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
           /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | grep -oE 'https?://[^[:space:]]+' | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

vagrant_key=$(dpkg -L vagrant 2>/dev/null | grep -m1 '/keys/vagrant.pub$' || true)
[ -r "$vagrant_key" ] || { echo "error: Vagrant's insecure public key not found (is the vagrant package installed?)" >&2; exit 1; }

rootfs=$(mktemp -d /var/tmp/rootfs-XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "==> debootstrap $suite from $mirror (about 90 s)"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,openssh-server,python3,sudo,iproute2,ca-certificates,curl,procps \
  "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

echo "==> making it a Vagrant-style box"
chroot "$rootfs" useradd --create-home --shell /bin/bash vagrant
install -d -m 0700 -o 1000 -g 1000 "$rootfs/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$vagrant_key" "$rootfs/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$rootfs/etc/sudoers.d/vagrant"
chmod 0440 "$rootfs/etc/sudoers.d/vagrant"
# A container has no console to log in on, and no kernel modules to load.
for unit in getty@tty1.service console-getty.service systemd-modules-load.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Host keys are made on the first boot of each container, never shared by images.
rm -f "$rootfs"/etc/ssh/ssh_host_*
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' >"$rootfs/etc/systemd/system/ssh.service.d/host-keys.conf"
# The mark of a local test host: the local inventories' insecure secrets may go
# to this host and to no other (ansible/preflight.yml reads it over the deploy's
# own connection).
mkdir -p "$rootfs/etc/fastapi-postgres"
echo "a local test host of fastapi-postgres: it may get the insecure local secrets" \
  >"$rootfs/etc/fastapi-postgres/local-test-host"
# Same mirror as the machine that built it.
printf 'deb %s %s main\n' "$mirror" "$suite" >"$rootfs/etc/apt/sources.list"
: >"$rootfs/etc/machine-id"
chroot "$rootfs" apt-get clean

echo "==> importing as $tag"
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' - "$tag" >/dev/null
echo "image $tag built"
