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
  # sync over ssh: a second user reached by key login through a dedicated sshd on loopback; rsync is a yardstick
  openssh-server openssh-client rsync
  # the release (scripts/release.sh: strip, objdump) and its check in other distributions
  binutils debootstrap curl file
  # group stores: the same store directory seen through FUSE, as a network filesystem is
  bindfs fuse3
)
TEST_USER=${UDOCKER_TEST_USER:-udocker-test}
# A second unprivileged user without subordinate ids: the store-protection tests run again as it,
# where udocker cannot seal the store and detects changes instead.
NOSUB_USER=${UDOCKER_TEST_NOSUB_USER:-udocker-nosub}
# The far end of the sync-over-ssh tests: another user (another home, another repository) on this host.
PEER_USER=${UDOCKER_TEST_PEER_USER:-udocker-peer}
SSHD_PORT=${UDOCKER_TEST_SSHD_PORT:-22722}
SSHD_DIR=/etc/udocker-test-sshd

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

# sshd for the sync tests: its own config, host key and port, listening on 127.0.0.1 only, started
# without systemd (CI machines have none); udocker-test logs in as udocker-peer with a key.
if ! id "$PEER_USER" >/dev/null 2>&1; then
  echo "==> creating unprivileged test user $PEER_USER (the far end of sync over ssh)"
  useradd --create-home --shell /bin/bash "$PEER_USER"
fi
peer_home=$(getent passwd "$PEER_USER" | cut -d: -f6)
mkdir -p "$SSHD_DIR" /run/sshd
[ -f "$SSHD_DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/host_ed25519"
cat > "$SSHD_DIR/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_ed25519
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $PEER_USER $TEST_USER $NOSUB_USER
UsePAM no
PrintMotd no
AcceptEnv LANG UDOCKER_*
Subsystem sftp internal-sftp
CONF
key="$home/.ssh/udocker-peer_ed25519"
install -d -m 700 -o "$TEST_USER" -g "$TEST_USER" "$home/.ssh"
[ -f "$key" ] || runuser -u "$TEST_USER" -- ssh-keygen -q -t ed25519 -N '' -C udocker-sync-tests -f "$key"
install -d -m 700 -o "$PEER_USER" -g "$PEER_USER" "$peer_home/.ssh"
install -m 600 -o "$PEER_USER" -g "$PEER_USER" "$key.pub" "$peer_home/.ssh/authorized_keys"
# The group-store tests reach the user without subordinate ids the same way.
nosub_home=$(getent passwd "$NOSUB_USER" | cut -d: -f6)
install -d -m 700 -o "$NOSUB_USER" -g "$NOSUB_USER" "$nosub_home/.ssh"
install -m 600 -o "$NOSUB_USER" -g "$NOSUB_USER" "$key.pub" "$nosub_home/.ssh/authorized_keys"
# UsePAM no: an account whose password field is locked ('!') is refused; '*' is "no password" and logs in by key.
usermod -p '*' "$PEER_USER"
usermod -p '*' "$NOSUB_USER"
printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")" > "$home/.ssh/known_hosts"
chown "$TEST_USER": "$home/.ssh/known_hosts"
if [ -f "$SSHD_DIR/sshd.pid" ] && kill -0 "$(cat "$SSHD_DIR/sshd.pid")" 2>/dev/null; then
  kill -HUP "$(cat "$SSHD_DIR/sshd.pid")"   # re-reads sshd_config (AllowUsers may have changed)
  sleep 0.5
fi
if ! { [ -f "$SSHD_DIR/sshd.pid" ] && kill -0 "$(cat "$SSHD_DIR/sshd.pid")" 2>/dev/null; }; then
  echo "==> starting the test sshd on 127.0.0.1:$SSHD_PORT"
  /usr/sbin/sshd -f "$SSHD_DIR/sshd_config"
fi
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && break
  sleep 0.1
done
# What the tests read (Tests/TestSupport/SSHPeer.swift): the peer, its port, the key.
cat > "$SSHD_DIR/peer.env" <<ENV
UDOCKER_TEST_PEER_USER=$PEER_USER
UDOCKER_TEST_PEER_HOME=$peer_home
UDOCKER_TEST_SSHD_PORT=$SSHD_PORT
UDOCKER_TEST_PEER_KEY=$key
ENV
chmod 644 "$SSHD_DIR/peer.env"
if ! runuser -u "$TEST_USER" -- ssh -o BatchMode=yes -i "$key" -p "$SSHD_PORT" "$PEER_USER@127.0.0.1" true; then
  echo "setup-host.sh: $TEST_USER cannot log in to $PEER_USER through the test sshd on port $SSHD_PORT" >&2
  exit 1
fi

# Group stores (Tests/TestSupport/GroupFixture.swift): the test users share one Unix group and a
# project directory owned by it, as on a cluster, seen directly and through a FUSE mount of itself
# (bindfs), which udocker treats as the network filesystem it is.
GROUP=${UDOCKER_TEST_GROUP:-udocker-group}
GROUP_DIR=/var/tmp/udocker-group
GROUP_FUSE=/var/tmp/udocker-group-fuse
groupadd -f "$GROUP"
for u in "$TEST_USER" "$PEER_USER" "$NOSUB_USER"; do
  id -nG "$u" | tr ' ' '\n' | grep -qx "$GROUP" || usermod -aG "$GROUP" "$u"
done
install -d -m 2775 -o root -g "$GROUP" "$GROUP_DIR"
# A bindfs that was killed (a machine reused after its processes ended) leaves a dead mount behind:
# every stat of it fails with "Transport endpoint is not connected". Drop it and mount again.
if ! stat "$GROUP_FUSE" >/dev/null 2>&1 && grep -qs " $GROUP_FUSE " /proc/mounts; then
  echo "setup-host.sh: $GROUP_FUSE is a dead FUSE mount; unmounting it" >&2
  fusermount3 -uz "$GROUP_FUSE" 2>/dev/null || umount -l "$GROUP_FUSE"
fi
mkdir -p "$GROUP_FUSE"
fuse_ok=0
if mountpoint -q "$GROUP_FUSE"; then
  fuse_ok=1
elif [ -e /dev/fuse ] && bindfs -o allow_other "$GROUP_DIR" "$GROUP_FUSE" 2>/dev/null; then
  fuse_ok=1
else
  echo "setup-host.sh: cannot mount $GROUP_DIR through FUSE (no /dev/fuse?); the FUSE group-store tests are skipped" >&2
fi
cat > /etc/udocker-test-group.env <<ENV
UDOCKER_TEST_GROUP=$GROUP
UDOCKER_TEST_GROUP_DIR=$GROUP_DIR
UDOCKER_TEST_GROUP_FUSE=$([ "$fuse_ok" = 1 ] && echo "$GROUP_FUSE")
UDOCKER_TEST_NOSUB_USER=$NOSUB_USER
ENV
chmod 644 /etc/udocker-test-group.env
