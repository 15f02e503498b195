#!/usr/bin/env bash
# Runs the test suite: the one command (see README.md).
#   1. scripts/setup.sh (idempotent: seconds when everything is installed)
#   2. configures build/test (Ninja, RelWithDebInfo, warnings as errors, ASan + UBSan,
#      line-table debug information -g1: cmake/CompilerOptions.cmake)
#   3. builds everything with all cores; meanwhile scripts/build-image.sh makes the base
#      images; then the Release product (build/release) and the images from it
#   4. ctest --output-on-failure -j2 "$@"   e.g. scripts/test.sh -L unit, -R testenv
# Every server the tests start records its PID in $RO_TESTENV_PIDDIR; afterwards (pass,
# fail or Ctrl-C) any of them still alive is killed and reported, and the run fails.
# Exit status: ctest's, or 1 when a server process was left behind.
# Environment: RO_TEST_BUILD_DIR (default build/test), RO_CTEST_JOBS (default 2),
# RO_TEST_SANITIZER (address = ASan + UBSan, the default; thread = ThreadSanitizer, see
# scripts/tsan.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

"$here/setup.sh"

build="${RO_TEST_BUILD_DIR:-$root/build/test}"
case "${RO_TEST_SANITIZER:-address}" in
  address) sanitizer=(-DRO_SANITIZE=ON -DRO_TSAN=OFF) ;;
  thread) sanitizer=(-DRO_SANITIZE=OFF -DRO_TSAN=ON) ;;
  *) die "RO_TEST_SANITIZER must be address or thread" ;;
esac
# The base images of the operator's image (mmdebstrap: mostly downloads, minutes when
# cold, seconds when cached) are made while the compiler runs.
# Without root there are no images (podman's rootful store, mmdebstrap) and no node:
# the cluster tests then fail and say so.
images=1
[ "$(id -u)" = 0 ] || { images=0; log "warning: not root: no container images; the cluster tests will fail"; }
images_log="$(mktemp "${TMPDIR:-/tmp}/ro-build-image.XXXXXX")"
if [ "$images" = 1 ]; then
  "$here/build-image.sh" base >"$images_log" 2>&1 &
  images_pid=$!
fi

log "configuring $build (RelWithDebInfo, -DRO_WERROR=ON ${sanitizer[*]})"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRO_WERROR=ON "${sanitizer[@]}" >/dev/null
log "building with $(nproc) jobs"
cmake --build "$build" -j"$(nproc)"

# The product as its image ships it (the cluster e2e installs it from that image): the
# Release binaries of the demo's tree, then the images (scripts/build-image.sh --binaries).
release="${RO_RELEASE_BUILD_DIR:-$root/build/release}"
log "building the Release product in $release (the operator image's binaries)"
cmake -S "$root" -B "$release" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$release" -j"$(nproc)" --target kubesync ro_controller_binaries
if [ "$images" = 1 ]; then
  if ! wait "$images_pid"; then
    cat "$images_log" >&2
    die "scripts/build-image.sh base failed (log above)"
  fi
  cat "$images_log"
  "$here/build-image.sh" --binaries "$release/bin" operator nats redis busybox
fi
rm -f "$images_log"
export RO_OPERATOR_BIN_DIR="$release/bin"

# Sanitizers: leaks are errors; UBSan stops at the first finding with a stack trace.
# Options the caller set come last and win.
asan="detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0"
export ASAN_OPTIONS="$asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# ThreadSanitizer: a report fails the process (exit code 66), with both stacks.
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
if [ -f "$root/tests/tsan.supp" ]; then
  export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp:$TSAN_OPTIONS"
fi
if [ -f "$root/tests/lsan.supp" ]; then
  export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi

# Per-run scratch space: the PID files of the servers, and TMPDIR for their temp dirs, so
# that even a test killed by a crash or a timeout leaves nothing behind in /tmp.
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/ro-test-run.XXXXXX")"
export RO_TESTENV_PIDDIR="$run_dir/pids"
export TMPDIR="$run_dir/tmp"
mkdir -p "$RO_TESTENV_PIDDIR" "$TMPDIR"

# Kills what a test left running. A PID file whose process is gone (the kernel killed it
# when its test process died) or belongs to another program now (PID reused) is only
# noted. Leftovers turn a passing run into a failing one.
reap_leftovers() {
  local status=$? leftovers=0 f pid want have
  trap - EXIT INT TERM
  for f in "$RO_TESTENV_PIDDIR"/*; do
    [ -e "$f" ] || continue
    pid="$(basename "$f")"
    want="$(awk 'NR==1 {print $1}' "$f" | tr -d "'")"
    have="$( { tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | head -n1 | awk '{print $1}' || true)"
    if [ -n "$have" ] && [ "$have" = "$want" ]; then
      log "error: server process $pid outlived its test: $(cat "$f")"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      leftovers=1
    else
      log "note: PID file of an already finished server (its test process died): $(cat "$f")"
    fi
  done
  if [ "${RO_TESTENV_KEEP:-0}" = 1 ]; then
    log "kept the servers' temp dirs in $TMPDIR (RO_TESTENV_KEEP=1)"
  else
    rm -rf "$run_dir"
  fi
  if [ "$leftovers" = 1 ]; then
    log "error: server processes were left running after the tests (killed now)"
    [ "$status" != 0 ] || status=1
  fi
  exit "$status"
}
trap reap_leftovers EXIT
trap 'exit 130' INT TERM

log "running ctest -j${RO_CTEST_JOBS:-2} $*"
ctest --test-dir "$build" --output-on-failure -j"${RO_CTEST_JOBS:-2}" "$@"
