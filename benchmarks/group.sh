#!/usr/bin/env bash
# Group-store benchmark: two users (udocker-test and udocker-peer of scripts/setup-host.sh, members of
# its group) sharing one group store, against udocker 1.3.17 with one repository per user, in one run:
# 1. disk used by 2 users x 10 containers of the 100 MB image of benchmarks/pull.sh (standing in for
#    python:3-slim, whose blobs are 101 MB), against the disk of one udocker 1.3.17 container, on the
#    group directory's filesystem and on a new XFS with reflink (a loop image; LOOP_SIZE, default 8G);
# 2. 8 pulls of that image at once (4 per user) into a new group store, against one pull (and
#    udocker 1.3.17: 8 pulls at once into 8 repositories, against one);
# 3. `run --nobanner C /bin/busybox true` (P1; the image holds busybox only) in the group store, for the member who unpacked the layers and for
#    the other (who links a private copy), against the same binary on a store of one user.
# Pull rows are interleaved rounds in new directories, the best kept; run rows the median over
# RUN_ROUNDS interleaved rounds.
#
# Run as root. Environment: BENCH_WORK (default /var/tmp/udocker-bench-group; the group store goes in
# the group's directory), RUNS (default 3; pull rounds), RUN_ROUNDS (default 12), TRUE_RUNS (default 10), BENCH_BINARY (default: the release
# build, made unless SKIP_BUILD=1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "group.sh: run it as root (it runs the tools as two users)" >&2; exit 1; }
source /etc/udocker-test-group.env
WORK=${BENCH_WORK:-/var/tmp/udocker-bench-group}
RUNS=${RUNS:-3}
TRUE_RUNS=${TRUE_RUNS:-10}
RUN_ROUNDS=${RUN_ROUNDS:-12}
GROUP=$UDOCKER_TEST_GROUP
USERS=(udocker-test udocker-peer)
mkdir -p "$WORK/bin"
chmod 755 "$WORK" "$WORK/bin"
if [ -z "${BENCH_BINARY:-}" ]; then
  if [ -z "${SKIP_BUILD:-}" ]; then (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker); fi
  BENCH_BINARY="$here/.build/release/udocker"
fi
install -m 755 "$BENCH_BINARY" "$WORK/bin/udocker"
UD=$WORK/bin/udocker
BENCH_PYTHON=/usr/bin/python3 OLD=$(udocker_venv "$WORK/venv")
chmod -R a+rX "$WORK/venv"

build_big_image "$WORK/big" 5
rm -rf "$WORK/registry"
start_registry "$WORK/registry"
BENCH_PIDS=("$REGISTRY_PID")
trap bench_cleanup EXIT
push_oci "$WORK/big" latest bench/python:latest
REG="http://127.0.0.1:$REGISTRY_PORT"
IMAGE=bench/python:latest
RUN_ID=$(date +%s)
BASE=$WORK/r$RUN_ID            # the users' repositories and homes
GBASE=$UDOCKER_TEST_GROUP_DIR/bench-$RUN_ID   # the group stores
mkdir -p "$BASE"
install -d -m 2775 -g "$GROUP" "$GBASE"
LOOP_SIZE=${LOOP_SIZE:-8G} LOOP_IMAGE=$WORK/xfs.img LOOP_MNT=$WORK/xfs   # the XFS of the disk rows
# The trees are gigabytes: remove them whatever way the script ends, or the group directory fills up.
trap 'bench_cleanup; loop_fs_cleanup; rm -rf "$GBASE" "$BASE" 2>/dev/null || true' EXIT
chmod 755 "$BASE"
for u in "${USERS[@]}"; do install -d -o "$u" -g "$u" "$BASE/$u"; done

# as USER CMD...: CMD as USER, with its own HOME (index caches) under BASE.
as() {
  local u=$1; shift
  runuser -u "$u" -- env -C / HOME="$BASE/$u" PATH=/usr/local/bin:/usr/bin:/bin UDOCKER_NOSYSCONF=1 UDOCKER_TARBALL= \
    UDOCKER_USE_PROOT_EXECUTABLE="$(command -v proot)" "$@"
}
du_bytes() { du -s --block-size=1 -c "$@" 2>/dev/null | tail -1 | cut -f1; }
mb() { printf '%.1f' "$(echo "$1 / 1048576" | bc -l)"; }

# --- 1. disk: 2 users x 10 containers --------------------------------------------------------------
S=$GBASE/disk
for u in "${USERS[@]}"; do
  as "$u" "$UD" -q mkrepo --store="$S" --group="$GROUP" "$BASE/$u/ours"
  as "$u" "$UD" -q --repo="$BASE/$u/ours" pull --registry="$REG" "$IMAGE"
  for i in $(seq 10); do as "$u" "$UD" -q --repo="$BASE/$u/ours" create --name="c$i" "$IMAGE" >/dev/null; done
  as "$u" env UDOCKER_DIR="$BASE/$u/old" "$OLD" pull --registry="$REG" "$IMAGE" >/dev/null 2>&1
  for i in $(seq 10); do as "$u" env UDOCKER_DIR="$BASE/$u/old" "$OLD" create --name="c$i" "$IMAGE" >/dev/null 2>&1; done
done
# du counts each inode once across all its arguments: the store, both users' containers.
ours_disk=$(du_bytes "$S" "$BASE/udocker-test/ours/containers" "$BASE/udocker-peer/ours/containers")
old_disk=$(du_bytes "$BASE/udocker-test/old" "$BASE/udocker-peer/old")
one_old=$(du_bytes "$BASE/udocker-test/old/containers/$(ls "$BASE/udocker-test/old/containers" | grep -v '^\.' | head -1)")
private=$(du_bytes "$S/private")
stored_blobs=$(du_bytes "$S/blobs")
stored_layers=$(du_bytes "$S/layers")

# The same on a new XFS with reflink (a loop image, both users' repositories and the store on it, as
# a group's project filesystem would hold them): private copies share the layers' blocks there. df,
# not du, measures it: du counts reflinked blocks in full. udocker 1.3.17's one container is measured
# on it the same way.
if xfs_why=$(loop_fs_setup xfs); then
  X=$LOOP_MNT
  chmod 755 "$X"
  install -d -m 2775 -g "$GROUP" "$X/group"
  for u in "${USERS[@]}"; do install -d -o "$u" -g "$u" "$X/$u"; done
  x0=$(fs_used_kb "$LOOP_MNT")
  for u in "${USERS[@]}"; do
    as "$u" "$UD" -q mkrepo --store="$X/group/store" --group="$GROUP" "$X/$u/ours"
    as "$u" "$UD" -q --repo="$X/$u/ours" pull --registry="$REG" "$IMAGE"
    for i in $(seq 10); do as "$u" "$UD" -q --repo="$X/$u/ours" create --name="c$i" "$IMAGE" >/dev/null; done
  done
  x1=$(fs_used_kb "$LOOP_MNT")
  as udocker-test env UDOCKER_DIR="$X/udocker-test/old" "$OLD" pull --registry="$REG" "$IMAGE" >/dev/null 2>&1
  x2=$(fs_used_kb "$LOOP_MNT")
  as udocker-test env UDOCKER_DIR="$X/udocker-test/old" "$OLD" create --name=c1 "$IMAGE" >/dev/null 2>&1
  x3=$(fs_used_kb "$LOOP_MNT")
  xfs_ours=$(( (x1 - x0) * 1024 )) xfs_one_old=$(( (x3 - x2) * 1024 ))
  loop_fs_cleanup
else
  xfs_ours=n/a xfs_one_old=n/a
fi

# --- 2. pulls: 8 at once against one -----------------------------------------------------------------
declare -A best
keep() { local k=$1 v=$2; if [ -z "${best[$k]:-}" ] || (( $(echo "$v < ${best[$k]}" | bc -l) )); then best[$k]=$v; fi; }
# Before each timed step the dirty pages of the one before are written out: the steps write 100 MB to
# 800 MB each, and without this every step pays part of the last one's writeback.
settle() { sync; sleep 1; }
ratios=()
for round in $(seq "$RUNS"); do
  d=$GBASE/pull-$round
  for u in "${USERS[@]}"; do for i in 1 2 3 4 5; do
    as "$u" "$UD" -q mkrepo --store="$d" --group="$GROUP" "$BASE/$u/p$round-$i"
  done; done
  # our one pull, into a store of its own
  as udocker-test "$UD" -q mkrepo --store="$d-one" --group="$GROUP" "$BASE/udocker-test/p$round-one"
  settle; t0=$(now); as udocker-test "$UD" -q --repo="$BASE/udocker-test/p$round-one" pull --registry="$REG" "$IMAGE"; t1=$(now)
  one=$(secs "$t0" "$t1"); keep ours1 "$one"
  settle; t0=$(now)
  pids=()
  for u in "${USERS[@]}"; do for i in 1 2 3 4; do
    as "$u" "$UD" -q --repo="$BASE/$u/p$round-$i" pull --registry="$REG" "$IMAGE" & pids+=($!)
  done; done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(now); eight=$(secs "$t0" "$t1"); keep ours8 "$eight"; ratios+=("$(ratio "$eight" "$one")")
  settle; t0=$(now); as udocker-test env UDOCKER_DIR="$BASE/udocker-test/o$round-one" "$OLD" pull --registry="$REG" "$IMAGE" >/dev/null 2>&1; t1=$(now)
  keep old1 "$(secs "$t0" "$t1")"
  settle; t0=$(now)
  pids=()
  for u in "${USERS[@]}"; do for i in 1 2 3 4; do
    as "$u" env UDOCKER_DIR="$BASE/$u/o$round-$i" "$OLD" pull --registry="$REG" "$IMAGE" >/dev/null 2>&1 & pids+=($!)
  done; done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(now); keep old8 "$(secs "$t0" "$t1")"
  blobs=$(find "$d/blobs/sha256" -type f ! -name '*.type' | wc -l)
  layers=$(ls "$d/layers/sha256" | wc -l)
done

# --- 3. run overhead ---------------------------------------------------------------------------------
as udocker-test "$UD" -q mkrepo "$BASE/udocker-test/private"
as udocker-test "$UD" -q --repo="$BASE/udocker-test/private" pull --registry="$REG" "$IMAGE"
as udocker-test "$UD" -q --repo="$BASE/udocker-test/private" create --name=r "$IMAGE" >/dev/null
# One hyperfine per command and round, the three in a rotating order, and the median over the rounds:
# this disk's noise (+-15% between back-to-back runs of one command) is larger than the effect sought.
# run_median USER REPO CONTAINER: the median in ms of TRUE_RUNS runs.
run_median() {
  local json=$BASE/$1/run.json
  as "$1" hyperfine -N -w 2 -r "$TRUE_RUNS" --export-json "$json" "$UD --repo=$2 run --nobanner $3 /bin/busybox true" >/dev/null 2>&1
  python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$json"
}
declare -A runs
order=(private owner member)
for round in $(seq "$RUN_ROUNDS"); do
  for k in 0 1 2; do
    case ${order[$(( (round + k) % 3 ))]} in
      private) runs[private]+=" $(run_median udocker-test "$BASE/udocker-test/private" r)" ;;
      owner) runs[owner]+=" $(run_median udocker-test "$BASE/udocker-test/ours" c1)" ;;
      member) runs[member]+=" $(run_median udocker-peer "$BASE/udocker-peer/ours" c1)" ;;
    esac
  done
done
declare -A med
for n in private owner member; do
  med[$n]=$(echo "${runs[$n]}" | tr ' ' '\n' | grep . | sort -n | python3 -c 'import sys,statistics; print("%.2f" % statistics.median(float(x) for x in sys.stdin))')
done

echo
echo "Image: $(basename "$IMAGE") stand-in, 6 layers, $(mb "$(du_bytes "$WORK/big/blobs")") MB of blobs; group store on $(stat -f -c %T "$GBASE") ($GBASE); $(nproc) CPUs."
echo
echo "| Disk, 2 users x 10 containers | udocker 1.3.17 (a repository per user) | udocker (Swift), group store |"
echo "|---|---|---|"
echo "| total | $(mb "$old_disk") MB | $(mb "$ours_disk") MB (the second user's private copies $(mb "$private") MB) |"
echo "| in containers of udocker 1.3.17 ($(mb "$one_old") MB each) | $(ratio "$old_disk" "$one_old")x | $(ratio "$ours_disk" "$one_old")x (target < 2.2x) |"
echo "| of which | | blobs $(mb "$stored_blobs") MB, unpacked layers $(mb "$stored_layers") MB, private copies $(mb "$private") MB, the rest containers' directories |"
if [ "$xfs_ours" = n/a ]; then
  echo "| XFS with reflink | not measured: $xfs_why | |"
else
  echo "| XFS with reflink (loop image; df), in containers of udocker 1.3.17 ($(mb "$xfs_one_old") MB) | | $(mb "$xfs_ours") MB, $(ratio "$xfs_ours" "$xfs_one_old")x (target < 2.2x) |"
fi
echo
echo "| Pull of one image, best of $RUNS (each after sync) | udocker 1.3.17 | udocker (Swift) |"
echo "|---|---|---|"
echo "| one pull | ${best[old1]} s | ${best[ours1]} s |"
echo "| 8 at once (ours: 2 users, one group store; 1.3.17: 8 repositories) | ${best[old8]} s | ${best[ours8]} s |"
echo "| 8 at once / one | $(ratio "${best[old8]}" "${best[old1]}")x | $(ratio "${best[ours8]}" "${best[ours1]}")x (target < 1.5x) |"
echo "| ours, 8 at once / one in each round (the same disk state), and their median | | ${ratios[*]}; median $(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c 'import sys,statistics; print("%.2f" % statistics.median(float(x) for x in sys.stdin))')x |"
echo "| what the store holds after the 8 pulls | 8 copies | $blobs blob files, $layers unpacked layers |"
echo
echo "| run --nobanner C /bin/busybox true (P1), median over $RUN_ROUNDS rounds of $TRUE_RUNS | ms | / store of one user |"
echo "|---|---|---|"
echo "| store of one user | ${med[private]} | 1.00 |"
echo "| group store, member who unpacked the layers | ${med[owner]} | $(ratio "${med[owner]}" "${med[private]}") |"
echo "| group store, other member (private copy) | ${med[member]} | $(ratio "${med[member]}" "${med[private]}") |"
echo "(target: within 5%)"
