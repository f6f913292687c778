#!/usr/bin/env bash
# Builds dist/udocker-<version>-linux-x86_64.tar.gz: udocker for a user without root on any x86_64
# Linux, with nothing installed. The tarball unpacks to udocker/:
#   udocker             the launcher (POSIX sh): runs libexec/udocker with the loader and libraries in
#                       lib/ (ld.so --library-path, so no LD_LIBRARY_PATH reaches what udocker runs)
#   libexec/udocker     the binary (Swift stdlib static), stripped
#   lib/                glibc's loader and libraries, libcurl with its TLS stack, libarchive, LMDB,
#                       libcrypto and what they need, all from this Debian 12 host
#   tools/              the tools bundle (scripts/build-tools-bundle.sh) that `udocker install` finds
#   share/man/man1/udocker.1, docs/, BUILD (commit and date), SIZES (bytes of each part)
# Usage: scripts/release.sh [OUTDIR] (default dist/). Needs the Swift toolchain, patchelf, binutils.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/dist}
die() { echo "release.sh: $*" >&2; exit 1; }
for cmd in swift strip objdump ldd patchelf tar gzip sha256sum; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd is missing (run scripts/setup-host.sh as root first)"
done
[ "$(uname -m)" = x86_64 ] || die "releases are made on x86_64 only"

version=$(sed -n 's/.*static let implementation = "\(.*\)".*/\1/p' "$here/Sources/Runtime/Version.swift")
[ -n "$version" ] || die "cannot read the version from Sources/Runtime/Version.swift"
commit=${RELEASE_COMMIT:-$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
if [ -z "${RELEASE_COMMIT:-}" ] && [ -n "$(git -C "$here" status --porcelain 2>/dev/null | grep -v '^??' || true)" ]; then commit="$commit-modified"; fi
name=udocker-$version-linux-x86_64
stage=$(mktemp -d "${TMPDIR:-/tmp}/udocker-release.XXXXXX")
trap 'rm -rf "$stage"' EXIT
top=$stage/udocker
mkdir -p "$top/libexec" "$top/lib" "$top/tools" "$top/share/man/man1" "$top/docs"

echo "==> building the release binary"
(cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker)
bin=$(cd "$here" && swift build -c release --static-swift-stdlib --show-bin-path)/udocker
install -m 755 "$bin" "$top/libexec/udocker"
strip --strip-all "$top/libexec/udocker"

echo "==> collecting the loader and libraries"
# What the binary links, what it loads on first use (dlopen: libcurl, libarchive, libcrypto), glibc's
# NSS modules for users and DNS, and everything those need: found by ldd, copied under their sonames.
libdir=/usr/lib/x86_64-linux-gnu
wanted=("$top/libexec/udocker" "$libdir/libcurl.so.4" "$libdir/libarchive.so.13" "$libdir/libcrypto.so.3")
for nss in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
  [ -e "$libdir/$nss" ] && wanted+=("$libdir/$nss")
done
copy_lib() {
  local src=$1 base
  base=$(basename "$src")
  [ -e "$top/lib/$base" ] && return 0
  cp -L "$src" "$top/lib/$base"
  chmod 644 "$top/lib/$base"
}
for f in "${wanted[@]}"; do
  [ "$f" = "$top/libexec/udocker" ] || copy_lib "$f"
  ldd "$f" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r dep; do copy_lib "$dep"; done
done
loader=$(patchelf --print-interpreter "$top/libexec/udocker")
cp -L "$loader" "$top/lib/ld-linux-x86-64.so.2"
chmod 755 "$top/lib/ld-linux-x86-64.so.2"
strip --strip-unneeded "$top"/lib/*.so* 2>/dev/null || true

echo "==> the launcher"
cat > "$top/udocker" <<'SH'
#!/bin/sh
# udocker release launcher: runs the binary with the loader and libraries shipped beside it. The loader
# is given the library directory (--library-path), so no LD_LIBRARY_PATH reaches the programs udocker
# runs; UDOCKER_RELEASE_DIR tells udocker where its release is (it removes the variable at start).
# No process is started on the way unless udocker was found on PATH or through a symlink: the start
# of every command (run is started hundreds of times per job) pays for each one.
self=$0
case $self in */*) ;; *) self=$(command -v -- "$self") ;; esac
real=$self
if [ -L "$self" ]; then real=$(readlink -f -- "$self") || real=$self; fi
dir=${real%/*}
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
UDOCKER_RELEASE_DIR=$dir
export UDOCKER_RELEASE_DIR
exec "$dir/lib/ld-linux-x86-64.so.2" --library-path "$dir/lib" --argv0 "$self" "$dir/libexec/udocker" "$@"
SH
chmod 755 "$top/udocker"

echo "==> tools, man page, docs"
bash "$here/scripts/build-tools-bundle.sh" "$top/tools/udocker-tools-x86_64.tar.gz" >/dev/null
python3 "$here/scripts/gen-man.py" "$top/udocker" > "$top/share/man/man1/udocker.1"
cmp -s "$top/share/man/man1/udocker.1" "$here/docs/udocker.1" || die "docs/udocker.1 is not the help of this build: run scripts/gen-man.py"
cp "$here/docs/"*.md "$top/docs/"
cp "$here/README.md" "$here/CHANGELOG.md" "$top/"
echo "$commit $(date -u +%Y-%m-%d)" > "$top/BUILD"
{
  echo "bytes part"
  echo "$(stat -c %s "$top/libexec/udocker") libexec/udocker (stripped binary)"
  echo "$(cat "$top"/lib/* | wc -c) lib/ ($(ls "$top/lib" | wc -l) files: loader, glibc, libcurl and its TLS stack, libarchive, LMDB, libcrypto)"
  for l in "$top"/lib/*; do echo "$(stat -c %s "$l") lib/$(basename "$l")"; done
  echo "$(stat -c %s "$top/tools/udocker-tools-x86_64.tar.gz") tools/udocker-tools-x86_64.tar.gz"
  echo "$(du -sb "$top/docs" | cut -f1) docs/"
} > "$top/SIZES"

mkdir -p "$out"
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" udocker
echo "$(stat -c %s "$out/$name.tar.gz") $name.tar.gz (compressed)" >> "$top/SIZES"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
cat "$top/SIZES" | sed -n '1,3p;$p'
echo "$out/$name.tar.gz"
