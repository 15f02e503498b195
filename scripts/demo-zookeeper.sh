#!/usr/bin/env bash
# The second demo: the manual's tutorial 8.3 (synchronize ZooKeeper clusters) on 127.0.0.1.
# Starts a Kubernetes apiserver and two ZooKeeper servers (ro-testenv), runs the database,
# synchronization and synchronizationplan controllers as local processes, writes a small
# tree into the first ZooKeeper (zkCli.sh), then follows the tutorial word for word: the
# Databases zookeeper-1 and zookeeper-2, the hourly SynchronizationPlan, and the one-shot
# Synchronization (`kubectl create -f zookeeper-sync-once.yaml`, generateName). Shows the
# tree copied into the second ZooKeeper, a change following on the next run, and a run
# that has nothing to write.
#
#   ./scripts/demo-zookeeper.sh          narrated, pauses between steps
#   ./scripts/demo-zookeeper.sh --ci     no pauses; exits non-zero when a step fails
# RO_DEMO_BUILD_DIR (default build/release) selects the build; with RO_DEMO_NO_BUILD=1
# the binaries already there are used as they are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

interactive=1
[ "${RO_DEMO_NONINTERACTIVE:-0}" = 1 ] && interactive=0
for arg in "$@"; do
  case "$arg" in
    --ci) interactive=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

build="${RO_DEMO_BUILD_DIR:-$root/build/release}"
if [ "${RO_DEMO_NO_BUILD:-0}" != 1 ]; then
  "$here/setup.sh"
  log "building ro-testenv and the controllers in $build (Release)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target ro-testenv ro_controller_binaries
fi
bin="$build/bin"
zkcli=/usr/share/zookeeper/bin/zkCli.sh
[ -x "$zkcli" ] || die "$zkcli not found (Debian package zookeeper; scripts/setup.sh installs it)"

env_dir="${RO_DEMO_DIR:-$root/build/demo-zookeeper}"
rm -rf "$env_dir"
mkdir -p "$env_dir/logs" "$env_dir/user"

# shellcheck source=scripts/demo-lib.sh
. "$here/demo-lib.sh"

pids=()
envs=()
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  if [ "${#pids[@]}" -gt 0 ]; then
    log "stopping the controllers"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  for pid in "${envs[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  [ "$status" = 0 ] || log "the demo failed; logs are in $env_dir/logs"
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# up NAME ARGS...: one ro-testenv in the background; waits for its env.sh.
up() {
  local name="$1"; shift
  "$bin/ro-testenv" up --dir "$env_dir/$name" "$@" >"$env_dir/logs/ro-testenv-$name.log" 2>&1 &
  envs+=($!)
  local pid=$! deadline=$((SECONDS + 300))
  until [ -f "$env_dir/$name/ready" ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$env_dir/logs/ro-testenv-$name.log" >&2; die "ro-testenv $name exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "ro-testenv $name not ready after 300 s"
    sleep 0.2
  done
}

step "Starting a Kubernetes apiserver and two ZooKeeper servers on 127.0.0.1 (ro-testenv)"
up kube --clusters 1
up zk1 --clusters 0 --zookeeper
up zk2 --clusters 0 --zookeeper
# shellcheck source=/dev/null
. "$env_dir/kube/env.sh"
# shellcheck source=/dev/null
zk1="$(. "$env_dir/zk1/env.sh"; echo "$RO_ZK_SERVERS")"
# shellcheck source=/dev/null
zk2="$(. "$env_dir/zk2/env.sh"; echo "$RO_ZK_SERVERS")"
export KUBECONFIG="$RO_CLUSTER1_KUBECONFIG"
say "apiserver:    $RO_CLUSTER1_SERVER"
say "zookeeper-1:  $zk1 (source)"
say "zookeeper-2:  $zk2 (destination, empty)"

step "Installing the operator: the CRDs, then the controllers as local processes"
run kubectl apply -f "$root/deploy/crds/all.yaml" >/dev/null
wait_for 60 "CRDs established" kubectl wait --for=condition=Established --timeout=5s crd --all
printf 'licensee: resiliency-operator demo\nexpiresAt: 2099-01-01T00:00:00Z\n' >"$env_dir/license"
for controller in database synchronization synchronizationplan; do
  extra=()
  [ "$controller" = database ] && extra=(--recheck-interval=5s)
  "$bin/$controller-controller" --kubeconfig="$KUBECONFIG" --license-file="$env_dir/license" \
    --metrics-bind-address=0 --health-probe-bind-address=0 "${extra[@]}" \
    >"$env_dir/logs/$controller-controller.log" 2>&1 &
  pids+=($!)
done
run kubectl create namespace zookeeper-sync >/dev/null
kubectl config set-context --current --namespace=zookeeper-sync >/dev/null
say "controllers running; logs in $env_dir/logs/"
pause

step "A small tree in zookeeper-1 (zkCli.sh)"
"$zkcli" -server "$zk1" >/dev/null 2>&1 <<'ZK'
create /shop ""
create /shop/config ""
create /shop/config/db "host=db-1.shop:5432"
create /shop/config/feature-flags "checkout-v2=on"
create /shop/workers ""
create -s /shop/workers/job- "queued"
create -s /shop/workers/job- "queued"
quit
ZK
run "$zkcli" -server "$zk1" ls -R /shop 2>/dev/null | grep '^/'
pause

step "Tutorial 8.3: import both clusters (the tutorial's zookeeper-1.yaml and zookeeper-2.yaml)"
cd "$env_dir/user"
sed "/servers:/,\$ { /- /d }; s|servers:|servers:\n        - $zk1|" "$root/tests/samples/8.3-database-zookeeper-1.yaml" >zookeeper-1.yaml
sed "/servers:/,\$ { /- /d }; s|servers:|servers:\n        - $zk2|" "$root/tests/samples/8.3-database-zookeeper-2.yaml" >zookeeper-2.yaml
run cat zookeeper-1.yaml
run kubectl create -f zookeeper-1.yaml
run kubectl create -f zookeeper-2.yaml
wait_for 60 "both Databases Ready" sh -c \
  "kubectl get database zookeeper-1 zookeeper-2 -o jsonpath='{.items[*].status.conditions[?(@.type==\"Ready\")].status}' | grep -qx 'True True'"
run kubectl get databases
pause

step "Tutorial 8.3: the hourly SynchronizationPlan (zookeeper-sync.yaml)"
cp "$root/tests/samples/8.3-synchronizationplan.yaml" zookeeper-sync.yaml
run cat zookeeper-sync.yaml
run kubectl apply -f zookeeper-sync.yaml
wait_for 60 "the plan scheduled" sh -c \
  "kubectl get synchronizationplan synchronize-zookeeper -o jsonpath='{.status.nextScheduleTime}' | grep -q Z"
run kubectl get synchronizationplan synchronize-zookeeper -o jsonpath='{"next run: "}{.status.nextScheduleTime}{"\n"}'
pause

step "Tutorial 8.3, 'Force the synchronization': kubectl create -f zookeeper-sync-once.yaml"
cp "$root/tests/samples/8.3-synchronization-once.yaml" zookeeper-sync-once.yaml
run cat zookeeper-sync-once.yaml
# sync_once: creates one Synchronization and waits for it to succeed; prints its name.
sync_once() {
  local name phase deadline=$((SECONDS + 120))
  name="$(kubectl create -f zookeeper-sync-once.yaml -o name)"
  printf '%s$ kubectl create -f zookeeper-sync-once.yaml%s\n%s created\n' "$bold" "$reset" "$name"
  until phase="$(kubectl get "$name" -o jsonpath='{.status.phase}')" && [ "$phase" = Succeeded ]; do
    [ "$phase" != Failed ] || die "$name failed: $(kubectl get "$name" -o jsonpath='{.status.message}')"
    [ "$SECONDS" -lt "$deadline" ] || die "$name did not finish within 120 s"
    sleep 0.5
  done
  say "ok: $name Succeeded"
  say "$(kubectl get "$name" -o jsonpath='{.status.message}')"
}
sync_once
run kubectl get synchronizations
say "zookeeper-2 now holds the tree (sequential names kept):"
run "$zkcli" -server "$zk2" ls -R /shop 2>/dev/null | grep '^/'
run "$zkcli" -server "$zk2" get /shop/config/db 2>/dev/null | grep -v '^$' | tail -1
pause

step "A change in zookeeper-1 follows on the next run; a run over an unchanged tree writes nothing"
"$zkcli" -server "$zk1" set /shop/config/db "host=db-2.shop:5432" >/dev/null 2>&1
"$zkcli" -server "$zk1" delete /shop/config/feature-flags >/dev/null 2>&1
say "(set /shop/config/db to host=db-2.shop:5432 and deleted /shop/config/feature-flags in zookeeper-1)"
sync_once
run "$zkcli" -server "$zk2" get /shop/config/db 2>/dev/null | grep -v '^$' | tail -1
sync_once
run kubectl get synchronizations

step "Done"
say "Logs: $env_dir/logs; how the copy works: docs/zookeeper.md"
if [ "$interactive" = 1 ]; then
  read -r -p "    (press Enter to tear everything down) " _ </dev/tty || true
fi
log "tearing down"
