# Shared shell helpers for scripts/*.sh. Sourced, never executed.
# RO_CACHE: where built and downloaded tools live, outside the source tree.
RO_CACHE="${RO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resiliency-operator}"
export RO_CACHE
RO_KUBE_VERSION=1.20.2
RO_KUBE_BIN="$RO_CACHE/kube-$RO_KUBE_VERSION/bin"
export RO_KUBE_BIN
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
