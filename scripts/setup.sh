#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need, non-interactively.
# Idempotent: a second run only checks and returns in seconds.
#   - Debian packages (compilers, libraries, test servers)
#   - s3rver from the npm registry (into the cache directory, never the source tree)
#   - kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
#     1.20.2 built from Debian's source package (scripts/build-kube.sh), cached outside
#     the source tree.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git curl ca-certificates openssl
  # libraries (see CMakeLists.txt / cmake/Dependencies.cmake)
  libcurl4-openssl-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libssl-dev libhiredis-dev libnats-dev prometheus-cpp-dev libcpp-httplib-dev libcli11-dev
  libre2-dev libzookeeper-mt-dev libjemalloc-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  # real servers for tests and the demo
  etcd-server nats-server redis-server zookeeper zookeeper-bin
  # promtool checks and unit-tests the alert rules and dashboard queries (deploy/prometheus)
  prometheus
  # building kube-apiserver from Debian's kubernetes source package
  golang-go rsync jq golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
  dpkg-dev
  # a real node for KubeCluster (with_node): container runtime, CNI, iptables for
  # kube-proxy and portmap, a static busybox for the test images, dnsmasq for cluster DNS
  containerd runc containernetworking-plugins iptables conntrack busybox-static iproute2 procps
  dnsmasq-base
  # s3rver runs on node; another S3 client (botocore) reads the buckets in e2e tests
  npm python3-boto3
)
# ---- container images, offline (issue 8) ----
# scripts/build-image.sh (podman build from mmdebstrap-made debian base images) and
# scripts/check-image-import.sh (a throw-away containerd). runc, not crun: crun 1.8
# refuses hybrid cgroup v1/v2 hosts. Drop this line if no test builds images.
image_packages=(podman runc mmdebstrap containerd)
packages+=("${image_packages[@]}")
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
command -v node >/dev/null 2>&1 || packages+=(nodejs)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm from Debian conflicts with a nodesource nodejs that bundles npm already.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The zookeeper, redis and prometheus packages start system services on install on some
# machines; our tests start their own instances on free ports (and only need promtool
# from prometheus), so stop the system ones if running.
for svc in zookeeper redis-server nats-server etcd prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done

# s3rver from npm, into the cache (pinned version).
if [ ! -x "$RO_CACHE/npm/node_modules/.bin/s3rver" ]; then
  log "installing s3rver@3.7.1 from npm into $RO_CACHE/npm"
  mkdir -p "$RO_CACHE/npm"
  (cd "$RO_CACHE/npm" && npm install --no-audit --no-fund --silent s3rver@3.7.1 >/dev/null)
fi

"$here/build-kube.sh"
log "setup complete (cache: $RO_CACHE)"
