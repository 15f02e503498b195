#include "ro/kubesync/runner/deployments_runner.h"

#include <openssl/evp.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/base64.h"
#include "ro/common/digest.h"
#include "ro/common/object_meta.h"
#include "ro/common/pod_security.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kubesync/runner/semantic_compare.h"
#include "ro/plugins/kubernetes/control_metadata.h"

namespace ro::kubesync::runner {

using nlohmann::json;
namespace pk = plugins::kubernetes;

namespace {

const kube::GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const kube::GroupVersionResource kStatefulSets{"apps", "v1", "statefulsets"};
const kube::GroupVersionResource kServices{"", "v1", "services"};
const kube::GroupVersionResource kSecrets{"", "v1", "secrets"};
const kube::GroupVersionResource kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies"};

constexpr const char* kOwnerApiVersion = "automation.astronetes.io/v1alpha1";
constexpr const char* kOwnerKind = "LiveSynchronization";
constexpr const char* kOwnerGroup = "automation.astronetes.io";

// Where the Secret is mounted in every kubesync container.
constexpr const char* kFilesDir = "/etc/kubesync";
// The kubesync binary in the operator image (Containerfile: every binary in /usr/local/bin).
constexpr const char* kKubesyncPath = "/usr/local/bin/kubesync";
// The kubesync binary's default ports (docs/kubesync.md "The kubesync binary").
constexpr int kHealthPort = 8081;
constexpr int kMetricsPort = 8080;
// nats-server's client and monitoring ports and Redis' port (their defaults).
constexpr int kNatsClientPort = 4222;
constexpr int kNatsMonitorPort = 8222;
constexpr int kNatsRoutePort = 6222;
constexpr int kRedisPort = 6379;

constexpr const char* kConfigHashAnnotation = "kubesync.astronetes.io/config-hash";

std::string SecretName(std::string_view ls_name) { return std::string(ls_name) + "-kubesync"; }
// The servers' files (nats.conf, nats.crt, nats.key; users.acl, redis.crt, redis.key,
// ca.crt): mounted by NATS and Redis only, each its own.
std::string ServersSecretName(std::string_view ls_name) { return std::string(ls_name) + "-kubesync-servers"; }
std::string NetworkPolicyName(std::string_view ls_name) { return std::string(ls_name) + "-kubesync-servers"; }
// Where the servers' Secret is mounted in the NATS and Redis containers.
constexpr const char* kServerFilesDir = "/etc/kubesync-server";
std::string MetricsServiceName(std::string_view ls_name) { return std::string(ls_name) + "-metrics"; }

json SelectorLabels(const PipelinePlan& plan, PipelinePart part) {
  const ObjectIdentity& ls = plan.inputs.live_synchronization;
  return {{"app.kubernetes.io/name", "kubesync"},
          {"app.kubernetes.io/instance", pk::ManagedById(ls.ns, ls.name)},
          {"app.kubernetes.io/component", std::string(PartSuffix(part))}};
}

json Labels(const PipelinePlan& plan, std::string_view component) {
  const ObjectIdentity& ls = plan.inputs.live_synchronization;
  return {{"app.kubernetes.io/name", "kubesync"},
          {"app.kubernetes.io/instance", pk::ManagedById(ls.ns, ls.name)},
          {"app.kubernetes.io/component", std::string(component)},
          {"app.kubernetes.io/part-of", "resiliency-operator"},
          {"app.kubernetes.io/managed-by", "livesynchronization-controller"}};
}

json Metadata(const PipelinePlan& plan, const std::string& name, std::string_view component) {
  const ObjectIdentity& ls = plan.inputs.live_synchronization;
  return {{"name", name},
          {"namespace", ls.ns},
          {"labels", Labels(plan, component)},
          {"annotations", {{std::string(pk::kLiveSynchronizationAnnotation), ls.ns + "/" + ls.name}}},
          {"ownerReferences", json::array({common::ControllerReference(kOwnerApiVersion, kOwnerKind, ls.name, ls.uid)})}};
}

// Prometheus' conventional scrape annotations; `prometheus.io/interval` carries
// observability.interval for scrape configs that relabel it into __scrape_interval__.
json ScrapeAnnotations(const PipelinePlan& plan) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(plan.observability.interval);
  return {{"prometheus.io/scrape", "true"},
          {"prometheus.io/port", std::to_string(kMetricsPort)},
          {"prometheus.io/path", "/metrics"},
          {"prometheus.io/interval", std::to_string(std::max<long long>(1, seconds.count())) + "s"}};
}

json Container(const PartPlan& part, std::string name, std::string image) {
  json container = {{"name", std::move(name)},
                    {"image", std::move(image)},
                    {"imagePullPolicy", part.settings.image_pull_policy},
                    {"securityContext", common::RestrictedContainerSecurityContext()}};
  if (part.settings.resources) container["resources"] = *part.settings.resources;
  return container;
}

json KubesyncContainer(const PartPlan& part, const DeploymentsRunnerOptions& options,
                       const std::string& fingerprint) {
  const ComponentId id = *KubesyncComponentOf(part.part);
  const bool exporter = part.part == PipelinePart::kMetricsExporter;
  json container = Container(part, std::string(PartSuffix(part.part)), options.kubesync_image);
  container["command"] = json::array({kKubesyncPath});
  container["args"] = json::array(
      {std::string(SubcommandName(id)), "--config", std::string(kFilesDir) + "/" + std::string(kConfigFile),
       "--log-level", std::string(pk::LogLevelName(part.settings.log_level)),
       "--health-probe-bind-address", ":" + std::to_string(kHealthPort), "--metrics-bind-address",
       exporter ? ":" + std::to_string(kMetricsPort) : std::string("0")});
  // process.consumerID of the processor's and synchronizer's log lines.
  // KUBESYNC_CONFIG_HASH: the configuration this pod was made for (its mounted copy may
  // lag behind; the component waits for it, component.h).
  container["env"] = json::array(
      {{{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
       {{"name", std::string(kConfigHashEnv)}, {"value", fingerprint}}});
  json ports = json::array({{{"name", "health"}, {"containerPort", kHealthPort}}});
  if (exporter) ports.push_back({{"name", "metrics"}, {"containerPort", kMetricsPort}});
  container["ports"] = std::move(ports);
  container["livenessProbe"] = {{"httpGet", {{"path", "/healthz"}, {"port", "health"}}},
                                {"periodSeconds", 10}};
  container["readinessProbe"] = {{"httpGet", {{"path", "/readyz"}, {"port", "health"}}},
                                 {"periodSeconds", 5}};
  container["volumeMounts"] = json::array({{{"name", "config"}, {"mountPath", kFilesDir}, {"readOnly", true}},
                                           {{"name", "tmp"}, {"mountPath", "/tmp"}}});
  return container;
}

// The nats-servers of the pipeline: 1 (a Deployment) or the members of a JetStream
// cluster (a StatefulSet).
int NatsMembers(const PipelinePlan& plan) {
  const PartPlan* nats = plan.Find(PipelinePart::kNats);
  return nats != nullptr ? nats->replicas : 1;
}

// Where nats-server finds its files in the NATS pod (secured configuration).
NatsServerLayout DeploymentsNatsLayout(const PipelinePlan& plan) {
  NatsServerLayout layout;
  layout.listen = "0.0.0.0:" + std::to_string(kNatsClientPort);
  layout.monitor_port = kNatsMonitorPort;
  layout.store_dir = "/data/jetstream";
  layout.cert_file = std::string(kServerFilesDir) + "/nats.crt";
  layout.key_file = std::string(kServerFilesDir) + "/nats.key";
  const PartPlan* nats = plan.Find(PipelinePart::kNats);
  layout.debug = nats != nullptr && nats->settings.log_level == pk::LogLevel::kDebug;
  if (NatsMembers(plan) > 1) {
    // One file for every member of the StatefulSet: nats-server reads $POD_NAME from its
    // environment, and ignores the route to itself.
    layout.server_name = "$POD_NAME";
    layout.cluster_listen = "0.0.0.0:" + std::to_string(kNatsRoutePort);
    for (int i = 0; i < NatsMembers(plan); ++i) {
      layout.routes.push_back(NatsMemberHost(plan.key(), i) + ":" + std::to_string(kNatsRoutePort));
    }
    layout.ca_file = std::string(kServerFilesDir) + "/" + std::string(kCaFile);
  }
  return layout;
}

json NatsContainer(const PipelinePlan& plan, const PartPlan& part, const DeploymentsRunnerOptions& options,
                   bool secured) {
  json container = Container(part, "nats", options.nats_image);
  const int members = NatsMembers(plan);
  // The image's entrypoint is nats-server; these are its arguments. Secured: everything
  // (TLS, users, JetStream and its key, the cluster's routes) is in the rendered
  // configuration file.
  json args = secured ? json::array({"-c", std::string(kServerFilesDir) + "/nats.conf"})
                      : json::array({"-js", "-sd", "/data/jetstream", "-p", std::to_string(kNatsClientPort), "-m",
                                     std::to_string(kNatsMonitorPort)});
  if (!secured && members > 1) {
    std::string routes;
    for (int i = 0; i < members; ++i) {
      routes += (i == 0 ? "nats://" : ",nats://") + NatsMemberHost(plan.key(), i) + ":" + std::to_string(kNatsRoutePort);
    }
    for (const std::string& arg : {std::string("--name"), std::string("$(POD_NAME)"), std::string("--cluster_name"),
                                   PipelineNames(plan.key().ns, plan.key().name).stream(), std::string("--cluster"),
                                   "nats://0.0.0.0:" + std::to_string(kNatsRoutePort), std::string("--routes"),
                                   routes}) {
      args.push_back(arg);
    }
  }
  if (!secured && part.settings.log_level == pk::LogLevel::kDebug) args.push_back("-D");
  container["args"] = std::move(args);
  container["ports"] = json::array({{{"name", "client"}, {"containerPort", kNatsClientPort}},
                                    {{"name", "monitor"}, {"containerPort", kNatsMonitorPort}}});
  if (members > 1) {
    container["ports"].push_back({{"name", "routes"}, {"containerPort", kNatsRoutePort}});
    container["env"] =
        json::array({{{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}});
  }
  container["readinessProbe"] = {
      {"httpGet", {{"path", "/healthz?js-enabled-only=true"}, {"port", "monitor"}}}, {"periodSeconds", 5}};
  container["livenessProbe"] = {{"httpGet", {{"path", "/healthz"}, {"port", "monitor"}}},
                                {"periodSeconds", 10}};
  container["volumeMounts"] = json::array({{{"name", "data"}, {"mountPath", "/data"}}});
  if (secured) {
    container["volumeMounts"].push_back({{"name", "server"}, {"mountPath", kServerFilesDir}, {"readOnly", true}});
  }
  return container;
}

// Redis' --loglevel for the component's logLevel (Redis has no "error" level).
std::string RedisLogLevel(pk::LogLevel level) {
  switch (level) {
    case pk::LogLevel::kDebug: return "debug";
    case pk::LogLevel::kInfo: return "notice";
    case pk::LogLevel::kWarn:
    case pk::LogLevel::kError: return "warning";
  }
  return "notice";
}

json RedisContainer(const PartPlan& part, const DeploymentsRunnerOptions& options, bool secured) {
  json container = Container(part, "redis", options.redis_image);
  // The image's entrypoint runs redis-server with these arguments. No persistence:
  // Redis holds only what a relist rebuilds (docs/kubesync.md). Secured: TLS only with the
  // pipeline's certificate, ACL users only (the default user is off) and the
  // NetworkPolicy; the probes are TCP connects, which need neither. Protected mode would refuse the
  // pipeline's pods, which connect from other addresses.
  container["args"] = json::array({"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", "/data",
                                   "--loglevel", RedisLogLevel(part.settings.log_level)});
  if (secured) {  // TLS only, ACL users only
    for (const std::string& arg : RedisServerTlsArgs(kRedisPort, std::string(kServerFilesDir))) {
      container["args"].push_back(arg);
    }
    container["args"].push_back("--aclfile");
    container["args"].push_back(std::string(kServerFilesDir) + "/users.acl");
  } else {
    container["args"].push_back("--port");
    container["args"].push_back(std::to_string(kRedisPort));
  }
  container["ports"] = json::array({{{"name", "redis"}, {"containerPort", kRedisPort}}});
  container["readinessProbe"] = {{"tcpSocket", {{"port", "redis"}}}, {"periodSeconds", 5}};
  container["livenessProbe"] = {{"tcpSocket", {{"port", "redis"}}}, {"periodSeconds", 10}};
  container["volumeMounts"] = json::array({{{"name", "data"}, {"mountPath", "/data"}}});
  if (secured) {
    container["volumeMounts"].push_back({{"name", "server"}, {"mountPath", kServerFilesDir}, {"readOnly", true}});
  }
  return container;
}

// True for the NATS part of a plan with more than one nats-server: a StatefulSet.
bool IsNatsCluster(const PipelinePlan& plan, const PartPlan& part) {
  return part.part == PipelinePart::kNats && NatsMembers(plan) > 1;
}

// The part's Deployment, or for a NATS cluster its StatefulSet.
json Deployment(const PipelinePlan& plan, const PartPlan& part, const DeploymentsRunnerOptions& options,
                const std::string& fingerprint) {
  const ObjectIdentity& ls = plan.inputs.live_synchronization;
  const bool server = !KubesyncComponentOf(part.part).has_value();
  json pod_labels = Labels(plan, PartSuffix(part.part));
  json pod_annotations = json::object();
  json container;
  json volumes;
  const std::optional<PipelineCredentials>& credentials = plan.inputs.credentials;
  const bool secured = credentials.has_value();
  const auto server_volume = [&](std::initializer_list<const char*> files) {
    json items = json::array();
    for (const char* file : files) items.push_back({{"key", file}, {"path", file}});
    return json{{"name", "server"},
                {"secret", {{"secretName", ServersSecretName(ls.name)}, {"defaultMode", common::kSecretVolumeMode},
                            {"items", std::move(items)}}}};
  };
  if (part.part == PipelinePart::kNats) {
    container = NatsContainer(plan, part, options, secured);
    volumes = json::array({{{"name", "data"}, {"emptyDir", json::object()}}});
    // ca.crt: the members of a cluster verify each other's routes against it.
    if (secured) volumes.push_back(server_volume({"nats.conf", "nats.crt", "nats.key", kCaFile.data()}));
  } else if (part.part == PipelinePart::kRedis) {
    container = RedisContainer(part, options, secured);
    volumes = json::array({{{"name", "data"}, {"emptyDir", json::object()}}});
    if (secured) volumes.push_back(server_volume({"users.acl", "redis.crt", "redis.key", kCaFile.data()}));
  } else {
    container = KubesyncContainer(part, options, fingerprint);
    json secret = {{"secretName", SecretName(ls.name)}, {"defaultMode", common::kSecretVolumeMode}};
    if (secured) {
      // Each component mounts the shared files and its own credentials, never another's.
      const PipelineRole role = RoleOf(*KubesyncComponentOf(part.part));
      const std::string own_nats = NatsPasswordFile(role);
      const std::string own_redis = RedisPasswordFile(role);
      json items = json::array();
      for (const auto& [file, content] : PipelineFiles(plan, DeploymentsPlacement(plan.key()))) {
        const bool credential = file.rfind("nats-", 0) == 0 || file.rfind("redis-", 0) == 0;
        if (credential && file != own_nats && file != own_redis) continue;
        items.push_back({{"key", file}, {"path", file}});
      }
      secret["items"] = std::move(items);
    }
    volumes = json::array({{{"name", "config"}, {"secret", std::move(secret)}},
                           {{"name", "tmp"}, {"emptyDir", json::object()}}});
    // The components read the configuration once: a new one rolls the pods.
    pod_annotations[kConfigHashAnnotation] = fingerprint;
    if (part.part == PipelinePart::kMetricsExporter) pod_annotations.update(ScrapeAnnotations(plan));
  }
  // A new server configuration (rotated credentials, another log level) rolls the server.
  if (server && secured) {
    const PipelineNames names(ls.ns, ls.name);
    pod_annotations[kConfigHashAnnotation] =
        part.part == PipelinePart::kNats
            ? common::Sha256Hex(NatsServerConfig(names, *credentials, DeploymentsNatsLayout(plan)), 16)
            : common::Sha256Hex(RedisAclFile(names, *credentials) + credentials->redis_cert_pem, 16);
  }
  json pod_spec = {{"automountServiceAccountToken", false},  // the kubeconfigs come from the Secret
                   {"enableServiceLinks", false},
                   {"securityContext", common::RestrictedPodSecurityContext()},
                   {"containers", json::array({std::move(container)})},
                   {"volumes", std::move(volumes)}};
  json spec = {{"replicas", part.replicas},
               {"selector", {{"matchLabels", SelectorLabels(plan, part.part)}}},
               {"template", {{"metadata", {{"labels", std::move(pod_labels)}}}, {"spec", std::move(pod_spec)}}}};
  if (!pod_annotations.empty()) spec["template"]["metadata"]["annotations"] = std::move(pod_annotations);
  if (IsNatsCluster(plan, part)) {
    // The members of a JetStream cluster: stable names (server_name = pod name, routes by
    // pod DNS name through the headless Service), all started at once so that a quorum
    // forms, replaced one at a time so that it stays.
    spec["serviceName"] = NatsRoutesServiceName(plan.key());
    spec["podManagementPolicy"] = "Parallel";
    spec["updateStrategy"] = {{"type", "RollingUpdate"}};
    return {{"apiVersion", "apps/v1"},
            {"kind", "StatefulSet"},
            {"metadata", Metadata(plan, PartObjectName(ls.name, part.part), PartSuffix(part.part))},
            {"spec", std::move(spec)}};
  }
  // A single server with its data volume: never two at once.
  if (server) spec["strategy"] = {{"type", "Recreate"}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", Metadata(plan, PartObjectName(ls.name, part.part), PartSuffix(part.part))},
          {"spec", std::move(spec)}};
}

json Service(const PipelinePlan& plan, const std::string& name, PipelinePart part, json ports) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", Metadata(plan, name, PartSuffix(part))},
          {"spec", {{"type", "ClusterIP"}, {"selector", SelectorLabels(plan, part)}, {"ports", std::move(ports)}}}};
}

json ServicePort(const std::string& name, int port) {
  return {{"name", name}, {"port", port}, {"targetPort", name}, {"protocol", "TCP"}};
}

// Only the pipeline's own pods and the operator's livesynchronization-controller reach
// NATS (client and monitoring ports) and Redis; the kubelet's probes come from the node,
// which NetworkPolicy implementations let through.
json NetworkPolicy(const PipelinePlan& plan, const DeploymentsRunnerOptions& options) {
  const ObjectIdentity& ls = plan.inputs.live_synchronization;
  const std::string instance = pk::ManagedById(ls.ns, ls.name);
  const json pipeline_pods = {{"podSelector", {{"matchLabels", {{"app.kubernetes.io/name", "kubesync"},
                                                                 {"app.kubernetes.io/instance", instance}}}}}};
  const json controller_pods = {
      {"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", options.operator_namespace}}}}},
      {"podSelector", {{"matchLabels", {{"app.kubernetes.io/name", "resiliency-operator"},
                                        {"app.kubernetes.io/component", "livesynchronization-controller"}}}}}};
  json ports = json::array();
  // kNatsRoutePort: between the members of a NATS cluster (pipeline pods themselves).
  for (int port : {kNatsClientPort, kNatsMonitorPort, kNatsRoutePort, kRedisPort}) {
    ports.push_back({{"protocol", "TCP"}, {"port", port}});
  }
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", Metadata(plan, NetworkPolicyName(ls.name), "network-policy")},
          {"spec",
           {{"podSelector",
             {{"matchLabels", {{"app.kubernetes.io/name", "kubesync"}, {"app.kubernetes.io/instance", instance}}},
              {"matchExpressions", json::array({{{"key", "app.kubernetes.io/component"},
                                                 {"operator", "In"},
                                                 {"values", json::array({"nats", "redis"})}}})}}},
            {"policyTypes", json::array({"Ingress"})},
            {"ingress", json::array({{{"from", json::array({pipeline_pods, controller_pods})}, {"ports", ports}}})}}}};
}

// True when the object's controller is a LiveSynchronization named `ls_name` (of its
// namespace). The uid is not compared: objects left by an earlier LiveSynchronization of
// the same name (re-created before the garbage collector ran) are adopted, and their
// ownerReference is rewritten to the current uid by the next update.
bool ControlledBy(const json& object, const std::string& ls_name) {
  const json& metadata = object.value("metadata", json::object());
  for (const json& ref : metadata.value("ownerReferences", json::array())) {
    if (!ref.value("controller", false) || ref.value("kind", "") != kOwnerKind) continue;
    std::string group;
    std::string version;
    kube::SplitApiVersion(ref.value("apiVersion", ""), &group, &version);
    if (group != kOwnerGroup || ref.value("name", "") != ls_name) continue;
    return true;
  }
  return false;
}

std::string ConditionMessage(const json& deployment, std::string_view type) {
  const json& status = deployment.value("status", json::object());
  for (const json& condition : status.value("conditions", json::array())) {
    if (condition.value("type", "") == type && condition.value("status", "") != "True") {
      return condition.value("message", "");
    }
  }
  return "";
}

}  // namespace

Placement DeploymentsPlacement(const kube::ObjectKey& ls) {
  return Placement{kFilesDir,
                   "nats://" + PartObjectName(ls.name, PipelinePart::kNats) + ":" + std::to_string(kNatsClientPort),
                   PartObjectName(ls.name, PipelinePart::kRedis) + ":" + std::to_string(kRedisPort),
                   NatsServerName(ls), RedisServerName(ls)};
}

std::vector<RenderedObject> RenderPipelineObjects(const PipelinePlan& plan,
                                                  const DeploymentsRunnerOptions& options) {
  const ObjectIdentity& ls = plan.inputs.live_synchronization;
  const Placement placement = DeploymentsPlacement(plan.key());
  std::vector<RenderedObject> objects;

  json data = json::object();
  for (const auto& [file, content] : PipelineFiles(plan, placement)) data[file] = common::EncodeBase64(content);
  objects.push_back({kSecrets,
                     {{"apiVersion", "v1"},
                      {"kind", "Secret"},
                      {"metadata", Metadata(plan, SecretName(ls.name), "config")},
                      {"type", "Opaque"},
                      {"data", std::move(data)}}});

  if (const std::optional<PipelineCredentials>& credentials = plan.inputs.credentials) {
    const PipelineNames names(ls.ns, ls.name);
    const NatsServerLayout layout = DeploymentsNatsLayout(plan);
    objects.push_back({kSecrets,
                       {{"apiVersion", "v1"},
                        {"kind", "Secret"},
                        {"metadata", Metadata(plan, ServersSecretName(ls.name), "config")},
                        {"type", "Opaque"},
                        {"data",
                         {{"nats.conf", common::EncodeBase64(NatsServerConfig(names, *credentials, layout))},
                          {"nats.crt", common::EncodeBase64(credentials->nats_cert_pem)},
                          {"nats.key", common::EncodeBase64(credentials->nats_key_pem)},
                          {"redis.crt", common::EncodeBase64(credentials->redis_cert_pem)},
                          {"redis.key", common::EncodeBase64(credentials->redis_key_pem)},
                          {std::string(kCaFile), common::EncodeBase64(credentials->ca_pem)},
                          {"users.acl", common::EncodeBase64(RedisAclFile(names, *credentials))}}}}});
    objects.push_back({kNetworkPolicies, NetworkPolicy(plan, options)});
  }

  objects.push_back({kServices, Service(plan, PartObjectName(ls.name, PipelinePart::kNats), PipelinePart::kNats,
                                        json::array({ServicePort("client", kNatsClientPort)}))});
  objects.push_back({kServices, Service(plan, PartObjectName(ls.name, PipelinePart::kRedis), PipelinePart::kRedis,
                                        json::array({ServicePort("redis", kRedisPort)}))});
  if (NatsMembers(plan) > 1) {
    // Headless: a DNS name per member for the routes, published before the member is
    // ready (a member is ready only once it reaches the others).
    json routes = Service(plan, NatsRoutesServiceName(plan.key()), PipelinePart::kNats,
                          json::array({ServicePort("routes", kNatsRoutePort)}));
    routes["spec"]["clusterIP"] = "None";
    routes["spec"]["publishNotReadyAddresses"] = true;
    objects.push_back({kServices, std::move(routes)});
  }
  if (plan.Find(PipelinePart::kMetricsExporter) != nullptr) {
    json service = Service(plan, MetricsServiceName(ls.name), PipelinePart::kMetricsExporter,
                           json::array({ServicePort("metrics", kMetricsPort)}));
    service["metadata"]["annotations"].update(ScrapeAnnotations(plan));
    objects.push_back({kServices, std::move(service)});
  }

  const std::string fingerprint = ConfigFingerprint(plan, placement);
  for (const PartPlan& part : plan.parts) {
    objects.push_back({IsNatsCluster(plan, part) ? kStatefulSets : kDeployments,
                       Deployment(plan, part, options, fingerprint)});
  }
  return objects;
}

ComponentStatus DeploymentComponentStatus(PipelinePart part, const json& deployment) {
  ComponentStatus status;
  status.name = std::string(PartName(part));
  const json& spec = deployment.value("spec", json::object());
  const json& observed = deployment.value("status", json::object());
  status.replicas = spec.value("replicas", 1);
  status.ready_replicas = observed.value("readyReplicas", 0);
  const int64_t generation = common::Generation(deployment);
  const bool observed_current = observed.value("observedGeneration", int64_t{0}) >= generation;
  status.ready = observed_current && status.ready_replicas >= status.replicas;
  if (!status.ready) {
    std::string message = ConditionMessage(deployment, "Available");
    if (message.empty()) message = ConditionMessage(deployment, "Progressing");
    if (message.empty()) {
      message = std::to_string(status.ready_replicas) + "/" + std::to_string(status.replicas) +
                " replicas ready" + (observed_current ? "" : " (rollout not observed yet)");
    }
    status.message = std::move(message);
  }
  return status;
}

DeploymentsRunner::DeploymentsRunner(kube::DynamicClient& client, DeploymentsRunnerOptions options)
    : client_(client), options_(std::move(options)) {}

json DeploymentsRunner::Ensure(const RenderedObject& desired, const std::string& ls_name) {
  const json& metadata = desired.object.at("metadata");
  const std::string ns = metadata.at("namespace").get<std::string>();
  const std::string name = metadata.at("name").get<std::string>();
  const std::string what = desired.object.at("kind").get<std::string>() + " " + ns + "/" + name;
  try {
    std::optional<json> actual = client_.GetIfExists(desired.gvr, ns, name);
    if (!actual) return client_.Create(desired.gvr, ns, desired.object);
    if (!ControlledBy(*actual, ls_name)) {
      throw RunnerError(what + " exists and is not controlled by LiveSynchronization " + ns + "/" + ls_name);
    }
    if (IsSemanticSubset(desired.object, *actual)) return *actual;
    // Desired fields over the stored object: server-set fields (a Service's clusterIP)
    // stay, lists we own are replaced, labels and annotations others added are kept.
    json updated = *actual;
    updated.merge_patch(desired.object);
    updated["metadata"]["resourceVersion"] = actual->at("metadata").at("resourceVersion");
    return client_.Update(desired.gvr, ns, updated);
  } catch (const kube::ApiError& e) {
    if (e.reason() == kube::StatusReason::kInvalid) throw RunnerError(what + ": " + e.status_message());
    throw;
  }
}

void DeploymentsRunner::DeleteOwned(const kube::GroupVersionResource& gvr, const kube::ObjectKey& ls,
                                    const std::string& name) {
  std::optional<json> actual = client_.GetIfExists(gvr, ls.ns, name);
  if (!actual || !ControlledBy(*actual, ls.name)) return;
  kube::DeleteOptions options;
  options.propagation_policy = "Background";
  try {
    client_.Delete(gvr, ls.ns, name, options);
  } catch (const kube::ApiError& e) {
    if (e.reason() != kube::StatusReason::kNotFound) throw;
  }
}

std::vector<ComponentStatus> DeploymentsRunner::Apply(const PipelinePlan& plan) {
  const kube::ObjectKey ls = plan.key();
  std::vector<ComponentStatus> statuses;
  for (const RenderedObject& desired : RenderPipelineObjects(plan, options_)) {
    json stored = Ensure(desired, ls.name);
    if (desired.gvr == kDeployments || desired.gvr == kStatefulSets) {
      for (const PartPlan& part : plan.parts) {
        if (PartObjectName(ls.name, part.part) == desired.object.at("metadata").at("name").get<std::string>()) {
          statuses.push_back(DeploymentComponentStatus(part.part, stored));
        }
      }
    }
  }
  // NATS moved between one server (Deployment) and a cluster (StatefulSet): the other
  // kind goes, with its store (the events listener republishes into a new stream).
  const std::string nats = PartObjectName(ls.name, PipelinePart::kNats);
  if (NatsMembers(plan) > 1) {
    DeleteOwned(kDeployments, ls, nats);
  } else {
    DeleteOwned(kStatefulSets, ls, nats);
    DeleteOwned(kServices, ls, NatsRoutesServiceName(ls));
  }
  if (plan.Find(PipelinePart::kMetricsExporter) == nullptr) {
    DeleteOwned(kDeployments, ls, PartObjectName(ls.name, PipelinePart::kMetricsExporter));
    DeleteOwned(kServices, ls, MetricsServiceName(ls.name));
  }
  if (!plan.inputs.credentials) {
    DeleteOwned(kSecrets, ls, ServersSecretName(ls.name));
    DeleteOwned(kNetworkPolicies, ls, NetworkPolicyName(ls.name));
  }
  return statuses;
}

std::vector<ComponentStatus> DeploymentsRunner::StopPipeline(const kube::ObjectKey& ls) {
  std::vector<ComponentStatus> statuses;
  for (PipelinePart part : AllPipelineParts()) {
    const std::string name = PartObjectName(ls.name, part);
    std::optional<json> deployment = client_.GetIfExists(kDeployments, ls.ns, name);
    if (!deployment && part == PipelinePart::kNats) deployment = client_.GetIfExists(kStatefulSets, ls.ns, name);
    if (!deployment || !ControlledBy(*deployment, ls.name)) continue;
    if (IsPipelineComponent(part) && deployment->at("spec").value("replicas", 1) != 0) {
      deployment = client_.Patch(kDeployments, ls.ns, name, kube::PatchType::kMergePatch,
                                 R"({"spec":{"replicas":0}})");
    }
    statuses.push_back(DeploymentComponentStatus(part, *deployment));
  }
  return statuses;
}

std::optional<Endpoints> DeploymentsRunner::ControllerEndpoints(const kube::ObjectKey& ls) {
  // The controller runs in the same cluster: the Services resolve by their namespaced
  // DNS names.
  const std::string suffix = "." + ls.ns + ".svc";
  return Endpoints{"nats://" + PartObjectName(ls.name, PipelinePart::kNats) + suffix + ":" +
                       std::to_string(kNatsClientPort),
                   PartObjectName(ls.name, PipelinePart::kRedis) + suffix + ":" + std::to_string(kRedisPort), {}};
}

void DeploymentsRunner::Teardown(const kube::ObjectKey& ls, const ClientSecurity& security) {
  StopPipeline(ls);
  Endpoints endpoints = *ControllerEndpoints(ls);
  endpoints.security = security;
  CleanUpPipelineState(ls, endpoints, options_.cleanup_timeout);
  for (PipelinePart part : AllPipelineParts()) DeleteOwned(kDeployments, ls, PartObjectName(ls.name, part));
  DeleteOwned(kStatefulSets, ls, PartObjectName(ls.name, PipelinePart::kNats));
  DeleteOwned(kServices, ls, PartObjectName(ls.name, PipelinePart::kNats));
  DeleteOwned(kServices, ls, NatsRoutesServiceName(ls));
  DeleteOwned(kServices, ls, PartObjectName(ls.name, PipelinePart::kRedis));
  DeleteOwned(kServices, ls, MetricsServiceName(ls.name));
  DeleteOwned(kSecrets, ls, SecretName(ls.name));
  DeleteOwned(kSecrets, ls, ServersSecretName(ls.name));
  DeleteOwned(kNetworkPolicies, ls, NetworkPolicyName(ls.name));
}

}  // namespace ro::kubesync::runner
