#!/usr/bin/env bash
# Checks that the OCI archives of scripts/build-image.sh import into containerd's k8s.io
# namespace (what a kubelet uses) and that their programs start, against a throw-away
# containerd: its own config, root, state and socket under a temporary directory, started
# here and stopped by its PID at the end (mounts and the directory removed as well).
#
#   scripts/check-image-import.sh [archive...]   # default: every archive build-image.sh makes
#
# Per archive: `ctr -n k8s.io images import`, then `ctr run --rm` of
#   operator: id (the image's user, 65532), each binary in /usr/local/bin with --help
#   nats: nats-server --version; redis: redis-server --version; busybox: echo
# Needs root and the Debian packages containerd (ctr, containerd-shim-runc-v2) and runc.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "needs root (containerd)"
for tool in containerd ctr runc; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install containerd runc)"
done

declare -A ref_of=()
archives=()
while read -r target ref archive; do
  ref_of[$archive]="$target $ref"
  [ $# -gt 0 ] || archives+=("$archive")
done < <("$here/build-image.sh" --list)
[ $# -eq 0 ] || archives=("$@")

tmp="$(mktemp -d /tmp/ro-containerd.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; wait "$pid" 2>/dev/null || true
  fi
  # Unmount whatever containerd left mounted below tmp (deepest first), then remove it.
  { grep -o " $tmp/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

sock="$tmp/containerd.sock"
cat >"$tmp/config.toml" <<EOF
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
EOF
containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
[ -S "$sock" ] || { cat "$tmp/containerd.log" >&2; die "containerd did not start"; }
ctr() { command ctr --address "$sock" -n k8s.io "$@"; }
snapshotter="${RO_CTR_SNAPSHOTTER:-overlayfs}"

failed=0
run() { # image args...
  local image="$1"; shift
  local out
  if out="$(ctr run --rm --snapshotter "$snapshotter" "$image" "ro-check-$$-$RANDOM" "$@" 2>&1)"; then
    log "  run $* -> ok: $(head -n1 <<<"$out")"
  else
    log "  run $* -> FAILED: $out"; failed=1
  fi
}
for archive in "${archives[@]}"; do
  [ -s "$archive" ] || { log "missing $archive (run scripts/build-image.sh)"; failed=1; continue; }
  read -r target ref <<<"${ref_of[$archive]:-unknown ?}"
  t0=$SECONDS
  ctr images import --snapshotter "$snapshotter" "$archive" >/dev/null
  if [ "$ref" = "?" ]; then
    log "$archive: imported in $((SECONDS - t0))s"; continue
  fi
  ctr images ls -q | grep -qxF "$ref" || { log "$archive: imported, but no image $ref"; failed=1; continue; }
  log "$archive: imported as $ref in $((SECONDS - t0))s"
  case "$target" in
    operator)
      run "$ref" /usr/bin/id # the image's USER, 65532
      for b in $(ctr run --rm --snapshotter "$snapshotter" "$ref" "ro-ls-$$" /bin/ls /usr/local/bin); do
        run "$ref" "/usr/local/bin/$b" --help
      done ;;
    nats) run "$ref" /usr/sbin/nats-server --version ;;
    redis) run "$ref" /usr/bin/redis-server --version ;;
    busybox) run "$ref" echo hello from busybox ;;
  esac
done
ctr images ls | awk 'NR == 1 || /resiliency-operator/' >&2
if [ "$failed" != 0 ]; then tail -n 20 "$tmp/containerd.log" >&2; die "some checks failed (the end of containerd's log is above)"; fi
log "all archives import and run"
