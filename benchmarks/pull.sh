#!/usr/bin/env bash
# Pull benchmark: a multi-layer image of at least 100 MB, built here and pushed to a local
# docker-registry (plain HTTP on 127.0.0.1), pulled in one run by udocker 1.3.17 (pip, in
# benchmarks/.venv), by `skopeo copy` to a dir, and by this udocker (release build); plus pull followed
# by create. Prints a Markdown table of the best of $RUNS runs with ratios. Commands this udocker does
# not have yet are reported as n/a.
#
# Environment: BENCH_WORK (work dir, default /var/tmp/udocker-bench-pull), RUNS (default 3),
# LAYERS (default 5), BENCH_USER (run the udockers as this user when started as root, e.g. udocker-test
# from scripts/setup-host.sh; otherwise root runs them with --allow-root), SKIP_BUILD=1 (use the
# existing release build).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"

WORK=${BENCH_WORK:-/var/tmp/udocker-bench-pull}
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-5}
IMAGE=bench/big:latest

mkdir -p "$WORK"
[ -n "${BENCH_USER:-}" ] && [ "$(id -u)" -eq 0 ] && chown "$BENCH_USER" "$WORK"

# --- tools ---------------------------------------------------------------------------------
OLD=$(udocker_venv "$here/benchmarks/.venv")
if [ -z "${SKIP_BUILD:-}" ]; then (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker); fi
UD="$here/.build/release/udocker"
ROOT_OPT=$(root_option)
# A private HOME; UDOCKER_TARBALL empty so udocker 1.3.17 does not try to download its tools on
# every command (`autoinstall = False` in a config file is read as a true string and does not help).
BENCH_ENV=("HOME=$WORK/home" "PATH=/usr/local/bin:/usr/bin:/bin" "UDOCKER_TARBALL=" "UDOCKER_NOSYSCONF=1")
mkdir -p "$WORK/home"
[ -n "${BENCH_USER:-}" ] && [ "$(id -u)" -eq 0 ] && chown -R "$BENCH_USER" "$WORK/home"

has_command() { as_user "$UD" $ROOT_OPT "$1" --help >/dev/null 2>&1; }

# --- the image -----------------------------------------------------------------------------
layout="$WORK/layout"
build_big_image "$layout" "$LAYERS"
image_bytes=$(python3 -c 'import json,sys; l=sys.argv[1]; i=json.load(open(l+"/index.json")); d=i["manifests"][0]["digest"].split(":")[1]; m=json.load(open(l+"/blobs/sha256/"+d)); print(sum(x["size"] for x in m["layers"]))' "$layout")
layer_count=$((LAYERS + 1))

# --- the registry --------------------------------------------------------------------------
rm -rf "$WORK/registry"
start_registry "$WORK/registry"
BENCH_PIDS+=("$REGISTRY_PID")
REG="127.0.0.1:$REGISTRY_PORT"
# Docker v2 schema 2, which udocker 1.3.17 reads.
HOME="$WORK/home" skopeo --insecure-policy copy -q --format v2s2 --dest-tls-verify=false \
  "oci:$layout:latest" "docker://$REG/$IMAGE"

# --- the timed commands (each into a new, empty repository or directory) ------------------
# Nothing is removed right before a timed run: creating thousands of files just after a large tree
# was deleted is several times slower on ext4 (it scans the recently deleted inodes), which would
# measure the previous run's removal and penalise whichever tool creates the most files. Every run
# gets new directories under $WORK/runs, removed at the end; the commands of a round run in a
# different order each round, so none always follows another's writes.
old() { as_user "$OLD" $ROOT_OPT "$@"; }
ours() { as_user "$UD" $ROOT_OPT "$@"; }
RUNS_DIR="$WORK/runs"
rm -rf "$RUNS_DIR"; mkdir -p "$RUNS_DIR"
[ -n "${BENCH_USER:-}" ] && [ "$(id -u)" -eq 0 ] && chown "$BENCH_USER" "$RUNS_DIR"
sync; sleep 3
RUN_DIR=""   # set per timed run

old_pull() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$RUN_DIR/repo"); old pull --registry="http://$REG" "$IMAGE"; }
old_pull_create() { old_pull && { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$RUN_DIR/repo"); old create --name=bench "$IMAGE"; }; }
our_pull() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$RUN_DIR/repo"); ours pull --registry="http://$REG" "$IMAGE"; }
our_pull_create() { our_pull && { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$RUN_DIR/repo"); ours create --name=bench "$IMAGE"; }; }
skopeo_copy() { HOME="$WORK/home" skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG/$IMAGE" "dir:$RUN_DIR/dir"; }

# time_it NAME: one timed run of the function NAME in a new directory; prints seconds, or fails
# with the command's output.
time_it() {
  local t0 t1 log="$WORK/$1.log"
  RUN_DIR=$(mktemp -d "$RUNS_DIR/$1.XXXXXX")
  [ -n "${BENCH_USER:-}" ] && [ "$(id -u)" -eq 0 ] && chown "$BENCH_USER" "$RUN_DIR"
  sync
  t0=$(now)
  if ! "$1" > "$log" 2>&1; then echo "$1 failed; output:" >&2; cat "$log" >&2; return 1; fi
  t1=$(now)
  secs "$t0" "$t1"
}

have_pull=no; has_command pull && have_pull=yes
have_create=no; [ $have_pull = yes ] && has_command create && have_create=yes

declare -A times
names=(old_pull old_pull_create skopeo_copy)
[ $have_pull = yes ] && names+=(our_pull)
[ $have_create = yes ] && names+=(our_pull_create)
for name in "${names[@]}"; do times[$name]=""; done
for run in $(seq "$RUNS"); do
  echo "run $run of $RUNS ..." >&2
  # Rotate the order: round r starts with the r-th command.
  n=${#names[@]}
  for k in $(seq 0 $((n - 1))); do
    name=${names[$(( (k + run - 1) % n ))]}
    times[$name]+=" $(time_it "$name")"
  done
done
bench_cleanup; BENCH_PIDS=(); rm -rf "$WORK/registry" "$RUNS_DIR"   # the built layout stays, for the next run

best() { min_of ${times[$1]}; }
op=$(best old_pull); opc=$(best old_pull_create); sk=$(best skopeo_copy)
np=n/a; npc=n/a
[ $have_pull = yes ] && np=$(best our_pull)
[ $have_create = yes ] && npc=$(best our_pull_create)

echo
echo "Image: $layer_count layers, $((image_bytes / 1048576)) MB compressed, Docker v2 schema 2, local docker-registry over HTTP."
echo "Best of $RUNS runs, seconds; $(nproc) CPUs, $(uname -r), page cache warm. Ratios above 1 mean this udocker is faster."
echo
echo "| Operation | udocker 1.3.17 | skopeo copy (dir) | udocker (Swift) | udocker 1.3.17 / ours | skopeo / ours |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| pull | $op | $sk | $np | $(ratio "$op" "$np") | $(ratio "$sk" "$np") |"
echo "| pull + create | $opc | – | $npc | $(ratio "$opc" "$npc") | – |"
echo
echo "Targets: pull + create at least 3x faster than udocker 1.3.17 (ratio >= 3); pull alone within 3x of udocker 1.3.17's pull (ratio >= 0.33)."
