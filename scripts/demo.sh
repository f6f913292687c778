#!/usr/bin/env bash
# The main job, end to end on a fresh Debian machine: install what is needed, build udocker, and as an
# unprivileged user make a repository, store an image layer built from Debian's busybox-static,
# unpack it, verify the store and show its statistics.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TEST_USER=${UDOCKER_TEST_USER:-udocker-test}
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: run it as root (it installs packages, then runs udocker as the unprivileged user $TEST_USER)" >&2
  exit 1
fi
bash "$here/scripts/setup-host.sh"

echo "==> building udocker (release)"
(cd "$here" && swift build -c release -q --product udocker)
bin="$here/.build/release/udocker"
work=$(mktemp -d /tmp/udocker-demo.XXXXXX)
chmod 755 "$work"
chown "$TEST_USER": "$work"
install -m 755 "$bin" "$work/udocker"

runuser -u "$TEST_USER" -- env -i HOME="$work" PATH=/usr/bin:/bin LANG=C.UTF-8 bash -euo pipefail -c '
  cd "$HOME"
  say() { printf "\n\$ %s\n" "$*"; "$@"; }
  # A one-layer image root from Debian busybox-static.
  mkdir -p rootfs/bin rootfs/etc rootfs/tmp
  cp /bin/busybox rootfs/bin/busybox
  for a in sh ls cat echo; do ln -s busybox rootfs/bin/$a; done
  echo "demo:x:1000:1000::/home/demo:/bin/sh" > rootfs/etc/passwd
  tar -C rootfs -czf layer.tar.gz .
  say ./udocker --version
  say ./udocker mkrepo "$HOME/repo"
  say ./udocker --repo="$HOME/repo" store ingest layer.tar.gz
  digest=$(./udocker -q --repo="$HOME/repo" store ingest layer.tar.gz | cut -d" " -f1)
  say ./udocker --repo="$HOME/repo" store unpack "$digest"
  say ./udocker --repo="$HOME/repo" store verify
  say ./udocker --repo="$HOME/repo" store stats
'
echo
echo "demo done; files are in $work"
