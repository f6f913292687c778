#!/usr/bin/env bash
# Store benchmark: blob ingest throughput against sha256sum and openssl, and layer unpack rate
# against GNU tar, on the same files in one run. Prints a Markdown table (paste it into README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_WORK:-/var/tmp/udocker-bench-store}
INGEST_MB=${INGEST_MB:-1024}
SMALL_FILES=${SMALL_FILES:-20000}
RUNS=${RUNS:-3}
# Seconds of rest (after sync) before every timed run.
SETTLE=${SETTLE:-3}
# Which parts to run: "ingest unpack" (default), or one of them.
PARTS=${PARTS:-ingest unpack}

source "$here/benchmarks/lib.sh"
cd "$here"
swift build -c release -q --static-swift-stdlib --product udocker
UD="$here/.build/release/udocker"
ROOTOPT=(); [ "$(id -u)" -eq 0 ] && ROOTOPT=(--allow-root)
# Each timed run gets new directories, removed only at the end: extracting into a directory just
# emptied of 20,000 files makes ext4 scan its recently deleted inodes, for tar and us alike.
REPO=
ud() { "$UD" "${ROOTOPT[@]}" --repo="$REPO" "$@"; }

mkdir -p "$WORK"
# race NAME...: $RUNS rounds; each round runs every command once, in the given order on even rounds
# and in reverse on odd ones, so no command always runs after the others (this disk slows down as
# more is written in a short time, and whatever runs later would lose). Before each timed run:
# prep_NAME (untimed, if defined), sync, and $SETTLE seconds for the disk to catch up. run_NAME is
# timed. Sets BEST[NAME] to each command's fastest run, in seconds.
declare -A BEST
race() {
  local names=("$@") order=() r i n t0 t1
  for n in "${names[@]}"; do BEST[$n]=n/a; done
  for r in $(seq 0 $((RUNS - 1))); do
    order=()
    if (( r % 2 == 0 )); then order=("${names[@]}")
    else for (( i = ${#names[@]} - 1; i >= 0; i-- )); do order+=("${names[$i]}"); done; fi
    for n in "${order[@]}"; do
      if declare -F "prep_$n" >/dev/null; then "prep_$n"; fi
      sync; sleep "$SETTLE"
      t0=$(now); "run_$n" >/dev/null; t1=$(now)
      BEST[$n]=$(min_of "${BEST[$n]}" "$(secs "$t0" "$t1")")
    done
  done
}

fresh_repo() {
  REPO=$(mktemp -u "$WORK/runs/repo.XXXXXX")
  "$UD" "${ROOTOPT[@]}" mkrepo "$REPO" >/dev/null
}
rm -rf "$WORK/runs"; mkdir -p "$WORK/runs"
trap 'rm -rf "$WORK/runs"; [ -n "${shm:-}" ] && rm -rf "$shm"; bench_cleanup' EXIT

# --- inputs -------------------------------------------------------------------------------
big="$WORK/ingest.bin"
if [ ! -f "$big" ] || [ "$(stat -c %s "$big")" -ne $((INGEST_MB * 1048576)) ]; then
  head -c $((INGEST_MB * 1048576)) /dev/urandom > "$big"
fi
small_tar="$WORK/small.tar"
if [ ! -f "$small_tar" ]; then
  rm -rf "$WORK/small"; mkdir -p "$WORK/small"
  python3 - "$WORK/small" "$SMALL_FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(42)
for i in range(n):
    d = os.path.join(root, "usr", "share", "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(random.randint(64, 8192)))
PY
  tar -C "$WORK/small" -cf "$small_tar" .
  gzip -k -6 -f "$small_tar"
fi
mixed_tar="$WORK/mixed.tar"
if [ ! -f "$mixed_tar" ]; then
  rm -rf "$WORK/mixed"; mkdir -p "$WORK/mixed/opt/big" "$WORK/mixed/usr/lib"
  for i in 1 2 3 4; do head -c $((25 * 1048576)) /dev/urandom > "$WORK/mixed/opt/big/blob$i"; done
  for i in $(seq 1 2000); do head -c 4096 /dev/urandom > "$WORK/mixed/usr/lib/lib$i.so"; done
  tar -C "$WORK/mixed" -cf "$mixed_tar" .
  gzip -k -6 -f "$mixed_tar"
fi

# --- ingest -------------------------------------------------------------------------------
run_sha256sum() { sha256sum "$big"; }
run_openssl() { openssl dgst -sha256 "$big"; }
# The I/O floor of a durable ingest: the same bytes written to a new file on the store's disk, fsynced.
# Before each write of $INGEST_MB, the one written before it (whichever command wrote it) is deleted:
# on this VM writing is several times slower (2.5-3 s of system time per GiB, for dd and us alike)
# while the gigabytes written just before are still cached, and fast again once they are deleted.
# Deleting one file (or a store holding one blob) is cheap, unlike a tree of thousands of files.
last_written=
forget_last() { [ -n "$last_written" ] && rm -rf "$last_written"; last_written=${1:-}; }
prep_dd() { dd_out=$(mktemp -u "$WORK/runs/dd.XXXXXX"); forget_last "$dd_out"; }
run_dd() { dd if="$big" of="$dd_out" bs=1M conv=fsync status=none; }
prep_ingest() { fresh_repo; forget_last "$REPO"; }
run_ingest() { ud store ingest "$big"; }
# The same ingest into a store on tmpfs, where the disk is out of the picture: what the hashing and
# copying pipeline costs against openssl's hash alone.
ingest_cmds=(sha256sum openssl dd ingest)
shm=
if [ -d /dev/shm ] && [ "$(df -k --output=avail /dev/shm | tail -1)" -gt $((INGEST_MB * (RUNS + 2) * 1024)) ]; then
  shm=$(mktemp -d /dev/shm/udocker-bench.XXXXXX)
  cp "$big" "$shm/in.bin"
  prep_shm() { shm_repo=$(mktemp -u "$shm/repo.XXXXXX"); "$UD" "${ROOTOPT[@]}" mkrepo "$shm_repo" >/dev/null; forget_last "$shm_repo"; }
  run_shm() { "$UD" "${ROOTOPT[@]}" --repo="$shm_repo" store ingest "$shm/in.bin"; }
  ingest_cmds+=(shm)
fi
part() { [[ " $PARTS " == *" $1 "* ]]; }
if part ingest; then
  race "${ingest_cmds[@]}"
  forget_last
fi
t_sha=${BEST[sha256sum]:-n/a} t_ossl=${BEST[openssl]:-n/a} t_dd=${BEST[dd]:-n/a} t_ing=${BEST[ingest]:-n/a} t_shm=${BEST[shm]:-n/a}
[ -n "$shm" ] && rm -rf "$shm"
shm=
gb=$(echo "$INGEST_MB / 1024" | bc -l)

# --- unpack -------------------------------------------------------------------------------
# tar -x into a new directory against `udocker store unpack` of the same file ingested into a new
# store just before (untimed; the settle pause lets the disk absorb that write).
prep_tar() { tar_dir=$(mktemp -d "$WORK/runs/x.XXXXXX"); }
run_tar() { tar -x"$row_flag"f "$row_file" -C "$tar_dir"; }
prep_unpack() { fresh_repo; row_digest=$(ud store ingest "$row_file" | awk '{print $1}'); }
run_unpack() { ud store unpack "$row_digest"; }
unpack_row() { # name tarfile tar-flag
  local name=$1 files bytes t_tar t_ud
  row_file=$2 row_flag=$3
  files=$(tar -tf "$row_file" | grep -vc '/$' || true)
  bytes=$(tar -tvf "$row_file" | awk '{s+=$3} END {print s}')
  race tar unpack
  t_tar=${BEST[tar]} t_ud=${BEST[unpack]}
  printf '| unpack %s (%s files, %s MB) | tar -x%sf %ss | udocker %ss | %s files/s, %s MB/s | %s |\n' \
    "$name" "$files" "$((bytes / 1048576))" "$row_flag" "$t_tar" "$t_ud" \
    "$(printf '%.0f' "$(echo "$files / $t_ud" | bc -l)")" "$(rate "$((bytes / 1048576))" "$t_ud")" \
    "$(ratio "$t_ud" "$t_tar")"
}

echo "Store benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), best of $RUNS interleaved rounds, ${SETTLE}s settle"
echo
echo "| what | yardstick | ours | rate | ours / yardstick |"
echo "|---|---|---|---|---|"
if part ingest; then
  printf '| ingest %s MiB | sha256sum %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_sha" "$t_ing" "$(rate "$gb" "$t_ing")" "$(ratio "$t_ing" "$t_sha")"
  printf '| ingest %s MiB | openssl dgst -sha256 %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_ossl" "$t_ing" "$(rate "$gb" "$t_ing")" "$(ratio "$t_ing" "$t_ossl")"
  if [ "$t_shm" != n/a ]; then
    printf '| ingest %s MiB into a store on tmpfs | openssl dgst -sha256 %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_ossl" "$t_shm" "$(rate "$gb" "$t_shm")" "$(ratio "$t_shm" "$t_ossl")"
  fi
  printf '| ingest %s MiB | dd conv=fsync (write + fsync, no hash) %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_dd" "$t_ing" "$(rate "$gb" "$t_ing")" "$(ratio "$t_ing" "$t_dd")"
fi
if part unpack; then
  unpack_row "small files, plain" "$small_tar" ""
  unpack_row "small files, gzip" "$small_tar.gz" "z"
  unpack_row "mixed, plain" "$mixed_tar" ""
  unpack_row "mixed, gzip" "$mixed_tar.gz" "z"
fi
