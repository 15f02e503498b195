#!/usr/bin/env bash
# The kube client and Kubesync tests under ThreadSanitizer (issue: "a ThreadSanitizer
# build option that the kube and kubesync tests pass under"). Same set-up and leftover
# checks as scripts/test.sh, in its own build tree (build/tsan, -DRO_TSAN=ON).
# Not part of scripts/test.sh (a second full build); run it before changing threading.
#   scripts/tsan.sh                 unit + integration tests of kube and kubesync
#   scripts/tsan.sh -R Reflector    extra ctest arguments narrow it further
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export RO_TEST_SANITIZER=thread
export RO_TEST_BUILD_DIR="${RO_TEST_BUILD_DIR:-$root/build/tsan}"
exec "$here/test.sh" -R '(^|\.)(kube|kubesync|Kube|Kubesync|Applied|Reflector|Informer|WorkQueue|Stats|Envelope|NakDelay|Backoff)' "$@"
