#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs every test as an unprivileged user (the README's test command).
# Sources are copied to a build tree owned by that user, so the checkout itself is left as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TEST_USER=${UDOCKER_TEST_USER:-udocker-test}
BUILD_TREE=${UDOCKER_TEST_TREE:-/var/tmp/udocker-swift-tests}

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run it as root (it installs packages and runs the tests as the unprivileged user $TEST_USER)" >&2
  exit 1
fi
bash "$here/scripts/setup-host.sh"

echo "==> copying sources to $BUILD_TREE/src"
mkdir -p "$BUILD_TREE/src"
find "$BUILD_TREE/src" -mindepth 1 -maxdepth 1 ! -name .build -exec rm -rf {} +
(cd "$here" && tar --exclude=./.build --exclude='./.build-*' --exclude=./.git -cf - .) | tar -C "$BUILD_TREE/src" -xf -
chown -R "$TEST_USER": "$BUILD_TREE"

home=$(getent passwd "$TEST_USER" | cut -d: -f6)
as_user() {
  runuser -u "$TEST_USER" -- env -i HOME="$home" USER="$TEST_USER" LANG=C.UTF-8 \
    PATH="/opt/swift/usr/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" CI="${CI:-}" \
    bash -c "cd '$BUILD_TREE/src' && $1"
}
echo "==> building (as $TEST_USER)"
as_user "set -o pipefail; swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]'"
echo "==> running tests (as $TEST_USER)"
# UDOCKER_TEST_FILTER runs only the matching tests (swift test --filter), for work on one area.
filter=""
if [ -n "${UDOCKER_TEST_FILTER:-}" ]; then filter="--filter '$UDOCKER_TEST_FILTER'"; fi
as_user "swift test --skip-build $filter 2>&1" | tee "$BUILD_TREE/test.log"
status=${PIPESTATUS[0]}

# The store-protection suites again, as a user without subordinate ids (detection instead of sealing).
NOSUB_USER=${UDOCKER_TEST_NOSUB_USER:-udocker-nosub}
nosub_filter=${UDOCKER_TEST_NOSUB_FILTER:-StoreProtection|StoreChangeDetection|storeFilesStayUnchanged}
if [ -z "${UDOCKER_TEST_FILTER:-}" ] || [ -n "${UDOCKER_TEST_NOSUB_FILTER:-}" ]; then
  echo "==> running the store-protection tests as $NOSUB_USER (no subordinate uids)"
  nosub_home=$(getent passwd "$NOSUB_USER" | cut -d: -f6)
  runuser -u "$NOSUB_USER" -- env -i HOME="$nosub_home" USER="$NOSUB_USER" LANG=C.UTF-8 UDOCKER_TEST_PROTECTION=detect \
    PATH="/opt/swift/usr/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" CI="${CI:-}" \
    bash -c "cd '$BUILD_TREE/src' && .build/debug/udockerPackageTests.xctest --testing-library swift-testing --filter '$nosub_filter' 2>&1" \
    | tee "$BUILD_TREE/test-nosub.log"
  nosub_status=${PIPESTATUS[0]}
  if [ "$status" -eq 0 ]; then status=$nosub_status; fi
fi

# The release: built as the test user, then checked as root in bullseye and trixie root filesystems
# (debootstrap, cached) as an unprivileged user there (scripts/release-check.sh).
if [ -z "${UDOCKER_TEST_FILTER:-}" ] || [ -n "${UDOCKER_TEST_RELEASE:-}" ]; then
  echo "==> building the release (as $TEST_USER) and checking it in other distributions"
  commit=$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  if as_user "RELEASE_COMMIT=$commit bash scripts/release.sh '$BUILD_TREE/dist' 2>&1 | tail -4"; then
    bash "$here/scripts/release-check.sh" "$BUILD_TREE/dist/udocker-"*"-linux-x86_64.tar.gz" 2>&1 | tee "$BUILD_TREE/release-check.log"
    release_status=${PIPESTATUS[0]}
  else
    echo "scripts/release.sh failed"
    release_status=1
  fi
  if [ "$status" -eq 0 ]; then status=$release_status; fi
fi
exit "$status"
