#!/usr/bin/env bash
# Builds the operator's container image, and the images the tests run next to it, offline:
# no container registry is used, only the Debian mirror that apt already uses.
#
#   scripts/build-image.sh [options] [target...]
#
# Targets (default: all):
#   base       debian:bookworm and debian:bookworm-slim, made with mmdebstrap from the
#              mirror in $RO_IMAGE_SOURCES (default /etc/apt/sources.list.d/debian.sources)
#              and imported into podman as docker.io/library/debian:bookworm{,-slim}
#   operator   the repository's Containerfile, unchanged (compiles in the image), or with
#              --binaries, the same runtime stage with already-built binaries copied in
#   nats       deploy/images/nats.Containerfile     (Debian's nats-server, JetStream on)
#   redis      deploy/images/redis.Containerfile    (Debian's redis-server)
#   busybox    deploy/images/busybox.Containerfile  (Debian's busybox-static, FROM scratch)
#
# Image references and archives ($RO_CACHE defaults to ~/.cache/resiliency-operator):
#   ghcr.io/resiliency-operator/resiliency-operator:0.1.0  $RO_CACHE/images/resiliency-operator-0.1.0.oci.tar
#   localhost/resiliency-operator/nats:2.9.10               $RO_CACHE/images/nats-2.9.10.oci.tar
#   localhost/resiliency-operator/redis:7.0.15              $RO_CACHE/images/redis-7.0.15.oci.tar
#   localhost/resiliency-operator/busybox:1.35.0            $RO_CACHE/images/busybox-1.35.0.oci.tar
# The operator keeps the name deploy/operator/*.yaml uses, so the manifests work unchanged
# once the archive is imported. `--list` prints "target reference archive" lines.
# Each archive is an OCI archive (podman save --format oci-archive) that containerd imports:
#   ctr -n k8s.io images import $RO_CACHE/images/nats-2.9.10.oci.tar
# (scripts/check-image-import.sh does that against a throw-away containerd).
#
# Options:
#   --binaries DIR  operator only: skip the in-image compile and copy the product's
#                   executables of DIR (*-controller, audit-webhook and kubesync of a Release tree's bin/,
#                   e.g. build/release/bin; other programs there are ignored) into the
#                   runtime stage of Containerfile (same base, same packages, same
#                   /usr/local/bin, same USER 65532:65532). The stage is cut out of
#                   Containerfile at build time, so both modes always share one layout.
#   --refresh-base  remake the base images even if cached (the mirror moved on)
#   --force         rebuild the selected images even if the cached archive is current
#   --list          print the targets' references and archive paths, build nothing
#
# Caching (everything under $RO_CACHE/images, nothing in the source tree):
#   base/debian-bookworm{,-slim}-<key>.tar  mmdebstrap output; key = recipe + sources file +
#                                          mmdebstrap version
#   storage-<driver>/                      podman's image store (layer cache of RUN steps)
#   <name>-<version>.oci.tar + .key        the results; key = base keys + Containerfile +
#                                          build context (sources, or the binaries' hashes)
#                                          + build args. A current archive is reused as is.
# Environment: RO_IMAGE_DRIVER (overlay|vfs; default: overlay when it works, else vfs),
#   RO_IMAGE_RUNTIME (default runc), RO_IMAGE_NICE (default 10), RO_IMAGE_BUILD_FLAGS (extra `podman build` flags, e.g.
#   --cpuset-cpus=0), RO_IMAGE_SOURCES (deb822 sources file for the base images).
#
# Needs root and the Debian packages podman, mmdebstrap, runc (and uidmap, which podman
# recommends). buildah, the program, is not used: podman build has it built in.
# RUN steps use --network=host: the only thing they reach is the Debian mirror (apt).
# Podman runs with a containers.conf of its own: runc, cgroupfs, events to a file, and
# ulimits no higher than the current hard limits (see the comment at pm() below).
#
# Measured on the shared 2-core sandbox VM (details: docs/operations.md, "Building the
# image offline"): base images cold 191-243 s (two mmdebstrap runs), warm 3 s;
# --binaries operator + nats + redis + busybox from a warm base 115 s, all current 5 s.
# Sizes (OCI archive / unpacked): operator 45.8/116 MB, nats 35.3/90 MB,
# redis 35.6/91.5 MB, busybox 1.1/2.1 MB; bookworm-slim 77.6 MB, bookworm 121 MB.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
root="$(cd "$here/.." && pwd)"

# Bump when the way an image is made changes in a way the keys below do not see.
RECIPE=1
NATS_VERSION=2.9.10
REDIS_VERSION=7.0.15
BUSYBOX_VERSION=1.35.0

IMG="$RO_CACHE/images"
SOURCES="${RO_IMAGE_SOURCES:-/etc/apt/sources.list.d/debian.sources}"
NICE="${RO_IMAGE_NICE:-10}"
read -r -a EXTRA_BUILD_FLAGS <<<"${RO_IMAGE_BUILD_FLAGS:-}"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

binaries="" refresh_base=0 force=0 list=0 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binaries) [ $# -ge 2 ] || die "--binaries needs a directory"; binaries="$2"; shift ;;
    --binaries=*) binaries="${1#*=}" ;;
    --refresh-base) refresh_base=1 ;;
    --force) force=1 ;;
    --list) list=1 ;;
    -h|--help) usage 0 ;;
    base|operator|nats|redis|busybox) targets+=("$1") ;;
    all) targets+=(base operator nats redis busybox) ;;
    *) log "unknown argument: $1"; usage 2 ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(base operator nats redis busybox)

# The operator's reference: the name the manifests use, the version Containerfile labels.
op_version="$(sed -n 's/.*org\.opencontainers\.image\.version="\([^"]*\)".*/\1/p' "$root/Containerfile" | head -n1)"
[ -n "$op_version" ] || die "no org.opencontainers.image.version label in Containerfile"
ref_of() {
  case "$1" in
    operator) echo "ghcr.io/resiliency-operator/resiliency-operator:$op_version" ;;
    nats) echo "localhost/resiliency-operator/nats:$NATS_VERSION" ;;
    redis) echo "localhost/resiliency-operator/redis:$REDIS_VERSION" ;;
    busybox) echo "localhost/resiliency-operator/busybox:$BUSYBOX_VERSION" ;;
  esac
}
archive_of() {
  case "$1" in
    operator) echo "$IMG/resiliency-operator-$op_version.oci.tar" ;;
    nats) echo "$IMG/nats-$NATS_VERSION.oci.tar" ;;
    redis) echo "$IMG/redis-$REDIS_VERSION.oci.tar" ;;
    busybox) echo "$IMG/busybox-$BUSYBOX_VERSION.oci.tar" ;;
  esac
}
if [ "$list" = 1 ]; then
  for t in operator nats redis busybox; do echo "$t $(ref_of "$t") $(archive_of "$t")"; done
  exit 0
fi

[ "$(id -u)" = 0 ] || die "needs root (podman's rootful store; mmdebstrap --mode=root)"
for tool in podman mmdebstrap flock sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install podman buildah mmdebstrap uidmap)"
done
if [ -n "$binaries" ]; then
  binaries="$(cd "$binaries" && pwd)" || die "--binaries: no directory $binaries"
fi

mkdir -p "$IMG/base"
tmp_root="$(mktemp -d)"
on_exit() {
  local rc=$?
  # A failed or interrupted build leaves buildah's working containers (and their
  # mounts) in the store; the store is ours alone (flock), so remove them all.
  if [ "$rc" != 0 ] && [ -n "${DRIVER:-}" ]; then
    local c
    for c in $(pm ps -a --external -q 2>/dev/null); do pm rm -f "$c" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$tmp_root"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
tmpdir() { mktemp -d -p "$tmp_root"; }
exec 9>"$IMG/.lock"
flock 9 # one build at a time: the podman store and the archives are shared

# ---- podman: a store of our own, no systemd, storage driver that works here ----
RUNROOT="/run/resiliency-operator-podman"
pm_driver() {
  if [ -n "${RO_IMAGE_DRIVER:-}" ]; then echo "$RO_IMAGE_DRIVER"; return; fi
  # overlay needs a kernel overlayfs whose upper dir may sit on the store's filesystem;
  # try it once by mounting a tiny overlay, fall back to vfs (copies every layer).
  local t; t="$(tmpdir)"
  mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
  local probe="$IMG/storage-overlay/.probe"
  if mkdir -p "$probe" && mkdir -p "$probe/u" "$probe/w" \
     && mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$probe/u,workdir=$probe/w" "$t/m" 2>/dev/null; then
    umount "$t/m"; rm -rf "$probe" "$t"; echo overlay
  else
    rm -rf "$probe" "$t"; echo vfs
  fi
}
DRIVER="$(pm_driver)"
STORE="$IMG/storage-$DRIVER"
# containers.conf of our own (CONTAINERS_CONF replaces /etc/containers/containers.conf):
# - runc: crun 1.8 refuses this VM's hybrid cgroup v1/v2 layout ("crun: cgroups in hybrid
#   mode not supported, drop all controllers from cgroupv2"); runc handles it.
# - cgroupfs and a file for events: no systemd.
# - ulimits: podman asks for RLIMIT_NOFILE 1048576 by default, and the runtime gets
#   "setrlimit RLIMIT_NOFILE: Operation not permitted" without CAP_SYS_RESOURCE (missing
#   here). Use the current hard limits; podman itself lowers its RLIMIT_NPROC to 32768,
#   so nproc above that fails the same way.
hard_nofile="$(ulimit -Hn)"; hard_nproc="$(ulimit -Hu)"
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
if [ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -gt 32768 ]; then hard_nproc=32768; fi
export CONTAINERS_CONF="$tmp_root/containers.conf"
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$hard_nofile:$hard_nofile", "nproc=$hard_nproc:$hard_nproc"]
[engine]
runtime = "${RO_IMAGE_RUNTIME:-runc}"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
pm() {
  nice -n "$NICE" podman --root "$STORE" --runroot "$RUNROOT/$DRIVER" --storage-driver "$DRIVER" "$@"
}
label_of() { # image label
  pm image inspect --format "{{index .Labels \"$2\"}}" "$1" 2>/dev/null || true
}
sha() { sha256sum | cut -c1-16; }
tree_hash() { # dir paths... (relative to dir): hash of the files' names and contents
  local d="$1"; shift
  (cd "$d" && find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha
}

# ---- base images ----
# debian:bookworm is what debuerreotype makes for Docker Hub: the minbase variant.
# debian:bookworm-slim is the same plus dpkg path-excludes for docs, man pages, locales
# (debuerreotype-slimify), kept in /etc/dpkg/dpkg.cfg.d so later installs stay slim too.
slim_opts=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/groff/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/linda/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
)
base_key() { # name
  [ -r "$SOURCES" ] || die "no apt sources file $SOURCES (set RO_IMAGE_SOURCES)"
  { echo "recipe=$RECIPE name=$1 hook=merged-usr"; [ "$1" = bookworm-slim ] && printf '%s\n' "${slim_opts[@]}"
    cat "$SOURCES"; mmdebstrap --version; tree_hash "$root/deploy/images" debian-base; echo rm-bin; } | sha
}
BASE_KEY_bookworm="" BASE_KEY_slim=""
make_base() { # name (bookworm|bookworm-slim)
  local name="$1" key tar ref opts=()
  key="$(base_key "$name")"
  tar="$IMG/base/debian-$name-$key.tar"
  ref="docker.io/library/debian:$name"
  [ "$name" = bookworm-slim ] && opts=("${slim_opts[@]}")
  if [ "$refresh_base" = 1 ] || [ ! -s "$tar" ]; then
    log "base $name: mmdebstrap --variant=minbase from $SOURCES"
    rm -f "$IMG/base/debian-$name-"????????????????.tar
    local t0=$SECONDS
    # merged-usr hook: the /bin -> usr/bin symlinks debootstrap makes, instead of the
    # usrmerge package (which would pull perl into the image). deploy/images/debian-base:
    # the apt/dpkg settings of Docker Hub's debian images (no .debs or package caches left
    # in a layer, no daemons started by postinst), which the Containerfiles rely on.
    # With those settings in place mmdebstrap's cleanup no longer sees apt's *.bin caches,
    # hence the explicit rm.
    # shellcheck disable=SC2016 # $1 is the chroot, expanded by mmdebstrap's hook shell
    nice -n "$NICE" mmdebstrap --quiet --mode=root --variant=minbase --format=tar \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr "${opts[@]}" \
      --customize-hook="sync-in $root/deploy/images/debian-base /" \
      --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
      bookworm "$tar.tmp" "$SOURCES" || { rm -f "$tar.tmp"; die "mmdebstrap $name failed"; }
    mv "$tar.tmp" "$tar"
    log "base $name: made in $((SECONDS - t0))s ($(du -h "$tar" | cut -f1))"
    refresh_import=1
  else
    refresh_import=0
  fi
  if [ "$refresh_import" = 1 ] || [ "$(label_of "$ref" io.resiliency-operator.base-key)" != "$key" ]; then
    log "base $name: podman import as $ref"
    pm import --quiet --change 'CMD ["bash"]' \
      --change "LABEL io.resiliency-operator.base-key=$key" "$tar" "$ref" >/dev/null
  fi
  if [ "$name" = bookworm ]; then BASE_KEY_bookworm="$key"; else BASE_KEY_slim="$key"; fi
}


# build_and_save target containerfile context key [podman build args...]
build_and_save() {
  local target="$1" file="$2" context="$3" key="$4"; shift 4
  local ref archive; ref="$(ref_of "$target")"; archive="$(archive_of "$target")"
  if [ "$force" = 0 ] && [ -s "$archive" ] && [ "$(cat "$archive.key" 2>/dev/null)" = "$key" ]; then
    log "$target: $archive is current (key $key)"
    return
  fi
  rm -f "$archive.key" # until the new archive is saved, whatever is there is stale
  log "$target: podman build -t $ref -f ${file#"$root"/}"
  local t0=$SECONDS
  pm build --quiet --pull=never --network=host --layers --format oci \
    --label "io.resiliency-operator.build-key=$key" "${EXTRA_BUILD_FLAGS[@]}" \
    -t "$ref" -f "$file" "$@" "$context" >/dev/null
  log "$target: built in $((SECONDS - t0))s"
  if [ "$target" = operator ]; then operator_runtime_check; fi # before it is saved as current
  rm -f "$archive.tmp"
  pm save --quiet --format oci-archive -o "$archive.tmp" "$ref"
  mv "$archive.tmp" "$archive"
  echo "$key" >"$archive.key"
  log "$target: saved $archive ($(du -h "$archive" | cut -f1); image $(pm image inspect --format '{{.Size}}' "$ref" | numfmt --to=iec) unpacked)"
}

operator_runtime_check() { # every binary's libraries are in the runtime image
  local ref; ref="$(ref_of operator)"
  local missing
  # shellcheck disable=SC2016 # expanded by the shell in the image
  missing="$(pm run --rm --network=none --entrypoint /bin/sh "$ref" -c \
    'for b in /usr/local/bin/*; do ldd "$b" | sed -n "s|^|$b: |; /not found/p"; done' 2>&1)" \
    || die "operator: could not run the image to check its libraries: $missing"
  [ -z "$missing" ] || die "operator: libraries missing from the runtime image:
$missing"
  log "operator: $(pm run --rm --network=none --entrypoint /bin/sh "$ref" -c 'ls /usr/local/bin | wc -l') binaries, all libraries resolve, user $(pm image inspect --format '{{.Config.User}}' "$ref")"
}

build_operator() {
  local key
  if [ -z "$binaries" ]; then
    key="$( { echo "recipe=$RECIPE operator full $BASE_KEY_bookworm $BASE_KEY_slim"
              tree_hash "$root" Containerfile CMakeLists.txt cmake include src; } | sha)"
    build_and_save operator "$root/Containerfile" "$root" "$key"
  else
    # The runtime stage of Containerfile: from its last FROM to the end, with the COPY
    # from the build stage replaced by a COPY of the staged binaries.
    local ctx; ctx="$(tmpdir)"
    awk '/^FROM /{n=NR} {l[NR]=$0} END{for(i=n;i<=NR;i++) print l[i]}' "$root/Containerfile" \
      | sed 's|^COPY --from=build /out/ /usr/local/bin/$|COPY bin/ /usr/local/bin/|' >"$ctx/Containerfile"
    grep -q '^COPY bin/ /usr/local/bin/$' "$ctx/Containerfile" \
      || die "Containerfile's runtime stage no longer has 'COPY --from=build /out/ /usr/local/bin/'; update build-image.sh"
    mkdir "$ctx/bin"
    local n=0 f
    # The product's executables only (what the in-image build installs with tests off):
    # a test tree's bin/ also holds test and benchmark programs.
    for f in "$binaries"/*-controller "$binaries"/audit-webhook "$binaries"/kubesync; do
      if [ ! -f "$f" ] || [ ! -x "$f" ]; then continue; fi
      install -m 0755 "$f" "$ctx/bin/"; n=$((n + 1))
    done
    [ "$n" -eq 10 ] || die "--binaries: $binaries has $n of the 10 programs (8 *-controller, audit-webhook and kubesync); build them: cmake --build <tree> --target kubesync ro_controller_binaries"
    key="$( { echo "recipe=$RECIPE operator binaries $BASE_KEY_slim"
              tree_hash "$ctx" Containerfile bin; } | sha)"
    log "operator: runtime stage of Containerfile with $n binaries from $binaries"
    build_and_save operator "$ctx/Containerfile" "$ctx" "$key"
  fi
}

build_service() { # target version-arg version
  local target="$1" arg="$2" version="$3" file="$root/deploy/images/$1.Containerfile" key
  key="$( { echo "recipe=$RECIPE $target $arg=$version $BASE_KEY_slim"; sha256sum <"$file"; } | sha)"
  local ctx; ctx="$(tmpdir)" # the Containerfiles COPY nothing from the context
  build_and_save "$target" "$file" "$ctx" "$key" --build-arg "$arg=$version"
}

t_start=$SECONDS
want() { local t; for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }
log "podman storage driver: $DRIVER ($STORE)"
# Every target needs bookworm-slim; only the in-image compile needs bookworm.
make_base bookworm-slim
if want base || { want operator && [ -z "$binaries" ]; }; then make_base bookworm; fi
# (if, not &&: set -e does not apply inside a function called on the left of &&)
if want operator; then build_operator; fi
if want nats; then build_service nats NATS_VERSION "$NATS_VERSION"; fi
if want redis; then build_service redis REDIS_VERSION "$REDIS_VERSION"; fi
if want busybox; then build_service busybox BUSYBOX_VERSION "$BUSYBOX_VERSION"; fi
log "done in $((SECONDS - t_start))s"
