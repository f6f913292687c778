#!/usr/bin/env bash
# Container benchmark: create (each materialisation mode), clone, export, import, and COUNT containers
# from one image (time and disk), against udocker 1.3.17 on the same images in one run: the 100 MB
# multi-layer image of benchmarks/pull.sh and a 20,000-small-file image. Prints Markdown tables.
#
# Environment: BENCH_WORK (default /var/tmp/udocker-bench-containers), RUNS (default 3), COUNT
# (default 100), SMALL_FILES (default 20000), BENCH_USER (run both udockers as this user when started
# as root), SKIP_BUILD=1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"

WORK=${BENCH_WORK:-/var/tmp/udocker-bench-containers}
RUNS=${RUNS:-3}
COUNT=${COUNT:-100}
SMALL_FILES=${SMALL_FILES:-20000}
mkdir -p "$WORK"

OLD=$(udocker_venv "$here/benchmarks/.venv")
if [ -z "${SKIP_BUILD:-}" ]; then (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker); fi
UD="$here/.build/release/udocker"
ROOT_OPT=$(root_option)
BENCH_ENV=("HOME=$WORK/home" "PATH=/usr/local/bin:/usr/bin:/bin" "UDOCKER_TARBALL=" "UDOCKER_NOSYSCONF=1")
rm -rf "$WORK/home" "$WORK/old" "$WORK/ours" "$WORK/old2" "$WORK/ours2" "$WORK/out"
mkdir -p "$WORK/home" "$WORK/out"
[ -n "${BENCH_USER:-}" ] && [ "$(id -u)" -eq 0 ] && chown -R "$BENCH_USER" "$WORK"

old() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$WORK/old"); as_user "$OLD" $ROOT_OPT "$@"; }
ours() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$WORK/ours"); as_user "$UD" $ROOT_OPT "$@"; }

build_big_image "$WORK/big" 5
build_small_files_image "$WORK/small" "$SMALL_FILES"
rm -rf "$WORK/registry"
start_registry "$WORK/registry"
BENCH_PIDS+=("$REGISTRY_PID")
push_oci "$WORK/big" latest bench/big:latest
push_oci "$WORK/small" latest bench/small:latest
REG="http://127.0.0.1:$REGISTRY_PORT"
for img in bench/big:latest bench/small:latest; do
  old pull --registry="$REG" "$img" >/dev/null 2>&1
  ours -q pull --registry="$REG" "$img"
done

# timed NAME CMD...: seconds of one run of CMD (its output goes to a log; a failure stops the script).
timed() {
  local name=$1 t0 t1; shift
  t0=$(now)
  if ! "$@" > "$WORK/out/$name.log" 2>&1; then echo "$name failed:" >&2; cat "$WORK/out/$name.log" >&2; exit 1; fi
  t1=$(now)
  secs "$t0" "$t1"
}
# best NAME SETUP CMD...: best of $RUNS, with an untimed SETUP command (a string); "@RUN" in CMD's
# arguments becomes the run's number, so every run makes new names. Nothing is removed between runs:
# creating thousands of files in a directory tree just emptied is slow on ext4 (it scans the recently
# deleted inodes), which would measure the previous run's removal rather than this one's work.
best() {
  local name=$1 setup=$2 all="" run a; shift 2
  for run in $(seq "$RUNS"); do
    eval "$setup"
    local -a args=()
    for a in "$@"; do args+=("${a//@RUN/$run}"); done
    sync
    all="$all $(timed "$name" "${args[@]}")"
  done
  min_of $all
}

rows=()
row() { rows+=("| $1 | $2 | $3 | $(ratio "$2" "$3") |"); }

for img in big small; do
  image=bench/$img:latest
  o=$(best "old-create-$img" : old create --name=c$img@RUN "$image")
  for mode in link auto copy; do
    n=$(best "our-create-$mode-$img" : ours create --name=c$mode$img@RUN --materialize=$mode "$image")
    row "create $img ($mode)" "$o" "$n"
  done
  old create --name=base$img "$image" >/dev/null 2>&1
  ours -q create --name=base$img --materialize=auto "$image" >/dev/null
  o=$(best "old-clone-$img" : old clone --name=cl$img@RUN base$img)
  n=$(best "our-clone-$img" : ours clone --name=cl$img@RUN base$img)
  row "clone $img" "$o" "$n"
  o=$(best "old-export-$img" 'rm -f "$WORK/out/old.tar"' old export -o "$WORK/out/old.tar" base$img)
  n=$(best "our-export-$img" 'rm -f "$WORK/out/ours.tar"' ours export -o "$WORK/out/ours.tar" base$img)
  row "export $img" "$o" "$n"
  o=$(best "old-import-$img" : old import "$WORK/out/old.tar" "imp/$img:@RUN")
  n=$(best "our-import-$img" : ours import "$WORK/out/ours.tar" "imp/$img:@RUN")
  row "import $img" "$o" "$n"
done

# COUNT containers of the big image: time, and disk of the whole repository (store or layers included)
# with one container and with COUNT, measured by du (hard links counted once).
disk_kb() { du -sk "$1" | cut -f1; }
# New repositories holding only the big image, so the containers made above do not count.
old() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$WORK/old2"); as_user "$OLD" $ROOT_OPT "$@"; }
ours() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$WORK/ours2"); as_user "$UD" $ROOT_OPT "$@"; }
old pull --registry="$REG" bench/big:latest >/dev/null 2>&1
ours -q pull --registry="$REG" bench/big:latest
old create --name=one bench/big:latest >/dev/null 2>&1; old_one=$(disk_kb "$WORK/old2"); old rm one >/dev/null 2>&1
ours -q create --name=one --materialize=link bench/big:latest >/dev/null; our_one=$(disk_kb "$WORK/ours2"); ours -q rm one
many() { local i; for i in $(seq "$COUNT"); do "$@" >/dev/null 2>&1; done; }
t_old=$(timed old-many many old create bench/big:latest)
t_link=$(timed our-many-link many ours create --materialize=link bench/big:latest)
old_many=$(disk_kb "$WORK/old2"); link_many=$(disk_kb "$WORK/ours2")
bench_cleanup; BENCH_PIDS=(); rm -rf "$WORK/registry" "$WORK/old" "$WORK/ours" "$WORK/old2" "$WORK/ours2" "$WORK/out"

echo "Containers benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r); best of $RUNS runs, seconds."
echo "Images: big = 6 layers, ~100 MB compressed (benchmarks/pull.sh's); small = busybox + $SMALL_FILES small files."
echo "Ratios above 1 mean this udocker is faster."
echo
echo "| operation | udocker 1.3.17 | udocker (Swift) | 1.3.17 / ours |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "| $COUNT containers of big | udocker 1.3.17 | udocker (Swift), link mode |"
echo "|---|---:|---:|"
echo "| time (s) | $t_old | $t_link |"
echo "| repository disk with 1 container (MB) | $((old_one / 1024)) | $((our_one / 1024)) |"
echo "| repository disk with $COUNT containers (MB) | $((old_many / 1024)) | $((link_many / 1024)) |"
echo "| growth, $COUNT vs 1 | $(ratio "$old_many" "$old_one") | $(ratio "$link_many" "$our_one") |"
echo
echo "Targets: create link >= 20x, auto >= 10x, copy >= 4x; clone >= 10x; $COUNT link-mode containers under 1.1x the disk of one."
