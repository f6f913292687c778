#!/usr/bin/env bash
# Store benchmark: blob ingest throughput against sha256sum and openssl, and layer unpack rate
# against GNU tar, on the same files in one run. Prints a Markdown table (paste it into README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_WORK:-/var/tmp/udocker-bench-store}
INGEST_MB=${INGEST_MB:-1024}
SMALL_FILES=${SMALL_FILES:-20000}
RUNS=${RUNS:-3}

source "$here/benchmarks/lib.sh"
cd "$here"
swift build -c release -q --static-swift-stdlib --product udocker
UD="$here/.build/release/udocker"
ROOTOPT=(); [ "$(id -u)" -eq 0 ] && ROOTOPT=(--allow-root)
# Each timed run gets new directories, removed only at the end: extracting into a directory just
# emptied of 20,000 files makes ext4 scan its recently deleted inodes, for tar and us alike.
ud() { "$UD" "${ROOTOPT[@]}" --repo="$(cat "$WORK/current-repo")" "$@"; }

mkdir -p "$WORK"
# best_of CMD...: the fastest of $RUNS runs, in seconds; $PREP (a function name) runs untimed before each.
best_of() {
  local all="" t0 t1
  for _ in $(seq "$RUNS"); do
    [ -n "${PREP:-}" ] && "$PREP"
    sync
    t0=$(now); "$@" >/dev/null; t1=$(now)
    all="$all $(secs "$t0" "$t1")"
  done
  min_of $all
}

fresh_repo() {
  local r; r=$(mktemp -u "$WORK/runs/repo.XXXXXX")
  echo "$r" > "$WORK/current-repo"
  "$UD" "${ROOTOPT[@]}" mkrepo "$r" >/dev/null
}
rm -rf "$WORK/runs"; mkdir -p "$WORK/runs"
trap 'rm -rf "$WORK/runs"; bench_cleanup' EXIT

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
t_sha=$(best_of sha256sum "$big")
t_ossl=$(best_of openssl dgst -sha256 "$big")
# The I/O floor of a durable ingest: the same bytes written to a new file on the store's disk, fsynced.
rm_copy() { rm -f "$WORK/runs/dd.out"; }
PREP=rm_copy
t_dd=$(best_of dd if="$big" of="$WORK/runs/dd.out" bs=1M conv=fsync status=none)
PREP=
PREP=fresh_repo
t_ing=$(best_of ud store ingest "$big")
PREP=
# The same ingest into a store on tmpfs, where the disk is out of the picture: what the hashing and
# copying pipeline costs against openssl's hash alone.
t_shm=n/a
if [ -d /dev/shm ] && [ "$(df -k --output=avail /dev/shm | tail -1)" -gt $((INGEST_MB * 3 * 1024)) ]; then
  shm=$(mktemp -d /dev/shm/udocker-bench.XXXXXX)
  cp "$big" "$shm/in.bin"
  shm_repo() { rm -rf "$shm/repo"; "$UD" "${ROOTOPT[@]}" mkrepo "$shm/repo" >/dev/null; }
  shm_ingest() { "$UD" "${ROOTOPT[@]}" --repo="$shm/repo" store ingest "$shm/in.bin"; }
  PREP=shm_repo
  t_shm=$(best_of shm_ingest)
  PREP=
  rm -rf "$shm"
fi
gb=$(echo "$INGEST_MB / 1024" | bc -l)

# --- unpack -------------------------------------------------------------------------------
prep_tar_dir() { mktemp -d "$WORK/runs/x.XXXXXX" > "$WORK/current-x"; sync; sleep 3; }
tar_x() { tar -x"$1"f "$2" -C "$(cat "$WORK/current-x")"; }
unpack_row() { # name tarfile tar-flag
  local name=$1 file=$2 flag=$3 digest files bytes t_tar t_ud
  files=$(tar -tf "$file" | grep -vc '/$' || true)
  bytes=$(tar -tvf "$file" | awk '{s+=$3} END {print s}')
  PREP=prep_tar_dir
  t_tar=$(best_of tar_x "$flag" "$file")
  # The ingest writes the blob to disk just before the timed unpack; give the disk time to settle
  # (a burst-limited VM disk would otherwise slow the unpack that follows).
  prep_ud() { fresh_repo; ud store ingest "$file" | awk '{print $1}' > "$WORK/digest"; sync; sleep 3; }
  ud_unpack() { ud store unpack "$(cat "$WORK/digest")"; }
  PREP=prep_ud
  t_ud=$(best_of ud_unpack)
  PREP=
  printf '| unpack %s (%s files, %s MB) | tar -x%sf %ss | udocker %ss | %s files/s, %s MB/s | %s |\n' \
    "$name" "$files" "$((bytes / 1048576))" "$flag" "$t_tar" "$t_ud" \
    "$(printf '%.0f' "$(echo "$files / $t_ud" | bc -l)")" "$(rate "$((bytes / 1048576))" "$t_ud")" \
    "$(ratio "$t_ud" "$t_tar")"
}

echo "Store benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), best of $RUNS runs"
echo
echo "| what | yardstick | ours | rate | ours / yardstick |"
echo "|---|---|---|---|---|"
printf '| ingest %s MiB | sha256sum %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_sha" "$t_ing" "$(rate "$gb" "$t_ing")" "$(ratio "$t_ing" "$t_sha")"
printf '| ingest %s MiB | openssl dgst -sha256 %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_ossl" "$t_ing" "$(rate "$gb" "$t_ing")" "$(ratio "$t_ing" "$t_ossl")"
[ "$t_shm" != n/a ] && printf '| ingest %s MiB into a store on tmpfs | openssl dgst -sha256 %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_ossl" "$t_shm" "$(rate "$gb" "$t_shm")" "$(ratio "$t_shm" "$t_ossl")"
printf '| ingest %s MiB | dd conv=fsync (write + fsync, no hash) %ss | %ss | %s GB/s | %s |\n' "$INGEST_MB" "$t_dd" "$t_ing" "$(rate "$gb" "$t_ing")" "$(ratio "$t_ing" "$t_dd")"
unpack_row "small files, plain" "$small_tar" ""
unpack_row "small files, gzip" "$small_tar.gz" "z"
unpack_row "mixed, plain" "$mixed_tar" ""
unpack_row "mixed, gzip" "$mixed_tar.gz" "z"
