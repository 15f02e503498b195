#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
# 1.20.2 from Debian's `kubernetes` source package, offline with Debian's Go, and caches
# them in $RO_KUBE_BIN. A second run finds the cached binaries and returns at once.
# Go's build cache is kept in $RO_CACHE/kube-$RO_KUBE_VERSION/gocache, so a rebuild
# (another patch level, another binary) compiles only what changed.
#
# Why this way: Debian ships no kube-apiserver binary, but the source package carries the
# whole tree with vendor/. Go 1.19 crashes the 1.20 apiserver at run time in the vendored
# modern-go/reflect2 (nil pointer on the first JSON decode of a map), so two vendored
# packages are replaced with Debian's newer copies before building.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

want=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# Bump when the source patches or the list of binaries change: cached binaries built
# with an older level are rebuilt.
# 1: apiserver + controller manager; 2: + scheduler, kubelet, kube-proxy.
patch_level=2
stamp="$RO_KUBE_BIN/.patch-level"
ok=1
for b in "${want[@]}"; do [ -x "$RO_KUBE_BIN/$b" ] || ok=0; done
[ "$(cat "$stamp" 2>/dev/null)" = "$patch_level" ] || ok=0
if [ "$ok" = 1 ]; then
  log "kube $RO_KUBE_VERSION binaries cached in $RO_KUBE_BIN"
  exit 0
fi

work="$RO_CACHE/kube-$RO_KUBE_VERSION/work"
rm -rf "$work"
mkdir -p "$work/lists/partial" "$work/archives/partial"
log "building ${want[*]} $RO_KUBE_VERSION from Debian's source package in $work (takes minutes, once)"

# A private deb-src list made from the system's own sources (never a hard-coded mirror).
src_system=/etc/apt/sources.list.d/debian.sources
srcfile="$work/deb-src.sources"
if [ -f "$src_system" ]; then
  awk 'BEGIN{RS=""; ORS="\n\n"} /Suites:[^\n]*bookworm([ \n]|$)/ {
         sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$src_system" > "$srcfile"
else
  # Older one-line format in /etc/apt/sources.list.
  grep -E '^deb ' /etc/apt/sources.list | grep -v security | sed 's/^deb /deb-src /' > "$work/deb-src.list"
  srcfile="$work/deb-src.list"
fi
[ -s "$srcfile" ] || die "could not derive a deb-src entry from the system's apt sources"

aptopts=(-o "Dir::Etc::SourceList=$srcfile" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
         -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${aptopts[@]}" update -qq
(cd "$work" && apt-get "${aptopts[@]}" source --download-only kubernetes >/dev/null)
orig=$(ls "$work"/kubernetes_*.orig.tar.gz | head -n1)
[ -f "$orig" ] || die "kubernetes orig tarball was not downloaded"
mkdir -p "$work/src"
tar -xzf "$orig" -C "$work/src" --strip-components=1

cd "$work/src"
for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
  [ -d "/usr/share/gocode/src/$pkg" ] || die "missing /usr/share/gocode/src/$pkg (golang-* -dev package)"
  rm -rf "vendor/$pkg"
  mkdir -p "vendor/$pkg"
  cp -r "/usr/share/gocode/src/$pkg/." "vendor/$pkg/"
done
# Since Go 1.16 reflect.Zero shares one zero buffer, which turns a check in the vendored
# OpenAPI type validator into "an empty string is null": custom resources with a string
# field set to "" (group: "" in the manual's samples, an empty condition message) are
# rejected (kubernetes/kubernetes#99804). Apply the upstream fix (kubernetes/kube-openapi#230,
# in Kubernetes 1.21): only a real nil is null.
zero_check='data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))'
zero_files=$(grep -rlF "$zero_check" vendor || true)
[ -n "$zero_files" ] || die "OpenAPI type validator to patch not found in vendor/"
for f in $zero_files; do
  sed -i 's/if data == nil || reflect\.DeepEqual(reflect\.Zero(reflect\.TypeOf(data)), reflect\.ValueOf(data)) {/if data == nil {/' "$f"
  ! grep -qF "$zero_check" "$f" || die "failed to patch $f"
done
mkdir -p .go/src/k8s.io
ln -sfn ../../.. .go/src/k8s.io/kubernetes
gohome="$work/gohome"; mkdir -p "$gohome"
# hack/lib/golang.sh sets GOCACHE=_output/local/go/cache itself: lend it the kept cache
# for the build (same source path every time, so its entries match) and take it back.
gocache="$RO_CACHE/kube-$RO_KUBE_VERSION/gocache"
mkdir -p _output/local/go
if [ -d "$gocache" ]; then mv "$gocache" _output/local/go/cache; fi
whats=()
for b in "${want[@]}"; do whats+=("cmd/$b"); done
rc=0
env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$gohome" \
  make WHAT="${whats[*]}" >"$work/build.log" 2>&1 || rc=$?
# Keep the cache also after a failed build (the next run starts by removing $work).
if [ -d _output/local/go/cache ]; then rm -rf "$gocache"; mv _output/local/go/cache "$gocache"; fi
[ "$rc" = 0 ] || { tail -n 40 "$work/build.log" >&2; die "kube build failed (log: $work/build.log)"; }
mkdir -p "$RO_KUBE_BIN"
for b in "${want[@]}"; do
  install -m 0755 "_output/local/bin/linux/amd64/$b" "$RO_KUBE_BIN/$b"
done
echo "$patch_level" > "$stamp"
cd /
rm -rf "$work"
log "kube binaries cached in $RO_KUBE_BIN"
