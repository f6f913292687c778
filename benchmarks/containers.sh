#!/usr/bin/env bash
# Container benchmark: create (each materialisation mode), clone, export, import, and COUNT containers
# from one image (time and disk), against udocker 1.3.17 on the same images in one run: the 100 MB
# multi-layer image of benchmarks/pull.sh and a 20,000-small-file image. Prints Markdown tables, one
# set per filesystem measured: BENCH_WORK's own (e.g. ext4) and, when run as root, a new XFS (or
# btrfs) filesystem on a loop-mounted sparse image: they reflink, which ext4 cannot.
#
# Environment: BENCH_WORK (default /var/tmp/udocker-bench-containers), RUNS (default 3), COUNT
# (default 100; 0 leaves the COUNT-container part out, which takes minutes), SMALL_FILES (default 20000), BENCH_USER (run both udockers as this user when started
# as root), SKIP_BUILD=1.
# FILESYSTEMS: what to measure on, in order: `work` (BENCH_WORK's filesystem; its type, e.g. `ext4`,
# names it too), `xfs` and `btrfs` (a new filesystem of that type, made by mkfs on a sparse image
# loop-mounted under BENCH_WORK, one at a time; needs root, the mkfs tool and loop devices). Default
# `work xfs`; when XFS cannot be set up, BENCH_WORK's alone with a note saying why (a filesystem
# named in FILESYSTEMS that cannot be set up is an error). LOOP_SIZE (default 32G): the image's size;
# udocker 1.3.17's COUNT containers alone take about 13 GB, and a sparse image takes what is written.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"

WORK=${BENCH_WORK:-/var/tmp/udocker-bench-containers}
RUNS=${RUNS:-3}
COUNT=${COUNT:-100}
SMALL_FILES=${SMALL_FILES:-20000}
LOOP_SIZE=${LOOP_SIZE:-32G}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

die() { echo "containers.sh: $*" >&2; exit 1; }
# give_to_user PATH...: makes PATH writable by $BENCH_USER when we are root and one is set.
give_to_user() { if [ -n "${BENCH_USER:-}" ] && is_root; then chown -R "$BENCH_USER" "$@"; fi; }

WORK_FS=$(findmnt -n -o FSTYPE --target "$WORK" 2>/dev/null || stat -f -c %T "$WORK")
LOOP_IMAGE=$WORK/loopfs.img
LOOP_MNT=$WORK/loopfs
NOTES=()

trap 'bench_cleanup; loop_fs_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Which filesystems: "work" and WORK's own type mean BENCH_WORK itself, xfs and btrfs a loop image.
explicit=${FILESYSTEMS:+yes}
FILESYSTEMS=${FILESYSTEMS:-work xfs}
targets=()
for fs in $FILESYSTEMS; do
  if [ "$fs" = work ] || [ "$fs" = "$WORK_FS" ]; then fs=work
  elif [ "$fs" != xfs ] && [ "$fs" != btrfs ]; then die "FILESYSTEMS: unknown '$fs' (use work, $WORK_FS, xfs or btrfs)"; fi
  [[ " ${targets[*]} " == *" $fs "* ]] || targets+=("$fs")
done
# Checked now rather than after the long part; setting up can still fail later.
usable=()
for fs in "${targets[@]}"; do
  if [ "$fs" != work ] && ! why=$(loop_fs_check "$fs"); then
    [ -n "$explicit" ] && die "cannot measure on $fs: $why"
    NOTES+=("$fs not measured: $why.")
    echo "note: $fs skipped: $why" >&2
  else
    usable+=("$fs")
  fi
done
targets=("${usable[@]}")

OLD=$(udocker_venv "$here/benchmarks/.venv")
if [ -z "${SKIP_BUILD:-}" ]; then (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker); fi
UD="$here/.build/release/udocker"
ROOT_OPT=$(root_option)
BENCH_ENV=("HOME=$WORK/home" "PATH=/usr/local/bin:/usr/bin:/bin" "UDOCKER_TARBALL=" "UDOCKER_NOSYSCONF=1")
rm -rf "$WORK/home" "$WORK/out" "$WORK/repos"
mkdir -p "$WORK/home" "$WORK/out" "$WORK/repos"
give_to_user "$WORK"

# The repositories of the filesystem being measured: $REPOS/old, ours (create, clone, export, import)
# and old2, ours2 (COUNT containers).
REPOS=
OLD_REPO=
OUR_REPO=
old() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$OLD_REPO"); as_user "$OLD" $ROOT_OPT "$@"; }
ours() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$OUR_REPO"); as_user "$UD" $ROOT_OPT "$@"; }

build_big_image "$WORK/big" 5
build_small_files_image "$WORK/small" "$SMALL_FILES"
rm -rf "$WORK/registry"
start_registry "$WORK/registry"
BENCH_PIDS+=("$REGISTRY_PID")
push_oci "$WORK/big" latest bench/big:latest
push_oci "$WORK/small" latest bench/small:latest
REG="http://127.0.0.1:$REGISTRY_PORT"

# timed NAME CMD...: seconds of one run of CMD (its output goes to a log; a failure stops the script).
timed() {
  local name=$1 log="$WORK/out/$FS_ID-$1.log" t0 t1; shift
  t0=$(now)
  if ! "$@" > "$log" 2>&1; then echo "$name ($FS_LABEL) failed:" >&2; cat "$log" >&2; exit 1; fi
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

disk_kb() { du -sk "$1" | cut -f1; }

# reflink_note: whether a large file of a copy-mode container shares its blocks with the store.
reflink_note() {
  local f="$OUR_REPO/containers/ccopybig1/ROOT/opt/data1/blob0.bin"
  if [ ! -f "$f" ]; then NOTES+=("$FS_LABEL: copy mode: $f not found, reflink not checked."); return; fi
  if filefrag -v "$f" 2>/dev/null | grep -q shared; then
    NOTES+=("$FS_LABEL: copy mode reflinks: filefrag -v shows /opt/data1/blob0.bin (8 MB) of a copy-mode container in shared extents.")
  else
    NOTES+=("$FS_LABEL: copy mode copies the data: filefrag -v shows no shared extent in /opt/data1/blob0.bin of a copy-mode container.")
  fi
}

# measure ID LABEL DIR DEDICATED: every measurement with both tools' repositories under DIR (a directory
# on the filesystem to measure); DEDICATED=yes when that filesystem holds nothing else, so its df
# figures are printed too. Appends the tables to $WORK/out/tables.md and removes the repositories.
measure() {
  FS_ID=$1 FS_LABEL=$2 REPOS=$3
  local dedicated=$4 img image mode o n
  mkdir -p "$REPOS/out"
  give_to_user "$REPOS"
  local -a rows=()
  row() { rows+=("| $1 | $2 | $3 | $(ratio "$2" "$3") |"); }

  OLD_REPO=$REPOS/old OUR_REPO=$REPOS/ours
  for image in bench/big:latest bench/small:latest; do
    old pull --registry="$REG" "$image" >/dev/null 2>&1
    ours -q pull --registry="$REG" "$image"
  done
  for img in big small; do
    image=bench/$img:latest
    o=$(best "old-create-$img" : old create --name=c$img@RUN "$image")
    for mode in link auto copy; do
      n=$(best "our-create-$mode-$img" : ours create --name=c$mode$img@RUN --materialize=$mode "$image")
      row "create $img ($mode)" "$o" "$n"
    done
    [ "$img" = big ] && reflink_note
    old create --name=base$img "$image" >/dev/null 2>&1
    ours -q create --name=base$img --materialize=auto "$image" >/dev/null
    o=$(best "old-clone-$img" : old clone --name=cl$img@RUN base$img)
    n=$(best "our-clone-$img" : ours clone --name=cl$img@RUN base$img)
    row "clone $img" "$o" "$n"
    o=$(best "old-export-$img" 'rm -f "$REPOS/out/old.tar"' old export -o "$REPOS/out/old.tar" base$img)
    n=$(best "our-export-$img" 'rm -f "$REPOS/out/ours.tar"' ours export -o "$REPOS/out/ours.tar" base$img)
    row "export $img" "$o" "$n"
    o=$(best "old-import-$img" : old import "$REPOS/out/old.tar" "imp/$img:@RUN")
    n=$(best "our-import-$img" : ours import "$REPOS/out/ours.tar" "imp/$img:@RUN")
    row "import $img" "$o" "$n"
  done

  # COUNT containers of the big image in new repositories holding only that image (so the containers
  # made above do not count), one tool after the other: time, and disk of the whole repository (store
  # or layers included) with one container and with COUNT, by du (hard links counted once) and, on a
  # filesystem of its own, by df (growth since before the repository existed).
  many() { local i; for i in $(seq "$COUNT"); do "$@" >/dev/null 2>&1; done; }
  local d0 d1 d2 d3 d4 old_one old_many our_one link_many t_old t_link
  OLD_REPO=$REPOS/old2 OUR_REPO=$REPOS/ours2
  if [ "$COUNT" -gt 0 ]; then
  d0=$(fs_used_kb "$REPOS")
  old pull --registry="$REG" bench/big:latest >/dev/null 2>&1
  old create --name=one bench/big:latest >/dev/null 2>&1; old_one=$(disk_kb "$OLD_REPO"); d1=$(fs_used_kb "$REPOS")
  old rm one >/dev/null 2>&1
  t_old=$(timed old-many many old create bench/big:latest)
  old_many=$(disk_kb "$OLD_REPO"); d2=$(fs_used_kb "$REPOS")
  ours -q pull --registry="$REG" bench/big:latest
  ours -q create --name=one --materialize=link bench/big:latest >/dev/null; our_one=$(disk_kb "$OUR_REPO"); d3=$(fs_used_kb "$REPOS")
  ours -q rm one
  t_link=$(timed our-many-link many ours create --materialize=link bench/big:latest)
  link_many=$(disk_kb "$OUR_REPO"); d4=$(fs_used_kb "$REPOS")
  fi

  {
    echo "#### $FS_LABEL"
    echo
    echo "| operation | udocker 1.3.17 | udocker (Swift) | 1.3.17 / ours |"
    echo "|---|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    if [ "$COUNT" -gt 0 ]; then
      echo "| $COUNT containers of big, $FS_LABEL | udocker 1.3.17 | udocker (Swift), link mode |"
      echo "|---|---:|---:|"
      echo "| time (s) | $t_old | $t_link |"
      echo "| repository disk with 1 container (MB, du) | $((old_one / 1024)) | $((our_one / 1024)) |"
      echo "| repository disk with $COUNT containers (MB, du) | $((old_many / 1024)) | $((link_many / 1024)) |"
      echo "| growth, $COUNT vs 1 (du) | $(ratio "$old_many" "$old_one") | $(ratio "$link_many" "$our_one") |"
      if [ "$dedicated" = yes ]; then
        echo "| filesystem space used, 1 container (MB, df) | $(((d1 - d0) / 1024)) | $(((d3 - d2) / 1024)) |"
        echo "| filesystem space used, $COUNT containers (MB, df) | $(((d2 - d0) / 1024)) | $(((d4 - d2) / 1024)) |"
        echo "| growth, $COUNT vs 1 (df) | $(ratio $((d2 - d0)) $((d1 - d0))) | $(ratio $((d4 - d2)) $((d3 - d2))) |"
      fi
      echo
    fi
  } >> "$WORK/out/tables.md"
  rm -rf "$REPOS/old" "$REPOS/ours" "$REPOS/old2" "$REPOS/ours2" "$REPOS/out"
}

for t in "${targets[@]}"; do
  case $t in
    work) measure work "$WORK_FS" "$WORK/repos" no ;;
    *)
      if why=$(loop_fs_setup "$t"); then
        give_to_user "$LOOP_MNT"
        NOTES+=("$t: a new filesystem ($(loop_fs_mkfs "$t") on a $LOOP_SIZE sparse file on $WORK_FS, loop-mounted), holding only the repositories, so df measures them.")
        measure "$t" "$t (loop image)" "$LOOP_MNT/repos" yes
      else
        [ -n "$explicit" ] && die "cannot measure on $t: $why"
        NOTES+=("$t not measured: $why.")
      fi
      loop_fs_cleanup ;;
  esac
done
bench_cleanup; BENCH_PIDS=(); rm -rf "$WORK/registry" "$WORK/repos"

echo "Containers benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r); best of $RUNS runs, seconds."
echo "Images: big = 6 layers, ~100 MB compressed (benchmarks/pull.sh's); small = busybox + $SMALL_FILES small files."
echo "Ratios above 1 mean this udocker is faster."
echo
cat "$WORK/out/tables.md"
for n in "${NOTES[@]}"; do echo "- $n"; done
[ ${#NOTES[@]} -gt 0 ] && echo
echo "Targets: create link >= 20x, auto >= 10x, copy >= 4x; clone >= 10x; $COUNT link-mode containers under 1.1x the disk of one."
