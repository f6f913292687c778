#!/usr/bin/env bash
# Sync benchmark: a repository of three images (the 100 MB image of benchmarks/pull.sh, the 20,000-file
# image, a small image of host programs) and six containers (link, auto, copy, one changed by a run, one set up in F3, one in
# R1) sent to an empty repository of another user over ssh on loopback: our `sync` against `rsync -aH`
# of the repository directory over the same ssh, and against udocker 1.3.17's way (save | ssh load for
# each image, export --clone | ssh import --clone for each container); then a second sync of the same
# data, and a sync after one changed file. Bytes on the wire are counted by scripts/helpers/ssh-wire.py.
#
# Run as root on a machine set up by scripts/setup-host.sh (users udocker-test and udocker-peer, the
# test sshd on 127.0.0.1:22722). Environment: BENCH_WORK (default /var/tmp/udocker-bench-sync), RUNS
# (default 3: rounds, each into new target directories, the three ways interleaved), SMALL_FILES
# (default 20000), BENCH_BINARY (default: the release build, made unless SKIP_BUILD=1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "sync.sh: run it as root (it runs the tools as udocker-test and udocker-peer)" >&2; exit 1; }
source /etc/udocker-test-sshd/peer.env
WORK=${BENCH_WORK:-/var/tmp/udocker-bench-sync}
RUNS=${RUNS:-3}
SMALL_FILES=${SMALL_FILES:-20000}
BENCH_USER=udocker-test
PEER=$UDOCKER_TEST_PEER_USER
PORT=$UDOCKER_TEST_SSHD_PORT
KEY=$UDOCKER_TEST_PEER_KEY
mkdir -p "$WORK/bin" "$WORK/out"
chmod 755 "$WORK" "$WORK/bin"

if [ -z "${BENCH_BINARY:-}" ]; then
  if [ -z "${SKIP_BUILD:-}" ]; then (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker); fi
  BENCH_BINARY="$here/.build/release/udocker"
fi
# Both users run the same copies: ours and the udocker 1.3.17 venv live where both can read them.
install -m 755 "$BENCH_BINARY" "$WORK/bin/udocker"
install -m 755 "$here/scripts/helpers/ssh-wire.py" "$WORK/bin/ssh-wire.py"
UD=$WORK/bin/udocker
BENCH_PYTHON=/usr/bin/python3 OLD=$(udocker_venv "$WORK/venv")
chmod -R a+rX "$WORK/venv"

SSH="ssh -i $KEY -o BatchMode=yes -o StrictHostKeyChecking=yes"
PEER_HOME=$UDOCKER_TEST_PEER_HOME
BENCH_ENV=("HOME=$WORK/home" "PATH=/usr/local/bin:/usr/bin:/bin" "UDOCKER_TARBALL=" "UDOCKER_NOSYSCONF=1")
rm -rf "$WORK/home" "$WORK/registry"
mkdir -p "$WORK/home"
cp -r "$(getent passwd $BENCH_USER | cut -d: -f6)/.ssh" "$WORK/home/.ssh"
chown -R "$BENCH_USER": "$WORK/home" "$WORK/out"
SRC=$WORK/home/src OLDSRC=$WORK/home/old
ours() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$SRC"); as_user "$UD" "$@"; }
old() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "UDOCKER_DIR=$OLDSRC"); as_user "$OLD" "$@"; }
# peer CMD: a shell line run as the far user, through the test sshd.
peer() { runuser -u "$PEER" -- env HOME="$PEER_HOME" PATH=/usr/bin:/bin bash -c "$1"; }
# wired COUNTFILE: an ssh command line that counts the bytes on the wire into COUNTFILE.
wired() { echo "python3 $WORK/bin/ssh-wire.py --count $1 -- $SSH"; }
wire_bytes() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["sent"]+d["received"])' "$1"; }
NOTES=()

# The inputs, in both tools' repositories.
build_big_image "$WORK/big" 5
build_small_files_image "$WORK/small" "$SMALL_FILES"
# The third image is the small base one: host programs with their libraries and loader (see
# build_host_tree), not busybox, because F3 needs dynamically linked programs (busybox is static).
if [ ! -f "$WORK/host/index.json" ]; then
  rm -rf "$WORK/host" "$WORK/host.tree"
  build_host_tree "$WORK/host.tree"
  build_oci_image "$WORK/host" latest '["/bin/sh"]' "$WORK/host.tree"
  rm -rf "$WORK/host.tree"
fi
start_registry "$WORK/registry"
BENCH_PIDS+=("$REGISTRY_PID")
push_oci "$WORK/big" latest bench/big:latest
push_oci "$WORK/small" latest bench/small:latest
push_oci "$WORK/host" latest bench/host:latest
REG="http://127.0.0.1:$REGISTRY_PORT"
IMAGES=(bench/big:latest bench/small:latest bench/host:latest)
FAKECHROOT_SO=/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so
BENCH_ENV+=("UDOCKER_FAKECHROOT_SO=$FAKECHROOT_SO" "UDOCKER_USE_PATCHELF_EXECUTABLE=$(command -v patchelf || true)"
            "UDOCKER_USE_RUNC_EXECUTABLE=$(command -v runc || true)" "UDOCKER_USE_PROOT_EXECUTABLE=$(command -v proot || true)")
SETUP_VERSION=2   # what the source repositories hold; older ones are made again
if [ "$(cat "$SRC/.bench-setup" 2>/dev/null)" != "$SETUP_VERSION" ] || [ -z "$(ls "$SRC/containers" 2>/dev/null)" ]; then
  rm -rf "$SRC" "$OLDSRC"
  for i in "${IMAGES[@]}"; do ours -q pull --registry="$REG" "$i"; old pull --registry="$REG" "$i" >/dev/null 2>&1; done
  for m in link auto copy; do ours create --name=c-$m --materialize=$m bench/small:latest >/dev/null; done
  ours create --name=c-run --materialize=copy bench/small:latest >/dev/null
  ours run --nobanner c-run /bin/sh -c 'set -e; echo new > /added; echo more >> /usr/share/d000/f00000; rm /usr/share/d001/f00001; chmod 600 /usr/share/d002/f00002; ln -s added /link; ln /added /hard; mkdir /empty' >/dev/null
  for m in f3 r1; do
    ours create --name=c-$m bench/host:latest >/dev/null
    ours setup --execmode=${m^^} c-$m >"$WORK/out/setup-$m.log" 2>&1 && ours run --nobanner c-$m /bin/true >>"$WORK/out/setup-$m.log" 2>&1 \
      || { echo "sync.sh: c-$m could not be set up and run in ${m^^}:" >&2; tail -5 "$WORK/out/setup-$m.log" >&2; exit 1; }
  done
  for c in c-link c-auto c-copy c-run; do old create --name=$c bench/small:latest >/dev/null 2>&1; done
  for c in c-f3 c-r1; do old create --name=$c bench/host:latest >/dev/null 2>&1; done
  echo "$SETUP_VERSION" > "$SRC/.bench-setup"
fi
CONTAINERS=(c-link c-auto c-copy c-run c-f3 c-r1)

# timed LOG CMD...: seconds of one run of CMD (output to LOG; a failure stops the script).
timed() {
  local log=$1 t0 t1; shift
  t0=$(now)
  if ! "$@" > "$log" 2>&1; then echo "$log failed:" >&2; tail -20 "$log" >&2; exit 1; fi
  t1=$(now)
  secs "$t0" "$t1"
}
sync_ours() { ours sync -q --ssh="$(wired "$2")" --remote-udocker="$UD" "ssh://$PEER@127.0.0.1:$PORT/~/bench-sync/$1"; }
sync_rsync() { as_user rsync -aH -e "$(wired "$2") -p $PORT" "$SRC/" "$PEER@127.0.0.1:bench-sync/$1/"; }
# The udocker 1.3.17 way: every image saved and loaded, every container exported and imported, over ssh.
sync_old() {
  local target=$1 count=$2 total=0 i c
  peer "mkdir -p ~/bench-sync/$target"
  for i in "${IMAGES[@]}"; do
    old save -o "$WORK/out/img.tar" "$i" >/dev/null 2>&1
    as_user sh -c "cat '$WORK/out/img.tar' | $(wired "$count.part") -p $PORT $PEER@127.0.0.1 'UDOCKER_DIR=~/bench-sync/$target $WORK/venv/bin/udocker load' >/dev/null"
    total=$((total + $(wire_bytes "$count.part")))
  done
  for c in "${CONTAINERS[@]}"; do
    old export --clone -o "$WORK/out/c.tar" "$c" >/dev/null 2>&1
    as_user sh -c "cat '$WORK/out/c.tar' | $(wired "$count.part") -p $PORT $PEER@127.0.0.1 'cat > /tmp/bench-c.\$\$.tar && UDOCKER_DIR=~/bench-sync/$target $WORK/venv/bin/udocker import --clone /tmp/bench-c.\$\$.tar $c; rm -f /tmp/bench-c.\$\$.tar' >/dev/null"
    total=$((total + $(wire_bytes "$count.part")))
  done
  rm -f "$WORK/out/img.tar" "$WORK/out/c.tar"
  echo "{\"sent\": $total, \"received\": 0}" > "$count"
}

declare -A T B
stamp=$(date +%s)
for run in $(seq "$RUNS"); do
  tag=$stamp-$run
  for way in ours rsync old; do
    T[$way-first-$run]=$(timed "$WORK/out/$way-first-$run.log" sync_$way "$way-$tag" "$WORK/out/$way-first-$run.wire")
    B[$way-first-$run]=$(wire_bytes "$WORK/out/$way-first-$run.wire")
  done
  # Ours and rsync take turns going first, so neither always meets the caches the other warmed.
  order="ours rsync"; [ $((run % 2)) -eq 0 ] && order="rsync ours"
  for way in $order; do
    T[$way-second-$run]=$(timed "$WORK/out/$way-second-$run.log" sync_$way "$way-$tag" "$WORK/out/$way-second-$run.wire")
    B[$way-second-$run]=$(wire_bytes "$WORK/out/$way-second-$run.wire")
  done
  # One changed file: a new 4 KB file in the changed container.
  ours run --nobanner c-run /bin/sh -c "head -c 4096 /dev/urandom > /changed-$run" >/dev/null
  for way in $order; do
    T[$way-changed-$run]=$(timed "$WORK/out/$way-changed-$run.log" sync_$way "$way-$tag" "$WORK/out/$way-changed-$run.wire")
    B[$way-changed-$run]=$(wire_bytes "$WORK/out/$way-changed-$run.wire")
  done
done
bench_cleanup; BENCH_PIDS=()

best() { local k=$1 v all=""; for run in $(seq "$RUNS"); do all="$all ${T[$k-$run]}"; done; min_of $all; }
bytes() { numfmt --to=iec --suffix=B "${B[$1-1]}"; }
echo "Sync benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r); best of $RUNS rounds, seconds; ssh on loopback to another user."
echo "Repository: ${IMAGES[*]}; containers ${CONTAINERS[*]}. Binary: $BENCH_BINARY."
echo
echo "| step | ours | rsync -aH | udocker 1.3.17 | rsync / ours | 1.3.17 / ours | wire: ours | wire: rsync | wire: 1.3.17 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
of=$(best ours-first); rf=$(best rsync-first); xf=$(best old-first)
echo "| first sync | $of | $rf | $xf | $(ratio "$rf" "$of") | $(ratio "$xf" "$of") | $(bytes ours-first) | $(bytes rsync-first) | $(bytes old-first) |"
os=$(best ours-second); rs=$(best rsync-second)
echo "| second sync (nothing changed) | $os | $rs | n/a | $(ratio "$rs" "$os") | n/a | $(bytes ours-second) | $(bytes rsync-second) | n/a |"
oc=$(best ours-changed); rc=$(best rsync-changed)
echo "| after one changed file | $oc | $rc | n/a | $(ratio "$rc" "$oc") | n/a | $(bytes ours-changed) | $(bytes rsync-changed) | n/a |"
echo
for n in "${NOTES[@]}"; do echo "- $n"; done
echo "Targets: first sync >= 2x faster than rsync -aH and >= 5x faster than udocker 1.3.17; second sync 0 object bytes and faster than rsync's; one changed file under 1 MiB on the wire."
