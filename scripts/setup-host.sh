#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian machine, and creates the
# unprivileged user the tests run as. Safe to run again; does nothing that is already done.
set -euo pipefail

APT_PACKAGES=(
  # build
  liblmdb-dev libarchive-dev libcurl4-openssl-dev libssl-dev pkg-config
  # tests and demo: images are built from busybox-static; compressors; a real registry
  busybox-static zstd xz-utils gzip tar lmdb-utils docker-registry apache2-utils openssl
  # execution engines used by the run tests and by scripts/build-tools-bundle.sh
  proot fakechroot libfakechroot runc crun patchelf
  # subordinate uids: the store's files belong to one of the user's subuids (newuidmap, newgidmap)
  uidmap
  # yardsticks used by the benchmarks; xfsprogs: benchmarks/containers.sh also measures on XFS
  skopeo hyperfine bc python3 xfsprogs
)
TEST_USER=${UDOCKER_TEST_USER:-udocker-test}
# A second unprivileged user without subordinate ids: the store-protection tests run again as it,
# where udocker cannot seal the store and detects changes instead.
NOSUB_USER=${UDOCKER_TEST_NOSUB_USER:-udocker-nosub}

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host.sh: needs root to install packages and create the test user; run it as root" >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian registry package starts a system service; the tests start their own on loopback.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi

if ! id "$TEST_USER" >/dev/null 2>&1; then
  echo "==> creating unprivileged test user $TEST_USER"
  useradd --create-home --shell /bin/bash "$TEST_USER"
fi
# The test user needs a subordinate id range (Debian's useradd gives one; a user made otherwise may lack it).
if ! grep -q "^$TEST_USER:" /etc/subuid 2>/dev/null || ! grep -q "^$TEST_USER:" /etc/subgid 2>/dev/null; then
  echo "==> giving $TEST_USER subordinate uids and gids 100000-165535"
  usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "$TEST_USER"
fi
if ! id "$NOSUB_USER" >/dev/null 2>&1; then
  echo "==> creating unprivileged test user $NOSUB_USER (without subordinate uids)"
  useradd --create-home --shell /bin/bash "$NOSUB_USER"
fi
for f in /etc/subuid /etc/subgid; do
  if [ -f "$f" ] && grep -q "^$NOSUB_USER:" "$f"; then sed -i "/^$NOSUB_USER:/d" "$f"; fi
done
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
# The Swift package mirror under /opt is owned by root; let the test user's git read it.
if ! runuser -u "$TEST_USER" -- git config --global --get-all safe.directory 2>/dev/null | grep -qx '\*'; then
  runuser -u "$TEST_USER" -- env HOME="$home" git config --global --add safe.directory '*'
fi
