#!/usr/bin/env bash
# Store-protection benchmark: what sealing the store (its files owned by the user's subordinate uid,
# links made from a user namespace) and the detect-mode run check cost. The binary before the change
# (OLD) against the one with it (NEW), and NEW with UDOCKER_STORE_PROTECTION=detect (no sealing; every
# run of a linked container is checked afterwards for changed store files), in one run, interleaved:
# `create --materialize=link|auto|copy` of containers.sh's two images (best of RUNS) and
# `run --nobanner CONTAINER /bin/true` per execution mode on run.sh's image (median of TRUE_RUNS,
# hyperfine -N), as the unprivileged benchmark user. Prints Markdown tables with new/old and
# detect/old. Target (the store-protection issue): NEW within 10% of OLD.
#
# Each tool has its own repository, new for every run of the script (its images pulled from a local
# docker-registry, run.sh's image imported from one tar); every timed create makes a new container;
# nothing is removed before the end. The commands of a row run in turn, the order rotating each round.
#
# Environment: OLD (default /var/tmp/bench-old/.build/release/udocker; when that default is missing it
# is built from OLD_COMMIT, default 6748bc6, the commit before the change, in /var/tmp/bench-old), NEW
# (default this checkout's .build/release/udocker, built first unless SKIP_BUILD=1; a NEW given is
# used as it is), BENCH_WORK (default /var/tmp/udocker-bench-protection), RUNS (creates of each kind
# per tool, best kept, default 5), TRUE_RUNS (runs of /bin/true per mode and tool, median kept,
# default 15), SMALL_FILES (default 20000), MODES (default "P1 P2 F1 F2 F3 F4 R1 R2 R3"),
# RUN_MATERIALIZE (how the run containers are created, default auto, udocker's default), FRESH (1,
# the default: also time the first run of new P1 containers right after their create), PARTS
# (default "create run"), BENCH_USER (default udocker-test when started as root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"

WORK=${BENCH_WORK:-/var/tmp/udocker-bench-protection}
RUNS=${RUNS:-5}
TRUE_RUNS=${TRUE_RUNS:-15}
SMALL_FILES=${SMALL_FILES:-20000}
MODES=${MODES:-P1 P2 F1 F2 F3 F4 R1 R2 R3}
RUN_MATERIALIZE=${RUN_MATERIALIZE:-auto}
PARTS=${PARTS:-create run}
OLD_DEFAULT=/var/tmp/bench-old/.build/release/udocker
OLD=${OLD:-$OLD_DEFAULT}
OLD_COMMIT=${OLD_COMMIT:-6748bc6}
NEW=${NEW:-}

die() { echo "protection.sh: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
if is_root; then
  BENCH_USER=${BENCH_USER:-udocker-test}
  id "$BENCH_USER" >/dev/null 2>&1 || die "user $BENCH_USER does not exist: run scripts/setup-host.sh or set BENCH_USER"
fi
give_to_user() { if [ -n "${BENCH_USER:-}" ] && is_root; then chown -R "$BENCH_USER" "$@"; fi; }
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
command -v hyperfine >/dev/null || die "hyperfine is not installed (scripts/setup-host.sh installs it)"

# --- the two binaries ------------------------------------------------------------------------------
if [ ! -x "$OLD" ]; then
  [ "$OLD" = "$OLD_DEFAULT" ] || die "OLD=$OLD is not an executable"
  echo "building OLD ($OLD_COMMIT) in /var/tmp/bench-old ..." >&2
  rm -rf /var/tmp/bench-old; mkdir -p /var/tmp/bench-old
  git -C "$here" archive "$OLD_COMMIT" | tar -x -C /var/tmp/bench-old
  (cd /var/tmp/bench-old && swift build -c release -q --static-swift-stdlib --product udocker)
fi
if [ -z "$NEW" ]; then
  if [ -z "${SKIP_BUILD:-}" ]; then (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker); fi
  NEW=$here/.build/release/udocker
fi
[ -x "$NEW" ] || die "NEW=$NEW is not an executable"

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
rm -rf "$WORK/home" "$WORK/out" "$WORK/bin" "$WORK/registry" "$WORK/host"
mkdir -p "$WORK/home" "$WORK/out" "$WORK/bin" "$WORK/runs"
# Copies: the benchmark user may not reach the originals, and a rebuild meanwhile cannot swap them.
cp "$OLD" "$WORK/bin/old"; cp "$NEW" "$WORK/bin/new"; chmod 755 "$WORK/bin/old" "$WORK/bin/new"
ident() { echo "$1 (sha256 $(sha256sum "$1" | cut -c1-12))"; }
OLD_ID=$(ident "$OLD"); NEW_ID=$(ident "$NEW")
# This run's repositories, removed (with any an interrupted run left) at the end, never before a timing.
RD=$(mktemp -d "$WORK/runs/run.XXXXXX")
cleanup_runs() {
  is_root || chmod -R u+w "$WORK/runs" 2>/dev/null || true
  rm -rf "$WORK/runs" "$WORK/registry"
}
trap 'bench_cleanup; cleanup_runs' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ROOT_OPT=$(root_option)
PROOT=$(command -v proot || true)
RUNC=$(command -v runc || true)
PATCHELF=$(command -v patchelf || true)
FAKECHROOT_SO=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/fakechroot/libfakechroot.so
[ -f "$FAKECHROOT_SO" ] || FAKECHROOT_SO=/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so
BENCH_ENV=("HOME=$WORK/home" "PATH=/usr/local/bin:/usr/bin:/bin" "UDOCKER_TARBALL=" "UDOCKER_NOSYSCONF=1"
           "UDOCKER_USE_RUNC_EXECUTABLE=$RUNC" "UDOCKER_FAKECHROOT_SO=$FAKECHROOT_SO"
           "UDOCKER_USE_PROOT_EXECUTABLE=$PROOT" "UDOCKER_USE_PATCHELF_EXECUTABLE=$PATCHELF")

# The three tools: binary, repository and the settings of each (words without spaces).
TOOLS=(old new detect)
declare -A BIN=([old]=$WORK/bin/old [new]=$WORK/bin/new [detect]=$WORK/bin/new)
declare -A REPO=([old]=$RD/old [new]=$RD/new [detect]=$RD/detect)
declare -A TENV=([old]="" [new]="" [detect]="UDOCKER_STORE_PROTECTION=detect")
declare -A LABEL=([old]="old" [new]="new" [detect]="new, detect")
# ud TOOL ARGS...: that tool's udocker on its repository, as the benchmark user.
ud() {
  local t=$1; shift
  local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=${REPO[$t]}" ${TENV[$t]})
  as_user "${BIN[$t]}" $ROOT_OPT "$@"
}
# quiet LOG CMD...: CMD with its output in $WORK/out/LOG.log; a failure shows it and stops the script.
quiet() {
  local log="$WORK/out/$1.log"; shift
  if ! "$@" > "$log" 2>&1; then echo "protection.sh: '$*' failed:" >&2; cat "$log" >&2; exit 1; fi
}
# first_line FILE STATUS: the first line of FILE that reads like an error (else its first line, else
# the exit status), for an n/a.
first_line() { grep -v '^[[:space:]]*$' "$1" | grep -m1 -iE 'error|fail|not |cannot|denied|invalid' || grep -m1 -v '^[[:space:]]*$' "$1" || echo "exit status $2"; }
NOTES=()

# --- the images ---------------------------------------------------------------------------------------
if has_part create; then
  build_big_image "$WORK/big" 5
  build_small_files_image "$WORK/small" "$SMALL_FILES"
fi
if has_part run; then
  build_host_tree "$WORK/host"
  tar -C "$WORK/host" --owner=0 --group=0 --numeric-owner -cf "$WORK/host.tar" .
  rm -rf "$WORK/host"
fi
give_to_user "$WORK/home" "$WORK/out" "$RD"
if has_part create; then
  start_registry "$WORK/registry"
  BENCH_PIDS+=("$REGISTRY_PID")
  push_oci "$WORK/big" latest bench/big:latest
  push_oci "$WORK/small" latest bench/small:latest
  REG="http://127.0.0.1:$REGISTRY_PORT"
fi
for t in "${TOOLS[@]}"; do
  if has_part create; then
    for img in big small; do quiet "$t-pull-$img" ud "$t" pull --registry="$REG" "bench/$img:latest"; done
  fi
  has_part run && quiet "$t-import" ud "$t" import "$WORK/host.tar" bench/host:1
done
bench_cleanup; BENCH_PIDS=()

# What protection each repository's store has: NEW's `info` line, and how many layers are sealed.
for t in new detect; do
  p=$(ud "$t" info 2>/dev/null | grep -m1 'store protection:' | sed 's/^ *store protection: *//' || true)
  layers=$(find "${REPO[$t]}/store/layers/sha256" -mindepth 2 -maxdepth 2 -name layer.json 2>/dev/null | wc -l)
  sealed=$(find "${REPO[$t]}/store/layers/sha256" -mindepth 2 -maxdepth 2 -name sealed 2>/dev/null | wc -l)
  NOTES+=("${LABEL[$t]}: store protection: ${p:-(not shown by info)}; $sealed of $layers store layers sealed after pull/import.")
done
# containers_note TOOL: its containers by materialisation mode and recorded protection (materialize.json).
containers_note() {
  local s
  s=$(python3 - "${REPO[$1]}/containers" <<'PY2'
import collections, glob, json, os, sys
c = collections.Counter()
for f in glob.glob(os.path.join(sys.argv[1], "*", "materialize.json")):
    if os.path.islink(os.path.dirname(f)):
        continue  # a name, linking to its container's directory
    try:
        m = json.load(open(f))
    except Exception:
        continue
    c["%s/%s" % (m.get("mode", "?"), m.get("protection", "none"))] += 1
print(", ".join("%s %d" % kv for kv in sorted(c.items())) or "none")
PY2
  ) || s="?"
  NOTES+=("${LABEL[$1]}: containers by mode/recorded protection: $s.")
}
sync; sleep 3

# --- create ---------------------------------------------------------------------------------------------
# timed_create TOOL NAME ARGS...: seconds of one `create --name=NAME ARGS` (after sync).
timed_create() {
  local t=$1 name=$2 log="$WORK/out/$1-create.log" t0 t1; shift 2
  sync
  t0=$(now)
  if ! ud "$t" create --name="$name" "$@" > "$log" 2>&1; then echo "create ($t) failed:" >&2; cat "$log" >&2; exit 1; fi
  t1=$(now)
  secs "$t0" "$t1"
}
create_rows=()
if has_part create; then
  for img in big small; do
    for mode in link auto copy; do
      declare -A ct=([old]="" [new]="" [detect]="")
      for r in $(seq "$RUNS"); do
        for k in 0 1 2; do
          t=${TOOLS[$(( (k + r - 1) % 3 ))]}
          ct[$t]+=" $(timed_create "$t" "c$mode$img$r" --materialize=$mode "bench/$img:latest")"
        done
      done
      o=$(min_of ${ct[old]}); n=$(min_of ${ct[new]}); d=$(min_of ${ct[detect]})
      create_rows+=("| create $img ($mode) | $o | $n | $d | $(ratio "$n" "$o") | $(ratio "$d" "$o") |")
      unset ct
    done
  done
fi

# --- run /bin/true --------------------------------------------------------------------------------------
ms() { [ "$1" = n/a ] && { echo n/a; return; }; printf '%.1f' "$(echo "$1 * 1000" | bc -l)"; }
minus_ms() { { [ "$1" = n/a ] || [ "$2" = n/a ]; } && { echo n/a; return; }; printf '%+.1f' "$(echo "($1 - $2) * 1000" | bc -l)"; }
# run_cmd TOOL CONTAINER: the command line hyperfine runs (no shell; env gives the tool's settings).
run_cmd() { echo "env UDOCKER_DIR=${REPO[$1]} ${TENV[$1]} ${BIN[$1]} $ROOT_OPT run --nobanner $2 /bin/true"; }
# hf_once TOOL CONTAINER KEY: one timed run (hyperfine -N) of /bin/true in CONTAINER, its seconds
# appended to $WORK/out/KEY.times; on a failure, a note and $WORK/out/KEY.failed (no more runs).
hf_once() {
  local t=$1 c=$2 key=$3
  [ -f "$WORK/out/$key.failed" ] && return 0
  if as_user hyperfine -N --style none --runs 1 --export-csv "$WORK/out/$key.csv" "$(run_cmd "$t" "$c")" \
       > "$WORK/out/$key.hf" 2>&1; then
    # Columns: command,mean,stddev,median,user,system,min,max (the command may hold commas).
    tail -n1 "$WORK/out/$key.csv" | awk -F, '{print $(NF-6)}' >> "$WORK/out/$key.times"
  else
    NOTES+=("$key: n/a: failed while timed: $(first_line "$WORK/out/$key.hf" 1)")
    touch "$WORK/out/$key.failed"
  fi
}
# median_of KEY: the median of KEY's times, or n/a when it failed or has none.
median_of() {
  if [ -f "$WORK/out/$1.failed" ] || [ ! -s "$WORK/out/$1.times" ]; then echo n/a; return; fi
  sort -g "$WORK/out/$1.times" | awk '{v[NR]=$1} END {printf "%.4f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}
run_row() {  # LABEL OLD NEW DETECT (seconds or n/a)
  run_rows+=("| $1 | $(ms "$2") | $(ms "$3") | $(ms "$4") | $(ratio "$3" "$2") | $(ratio "$4" "$2") | $(minus_ms "$3" "$2") | $(minus_ms "$4" "$3") |")
}
run_rows=()
if has_part run; then
  for M in $MODES; do
    c=run$M
    live=()
    for t in "${TOOLS[@]}"; do
      why=""
      rm -f "$WORK/out/$t-$M.failed"; : > "$WORK/out/$t-$M.times"
      if ! ud "$t" create --name=$c --materialize="$RUN_MATERIALIZE" bench/host:1 > "$WORK/out/$t-$M-create.log" 2>&1; then
        why="create: $(first_line "$WORK/out/$t-$M-create.log" 1)"
      elif ! ud "$t" setup --execmode=$M $c > "$WORK/out/$t-$M-setup.log" 2>&1; then
        why="setup --execmode=$M: $(first_line "$WORK/out/$t-$M-setup.log" 1)"
      elif ! as_user sh -c "exec $(run_cmd "$t" $c)" </dev/null > "$WORK/out/$t-$M-trial.log" 2>&1; then
        why="trial run: $(first_line "$WORK/out/$t-$M-trial.log" 1)"
      fi
      if [ -n "$why" ]; then NOTES+=("$t-$M: n/a: $(echo "$why" | head -c 300)"); touch "$WORK/out/$t-$M.failed"
      else live+=("$t"); fi
    done
    # TRUE_RUNS rounds, each running every live tool once (the first tool rotating), the trial run
    # above being the warm-up. They start 2 s after the creates: the detect-mode check takes every
    # linked file whose ctime is in or after the second its run started (a link made by a create changes
    # the inode's ctime) for a candidate and hashes it, which the row "right after create" measures.
    sleep 2
    n=${#live[@]}
    for r in $(seq "$TRUE_RUNS"); do
      for k in $(seq 0 $((n - 1))); do
        t=${live[$(( (k + r - 1) % n ))]}
        hf_once "$t" "$c" "$t-$M"
      done
    done
    run_row "$M" "$(median_of "old-$M")" "$(median_of "new-$M")" "$(median_of "detect-$M")"
  done
  # The first run of a new container (P1, the execution mode a container starts with), started as
  # soon as its create returns: TRUE_RUNS rounds, each making one new container per tool and timing
  # its first run.
  if [ "${FRESH:-1}" = 1 ]; then
    for t in "${TOOLS[@]}"; do rm -f "$WORK/out/$t-fresh.failed"; : > "$WORK/out/$t-fresh.times"; done
    for r in $(seq "$TRUE_RUNS"); do
      for k in 0 1 2; do
        t=${TOOLS[$(( (k + r - 1) % 3 ))]}
        [ -f "$WORK/out/$t-fresh.failed" ] && continue
        if ! ud "$t" create --name=fresh$r --materialize="$RUN_MATERIALIZE" bench/host:1 > "$WORK/out/$t-fresh-create.log" 2>&1; then
          NOTES+=("$t-fresh: n/a: create: $(first_line "$WORK/out/$t-fresh-create.log" 1)"); touch "$WORK/out/$t-fresh.failed"; continue
        fi
        hf_once "$t" "fresh$r" "$t-fresh"
      done
    done
    run_row "P1, first run right after create" "$(median_of old-fresh)" "$(median_of new-fresh)" "$(median_of detect-fresh)"
  fi
fi

echo "Store-protection benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Run as user ${BENCH_USER:-$(id -un)}. old = $OLD_ID; new = $NEW_ID;"
echo "new, detect = new with UDOCKER_STORE_PROTECTION=detect for pull, create and run. Ratios below 1.10 meet the target."
echo
if has_part create; then
  echo "Create: best of $RUNS runs each, seconds; the three commands of a row in turn, the order rotating."
  echo "Images: big = 6 layers, ~100 MB compressed (benchmarks/pull.sh's); small = busybox + $SMALL_FILES small files."
  echo
  echo "| operation | old | new | new, detect | new / old | detect / old |"
  echo "|---|---:|---:|---:|---:|---:|"
  printf '%s\n' "${create_rows[@]}"
  echo
fi
if has_part run; then
  echo "\`run --nobanner CONTAINER /bin/true\`: median of $TRUE_RUNS runs (hyperfine -N, one run each per round, the order rotating), ms;"
  echo "containers made with --materialize=$RUN_MATERIALIZE from run.sh's image (host bash, coreutils and PRoot with their libraries, imported from one tar),"
  echo "timed from 2 s after their create and setup on; the last row: the first run of a new container, started as soon as its create returned."
  echo
  echo "| mode | old (ms) | new (ms) | new, detect (ms) | new / old | detect / old | new − old (ms) | detect − new (ms) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${run_rows[@]}"
  echo
fi
containers_note new; containers_note detect
if [ ${#NOTES[@]} -gt 0 ]; then
  echo "Notes:"
  for x in "${NOTES[@]}"; do echo "- $x"; done
fi
