# Shared helpers of the benchmark scripts (source it): timing, ratios, a local docker-registry, the
# udocker 1.3.17 reference installation, and running a command as the benchmark user.
# Processes started here are stopped by their pid when the script exits.

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
