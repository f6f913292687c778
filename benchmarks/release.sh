#!/usr/bin/env bash
# Release benchmark: the size of each part of the release tarball, and the start-up time of the
# release (its launcher, loader and libraries) against the current build run in place and udocker
# 1.3.17, in one run: `--version`, `ps`, and `run /bin/true` in P1 (all three with the host's proot).
# Each round times every command of the three tools in turn (hyperfine -N, RUNS runs each); the table
# gives the best round's median, milliseconds.
#
# Run as root on a machine set up by scripts/setup-host.sh; the tools run as udocker-test.
# Environment: BENCH_WORK (default /var/tmp/udocker-bench-release), TARBALL (default: made by
# scripts/release.sh), BENCH_BINARY (the current build; default: the release build of the checkout),
# ROUNDS (default 3), RUNS (default 20).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "release.sh: run it as root (the tools run as udocker-test)" >&2; exit 1; }
WORK=${BENCH_WORK:-/var/tmp/udocker-bench-release}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-20}
BENCH_USER=udocker-test
rm -rf "$WORK"
mkdir -p "$WORK/out"
if [ -z "${TARBALL:-}" ]; then
  runuser -u "$BENCH_USER" -- bash "$here/scripts/release.sh" "$WORK/dist" >/dev/null
  TARBALL=$(ls "$WORK"/dist/udocker-*-linux-x86_64.tar.gz)
fi
tar -C "$WORK" -xzf "$TARBALL"
DEV=${BENCH_BINARY:-$(cd "$here" && swift build -c release --static-swift-stdlib --show-bin-path)/udocker}
[ -x "$DEV" ] || (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker)
install -m 755 "$DEV" "$WORK/dev-udocker"
BENCH_PYTHON=/usr/bin/python3 OLD=$(udocker_venv "$WORK/venv")
chmod -R a+rX "$WORK"
mkdir -p "$WORK/home"
chown -R "$BENCH_USER": "$WORK/home" "$WORK/out"
BENCH_ENV=("HOME=$WORK/home" "PATH=/usr/bin:/bin" "UDOCKER_NOSYSCONF=1" "UDOCKER_TARBALL=" "UDOCKER_USE_PROOT_EXECUTABLE=$(command -v proot)")

# One container per tool from the same busybox tree.
mkdir -p "$WORK/img/bin"
cp /usr/bin/busybox "$WORK/img/bin/busybox"
for a in sh true; do ln -s busybox "$WORK/img/bin/$a"; done
tar -C "$WORK/img" -cf "$WORK/img.tar" .
chmod 644 "$WORK/img.tar"
run_as() { local dir=$1; shift; local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$dir"); as_user "$@"; }
run_as "$WORK/home/ours" "$WORK/udocker/udocker" -q import "$WORK/img.tar" bench/bb:1 >/dev/null
run_as "$WORK/home/ours" "$WORK/udocker/udocker" -q create --name=c bench/bb:1 >/dev/null
run_as "$WORK/home/old" "$OLD" import "$WORK/img.tar" bench/bb:1 >/dev/null 2>&1
run_as "$WORK/home/old" "$OLD" create --name=c bench/bb:1 >/dev/null 2>&1
run_as "$WORK/home/old" "$OLD" setup --execmode=P1 c >/dev/null 2>&1

declare -A TOOL=([release]="$WORK/udocker/udocker" [current]="$WORK/dev-udocker" [old]="$OLD")
declare -A DIR=([release]="$WORK/home/ours" [current]="$WORK/home/ours" [old]="$WORK/home/old")
declare -A ARGS=([version]="--version" [ps]="ps" [run]="run --nobanner c /bin/true")
declare -A BEST
for round in $(seq "$ROUNDS"); do
  for cmd in version ps run; do
    for tool in release current old; do
      line="env ${BENCH_ENV[*]} UDOCKER_DIR=${DIR[$tool]} ${TOOL[$tool]} ${ARGS[$cmd]}"
      json=$WORK/out/$tool-$cmd-$round.json
      runuser -u "$BENCH_USER" -- hyperfine -N --style none --warmup 2 --runs "$RUNS" --export-json "$json" "$line" >/dev/null 2>&1 \
        || { echo "release.sh: $tool $cmd failed: $line" >&2; exit 1; }
      ms=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$json")
      BEST[$tool-$cmd]=$(min_of "${BEST[$tool-$cmd]:-}" "$ms")
    done
  done
done

echo "Release benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r); $(basename "$TARBALL"); best of $ROUNDS rounds of the median of $RUNS runs, ms."
echo
echo "| command | release | current build | udocker 1.3.17 | release / current | 1.3.17 / release |"
echo "|---|---:|---:|---:|---:|---:|"
for cmd in version ps run; do
  r=${BEST[release-$cmd]} c=${BEST[current-$cmd]} o=${BEST[old-$cmd]}
  echo "| \`${ARGS[$cmd]}\` | $r | $c | $o | $(ratio "$r" "$c") | $(ratio "$o" "$r") |"
done
echo
echo "Sizes (bytes):"
echo
echo '```'
cat "$WORK/udocker/SIZES"
echo "$(stat -c %s "$TARBALL") $(basename "$TARBALL") (compressed)"
echo "$(stat -c %s "$DEV") current build's binary, unstripped"
echo '```'
