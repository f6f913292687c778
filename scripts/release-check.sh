#!/usr/bin/env bash
# Checks a release tarball (scripts/release.sh) the way a user without root meets it: in minimal root
# filesystems of other Debian releases (debootstrap --variant=minbase, cached), as an unprivileged
# user entered with chroot --userspec, with nothing but the unpacked release: version, pull from a
# local registry over http and over https (a self-signed CA given by UDOCKER_CA_BUNDLE), install of
# the release's tools, create, run in P1, and in R1 where runc can run there. Then objdump -T of every
# ELF file in the release against the glibc each part claims. Run as root (chroot, debootstrap).
# Usage: scripts/release-check.sh TARBALL [SUITE...] (default suites: bullseye trixie).
# Environment: UDOCKER_ROOTFS_CACHE (default /var/cache/udocker-test/rootfs), DEBIAN_MIRROR.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib/registry.sh"
die() { echo "release-check.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run it as root (it uses debootstrap and chroot)"
[ -f "${1:-}" ] || die "usage: release-check.sh TARBALL [SUITE...] (${1:-no tarball given}: no such file; scripts/release.sh makes it)"
tarball=$(readlink -f "$1")
shift
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bullseye trixie)
cache=${UDOCKER_ROOTFS_CACHE:-/var/cache/udocker-test/rootfs}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/udocker-release-check.XXXXXX)
chmod 755 "$work"
failures=0
mounted=()
cleanup() {
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  stop_registry
  [ -n "${TLS_PID:-}" ] && kill "$TLS_PID" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# Known failures: "suite: check" and why; reported as such, not counted, and said when they pass.
declare -A known=()
fail() {
  local what=${1%%: *} rest
  case $1 in *": "*) rest=${1#*: }; what="$what: ${rest%%: *}" ;; esac
  if [ -n "${known[$what]:-}" ]; then echo "known: $what (${known[$what]})"; return; fi
  echo "FAIL: $*"; failures=$((failures + 1))
}
pass() {
  local what=${1%% (*}
  if [ -n "${known[$what]:-}" ]; then echo "ok: $* (listed as a known failure: take it off the list)"; return; fi
  echo "ok: $*"
}

# --- what the release's ELF files need of glibc ----------------------------------------------------
echo "==> glibc symbol versions of every ELF file in the release"
mkdir -p "$work/release"
tar -C "$work/release" -xzf "$tarball"
rel=$work/release/udocker
shipped=$(strings "$rel/lib/libc.so.6" | sed -n 's/^GNU C Library (.*) release version \([0-9.]*\).*/\1/p; s/^GNU C Library .* version \([0-9.]*\)\.$/\1/p' | head -1)
[ -n "$shipped" ] || die "cannot tell the glibc version of the release's lib/libc.so.6"
# Claims: udocker and its libraries run on the glibc the release ships; the tools bundle's programs
# and libraries (Debian 12's) on the host's glibc, at most the 2.36 they were built against (proot
# and libtalloc need far less: P1 runs on bullseye's 2.31).
tools_claim=2.36
newest() { { objdump -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1; } || true; }
check_elf() {
  local f=$1 claim=$2 v
  v=$(newest "$f")
  [ -z "$v" ] && return 0
  if [ "$(printf '%s\n%s\n' "$v" "$claim" | sort -V | tail -1)" != "$claim" ]; then
    fail "$f needs GLIBC_$v, newer than the $claim claimed for it"
  fi
}
while IFS= read -r -d '' f; do
  head -c 4 "$f" | grep -q 'ELF' || continue
  check_elf "$f" "$shipped"
done < <(find "$rel/libexec" "$rel/lib" -type f -print0)
mkdir -p "$work/tools"
tar -C "$work/tools" -xzf "$rel"/tools/udocker-tools-*.tar.gz
while IFS= read -r -d '' f; do
  head -c 4 "$f" | grep -q 'ELF' || continue
  check_elf "$f" "$tools_claim"
done < <(find "$work/tools" -type f -print0)
pass "udocker and lib/ need at most the shipped glibc $shipped; the tools at most glibc $tools_claim"

# --- registries: http, and https with a self-signed CA ---------------------------------------------
echo "==> local registries"
mkdir -p "$work/img/bin"
cp /usr/bin/busybox "$work/img/bin/busybox"
for a in sh echo cat true; do ln -s busybox "$work/img/bin/$a"; done
build_oci_image "$work/layout" latest '["/bin/sh"]' "$work/img"
start_registry "$work/registry"
push_oci "$work/layout" latest check/busybox:1
HTTP_PORT=$REGISTRY_PORT HTTP_PID=$REGISTRY_PID
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
# The same storage over https, with the self-signed certificate.
start_registry "$work/registry" "$work/tls.crt" "$work/tls.key"
TLS_PORT=$REGISTRY_PORT TLS_PID=$REGISTRY_PID
REGISTRY_PID=$HTTP_PID

# --- each distribution ---------------------------------------------------------------------------
check_suite() {
  local suite=$1 root=$cache/$1 user=udrel uid=4242
  if [ ! -f "$root/.complete" ]; then
    echo "==> debootstrap --variant=minbase $suite (cached in $root)"
    rm -rf "$root"
    mkdir -p "$cache"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$work/debootstrap-$suite.log" 2>&1 \
      || { tail -5 "$work/debootstrap-$suite.log"; fail "$suite: debootstrap failed"; return; }
    touch "$root/.complete"
  fi
  echo "==> $suite ($(. "$root/etc/os-release"; echo "$PRETTY_NAME"), $(chroot "$root" /bin/sh -c 'ldd --version 2>/dev/null | head -1' || true))"
  for lib in libarchive.so.13 liblmdb.so.0 libcurl.so.4; do
    [ -e "$root/usr/lib/x86_64-linux-gnu/$lib" ] && echo "   note: $suite has $lib of its own (the release does not use it)"
  done
  grep -q "^$user:" "$root/etc/passwd" || chroot "$root" useradd -m -u $uid -s /bin/sh "$user"
  local home=$root/home/$user
  rm -rf "$home/udocker" "$home/.udocker" "$home/ca.crt"
  tar -C "$home" -xzf "$tarball"
  cp "$work/tls.crt" "$home/ca.crt"
  chown -R $uid:$uid "$home"
  for m in proc dev sys; do
    mountpoint -q "$root/$m" || { mount --rbind "/$m" "$root/$m"; mount --make-rslave "$root/$m"; mounted+=("$root/$m"); }
  done
  as_rel() { chroot --userspec=$uid:$uid "$root" /usr/bin/env -i HOME=/home/$user PATH=/usr/bin:/bin LANG=C.UTF-8 /bin/sh -c "cd && $1"; }
  local out
  if out=$(as_rel './udocker/udocker version' 2>&1) && echo "$out" | grep -q '^build: '; then
    pass "$suite: version ($(echo "$out" | grep '^build: '))"
  else fail "$suite: version: $out"; fi
  if out=$(as_rel "./udocker/udocker pull --registry=http://127.0.0.1:$HTTP_PORT check/busybox:1" 2>&1); then
    pass "$suite: pull over http"
  else fail "$suite: pull over http: $out"; fi
  if out=$(as_rel "./udocker/udocker rmi check/busybox:1 >/dev/null && UDOCKER_CA_BUNDLE=/home/$user/ca.crt ./udocker/udocker pull --registry=https://127.0.0.1:$TLS_PORT check/busybox:1" 2>&1); then
    pass "$suite: pull over https with UDOCKER_CA_BUNDLE"
  else fail "$suite: pull over https: $out"; fi
  if out=$(as_rel "./udocker/udocker pull --registry=https://127.0.0.1:$TLS_PORT check/busybox:1" 2>&1); then
    fail "$suite: a registry with an unknown CA was trusted: $out"
  else pass "$suite: a registry with an unknown CA is refused"; fi
  if out=$(as_rel './udocker/udocker install' 2>&1) && echo "$out" | grep -q 'bundle:'; then
    pass "$suite: install takes the release's tools"
  else fail "$suite: install: $out"; fi
  if out=$(as_rel './udocker/udocker create --name=c check/busybox:1 && ./udocker/udocker run --nobanner c /bin/echo ran-in-P1' 2>&1) \
     && echo "$out" | grep -q '^ran-in-P1$'; then
    pass "$suite: create and run in P1"
  else fail "$suite: run in P1: $out"; fi
  # Nothing of the launcher reaches the container.
  if out=$(as_rel './udocker/udocker run --nobanner c /bin/sh -c "env"' 2>&1) && ! echo "$out" | grep -qE 'UDOCKER_RELEASE_DIR|LD_LIBRARY_PATH'; then
    pass "$suite: no UDOCKER_RELEASE_DIR or LD_LIBRARY_PATH in the container"
  else fail "$suite: the launcher leaks into the container: $out"; fi
  # The release's tools (Debian 12's, given the release's glibc by install) start here.
  local t started=""
  for t in proot runc crun patchelf; do
    if out=$(as_rel "./.udocker/bin/$t --version" 2>&1); then started="$started $t"; else fail "$suite: the release's $t does not start: $out"; fi
  done
  [ -n "$started" ] && pass "$suite: the release's tools start:$started"
  # R1 needs a user namespace, which the kernel refuses to a process in a chroot (EPERM): there the
  # check says so instead.
  if ! as_rel 'unshare --user --map-root-user true' >/dev/null 2>&1; then
    echo "   R1 cannot be tried in a chroot: the kernel refuses user namespaces to chrooted processes"
  elif as_rel './udocker/udocker info' 2>/dev/null | grep -qE '^ *R1 +usable'; then
    if out=$(as_rel './udocker/udocker setup --execmode=R1 c && ./udocker/udocker run --nobanner c /bin/echo ran-in-R1' 2>&1) \
       && echo "$out" | grep -q '^ran-in-R1$'; then
      pass "$suite: run in R1"
    else fail "$suite: run in R1: $out"; fi
  else
    echo "   R1 not usable in $suite here: $(as_rel './udocker/udocker info' 2>&1 | grep -E '^ *R1' | head -1)"
  fi
}
for s in "${suites[@]}"; do check_suite "$s"; done

# R1 with the release's tools, where user namespaces work: on this host, as the test user (outside a
# chroot), with the release unpacked in a new home.
host_user=${UDOCKER_TEST_USER:-udocker-test}
if id "$host_user" >/dev/null 2>&1; then
  echo "==> this host ($(. /etc/os-release; echo "$PRETTY_NAME")), as $host_user: R1 with the release's runc or crun"
  hhome=$work/host-home
  mkdir -p "$hhome"
  tar -C "$hhome" -xzf "$tarball"
  chown -R "$host_user": "$hhome"
  as_host() { runuser -u "$host_user" -- env -i HOME="$hhome" PATH=/usr/bin:/bin LANG=C.UTF-8 /bin/sh -c "cd && $1"; }
  if out=$(as_host "./udocker/udocker install >/dev/null && ./udocker/udocker pull --registry=http://127.0.0.1:$HTTP_PORT check/busybox:1 >/dev/null && ./udocker/udocker create --name=c check/busybox:1 >/dev/null && ./udocker/udocker setup --execmode=R1 c && ./udocker/udocker run --nobanner c /bin/echo ran-in-R1" 2>&1) \
     && echo "$out" | grep -q '^ran-in-R1$'; then
    pass "host: run in R1 with the release's tools ($(as_host './udocker/udocker info' 2>/dev/null | grep -E '^ *(runc|crun) ' | awk '{print $1 ": " $2}' | tr '\n' ' '))"
  else fail "host: run in R1: $out"; fi
  # sync --install-remote from a release copies the release to the far host and runs it there.
  if [ -f /etc/udocker-test-sshd/peer.env ]; then
    source /etc/udocker-test-sshd/peer.env
    ssh_cmd="ssh -i $UDOCKER_TEST_PEER_KEY -o BatchMode=yes -o StrictHostKeyChecking=yes"
    far="ssh://$UDOCKER_TEST_PEER_USER@127.0.0.1:$UDOCKER_TEST_SSHD_PORT/~/release-check-sync"
    runuser -u "$UDOCKER_TEST_PEER_USER" -- sh -c 'rm -rf "$HOME"/release-check-sync "$HOME"/.cache/udocker/release-*'
    if out=$(as_host "./udocker/udocker sync --ssh='$ssh_cmd' --install-remote check/busybox:1 '$far' && ./udocker/udocker sync --ssh='$ssh_cmd' --install-remote check/busybox:1 '$far'" 2>&1) \
       && runuser -u "$UDOCKER_TEST_PEER_USER" -- sh -c 'ls "$HOME"/.cache/udocker/release-*/udocker' >/dev/null 2>&1; then
      pass "host: sync --install-remote copies the release to the far host and syncs through it"
    else fail "host: sync --install-remote from a release: $out"; fi
  fi
fi

if [ "$failures" -gt 0 ]; then
  echo "release-check.sh: $failures check(s) failed"
  exit 1
fi
echo "release-check.sh: every check passed"
