#!/usr/bin/env bash
# The main job, end to end on a fresh Debian machine: install what is needed, build udocker, and as an
# unprivileged user start a local registry, push an image built from Debian's busybox-static to it,
# pull it with udocker, create containers from it and run them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TEST_USER=${UDOCKER_TEST_USER:-udocker-test}
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: run it as root (it installs packages, then runs udocker as the unprivileged user $TEST_USER)" >&2
  exit 1
fi
bash "$here/scripts/setup-host.sh"

echo "==> building udocker (release)"
(cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker)
bin="$here/.build/release/udocker"
work=$(mktemp -d /tmp/udocker-demo.XXXXXX)
chmod 755 "$work"
chown "$TEST_USER": "$work"
install -m 755 "$bin" "$work/udocker"

cp "$here/scripts/lib/registry.sh" "$work/registry.sh"
runuser -u "$TEST_USER" -- env -i HOME="$work" PATH=/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 bash -euo pipefail -c '
  cd "$HOME"
  source ./registry.sh
  say() { printf "\n\$ %s\n" "$*"; "$@"; }
  # A local registry on loopback, with an image built from Debian busybox-static.
  start_registry "$HOME/registry"
  trap stop_registry EXIT
  busybox_rootfs rootfs
  build_oci_image oci latest "[\"/bin/sh\",\"-c\",\"echo hello from busybox\"]" rootfs
  push_oci oci latest demo/busybox:latest
  export UDOCKER_DIR="$HOME/.udocker" UDOCKER_REGISTRY="http://127.0.0.1:$REGISTRY_PORT"
  say ./udocker --version
  say ./udocker pull demo/busybox:latest
  say ./udocker images -l
  say ./udocker verify demo/busybox:latest
  say ./udocker create --name=demo demo/busybox:latest
  say ./udocker ps -m
  root=$(./udocker inspect -p demo)
  say ls -l "$root/bin/busybox"
  say ./udocker run demo
  say ./udocker run --nobanner --user=1000 -e GREETING=hi demo /bin/sh -c "echo \$GREETING from uid \$(id -u) in \$container_execmode"
  say ./udocker clone --name=demo2 demo
  say ./udocker run --nobanner demo2 /bin/sh -c "echo clone runs too; exit 3" || echo "exit code: $?"
  say ./udocker info
  say ./udocker store stats
'
echo
echo "demo done; files are in $work"
