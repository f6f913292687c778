#!/usr/bin/env bash
# Builds a tools bundle for `udocker install --from=FILE` from the Debian packages installed on this
# host (proot, runc, crun, patchelf, libfakechroot; scripts/setup-host.sh installs them).
#
# Usage: scripts/build-tools-bundle.sh [OUT.tar.gz]      (default: ./udocker-tools-<arch>.tar.gz)
#
# The bundle holds bin/proot bin/runc bin/crun bin/patchelf lib/libfakechroot.so, the shared libraries
# they need that are not part of glibc, and BUNDLE.json (first entry) listing every file with its
# sha256, size and the Debian package and version it came from. The programs get the RUNPATH
# $ORIGIN/../lib and the libraries $ORIGIN, so they find their libraries in any repository without
# LD_LIBRARY_PATH (which would leak into the containers). Runs as any user; writes only OUT.
set -euo pipefail

die() { echo "build-tools-bundle.sh: $*" >&2; exit 1; }

for cmd in dpkg-query ldd patchelf sha256sum tar gzip; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd is missing: run scripts/setup-host.sh as root (Debian 12) first"
done

case "$(uname -m)" in
  x86_64) arch=x86_64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
out=${1:-$PWD/udocker-tools-$arch.tar.gz}
case "$out" in /*) ;; *) out=$PWD/$out ;; esac

# package : the file it installs (an extended regex for `dpkg -L`) : name in the bundle
tools=(
  "proot:/s?bin/proot$:bin/proot"
  "runc:/s?bin/runc$:bin/runc"
  "crun:/s?bin/crun$:bin/crun"
  "patchelf:/s?bin/patchelf$:bin/patchelf"
  "libfakechroot:/fakechroot/libfakechroot[.]so$:lib/libfakechroot.so"
)
# glibc's own libraries come from the host that runs the tools, never from the bundle.
glibc_re='^(linux-vdso|linux-gate|ld-linux[^/]*|ld64|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale|libthread_db)\.so'

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
version_of() { dpkg-query -W -f='${Version}' "$1"; }

# The package owning a library: dpkg records one spelling of the path, and on merged-/usr systems
# that may be the /lib or the /usr/lib one, of the symlink or of its target.
owner_of() {
  local p real cand owner
  p=$1
  real=$(readlink -f "$p")
  for cand in "$p" "$real" "${p#/usr}" "${real#/usr}" "/usr$p" "/usr$real"; do
    if owner=$(dpkg-query -S "$cand" 2>/dev/null | head -n 1); then
      owner=${owner%%: *}
      echo "${owner%%:*}"
      return 0
    fi
  done
  return 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/udocker-tools-bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/bundle
mkdir -p "$stage/bin" "$stage/lib"
declare -A origin=()   # bundle path -> "package version"
declare -A libsrc=()   # library soname -> host path

for t in "${tools[@]}"; do
  IFS=: read -r pkg pattern dest <<<"$t"
  installed "$pkg" || die "Debian package $pkg is not installed: run scripts/setup-host.sh as root first"
  src=$(dpkg-query -L "$pkg" | grep -E -- "$pattern" | head -n 1 || true)
  [ -n "$src" ] && [ -f "$src" ] || die "package $pkg has no file matching $pattern"
  cp -L "$src" "$stage/$dest"
  origin[$dest]="$pkg $(version_of "$pkg")"
  # Every library the loader would map for it (ldd lists indirect ones too), except glibc's.
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    [[ "$name" =~ $glibc_re ]] && continue
    [ -f "$path" ] || die "$src needs $name, which is not found on this host"
    libsrc[$name]=$path
  done < <(ldd "$src")
done

for name in "${!libsrc[@]}"; do
  path=${libsrc[$name]}
  pkg=$(owner_of "$path") || die "cannot tell which Debian package installed $path"
  cp -L "$path" "$stage/lib/$name"
  origin[lib/$name]="$pkg $(version_of "$pkg")"
done

chmod 0755 "$stage"/bin/*
chmod 0644 "$stage"/lib/*
for f in "$stage"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$f"; done
for f in "$stage"/lib/*; do patchelf --set-rpath '$ORIGIN' "$f"; done

# Check what was made: RUNPATH set, every non-glibc library resolved inside the bundle, programs start.
for f in "$stage"/bin/* "$stage"/lib/*; do
  patchelf --print-rpath "$f" | grep -q '^\$ORIGIN' || die "$f has no RUNPATH \$ORIGIN after patchelf"
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    [[ "$name" =~ $glibc_re ]] && continue
    case "$(readlink -f "$path")" in
      "$stage"/lib/*) ;;
      *) die "$(basename "$f") loads $name from $path, not from the bundle's lib/" ;;
    esac
  done < <(env -i PATH=/usr/bin:/bin ldd "$f")
done
for p in proot runc crun patchelf; do
  env -i PATH=/usr/bin:/bin "$stage/bin/$p" --version >/dev/null 2>&1 || die "bin/$p --version fails after patching"
done

# BUNDLE.json: format 1; paths, packages and versions are plain ASCII without quotes or backslashes.
host=$( (. /etc/os-release && echo "$ID $VERSION_ID") 2>/dev/null || echo unknown)
{
  printf '{\n  "format": 1,\n  "arch": "%s",\n  "built_on": "%s",\n  "files": [\n' "$arch" "$host"
  first=1
  for f in $(cd "$stage" && ls -d bin/* lib/* | LC_ALL=C sort); do
    read -r pkg ver <<<"${origin[$f]}"
    for v in "$f" "$pkg" "$ver"; do
      [[ "$v" =~ ^[A-Za-z0-9._+:~/-]+$ ]] || die "unexpected characters in '$v'"
    done
    sum=$(sha256sum "$stage/$f" | cut -d' ' -f1)
    size=$(stat -c %s "$stage/$f")
    [ $first -eq 1 ] || printf ',\n'
    first=0
    printf '    {"path": "%s", "sha256": "%s", "size": %s, "package": "%s", "version": "%s"}' \
      "$f" "$sum" "$size" "$pkg" "$ver"
  done
  printf '\n  ]\n}\n'
} >"$stage/BUNDLE.json"

# Reproducible archive: BUNDLE.json first, then bin/ and lib/ in name order, fixed owner and time.
(cd "$stage" && { echo BUNDLE.json; echo bin; ls -d bin/* | LC_ALL=C sort; echo lib; ls -d lib/* | LC_ALL=C sort; } \
  | tar --create --no-recursion --files-from=- --owner=0 --group=0 --numeric-owner \
        --mtime='2000-01-01 00:00:00Z' --format=gnu) | gzip -n -9 >"$work/out.tar.gz"
mv -f "$work/out.tar.gz" "$out"
echo "$out"
