# Shared helpers of the benchmark scripts (source it): timing, ratios, a local docker-registry, the
# udocker 1.3.17 reference installation, and running a command as the benchmark user.
# Processes started here are stopped by their pid when the script exits.

# A failure inside $(...) stops the script too.
shopt -s inherit_errexit

BENCH_PIDS=()
bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap bench_cleanup EXIT

now() { date +%s.%N; }
# secs T0 T1: the elapsed seconds between two `now` values.
secs() { printf '%.3f' "$(echo "$2 - $1" | bc -l)"; }
# ratio A B: A / B with two decimals, or n/a when either is n/a.
ratio() {
  if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; return; fi
  printf '%.2f' "$(echo "$1 / $2" | bc -l)"
}
# rate AMOUNT SECONDS: AMOUNT / SECONDS with two decimals.
rate() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
# min_of V...: the smallest of the numbers given (n/a when none).
min_of() {
  local best="" v
  for v in "$@"; do
    [ "$v" = n/a ] && continue
    if [ -z "$best" ] || (( $(echo "$v < $best" | bc -l) )); then best=$v; fi
  done
  echo "${best:-n/a}"
}

# start_registry DIR (sets REGISTRY_PORT, REGISTRY_PID), build_oci_image, push_oci: shared with the demo.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/registry.sh"

# build_big_image LAYOUT LAYERS: an OCI layout (tag latest) of busybox plus LAYERS layers of ~20 MB of
# mixed large random files and small files (about 100 MB compressed for 5); kept between runs.
build_big_image() {
  local layout=$1 LAYERS=$2
  if [ ! -f "$layout/index.json" ] || [ "$(cat "$layout.layers" 2>/dev/null)" != "$LAYERS" ]; then
    rm -rf "$layout" "$layout.trees"
    echo "building the image ($LAYERS data layers + busybox) ..." >&2
    python3 - "$layout.trees" "$LAYERS" <<'PY'
import os, random, sys
root, layers = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1234)
words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\n"
for n in range(1, layers + 1):
    top = os.path.join(root, "l%d" % n)
    # Large files: random bytes (compressed binaries, data), 8 + 6 + 4 MB.
    big = os.path.join(top, "opt", "data%d" % n)
    os.makedirs(big)
    for i, mb in enumerate((8, 6, 4)):
        with open(os.path.join(big, "blob%d.bin" % i), "wb") as f:
            f.write(rnd.randbytes(mb << 20))
    # Small files: half random, half text, 512 B .. 8 KB, in 40 directories (~5 MB).
    for i in range(1200):
        d = os.path.join(top, "usr", "lib", "pkg%d" % n, "d%02d" % (i % 40))
        os.makedirs(d, exist_ok=True)
        size = rnd.randint(512, 8192)
        data = rnd.randbytes(size) if i % 2 else (words * (size // len(words) + 1))[:size]
        with open(os.path.join(d, "f%04d" % i), "wb") as f:
            f.write(data)
PY
    mkdir -p "$layout.trees/l0/bin"
    cp /usr/bin/busybox "$layout.trees/l0/bin/busybox"
    ln -sf busybox "$layout.trees/l0/bin/sh"
    python3 - "$layout.trees" "$layout" "$LAYERS" <<'PY'
import gzip, hashlib, json, os, subprocess, sys
trees, layout, layers = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(layout + "/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open("%s/blobs/sha256/%s" % (layout, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
diff_ids, descs = [], []
for n in range(layers + 1):
    tar = subprocess.run(["tar", "-C", "%s/l%d" % (trees, n), "--sort=name", "--owner=0", "--group=0",
                          "--numeric-owner", "--mtime=@0", "-cf", "-", "."], check=True, stdout=subprocess.PIPE).stdout
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    d, s = blob(gzip.compress(tar, compresslevel=6, mtime=0))
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cd, cs = blob(json.dumps(config, sort_keys=True).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs}
md, ms = blob(json.dumps(manifest, sort_keys=True).encode())
with open(layout + "/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], "digest": md, "size": ms,
               "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
with open(layout + "/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
PY
    echo "$LAYERS" > "$layout.layers"
    rm -rf "$layout.trees"
  fi
}

# build_small_files_image LAYOUT FILES: an OCI layout (tag latest) of busybox plus one layer of FILES
# small files (64 B .. 8 KB) in 200 directories under /usr/share; kept between runs.
build_small_files_image() {
  local layout=$1 files=$2
  [ -f "$layout/index.json" ] && [ "$(cat "$layout.files" 2>/dev/null)" = "$files" ] && return 0
  rm -rf "$layout" "$layout.trees"
  busybox_rootfs "$layout.trees/base"
  python3 - "$layout.trees/data" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, "usr", "share", "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(64, 8192)))
PY
  build_oci_image "$layout" latest '["/bin/sh"]' "$layout.trees/base" "$layout.trees/data"
  echo "$files" > "$layout.files"
  rm -rf "$layout.trees"
}

# udocker_venv DIR: makes DIR a Python venv holding udocker 1.3.17 (pip from PyPI), prints its udocker.
# The venv uses the system Python ($BENCH_PYTHON, default /usr/bin/python3), which every user can run
# (a pyenv Python under /root would not be usable by $BENCH_USER).
udocker_venv() {
  local venv=$1 py=${BENCH_PYTHON:-}
  [ -z "$py" ] && { [ -x /usr/bin/python3 ] && py=/usr/bin/python3 || py=$(command -v python3); }
  local home; home=$(dirname "$(readlink -f "$py")")
  if [ ! -x "$venv/bin/udocker" ] || ! grep -qx "home = $home" "$venv/pyvenv.cfg" 2>/dev/null \
     || ! "$venv/bin/pip" show udocker 2>/dev/null | grep -q '^Version: 1.3.17$'; then
    "$py" -m venv --clear "$venv" >&2
    "$venv/bin/pip" install -q 'udocker==1.3.17' >&2
  fi
  echo "$venv/bin/udocker"
}

# as_user CMD...: runs CMD as $BENCH_USER when set and we are root (e.g. udocker-test from
# scripts/setup-host.sh), else as ourselves.
as_user() {
  if [ -n "${BENCH_USER:-}" ] && [ "$(id -u)" -eq 0 ]; then
    runuser -u "$BENCH_USER" -- env "${BENCH_ENV[@]}" "$@"
  else
    env "${BENCH_ENV[@]}" "$@"
  fi
}

# root_option: --allow-root when the commands will run as root.
root_option() {
  if [ "$(id -u)" -eq 0 ] && [ -z "${BENCH_USER:-}" ]; then echo --allow-root; fi
}

# build_host_tree TREE: the root filesystem of run.sh's image, made in TREE (which must not exist yet):
# host programs (bash, dash, coreutils' true dd sha256sum stat cat env ls id sleep, proot) with their
# libraries at the same paths, merged-usr like Debian 12, the loader in /usr/lib64 (where the
# programs' PT_INTERP /lib64/ld-linux-x86-64.so.2 leads), an ld.so.cache of the container's libraries.
build_host_tree() {
  local tree=$1 l p src
  mkdir -p "$tree"/{usr/bin,usr/sbin,usr/lib64,etc,tmp,dev,proc,sys,root,home,run,var/tmp}
  for l in bin lib lib64 sbin; do ln -s "usr/$l" "$tree/$l"; done
  chmod 1777 "$tree/tmp" "$tree/var/tmp"
  local progs=(bash dash true dd sha256sum stat cat env ls id sleep proot)
  for p in "${progs[@]}"; do
    src=$(type -P "$p") || { echo "$(basename "$0"): $p is not installed" >&2; exit 1; }
    cp -L "$src" "$tree/usr/bin/$p"
    ldd "$src" | grep -o '/[^ ]*'
  done | sort -u | while read -r lib; do
    rel=${lib#/usr}; mkdir -p "$tree/usr$(dirname "$rel")"; cp -L "$lib" "$tree/usr$rel"
  done
  ln -s dash "$tree/usr/bin/sh"
  ls -d "$tree"/usr/lib/*-linux-gnu > "$tree/etc/ld.so.conf"; sed -i "s|^$tree||" "$tree/etc/ld.so.conf"
  PATH=$PATH:/usr/sbin:/sbin ldconfig -r "$tree" 2>/dev/null || true
  printf 'root:x:0:0:root:/root:/bin/bash\n' > "$tree/etc/passwd"
  printf 'root:x:0:\n' > "$tree/etc/group"
  cp /etc/os-release "$tree/etc/os-release"
}

# --- Filesystems on loop images (containers.sh, group.sh): the caller sets WORK (where the sparse
# image may grow), LOOP_SIZE (e.g. 32G), LOOP_IMAGE and LOOP_MNT, and calls loop_fs_cleanup at exit.
is_root() { [ "$(id -u)" -eq 0 ]; }
# fs_used_kb DIR: KB in use on DIR's filesystem (df, after sync). Meaningful on a loop image only,
# which holds nothing but the benchmark's trees. du does not see inodes or other metadata, which XFS
# and btrfs allocate as they go (btrfs keeps directories and links there), and it counts reflinked
# blocks in full.
fs_used_kb() { sync; df -k --output=used "$1" | tail -1 | tr -d ' '; }
# loop_fs_mkfs TYPE: the mkfs command line for TYPE (reflink made explicit where it is an option).
loop_fs_mkfs() {
  case $1 in
    xfs) echo "mkfs.xfs -q -f -m reflink=1" ;;
    btrfs) echo "mkfs.btrfs -q -f" ;;
  esac
}
loop_fs_package() { case $1 in xfs) echo xfsprogs ;; btrfs) echo btrfs-progs ;; esac; }
# loop_fs_check TYPE: prints why TYPE cannot be set up (and returns 1), else nothing.
loop_fs_check() {
  local mkfs need avail
  mkfs=$(loop_fs_mkfs "$1"); mkfs=${mkfs%% *}
  is_root || { echo "not running as root (mkfs on a loop image needs root)"; return 1; }
  command -v "$mkfs" >/dev/null 2>&1 || { echo "$mkfs not found (Debian: apt-get install $(loop_fs_package "$1"))"; return 1; }
  need=$(numfmt --from=iec "$LOOP_SIZE") || { echo "LOOP_SIZE=$LOOP_SIZE is not a size such as 32G"; return 1; }
  avail=$(( $(df -k --output=avail "$WORK" | tail -1) * 1024 ))
  if [ "$avail" -lt "$need" ]; then
    echo "only $(numfmt --to=iec "$avail") free under $WORK, less than LOOP_SIZE=$LOOP_SIZE"; return 1
  fi
}
# loop_fs_setup TYPE: makes and mounts a TYPE filesystem on a sparse image at $LOOP_MNT; prints why
# not (and returns 1) when it cannot. The root of the new filesystem is root's: hand it on as needed.
loop_fs_setup() {
  loop_fs_check "$1" || return 1
  loop_fs_cleanup
  mkdir -p "$LOOP_MNT"
  truncate -s "$LOOP_SIZE" "$LOOP_IMAGE"
  local err
  if ! err=$($(loop_fs_mkfs "$1") "$LOOP_IMAGE" 2>&1); then echo "mkfs failed: $err"; return 1; fi
  if ! err=$(mount -o loop "$LOOP_IMAGE" "$LOOP_MNT" 2>&1); then echo "cannot loop-mount the image: $err"; return 1; fi
}
# loop_fs_cleanup: unmounts the image (which frees its loop device) and removes it; run at exit too.
loop_fs_cleanup() {
  if mountpoint -q "$LOOP_MNT" 2>/dev/null; then
    umount "$LOOP_MNT" 2>/dev/null || { sleep 1; umount "$LOOP_MNT" 2>/dev/null; } || umount -l "$LOOP_MNT" || true
  fi
  rm -f "$LOOP_IMAGE"
  rmdir "$LOOP_MNT" 2>/dev/null || true
}
