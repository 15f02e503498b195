#!/usr/bin/env bash
# The demo (README.md): a warm standby of an application, following the manual's
# tutorial 8.2 (active-passive) on two local clusters.
#   1. scripts/setup.sh (idempotent), then a Release build of the binaries it runs
#   2. ro-testenv: two Kubernetes clusters (etcd + kube-apiserver 1.20 +
#      kube-controller-manager) and an S3 server on 127.0.0.1
#   3. the operator on cluster 2 (2-cluster architecture): the CRDs, and every
#      controller as a local process; the LiveSynchronization controller runs the
#      pipeline as local processes too (--component-runner=local: no kubelet here)
#   4. a sample application in namespace "shop" of cluster 1, labelled sync=true; cluster 2
#      is an empty standby (no namespace shop)
#   5. tutorial 8.2 verbatim: secrets, KubernetesClusters, livesync.yaml; the
#      LiveSynchronization names the missing namespace (DestinationNamespacesMissing),
#      then forceNamespaceCreation is turned on and the namespace arrives with its labels
#   6. cluster 2 follows creates, updates and deletes; Deployments at replicas 0
#   7. recovery: first a dry run and a drill (roctl: the recovery rehearsed on a copy of the
#      standby, then removed), then the tutorial's TaskRun on the generated Task,
#      Deployments at replicas 1
#   8. tears everything down
# Interactive by default (pauses between steps); --ci or RO_DEMO_NONINTERACTIVE=1 runs
# without pauses and exits non-zero when a step fails (every wait has a deadline).
# --in-cluster: the operator as users run it. Cluster 2 gets a node (kubelet, containerd;
# needs root), the images are built offline (scripts/build-image.sh) and imported, and
# step 3 is the manual's install (namespace, license Secret, CRDs, `kubectl apply -k
# deploy/overlays/local-images`): the eight controllers and the pipeline run as pods.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

interactive=1
in_cluster=0
[ "${RO_DEMO_NONINTERACTIVE:-0}" = 1 ] && interactive=0
for arg in "$@"; do
  case "$arg" in
    --ci) interactive=0 ;;
    --in-cluster) in_cluster=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

"$here/setup.sh"

build="${RO_DEMO_BUILD_DIR:-$root/build/release}"
targets=(ro-testenv kubesync ro_controller_binaries)
log "building ${targets[*]} in $build (Release)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
bin="$build/bin"
if [ "$in_cluster" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "--in-cluster needs root (the node's namespaces, mounts and iptables)"
  log "building the images (scripts/build-image.sh; minutes the first time, seconds after)"
  "$here/build-image.sh" --binaries "$bin" operator nats redis busybox
fi

env_dir="${RO_DEMO_DIR:-$root/build/demo}"
rm -rf "$env_dir"
mkdir -p "$env_dir/logs" "$env_dir/user"
testenv_log="$env_dir/logs/ro-testenv.log"

# ---- narration and waiting ----
# shellcheck source=scripts/demo-lib.sh
. "$here/demo-lib.sh"

# --in-cluster, on failure: the pods' logs go with the servers; keep them in logs/pods/.
save_pod_logs() {
  local ns pod dir="$env_dir/logs/pods"
  mkdir -p "$dir"
  for ns in resiliency-operator disaster-recovery; do
    kubectl --kubeconfig "$RO_CLUSTER2_KUBECONFIG" -n "$ns" get pods -o wide >"$dir/$ns.pods.txt" 2>&1 || continue
    kubectl --kubeconfig "$RO_CLUSTER2_KUBECONFIG" -n "$ns" get events >"$dir/$ns.events.txt" 2>&1 || true
    for pod in $(kubectl --kubeconfig "$RO_CLUSTER2_KUBECONFIG" -n "$ns" get pods -o name 2>/dev/null); do
      kubectl --kubeconfig "$RO_CLUSTER2_KUBECONFIG" -n "$ns" logs "$pod" >"$dir/$ns.${pod#pod/}.log" 2>&1 || true
    done
  done
  log "the pods' logs are in $dir"
}

pids=()
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  if [ "${#pids[@]}" -gt 0 ]; then
    log "stopping the operator's controllers"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ "$in_cluster" = 1 ] && [ -n "${RO_CLUSTER2_KUBECONFIG:-}" ]; then
    save_pod_logs || true
  fi
  if [ -n "${testenv_pid:-}" ] && kill -0 "$testenv_pid" 2>/dev/null; then
    log "stopping the servers"
    kill -TERM "$testenv_pid" 2>/dev/null || true
    wait "$testenv_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ]; then
    log "the demo failed; logs are in $env_dir/logs"
  fi
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# ---- 2. servers ----
node_args=()
if [ "$in_cluster" = 1 ]; then
  step "Starting two Kubernetes clusters (cluster 2 with a node: kubelet, containerd, kube-proxy) and an S3 server (ro-testenv)"
  node_args=(--node-cluster 2)
else
  step "Starting two Kubernetes clusters and an S3 server on 127.0.0.1 (ro-testenv)"
fi
"$bin/ro-testenv" up --dir "$env_dir/env" --clusters 2 --controller-manager "${node_args[@]}" --s3 --bucket drills >"$testenv_log" 2>&1 &
testenv_pid=$!
deadline=$((SECONDS + 600))  # ro-testenv has its own per-server deadlines; this guards a hang
until [ -f "$env_dir/env/ready" ]; do
  kill -0 "$testenv_pid" 2>/dev/null || { cat "$testenv_log" >&2; die "ro-testenv exited before the servers were ready"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$testenv_log" >&2; die "servers not ready after 600 s"; }
  sleep 0.2
done
# shellcheck source=/dev/null
. "$env_dir/env/env.sh"
c1=(kubectl --kubeconfig "$RO_CLUSTER1_KUBECONFIG")
c2=(kubectl --kubeconfig "$RO_CLUSTER2_KUBECONFIG")
say "cluster 1 (source, active):        $RO_CLUSTER1_SERVER"
say "cluster 2 (destination, standby):  $RO_CLUSTER2_SERVER  -- the operator runs here"

# ---- 3. the operator ----
if [ "$in_cluster" = 1 ]; then
  step "Installing the operator on cluster 2 as the manual's section 3 says, from the image"
  while read -r _ _ archive; do
    run_quiet ctr --address "$RO_CLUSTER2_CONTAINERD" -n k8s.io images import "$archive"
  done < <("$here/build-image.sh" --list)
  run "${c2[@]}" create namespace resiliency-operator
  "${c2[@]}" -n resiliency-operator create -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Secret
metadata: {name: license-key, namespace: resiliency-operator}
type: Opaque
stringData: {license: "licensee: resiliency-operator demo\nexpiresAt: 2099-01-01T00:00:00Z\n"}
YAML
  say "(created the license Secret license-key)"
  run_quiet "${c2[@]}" apply -f "$root/deploy/crds/all.yaml"
  wait_for 60 "CRDs established" "${c2[@]}" wait --for=condition=Established --timeout=5s crd --all
  run_quiet "${c2[@]}" -n resiliency-operator apply -k "$root/deploy/overlays/local-images"
  wait_for 300 "the eight controllers Available" "${c2[@]}" -n resiliency-operator wait --for=condition=Available \
    --timeout=5s deployment -l app.kubernetes.io/name=resiliency-operator
  run "${c2[@]}" -n resiliency-operator get pods -o wide
  controllers_alive() { "${c2[@]}" -n resiliency-operator wait --for=condition=Available --timeout=5s \
    deployment -l app.kubernetes.io/name=resiliency-operator >/dev/null; }
  pause
else
step "Installing the operator on cluster 2: the CRDs, then the controllers as local processes"
run "${c2[@]}" apply -f "$root/deploy/crds/all.yaml" >/dev/null
wait_for 60 "CRDs established" "${c2[@]}" wait --for=condition=Established --timeout=5s crd --all
printf 'licensee: resiliency-operator demo\nexpiresAt: 2099-01-01T00:00:00Z\n' >"$env_dir/license"
for controller in kubernetescluster bucket database livesynchronization synchronization synchronizationplan task taskrun; do
  extra=()
  case "$controller" in
    kubernetescluster|bucket) extra=(--recheck-interval=10s) ;;
    livesynchronization)
      extra=(--component-runner=local --runtime-dir="$env_dir/pipelines" --kubesync-binary="$bin/kubesync"
             --status-refresh-interval=3s) ;;
  esac
  "$bin/$controller-controller" --kubeconfig="$RO_CLUSTER2_KUBECONFIG" --license-file="$env_dir/license" \
    --metrics-bind-address=0 --health-probe-bind-address=0 "${extra[@]}" \
    >"$env_dir/logs/$controller-controller.log" 2>&1 &
  pids+=($!)
done
say "controllers running; logs in $env_dir/logs/"
controllers_alive() { for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done; }
pause
fi

# ---- 4. the application ----
step "A sample application in namespace 'shop' of cluster 1, labelled sync=true"
run "${c1[@]}" create namespace shop
run "${c1[@]}" label namespace shop sync=true
run "${c1[@]}" apply -f - <<'YAML'
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: shop}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec: {serviceAccountName: web, containers: [{name: web, image: "nginx:1.25"}]}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {selector: {app: web}, ports: [{port: 80, targetPort: 80}]}
- apiVersion: v1
  kind: Secret
  metadata: {name: web-config, namespace: shop}
  stringData: {greeting: hello from cluster 1}
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: web, namespace: shop}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: web-reader, namespace: shop}
  rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: web-reader, namespace: shop}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: web-reader}
  subjects: [{kind: ServiceAccount, name: web, namespace: shop}]
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: web, namespace: shop}
  spec:
    rules:
    - host: shop.example.com
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
YAML
run "${c1[@]}" -n shop get deployments,services,secrets,serviceaccounts,roles,rolebindings,ingresses
say "Cluster 2 is an empty standby: it has no namespace shop (nothing is created there by hand)."
run "${c2[@]}" get namespaces
pause

# ---- 5. tutorial 8.2 ----
step "Tutorial 8.2 (active-passive), as written, on cluster 2"
user="$env_dir/user"
if [ "$in_cluster" = 1 ]; then
  # The Secrets are read by pods: the apiservers' addresses as the node's pods reach them.
  cp "$RO_CLUSTER1_POD_KUBECONFIG" "$user/cluster-1-kubeconfig.yaml"
  cp "$RO_CLUSTER2_POD_KUBECONFIG" "$user/cluster-2-kubeconfig.yaml"
else
  cp "$RO_CLUSTER1_KUBECONFIG" "$user/cluster-1-kubeconfig.yaml"
  cp "$RO_CLUSTER2_KUBECONFIG" "$user/cluster-2-kubeconfig.yaml"
fi
cp "$RO_CLUSTER2_KUBECONFIG" "$user/kubeconfig"
cp "$root/tests/samples/8.1-kubernetescluster-cluster-1.yaml" "$user/cluster-1.yaml"
cp "$root/tests/samples/8.1-kubernetescluster-cluster-2.yaml" "$user/cluster-2.yaml"
cp "$root/tests/samples/8.2-active-passive-livesync.yaml" "$user/livesync.yaml"
cd "$user"
export KUBECONFIG="$user/kubeconfig"
say "Prerequisite: a namespace for the secrets and the synchronization."
run kubectl create namespace disaster-recovery
run kubectl config set-context --current --namespace=disaster-recovery >/dev/null
say "Import the active cluster:"
run kubectl create secret generic cluster-1-kubeconfig --from-file=kubeconfig.yaml=cluster-1-kubeconfig.yaml
run cat cluster-1.yaml
run kubectl create -f cluster-1.yaml
say "Import the passive cluster:"
run kubectl create secret generic cluster-2-kubeconfig --from-file=kubeconfig.yaml=cluster-2-kubeconfig.yaml
run kubectl create -f cluster-2.yaml
controllers_alive || die "a controller exited (see $env_dir/logs)"
wait_for 120 "both KubernetesClusters Ready" kubectl wait --for=condition=Ready --timeout=5s kubernetescluster/cluster-1 kubernetescluster/cluster-2
run kubectl get kubernetesclusters
say "Synchronize the clusters (livesync.yaml is the tutorial's):"
run cat livesync.yaml
run kubectl apply -f livesync.yaml
wait_for 180 "LiveSynchronization active-passive Ready" kubectl wait --for=condition=Ready --timeout=5s livesynchronization/active-passive
run kubectl get livesynchronizations
if [ "$in_cluster" = 1 ]; then
  say "Its components run as pods of the namespace:"
  run kubectl get pods -o wide
fi
say "The tutorial does not set forceNamespaceCreation (off by default), and cluster 2 has no"
say "namespace shop: the LiveSynchronization says so, with a condition and a Warning Event."
wait_for 120 "condition DestinationNamespacesMissing" kubectl wait --for=condition=DestinationNamespacesMissing --timeout=5s livesynchronization/active-passive
run kubectl get livesynchronization active-passive -o jsonpath='{.status.conditions[?(@.type=="DestinationNamespacesMissing")].message}{"\n"}'
run kubectl get events --field-selector reason=NamespacesNotFound
say "Let the operator create the namespaces, like the source's (labels and annotations included):"
run kubectl patch livesynchronization active-passive --type=merge -p '{"spec":{"config":{"replication":{"forceNamespaceCreation":true}}}}'
wait_for 120 "namespace shop in cluster 2" "${c2[@]}" get namespace shop
run "${c2[@]}" get namespace shop --show-labels
pause

# ---- 6. replication ----
step "Cluster 2 now holds the application, with its Deployments scaled to 0 (warm standby)"
wait_for 120 "Deployment shop/web in cluster 2" "${c2[@]}" -n shop get deployment web
wait_for 120 "Ingress shop/web in cluster 2" "${c2[@]}" -n shop get ingress web
run "${c2[@]}" -n shop get deployments,services,secrets,serviceaccounts,roles,rolebindings,ingresses
replicas() { "${c2[@]}" -n shop get deployment "$1" -o jsonpath='{.spec.replicas}'; }
say "replicas of web: cluster 1 = $("${c1[@]}" -n shop get deployment web -o jsonpath='{.spec.replicas}'), cluster 2 = $(replicas web)"
[ "$(replicas web)" = 0 ] || die "expected replicas 0 in cluster 2"
pause

step "An update in cluster 1 follows: a new image and a new secret value"
change_sent="$(now_ms)"
run "${c1[@]}" -n shop set image deployment/web web=nginx:1.26
run "${c1[@]}" -n shop patch secret web-config -p '{"stringData":{"greeting":"hello again"}}'
image_is() { [ "$("${c2[@]}" -n shop get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}')" = "$1" ]; }
WAIT_INTERVAL=0.1 wait_for 60 "image nginx:1.26 in cluster 2" image_is nginx:1.26
rpo_seconds="$(seconds_since "$change_sent")"
say "the change reached cluster 2 $rpo_seconds s after kubectl sent it to cluster 1 (polled every 0.1 s)"
greeting_is() { [ "$("${c2[@]}" -n shop get secret web-config -o jsonpath='{.data.greeting}' | base64 -d)" = "$1" ]; }
wait_for 60 "the new secret value in cluster 2" greeting_is "hello again"
run "${c2[@]}" -n shop get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}{"  replicas="}{.spec.replicas}{"\n"}'

step "A create and a delete in cluster 1 follow too"
run "${c1[@]}" -n shop create deployment api --image=nginx:1.26 --replicas=3
run "${c1[@]}" -n shop delete service web
wait_for 60 "Deployment shop/api in cluster 2" "${c2[@]}" -n shop get deployment api
service_gone() { ! "${c2[@]}" -n shop get service web >/dev/null 2>&1; }
wait_for 60 "Service shop/web gone from cluster 2" service_gone
run "${c2[@]}" -n shop get deployments,services
[ "$(replicas api)" = 0 ] || die "expected replicas 0 for api in cluster 2"

step "What the LiveSynchronization reports"
say "The status is refreshed every few seconds; its counts catch up with the changes above:"
deployments_counted() {
  [ "$(kubectl get livesynchronization active-passive -o jsonpath='{.status.resources[?(@.resource=="deployments")].objects}')" = 2 ]
}
wait_for 60 "2 deployments counted in status" deployments_counted
run kubectl get livesynchronization active-passive
run kubectl get livesynchronization active-passive -o jsonpath='{range .status.resources[*]}{.resource}{": "}{.objects}{" objects\n"}{end}{"lag: "}{.status.lagSeconds}{" s\n"}{range .status.components[*]}{.name}{": "}{.message}{"\n"}{end}'
say "The recovery Task it generated (manual 8.2, 'Understanding the TaskRun'):"
run kubectl get task active-passive -o jsonpath='{.spec}{"\n"}'
pause

# ---- 7a. drill ----
step "Before a disaster: rehearse the recovery on a copy of the standby (docs/runbook.md, 'Drill')"
say "What the recovery would change, object by object, changing nothing (a dry run):"
run "$bin/roctl" dry-run active-passive
say "A Bucket for the drill's copy of the standby (this demo's S3 server):"
s3_endpoint="$RO_S3_ENDPOINT"
[ "$in_cluster" = 1 ] && s3_endpoint="$RO_S3_POD_ENDPOINT"
cat >drill-bucket.yaml <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: drill-bucket-credentials
stringData:
  accessKeyID: $RO_S3_ACCESS_KEY
  secretAccessKey: $RO_S3_SECRET_KEY
---
apiVersion: assets.astronetes.io/v1alpha1
kind: Bucket
metadata:
  name: drills
spec:
  generic:
    name: drills
    endpoint: $s3_endpoint
    useSSL: false
    secretName: drill-bucket-credentials
EOF
run kubectl apply -f drill-bucket.yaml
wait_for 120 "Bucket drills Ready" kubectl wait --for=condition=Ready --timeout=5s bucket/drills
say "The drill: the standby's namespaces are copied in cluster 2 as <name>-drill, the recovery"
say "Task runs on the copy, and replication goes on untouched:"
printf '%s$ %s%s\n' "$bold" "$bin/roctl drill run active-passive --name rehearsal --bucket drills" "$reset"
drill_out="$("$bin/roctl" drill run active-passive --name rehearsal --bucket drills --timeout 5m)" || {
  echo "$drill_out"
  die "the drill failed"
}
echo "$drill_out"
drill_rto="$(printf '%s\n' "$drill_out" | sed -n 's/^Drill RTO: \([0-9.]*\) s.*/\1/p')"
run "${c2[@]}" -n shop-drill get deployments
say "The standby itself is still at 0 replicas:"
run "${c2[@]}" -n shop get deployments
say "Remove the copy (roctl reaches cluster 2 with your kubeconfig: the KubernetesCluster's is the pods' address):"
run "$bin/roctl" drill cleanup rehearsal --timeout 3m --destination-kubeconfig "$RO_CLUSTER2_KUBECONFIG"
pause

# ---- 7. recovery ----
step "Disaster: recover the application in cluster 2 (tutorial 8.2, 'Recover from disasters')"
say "First pause the synchronization, as the manual advises before recovering:"
run kubectl patch livesynchronization active-passive -p '{"spec":{"suspend":true}}' --type=merge
wait_for 60 "LiveSynchronization suspended" sh -c "kubectl get livesynchronization active-passive -o jsonpath='{.status.phase}' | grep -qx Suspended"
say "The tutorial's taskrun.yaml names its Task 'set-test-label'; the Task generated here is"
say "named after the LiveSynchronization, so taskName is 'active-passive':"
sed 's/taskName: .*/taskName: active-passive/' "$root/tests/samples/8.2-taskrun.yaml" >taskrun.yaml
run cat taskrun.yaml
recovery_started="$(now_ms)"
run kubectl create -f taskrun.yaml
taskrun_state() {
  kubectl get taskrun restore-apps -o jsonpath='{.status.phase}{"/"}{.status.conditions[?(@.type=="Ready")].reason}' 2>/dev/null
}
deadline=$((SECONDS + 120))
state=""
until [ "${state%%/*}" = Succeeded ]; do
  state="$(taskrun_state || true)"
  case "$state" in
    Failed/*) die "the TaskRun failed: $(kubectl get taskrun restore-apps -o jsonpath='{.status.message}')" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || die "the TaskRun did not finish within 120 s (state: ${state:-none})"
  sleep 0.5
done
say "ok: TaskRun restore-apps Succeeded"
run kubectl get taskrun restore-apps
WAIT_INTERVAL=0.1 wait_for 60 "Deployment shop/web at replicas 1 in cluster 2" sh -c "[ \"\$(${c2[*]} -n shop get deployment web -o jsonpath='{.spec.replicas}')\" = 1 ]"
rto_seconds="$(seconds_since "$recovery_started")"
run "${c2[@]}" -n shop get deployments
cd "$root"

step "Done"
say "Measured in this run:"
say "  RPO: a change in cluster 1 was in cluster 2 after $rpo_seconds s (replication, end to end)"
say "  drill RTO: ${drill_rto:-?} s for the recovery of the standby's copy (the drill, before the disaster)"
say "  RTO: $rto_seconds s from creating the TaskRun to the application scaled up in cluster 2"
say "       (the TaskRun itself: $(kubectl get taskrun restore-apps -o jsonpath='{.status.startTime} -> {.status.completionTime}' 2>/dev/null))"
if [ "$in_cluster" = 1 ]; then
  say "Logs: kubectl --kubeconfig $RO_CLUSTER2_KUBECONFIG -n resiliency-operator logs deploy/resiliency-operator-<kind>-controller"
  say "      kubectl --kubeconfig $RO_CLUSTER2_KUBECONFIG -n disaster-recovery logs deploy/active-passive-<component>"
  say "      (while the clusters run); ro-testenv's in $env_dir/logs"
else
  say "Logs: $env_dir/logs (controllers, ro-testenv) and $env_dir/pipelines/*/*/logs (pipeline components)"
fi
if [ "$interactive" = 1 ]; then
  say "Both clusters are still up:"
  say "  kubectl --kubeconfig $RO_CLUSTER1_KUBECONFIG -n shop get all"
  say "  kubectl --kubeconfig $RO_CLUSTER2_KUBECONFIG -n shop get all"
  read -r -p "    (press Enter to tear everything down) " _ </dev/tty || true
fi
log "tearing down"
