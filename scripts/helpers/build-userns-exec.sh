#!/usr/bin/env bash
# Rebuilds the userns-exec helper (scripts/helpers/userns-exec.c) for x86_64 and aarch64 with the
# Swift toolchain's clang and lld, and prints the base64 text embedded in
# Sources/Runtime/Execution/UsernsHelper.swift. Freestanding: no libc, no sysroot needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
clang=${CLANG:-/opt/swift/usr/bin/clang}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for arch in x86_64 aarch64; do
  "$clang" --target="$arch-linux-gnu" -Os -ffreestanding -fno-stack-protector -fno-pic \
    -fno-asynchronous-unwind-tables -fno-unwind-tables -nostdlib -static -fuse-ld=lld \
    -Wl,--build-id=none -Wl,-z,norelro -Wl,-n -Wl,-z,noexecstack -Wl,-s -fno-ident -Wall -Wextra -Werror \
    -o "$out/userns-exec-$arch" "$here/userns-exec.c"
  echo "$arch ($(stat -c %s "$out/userns-exec-$arch") bytes, sha256 $(sha256sum < "$out/userns-exec-$arch" | cut -c1-64)):"
  base64 -w 100 "$out/userns-exec-$arch"
done
