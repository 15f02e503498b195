#!/usr/bin/env bash
# Generates the two operator manifests from one description, so they cannot drift:
#   operator.yaml            plain Kubernetes (pods run as the fixed UID/GID 65532)
#   operator-openshift.yaml  OpenShift's restricted SCC picks the UID/GID: no fixed ids
# Inputs: the controller list below, and rbac/<controller>.yaml with the rules each
# controller needs beyond the ones every controller gets.
#   deploy/operator/build.sh          rewrite both manifests
#   deploy/operator/build.sh --check  exit 1 (and show the diff) if either is stale
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

namespace=resiliency-operator
image=ghcr.io/resiliency-operator/resiliency-operator:0.1.0
version=0.1.0
# UID/GID of the image's non-root user (the distroless "nonroot" convention).
nonroot_id=65532

# controller name -> "<API group> <plural>" of the kind it reconciles.
controllers=(bucket database kubernetescluster livesynchronization synchronization
             synchronizationplan task taskrun)
declare -A kind_of=(
  [bucket]="assets.astronetes.io buckets"
  [database]="assets.astronetes.io databases"
  [kubernetescluster]="assets.astronetes.io kubernetesclusters"
  [livesynchronization]="automation.astronetes.io livesynchronizations"
  [synchronization]="automation.astronetes.io synchronizations"
  [synchronizationplan]="automation.astronetes.io synchronizationplans"
  [task]="automation.astronetes.io tasks"
  [taskrun]="automation.astronetes.io taskruns"
)

labels() {  # $1 indent, $2 component ("bucket-controller", "audit-webhook")
  printf '%sapp.kubernetes.io/name: resiliency-operator\n' "$1"
  printf '%sapp.kubernetes.io/component: %s\n' "$1" "$2"
}

# The ServiceAccount $1 (component $2) in the operator's namespace.
account() {
  cat <<EOF
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: $1
  namespace: $namespace
  labels:
$(labels "    " "$2")
EOF
}
# $1 ClusterRoleBinding|RoleBinding giving the ServiceAccount $2 the ClusterRole|Role of
# the same name; $3 component.
binding() {
  local role=ClusterRole ns_line=""
  if [ "$1" = RoleBinding ]; then role=Role; ns_line="  namespace: $namespace"; fi
  cat <<EOF
---
apiVersion: rbac.authorization.k8s.io/v1
kind: $1
metadata:
  name: $2
${ns_line:+$ns_line
}  labels:
$(labels "    " "$3")
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: $role
  name: $2
subjects:
- kind: ServiceAccount
  name: $2
  namespace: $namespace
EOF
}

# The parts every container of the operator shares: probes on the "health" port, and the
# hardened tail (no privilege, read-only root, the license and /tmp mounts).
probes() {
  cat <<'YAML'
        livenessProbe:
          httpGet:
            path: /healthz
            port: health
          initialDelaySeconds: 5
          periodSeconds: 10
        readinessProbe:
          httpGet:
            path: /readyz
            port: health
          initialDelaySeconds: 2
          periodSeconds: 5
YAML
}
container_tail() {
  cat <<'YAML'
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          runAsNonRoot: true
          capabilities:
            drop: [ALL]
          seccompProfile:
            type: RuntimeDefault
        volumeMounts:
        - name: license
          mountPath: /etc/resiliency-operator/license
          readOnly: true
        - name: tmp
          mountPath: /tmp
      volumes:
      - name: license
        secret:
          secretName: license-key
          items:
          - key: license
            path: license
      - name: tmp
        emptyDir: {}
YAML
}

emit_controller() {  # $1 controller, $2 variant (kubernetes|openshift)
  local c="$1" variant="$2" name="resiliency-operator-$1-controller"
  local group plural
  read -r group plural <<<"${kind_of[$c]}"
  # Fixed ids only for plain Kubernetes: the restricted SCC assigns them per namespace.
  local fixed_ids=""
  if [ "$variant" = kubernetes ]; then
    printf -v fixed_ids '        runAsUser: %s\n        runAsGroup: %s\n        fsGroup: %s\n' \
      "$nonroot_id" "$nonroot_id" "$nonroot_id"
  fi
  # The livesynchronization controller also names the images of the pods it runs for each
  # LiveSynchronization (the deployments runner). They are environment variables, so a
  # kustomize patch (strategic merge: env entries merge by name) can point them at a
  # private registry; the args take them with Kubernetes' $(VAR) expansion.
  local extra_args="" extra_env=""
  if [ "$c" = livesynchronization ]; then
    extra_args='        - --kubesync-image=$(KUBESYNC_IMAGE)
        - --nats-image=$(NATS_IMAGE)
        - --redis-image=$(REDIS_IMAGE)
'
    extra_env="        # Images of the pipeline pods: kubesync (this operator's image), NATS with
        # JetStream, Redis. Override them together with the operator's image.
        - name: KUBESYNC_IMAGE
          value: $image
        - name: NATS_IMAGE
          value: docker.io/library/nats:2.9.10
        - name: REDIS_IMAGE
          value: docker.io/library/redis:7.0.15
"
  fi
  # The synchronization controller runs each copy as a Job of the operator's image
  # (docs/zookeeper.md, "Runners"); PLUGIN_IMAGE follows the operator's image the same way.
  if [ "$c" = synchronization ]; then
    extra_args='        - --runner=job
        - --plugin-image=$(PLUGIN_IMAGE)
'
    extra_env="        # Image of the Jobs that run the copies: this operator's image.
        - name: PLUGIN_IMAGE
          value: $image
"
  fi
  cat <<EOF
$(account "$name" "$c-controller")
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: $name
  labels:
$(labels "    " "$c-controller")
rules:
# Its own kind: watch the objects, keep finalizers on them and write their status.
- apiGroups: [$group]
  resources: [$plural]
  verbs: [get, list, watch, update, patch]
- apiGroups: [$group]
  resources: [$plural/status]
  verbs: [get, update, patch]
- apiGroups: [$group]
  resources: [$plural/finalizers]
  verbs: [update]
# Events about the objects it reconciles, in their namespaces.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
$(cat "$here/rbac/$c.yaml")
$(binding ClusterRoleBinding "$name" "$c-controller")
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: $name
  namespace: $namespace
  labels:
$(labels "    " "$c-controller")
rules:
# Leader election on the Lease named after the controller (the Deployment passes it as
# --leader-election-id). RBAC cannot limit "create" to a name (the name is not known
# when the request is authorized), so create is allowed for any Lease of this
# namespace; get and update only for its own.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [$name]
  verbs: [get, update]
# The license key (also mounted as a file).
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [license-key]
  verbs: [get]
$(binding RoleBinding "$name" "$c-controller")
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  namespace: $namespace
  labels:
$(labels "    " "$c-controller")
    app.kubernetes.io/version: "$version"
spec:
  # One active instance is all a controller needs; a second one would only wait for the
  # Lease. Leader election still guards the hand-over during a rollout.
  replicas: 1
  selector:
    matchLabels:
$(labels "      " "$c-controller")
  template:
    metadata:
      labels:
$(labels "        " "$c-controller")
        app.kubernetes.io/version: "$version"
    spec:
      serviceAccountName: $name
      securityContext:
        runAsNonRoot: true
${fixed_ids}        seccompProfile:
          type: RuntimeDefault
      containers:
      - name: controller
        image: $image
        imagePullPolicy: IfNotPresent
        command: [/usr/local/bin/$c-controller]
        # Every namespace is watched (assets live in the users' namespaces); POD_NAMESPACE
        # only places the leader-election Lease.
        args:
        - --leader-elect
        - --leader-election-id=$name
        - --metrics-bind-address=:8080
        - --health-probe-bind-address=:8081
        - --log-level=info
        - --license-file=/etc/resiliency-operator/license/license
${extra_args}        env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
${extra_env}        ports:
        - name: metrics
          containerPort: 8080
          protocol: TCP
        - name: health
          containerPort: 8081
          protocol: TCP
$(probes)
        # Sized for an informer cache of a few thousand objects; raise the memory limit
        # for clusters with many more Secrets or assets.
        resources:
          requests:
            cpu: 20m
            memory: 64Mi
          limits:
            cpu: 500m
            memory: 256Mi
$(container_tail)
EOF
}

# The audit admission webhook (manual 2.3, docs/audit.md): a Deployment of two replicas
# behind a Service, the MutatingWebhookConfiguration that sends it every create and
# update of the operator's kinds, and the rights it needs to keep its own certificate.
emit_audit_webhook() {  # $1 variant (kubernetes|openshift)
  local variant="$1" name=resiliency-operator-audit-webhook
  local fixed_ids=""
  if [ "$variant" = kubernetes ]; then
    printf -v fixed_ids '        runAsUser: %s\n        runAsGroup: %s\n        fsGroup: %s\n' \
      "$nonroot_id" "$nonroot_id" "$nonroot_id"
  fi
  # The controllers' own writes (finalizers, generated Tasks) are not users' changes.
  local ignored="" c
  for c in "${controllers[@]}"; do
    ignored+="${ignored:+,}system:serviceaccount:$namespace:resiliency-operator-$c-controller"
  done
  cat <<EOF
$(account "$name" audit-webhook)
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: $name
  labels:
$(labels "    " audit-webhook)
rules:
# Its MutatingWebhookConfiguration: watched (a re-applied manifest without the CA bundle
# gets it back at once), and patched with the CA bundle; no other one.
- apiGroups: [admissionregistration.k8s.io]
  resources: [mutatingwebhookconfigurations]
  verbs: [get, list, watch]
- apiGroups: [admissionregistration.k8s.io]
  resources: [mutatingwebhookconfigurations]
  resourceNames: [resiliency-operator-audit]
  verbs: [patch]
$(binding ClusterRoleBinding "$name" audit-webhook)
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: $name
  namespace: $namespace
  labels:
$(labels "    " audit-webhook)
rules:
# Its serving certificate. RBAC cannot limit "create" to a name, so create is allowed
# for any Secret of this namespace; get and update only for its own.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [$name-tls]
  verbs: [get, update]
# The license key (also mounted as a file).
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [license-key]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
$(binding RoleBinding "$name" audit-webhook)
---
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: $namespace
  labels:
$(labels "    " audit-webhook)
spec:
  selector:
$(labels "    " audit-webhook)
  ports:
  - name: webhook
    port: 443
    targetPort: webhook
    protocol: TCP
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  namespace: $namespace
  labels:
$(labels "    " audit-webhook)
    app.kubernetes.io/version: "$version"
spec:
  # Two replicas: a rollout or a lost node does not leave writes unrecorded (with
  # failurePolicy Ignore the apiserver admits them without the annotations).
  replicas: 2
  selector:
    matchLabels:
$(labels "      " audit-webhook)
  template:
    metadata:
      labels:
$(labels "        " audit-webhook)
        app.kubernetes.io/version: "$version"
    spec:
      serviceAccountName: $name
      securityContext:
        runAsNonRoot: true
${fixed_ids}        seccompProfile:
          type: RuntimeDefault
      containers:
      - name: webhook
        image: $image
        imagePullPolicy: IfNotPresent
        command: [/usr/local/bin/audit-webhook]
        # No leader election: every replica serves; they share the certificate Secret
        # (a concurrent renewal is settled by its resourceVersion). The Secret and the
        # Service are in the pod's namespace (POD_NAMESPACE).
        args:
        - --webhook-bind-address=:9443
        - --webhook-service-name=$name
        - --webhook-secret-name=$name-tls
        - --webhook-configuration-name=resiliency-operator-audit
        - --ignore-usernames=$ignored
        - --metrics-bind-address=:8080
        - --health-probe-bind-address=:8081
        - --log-level=info
        - --license-file=/etc/resiliency-operator/license/license
        env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        ports:
        - name: webhook
          containerPort: 9443
          protocol: TCP
        - name: metrics
          containerPort: 8080
          protocol: TCP
        - name: health
          containerPort: 8081
          protocol: TCP
$(probes)
        resources:
          requests:
            cpu: 10m
            memory: 32Mi
          limits:
            cpu: 500m
            memory: 128Mi
$(container_tail)
---
# The CA bundle is patched in by the webhook itself (or by cert-manager's CA injector:
# docs/audit.md); re-applying this file keeps it (it is not among the applied fields).
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: resiliency-operator-audit
  labels:
$(labels "    " audit-webhook)
webhooks:
- name: audit.astronetes.io
  clientConfig:
    service:
      name: $name
      namespace: $namespace
      path: /mutate
      port: 443
  # Every kind of the operator; "*" names no subresource, so status writes never reach
  # the webhook.
  rules:
  - apiGroups: [assets.astronetes.io, automation.astronetes.io]
    apiVersions: [v1alpha1]
    operations: [CREATE, UPDATE]
    resources: ["*"]
    scope: "*"
  # Ignore: with the webhook down a DR configuration can still be changed (during a
  # disaster above all); such a change goes unrecorded and the apiserver logs the failed
  # call. Fail would record every change but block every edit while it is down.
  failurePolicy: Ignore
  matchPolicy: Equivalent
  sideEffects: None
  timeoutSeconds: 5
  reinvocationPolicy: Never
  admissionReviewVersions: [v1]
EOF
}

render() {  # $1 variant
  local variant="$1"
  echo "# Generated by deploy/operator/build.sh ($variant variant). Do not edit: change"
  echo "# build.sh or rbac/*.yaml and run the script again."
  if [ "$variant" = openshift ]; then
    echo "# For OpenShift's restricted SCC: no fixed runAsUser/runAsGroup/fsGroup."
  fi
  # No Namespace object: the manual's install creates it first (with the license Secret in
  # it) and its uninstall deletes the license after the operator, so the manifests must
  # not own (and, on delete, remove) the namespace.
  echo "# Apply into the namespace created beforehand: kubectl -n $namespace apply -f <this file>"
  local c
  for c in "${controllers[@]}"; do
    emit_controller "$c" "$variant"
  done
  emit_audit_webhook "$variant"
}

case "${1:-}" in
  "")
    render kubernetes > "$here/operator.yaml"
    render openshift > "$here/operator-openshift.yaml"
    ;;
  --check)
    stale=0
    diff -u "$here/operator.yaml" <(render kubernetes) || stale=1
    diff -u "$here/operator-openshift.yaml" <(render openshift) || stale=1
    if [ "$stale" = 1 ]; then
      echo "deploy/operator manifests are out of date: run deploy/operator/build.sh" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
