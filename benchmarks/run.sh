#!/usr/bin/env bash
# Run benchmark: for each execution mode both tools have (P1 P2 F1-F4 R1-R3), the time of
# `udocker run --nobanner CONTAINER /bin/true` for this udocker and udocker 1.3.17 against the same
# engine started by hand on the same root filesystem (each tool's overhead over the engine, and the
# ratio of the overheads), then a syscall-heavy and a CPU-bound command per mode against the same
# command run natively. Each row's commands run in turn, one run each per round (hyperfine -N), as
# the unprivileged benchmark user; /bin/true reports the median, workloads the best run.
#
# The image is built here from host programs (bash, coreutils, proot, their libraries and loader;
# merged-usr like Debian 12) and imported into both tools from one rootfs tar. A mode that fails for
# a tool (setup or a trial run) is reported as n/a with the first error line.
#
# Environment: BENCH_WORK (default /var/tmp/udocker-bench-run), RUNS (runs of /bin/true, default 15),
# WRUNS (runs of each workload, default 3), DD_COUNT (1-byte reads and writes of dd, default 20000),
# LOOP (iterations of the bash arithmetic loop, default 300000), MODES (default "P1 P2 F1 F2 F3 F4 R1
# R2 R3"), BENCH_USER (default udocker-test when started as root), SKIP_BUILD=1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/benchmarks/lib.sh"

WORK=${BENCH_WORK:-/var/tmp/udocker-bench-run}
RUNS=${RUNS:-15}
WRUNS=${WRUNS:-3}
DD_COUNT=${DD_COUNT:-20000}
LOOP=${LOOP:-300000}
MODES=${MODES:-P1 P2 F1 F2 F3 F4 R1 R2 R3}
if [ "$(id -u)" -eq 0 ]; then
  BENCH_USER=${BENCH_USER:-udocker-test}
  if ! id "$BENCH_USER" >/dev/null 2>&1; then
    echo "run.sh: user $BENCH_USER does not exist: run scripts/setup-host.sh or set BENCH_USER" >&2
    exit 1
  fi
fi
command -v hyperfine >/dev/null || { echo "run.sh: hyperfine is not installed (scripts/setup-host.sh installs it)" >&2; exit 1; }

OLD=$(udocker_venv "$here/benchmarks/.venv")
if [ -z "${SKIP_BUILD:-}" ]; then (cd "$here" && swift build -c release -q --static-swift-stdlib --product udocker); fi
UD="$here/.build/release/udocker"
ROOT_OPT=$(root_option)

PROOT=$(command -v proot || true)
RUNC=$(command -v runc || true)
PATCHELF=$(command -v patchelf || true)
FAKECHROOT_SO=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/fakechroot/libfakechroot.so
[ -f "$FAKECHROOT_SO" ] || FAKECHROOT_SO=/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so

rm -rf "$WORK/home" "$WORK/old" "$WORK/ours" "$WORK/tree" "$WORK/bundles" "$WORK/runc" "$WORK/out" "$WORK/bin"
mkdir -p "$WORK/home" "$WORK/out" "$WORK/bin" "$WORK/bundles" "$WORK/runc"
BENCH_ENV=("HOME=$WORK/home" "PATH=/usr/local/bin:/usr/bin:/bin" "UDOCKER_TARBALL=" "UDOCKER_NOSYSCONF=1")

# --- shims for udocker 1.3.17 on Debian's engines -------------------------------------------
# udocker 1.3.17 always passes `-k <kernel release>` to PRoot, and Debian's PRoot 5.1 fails every
# stat under -k on this kernel; it calls `patchelf -q`, which Debian's patchelf 0.14 rejects. Each
# shim drops that one option and execs the real program (its cost, one exec, is in the reference's
# overhead). F3/F4 need udocker's own patchelf (--set-root-prefix): no shim can give that.
build_shim() {  # NAME TARGET OPTION TAKES_VALUE
  cat > "$WORK/bin/shim.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  char *args[argc + 1];
  int n = 0;
  args[n++] = TARGET;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], DROP) == 0) { i += DROP_VALUE; continue; }
    args[n++] = argv[i];
  }
  args[n] = NULL;
  execv(TARGET, args);
  perror(TARGET);
  return 127;
}
EOF
  cc -O2 -DTARGET="\"$2\"" -DDROP="\"$3\"" -DDROP_VALUE="$4" -o "$WORK/bin/$1" "$WORK/bin/shim.c"
}
REF_PROOT=$PROOT; REF_PATCHELF=$PATCHELF; shim_notes=()
if [ -n "$PROOT" ] && ! "$PROOT" -k "$(uname -r)" -r / /bin/true >/dev/null 2>&1; then
  if command -v cc >/dev/null; then
    build_shim proot "$PROOT" -k 1; REF_PROOT=$WORK/bin/proot
    shim_notes+=("udocker 1.3.17 P1/P2 run $PROOT through a shim that drops the \`-k $(uname -r)\` udocker always adds (this PRoot fails every stat under -k on this kernel).")
  fi
fi
if [ -n "$PATCHELF" ] && ! "$PATCHELF" -q --print-interpreter /bin/true >/dev/null 2>&1; then
  if command -v cc >/dev/null; then
    build_shim patchelf "$PATCHELF" -q 0; REF_PATCHELF=$WORK/bin/patchelf
    shim_notes+=("udocker 1.3.17 calls \`patchelf -q\`, which $PATCHELF ($("$PATCHELF" --version)) rejects: it gets a shim that drops -q.")
  fi
fi
ENGINES=("UDOCKER_USE_RUNC_EXECUTABLE=$RUNC" "UDOCKER_FAKECHROOT_SO=$FAKECHROOT_SO")
OUR_ENV=("${ENGINES[@]}" "UDOCKER_USE_PROOT_EXECUTABLE=$PROOT" "UDOCKER_USE_PATCHELF_EXECUTABLE=$PATCHELF" "UDOCKER_DIR=$WORK/ours")
REF_ENV=("${ENGINES[@]}" "UDOCKER_USE_PATCHELF_EXECUTABLE=$REF_PATCHELF" "UDOCKER_DIR=$WORK/old")

# --- the image --------------------------------------------------------------------------------
# Host programs with their libraries (see build_host_tree in lib.sh).
tree=$WORK/tree
build_host_tree "$tree"
tar -C "$tree" --owner=0 --group=0 --numeric-owner -cf "$WORK/image.tar" .
[ -n "${BENCH_USER:-}" ] && [ "$(id -u)" -eq 0 ] && chown -R "$BENCH_USER" "$WORK"

old() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "${REF_ENV[@]}" "UDOCKER_USE_PROOT_EXECUTABLE=$REF_PROOT"); as_user "$OLD" $ROOT_OPT "$@"; }
ours() { local -a BENCH_ENV=("${BENCH_ENV[@]}" "${OUR_ENV[@]}"); as_user "$UD" $ROOT_OPT "$@"; }
old import "$WORK/image.tar" bench/host:1 >"$WORK/out/old-import.log" 2>&1 || { cat "$WORK/out/old-import.log" >&2; exit 1; }
ours -q import "$WORK/image.tar" bench/host:1 >"$WORK/out/our-import.log" 2>&1 || { cat "$WORK/out/our-import.log" >&2; exit 1; }

# --- measuring -----------------------------------------------------------------------------------
# first_line FILE STATUS: the first line of FILE that reads like an error (else its first line, else
# the exit status), for an n/a.
first_line() { grep -v '^[[:space:]]*$' "$1" | grep -m1 -iE 'error|fail|not |cannot|denied|invalid' || grep -m1 -v '^[[:space:]]*$' "$1" || echo "exit status $2"; }
# Interleaved timing, as the benchmark user. `queue NAME CMD [TRIAL MARKER]` adds a command line for
# hyperfine (no shell: quotes group words); `timed STAT N` runs the queue: one trial run of each (also
# the warm-up; a failure makes it n/a, its first error line in $WORK/out/NAME.why), then N rounds
# that run each command once, so a burst of load from elsewhere hits all of them alike. VAL[NAME] is
# then the median or the min of its N times in seconds, or n/a. With TRIAL (a command line that
# creates the file MARKER), that is the trial and CMD's exit status is ignored (see the Popen note).
declare -A VAL
Q_NAMES=(); Q_CMDS=(); Q_TRIALS=(); Q_MARKERS=()
queue() { Q_NAMES+=("$1"); Q_CMDS+=("$2"); Q_TRIALS+=("${3:-}"); Q_MARKERS+=("${4:-}"); }
trial() {
  local name=${Q_NAMES[$1]} cmd=${Q_CMDS[$1]} t=${Q_TRIALS[$1]} m=${Q_MARKERS[$1]} rc=0
  rm -f "$WORK/out/$name.why"
  if [ -n "$t" ]; then
    rm -f "$m"
    as_user sh -c "exec $t" </dev/null >"$WORK/out/$name.log" 2>&1 || true
    [ -e "$m" ] || rc=1
    rm -f "$m"
  else
    as_user sh -c "exec $cmd" </dev/null >"$WORK/out/$name.log" 2>&1 || rc=$?
  fi
  [ "$rc" -eq 0 ] || first_line "$WORK/out/$name.log" "$rc" > "$WORK/out/$name.why"
  return "$rc"
}
timed() {
  local stat=$1 n=$2 i r name live=() ign
  for i in "${!Q_NAMES[@]}"; do
    name=${Q_NAMES[$i]}; VAL[$name]=n/a; : > "$WORK/out/$name.times"
    if trial "$i"; then live+=("$i"); fi
  done
  for r in $(seq "$n"); do
    for i in "${live[@]}"; do
      name=${Q_NAMES[$i]}; ign=(); [ -n "${Q_TRIALS[$i]}" ] && ign=(-i)
      [ -f "$WORK/out/$name.why" ] && continue
      if as_user hyperfine -N "${ign[@]}" --style none --runs 1 --export-csv "$WORK/out/$name.csv" "${Q_CMDS[$i]}" \
           >"$WORK/out/$name.hf" 2>&1; then
        # Columns: command,mean,stddev,median,user,system,min,max (the command may hold commas).
        tail -n1 "$WORK/out/$name.csv" | awk -F, '{print $(NF-6)}' >> "$WORK/out/$name.times"
      else
        echo "failed while timed: $(first_line "$WORK/out/$name.hf" 1)" > "$WORK/out/$name.why"
      fi
    done
  done
  for i in "${live[@]}"; do
    name=${Q_NAMES[$i]}
    [ -f "$WORK/out/$name.why" ] && continue
    if [ "$stat" = min ]; then
      VAL[$name]=$(sort -g "$WORK/out/$name.times" | head -n1 | xargs printf '%.4f')
    else
      VAL[$name]=$(sort -g "$WORK/out/$name.times" | awk '{v[NR]=$1} END {printf "%.4f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')
    fi
  done
  Q_NAMES=(); Q_CMDS=(); Q_TRIALS=(); Q_MARKERS=()
}
ms() { [ "$1" = n/a ] && { echo n/a; return; }; printf '%.1f' "$(echo "$1 * 1000" | bc -l)"; }
minus() { { [ "$1" = n/a ] || [ "$2" = n/a ]; } && { echo n/a; return; }; printf '%.4f' "$(echo "$1 - $2" | bc -l)"; }
times_of() { [ "$1" = n/a ] && { echo n/a; return; }; echo "$1 ($(ratio "$1" "$2")x)"; }
notes=()
why() { [ -f "$WORK/out/$2.why" ] && notes+=("$1: $(head -c 300 "$WORK/out/$2.why")"); return 0; }

# udocker command lines for hyperfine: env gives each its settings (every line starts with env,
# the engine by hand too, so all pay the same exec).
env_words() { local w s=""; for w in "$@"; do s+=" $w"; done; echo "$s"; }
ref_cmd() { echo "env$(env_words "${REF_ENV[@]}" "UDOCKER_USE_PROOT_EXECUTABLE=$ref_proot") $OLD $ROOT_OPT run --nobanner $*"; }
our_cmd() { echo "env$(env_words "${OUR_ENV[@]}" "${our_extra[@]}") $UD $ROOT_OPT run --nobanner $*"; }

# The engine by hand on $tree: PRoot with the binds the workloads need; Fakechroot with the F1 env
# and the container's loader; runc with a rootless bundle (R2/R3: PRoot -0 inside, as udocker does).
LOADER=$tree/lib64/ld-linux-x86-64.so.2
LIBDIRS=$(sed "s|^|$tree|" "$tree/etc/ld.so.conf" | paste -sd:)
runc_bundle() {  # NAME MODE CMD... : a bundle whose process is CMD (under PRoot for R2/R3)
  local id=$1 b=$WORK/bundles/$1 mode=$2; shift 2
  as_user mkdir -p "$b"
  (cd "$b" && as_user "$RUNC" spec --rootless)
  python3 - "$b/config.json" "$tree" "$mode" "$@" <<'PY'
import json, shlex, sys
path, root, mode, args = sys.argv[1], sys.argv[2], sys.argv[3], shlex.split(" ".join(sys.argv[4:]))
c = json.load(open(path))
c["root"] = {"path": root, "readonly": True}
c["process"]["terminal"] = False
c["process"]["env"] = ["PATH=/usr/bin:/bin", "HOME=/root"]
if mode in ("R2", "R3"):
    args = ["/usr/bin/proot", "-0"] + args
    if mode == "R3":
        c["process"]["env"].append("PROOT_NO_SECCOMP=1")
c["process"]["args"] = args
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]})
json.dump(c, open(path, "w"), indent=1)
PY
  echo "$RUNC --root $WORK/runc run --bundle $b bench-$id"
}
hand_cmd() {  # MODE NAME CMD...
  local mode=$1 name=$2; shift 2
  local line="$*" prog; prog=${line%% *}
  case $mode in
    P1) echo "env $PROOT -b /dev -b /proc -b /sys -r $tree -w / $*" ;;
    P2) echo "env PROOT_NO_SECCOMP=1 $PROOT -b /dev -b /proc -b /sys -r $tree -w / $*" ;;
    F*) echo "env -i PATH=/usr/bin:/bin HOME=/ FAKECHROOT_BASE=$tree LD_PRELOAD=$FAKECHROOT_SO FAKECHROOT_EXCLUDE_PATH=/dev:/proc:/sys FAKECHROOT_ELFLOADER=$LOADER LD_LIBRARY_PATH=$LIBDIRS $LOADER $tree$prog${line#"$prog"}" ;;
    R*) echo "env $(runc_bundle "$mode-$name" "$mode" "$@")" ;;
  esac
}

# --- per mode ------------------------------------------------------------------------------------
bash_loop="/bin/bash -c 'i=0; while ((i<$LOOP)); do ((i++)); done'"
dd_cmd="/bin/dd if=/dev/zero of=/dev/null bs=1 count=$DD_COUNT"
queue start-ours "env$(env_words "${OUR_ENV[@]}") $UD --version"
queue start-old "env$(env_words "${REF_ENV[@]}") $OLD --version"
timed median "$RUNS"
start_ours=${VAL[start-ours]}; start_old=${VAL[start-old]}

rows_a=(); rows_b=(); popen_bug=0
for M in $MODES; do
  ref_proot=$PROOT; case $M in P*) ref_proot=$REF_PROOT ;; esac
  our_extra=()
  c=run$M
  # Reference: create and set the mode; a failure makes its cells n/a.
  ref_ok=1; ours_ok=1
  if ! old create --name=$c bench/host:1 >"$WORK/out/old-create-$M.log" 2>&1; then
    ref_ok=0; first_line "$WORK/out/old-create-$M.log" 1 > "$WORK/out/old-$M-true.why"
  elif ! old setup --execmode=$M $c >"$WORK/out/old-setup-$M.log" 2>&1; then
    ref_ok=0; echo "setup --execmode=$M: $(first_line "$WORK/out/old-setup-$M.log" 1)" > "$WORK/out/old-$M-true.why"
    case $M in F3|F4) "$PATCHELF" --help 2>&1 | grep -q set-root-prefix \
      || sed -i "s|\$| ($PATCHELF has no --set-root-prefix, which udocker 1.3.17 uses to patch the container's ELF files)|" "$WORK/out/old-$M-true.why" ;; esac
  fi
  if ! ours -q create --name=$c bench/host:1 >"$WORK/out/our-create-$M.log" 2>&1; then
    ours_ok=0; first_line "$WORK/out/our-create-$M.log" 1 > "$WORK/out/our-$M-true.why"
  elif ! ours setup --execmode=$M $c >"$WORK/out/our-setup-$M.log" 2>&1; then
    if [ "$M" = P2 ] && grep -q "not available yet" "$WORK/out/our-setup-$M.log"; then
      # P2 is P1 with PROOT_NO_SECCOMP=1 in both tools; until `setup --execmode` can switch, the
      # variable selects it (udocker 1.3.17 honours it the same way).
      our_extra=(PROOT_NO_SECCOMP=1)
      notes+=("P2, udocker (Swift): \`setup --execmode=P2\` is not available yet, so P2 is the P1 container run with PROOT_NO_SECCOMP=1 (what P2 sets).")
    else
      ours_ok=0; echo "setup --execmode=$M: $(first_line "$WORK/out/our-setup-$M.log" 1)" > "$WORK/out/our-$M-true.why"
    fi
  fi

  queue "hand-$M-true" "$(hand_cmd "$M" true /bin/true)"
  # udocker 1.3.17's runc engine, when its output is not a terminal, returns its Popen object as the
  # exit status: it prints "<Popen: ...>" and exits 1 after the command ran. Its R modes are timed
  # ignoring the status, after a trial run that shows the command ran.
  ref_trial=""; marker=$WORK/old/containers/$c/ROOT/run-ok
  case $M in R*) ref_trial=$(ref_cmd $c "/bin/sh -c ': > /run-ok'") ;; esac
  [ $ref_ok = 1 ] && queue "old-$M-true" "$(ref_cmd $c /bin/true)" "$ref_trial" "$marker"
  [ $ours_ok = 1 ] && queue "our-$M-true" "$(our_cmd $c /bin/true)"
  timed median "$RUNS"
  hand=${VAL[hand-$M-true]}; o=${VAL[old-$M-true]:-n/a}; n=${VAL[our-$M-true]:-n/a}
  if [ -n "$ref_trial" ] && [ "$o" != n/a ] && grep -q '<Popen: ' "$WORK/out/old-$M-true.log"; then popen_bug=1; fi
  why "$M, engine by hand" "hand-$M-true"; why "$M, udocker (Swift)" "our-$M-true"; why "$M, udocker 1.3.17" "old-$M-true"
  oo=$(minus "$o" "$hand"); no=$(minus "$n" "$hand")
  rows_a+=("| $M | $(ms "$hand") | $(ms "$n") | $(ms "$o") | $(ms "$no") | $(ms "$oo") | $(ratio "$no" "$oo") |")

  for w in dd loop; do
    if [ $w = dd ]; then cmd=$dd_cmd; else cmd=$bash_loop; fi
    # The native run is in every row's rounds, so that it sees the same load as the others.
    queue "native-$M-$w" "env $cmd"
    queue "hand-$M-$w" "$(hand_cmd "$M" "$w" "$cmd")"
    [ "$o" != n/a ] && queue "old-$M-$w" "$(ref_cmd $c "$cmd")" "$ref_trial" "$marker"
    [ "$n" != n/a ] && queue "our-$M-$w" "$(our_cmd $c "$cmd")"
    timed min "$WRUNS"
    native=${VAL[native-$M-$w]}; hw=${VAL[hand-$M-$w]}; ow=${VAL[old-$M-$w]:-n/a}; nw=${VAL[our-$M-$w]:-n/a}
    why "$M $w, engine by hand" "hand-$M-$w"; why "$M $w, udocker (Swift)" "our-$M-$w"; why "$M $w, udocker 1.3.17" "old-$M-$w"
    label="dd bs=1 count=$DD_COUNT"; [ $w = loop ] && label="bash loop $LOOP"
    rows_b+=("| $M | $label | $native | $(times_of "$hw" "$native") | $(times_of "$nw" "$native") | $(times_of "$ow" "$native") |")
  done
done

ver() { "$@" 2>&1 | grep -m1 -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' || echo '?'; }
echo "Run benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Engines: PRoot $(ver "$PROOT" --version), runc $(ver "$RUNC" --version), fakechroot $(dpkg-query -W -f='${Version}' fakechroot 2>/dev/null || echo '?'), patchelf $(ver "$PATCHELF" --version)."
echo "Image: host bash, coreutils and PRoot with their libraries ($(du -sh "$tree" | cut -f1)), imported into both tools from one tar."
echo "Run as user ${BENCH_USER:-$(id -un)}; the commands of a row run in turn (interleaved); /bin/true: median of $RUNS runs; workloads: best of $WRUNS."
echo
echo "| mode | engine by hand (ms) | udocker (Swift) (ms) | udocker 1.3.17 (ms) | ours: overhead (ms) | 1.3.17: overhead (ms) | overhead ours / 1.3.17 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows_a[@]}"
echo "| start-up only: \`udocker --version\` | – | $(ms "$start_ours") | $(ms "$start_old") | – | – | $(ratio "$start_ours" "$start_old") |"
echo
echo "Target: ours' overhead at most 0.2x udocker 1.3.17's (issue 12; 0.25x in issue 5)."
echo
echo "| mode | workload | native (s) | engine by hand (s, x native) | udocker (Swift) (s, x native) | udocker 1.3.17 (s, x native) |"
echo "|---|---|---:|---:|---:|---:|"
printf '%s\n' "${rows_b[@]}"
echo
[ $popen_bug = 1 ] && shim_notes+=("udocker 1.3.17 R modes exit with status 1 and print \`<Popen: ...>\` when not on a terminal (its runc engine returns the Popen object as the status): they are timed ignoring the status, after a trial run showed the command ran.")
if [ ${#shim_notes[@]} -gt 0 ] || [ ${#notes[@]} -gt 0 ]; then
  echo "Notes:"
  for x in "${shim_notes[@]}" "${notes[@]}"; do echo "- $x"; done
fi
