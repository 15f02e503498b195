#include "ro/plugins/backup/kubernetes_backup.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "../kubernetes/config_reader.h"
#include "backup_config.h"
#include "backup_retries.h"
#include "ro/common/digest.h"
#include "ro/common/object_meta.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/clock.h"
#include "ro/kube/errors.h"
#include "ro/kube/label_selector.h"
#include "ro/plugins/bucket_encryption.h"
#include "ro/plugins/kubernetes/bucket_object.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/kubernetes/sanitizer.h"
#include "ro/plugins/s3_client.h"

namespace ro::plugins::backup {

namespace {

using nlohmann::json;
using kubernetes::ConfigError;
using kubernetes::ConfigProblem;
using kubernetes::internal::AddProblem;
using kubernetes::internal::Field;
using kubernetes::internal::Index;
using kubernetes::internal::Member;
using kubernetes::internal::RequiredString;
using kubernetes::internal::TypedMember;
namespace reason = kubernetes::reason;
using Problems = std::vector<ConfigProblem>;
using internal::Side;
using internal::WithRetries;

const kube::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const kube::GroupVersionResource kCustomResourceDefinitions{"apiextensions.k8s.io", "v1",
                                                            "customresourcedefinitions"};

// The object member `key`, or nullptr (and a "required" problem when `required`).
const json* ObjectMember(const json& object, std::string_view key, const std::string& field,
                         bool required, Problems* problems) {
  const json* value = TypedMember(object, key, json::value_t::object, "an object", field, problems);
  if (value == nullptr && required && Member(object, key) == nullptr) {
    AddProblem(problems, field, reason::kInvalidConfig, "required");
  }
  return value;
}

// Resources whose objects are derived from others or transient.
bool Excluded(const kube::GroupVersionResource& gvr) {
  if (gvr.group == "metrics.k8s.io") return true;
  if ((gvr.group.empty() || gvr.group == "events.k8s.io") && gvr.resource == "events") return true;
  if (gvr.group.empty() && gvr.resource == "endpoints") return true;
  if (gvr.group == "discovery.k8s.io" && gvr.resource == "endpointslices") return true;
  if (gvr.group == "coordination.k8s.io" && gvr.resource == "leases") return true;
  return false;
}

bool ControllerOwned(const json& object) {
  const json& metadata = common::Metadata(object);
  const auto owners = metadata.find("ownerReferences");
  if (owners == metadata.end() || !owners->is_array()) return false;
  return std::any_of(owners->begin(), owners->end(), [](const json& owner) {
    return owner.is_object() && owner.value("controller", false);
  });
}

}  // namespace

namespace internal {

const json* BackupSpec(const json& backup, std::string_view plugin_name, Problems* problems) {
  const json* spec = backup.is_object() ? Member(backup, "spec") : nullptr;
  if (spec == nullptr || !spec->is_object()) {
    AddProblem(problems, "spec", reason::kInvalidConfig, "required: {plugin, config}");
    return nullptr;
  }
  const json* plugin = Member(*spec, "plugin");
  if (plugin == nullptr || !plugin->is_string() || *plugin != plugin_name) {
    AddProblem(problems, "spec.plugin", reason::kInvalidConfig,
               (plugin == nullptr ? std::string("required") : plugin->dump() + " is not a Backup plugin") +
                   ": use " + std::string(kKubernetesBackupPlugin) + " or zookeeper-nodes-to-bucket");
  }
  return spec;
}

void ParseBucketDestination(const json& backup, const json& config, Problems* problems, std::string* bucket_name,
                            std::string* base_path) {
  Problems ignored;
  if (problems == nullptr) problems = &ignored;
  const std::string destination_field = "spec.config.destination";
  if (const json* destination = ObjectMember(config, "destination", destination_field, true, problems)) {
    const std::string bucket_field = Field(destination_field, "bucket");
    if (const json* bucket = ObjectMember(*destination, "bucket", bucket_field, true, problems)) {
      *bucket_name = RequiredString(*bucket, "name", Field(bucket_field, "name"), "the Bucket", problems);
      const std::string path_field = Field(bucket_field, "basePath");
      if (const json* path = TypedMember(*bucket, "basePath", json::value_t::string, "a string",
                                         path_field, problems)) {
        std::string text = path->get<std::string>();
        while (!text.empty() && text.front() == '/') text.erase(text.begin());
        while (!text.empty() && text.back() == '/') text.pop_back();
        if (text.find("//") != std::string::npos || text == "." || text.find("../") != std::string::npos ||
            text == "..") {
          AddProblem(problems, path_field, reason::kInvalidConfig,
                     "must be a plain path (no empty, \".\" or \"..\" segments)");
        }
        *base_path = text;
      }
    }
  }
  if (base_path->empty()) {
    *base_path = common::MetadataString(backup, "namespace") + "/" + common::MetadataString(backup, "name");
  }
}

}  // namespace internal

KubernetesBackupConfig ParseKubernetesBackup(const json& backup) {
  Problems problems;
  KubernetesBackupConfig out;
  const json* spec = internal::BackupSpec(backup, kKubernetesBackupPlugin, &problems);
  if (spec == nullptr) throw ConfigError(std::move(problems));
  const std::string base = "spec.config";
  const json* config = ObjectMember(*spec, "config", base, true, &problems);
  if (config != nullptr) {
    const std::string source_field = Field(base, "source");
    if (const json* source = ObjectMember(*config, "source", source_field, true, &problems)) {
      const std::string cluster_field = Field(source_field, "kubernetesCluster");
      if (const json* cluster = ObjectMember(*source, "kubernetesCluster", cluster_field, true, &problems)) {
        out.cluster_name = RequiredString(*cluster, "name", Field(cluster_field, "name"), "the KubernetesCluster", &problems);
        const std::string namespaces_field = Field(cluster_field, "namespaces");
        if (const json* namespaces = TypedMember(*cluster, "namespaces", json::value_t::array, "a list",
                                                 namespaces_field, &problems)) {
          for (std::size_t i = 0; i < namespaces->size(); ++i) {
            const json& ns = (*namespaces)[i];
            if (!ns.is_string() || ns.get<std::string>().empty()) {
              AddProblem(&problems, Index(namespaces_field, i), reason::kInvalidConfig,
                         "must be a namespace name");
            } else if (std::find(out.namespaces.begin(), out.namespaces.end(), ns.get<std::string>()) ==
                       out.namespaces.end()) {
              out.namespaces.push_back(ns.get<std::string>());
            }
          }
        }
      }
      const std::string selector_field = Field(cluster_field, "namespaceSelector");
      if (const json* cluster = Member(*source, "kubernetesCluster"); cluster != nullptr && cluster->is_object()) {
        if (const json* selector = TypedMember(*cluster, "namespaceSelector", json::value_t::object, "an object",
                                               selector_field, &problems)) {
          try {
            const kube::LabelSelector parsed = kube::LabelSelector::FromJson(*selector);
            out.namespace_selector = parsed.ToString();
            out.selector_matches_nothing = parsed.MatchesNothing();
          } catch (const std::exception& e) {
            AddProblem(&problems, selector_field, reason::kInvalidSelector, e.what());
          }
        }
      }
      if (Member(*source, "database") != nullptr) {
        AddProblem(&problems, Field(source_field, "database"), reason::kInvalidConfig,
                   std::string(kKubernetesBackupPlugin) + " backs up a kubernetesCluster; use "
                                                          "zookeeper-nodes-to-bucket for a database");
      }
    }
    internal::ParseBucketDestination(backup, *config, &problems, &out.bucket_name, &out.base_path);
  } else {
    std::string ignored;
    internal::ParseBucketDestination(backup, json::object(), nullptr, &ignored, &out.base_path);
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return out;
}

bool ShouldBackUpResource(const kube::ApiResource& resource) {
  return resource.namespaced && resource.HasVerb("list") && resource.HasVerb("get") &&
         resource.gvr.resource.find('/') == std::string::npos && !Excluded(resource.gvr);
}

bool ShouldBackUp(const kube::GroupVersionResource& gvr, const json& object) {
  return kubernetes::ShouldReplicate(gvr, object) && !ControllerOwned(object);
}

std::string BackupIndexJson(const BackupIdentity& identity, const BackupResult& result,
                            std::chrono::system_clock::time_point completion) {
  json objects = json::array();
  for (const BackupEntry& entry : result.entries) {
    json item = {{"key", entry.key}, {"resource", entry.resource}, {"name", entry.name},
                 {"sha256", entry.sha256}, {"bytes", entry.bytes}};
    if (!entry.ns.empty()) item["namespace"] = entry.ns;
    objects.push_back(std::move(item));
  }
  const bool database = !identity.database_name.empty();
  json source;
  if (database) {
    source = {{"database", {{"name", identity.database_name}, {"servers", identity.database_servers}}},
              {"rootPath", identity.root_path}};
  } else {
    json cluster = {{"name", identity.cluster_name}};
    if (!identity.cluster_server.empty()) cluster["server"] = identity.cluster_server;
    if (!identity.cluster_server_version.empty()) cluster["serverVersion"] = identity.cluster_server_version;
    source = {{"kubernetesCluster", cluster}, {"namespaces", result.namespaces}};
  }
  return json{{"apiVersion", "automation.astronetes.io/v1alpha1"},
              {"kind", "BackupIndex"},
              {"backup", {{"namespace", identity.ns}, {"name", identity.name}, {"uid", identity.uid}}},
              {"plugin", database ? "zookeeper-nodes-to-bucket" : std::string(kKubernetesBackupPlugin)},
              {"source", std::move(source)},
              {"startTime", common::FormatRfc3339(identity.start)},
              {"completionTime", common::FormatRfc3339(completion)},
              {"counts",
               {{"objects", static_cast<int64_t>(result.entries.size())},
                {"bytes", result.bytes},
                {"resources", result.by_resource}}},
              {"objects", std::move(objects)}}
      .dump();
}

KubernetesBackup::KubernetesBackup(KubernetesBackupConfig config, kube::DynamicClient& source,
                                   ObjectWriter write, log::Logger log, KubernetesBackupOptions options)
    : config_(std::move(config)),
      source_(source),
      write_(std::move(write)),
      log_(std::move(log)),
      options_(options) {}


void KubernetesBackup::Put(const std::string& key, const std::string& body, std::stop_token stop) {
  WithRetries([&] { write_(key, body); return 0; }, options_, Side::kBucket, "writing " + key + " to the bucket", stop);
}

void KubernetesBackup::Write(const kube::GroupVersionResource& gvr, const json& object,
                             BackupResult* result, std::stop_token stop) {
  json stored = object;
  kubernetes::Sanitize(gvr, stored);
  const std::string body = stored.dump();
  const std::string ns = common::MetadataString(object, "namespace");
  const std::string name = common::MetadataString(object, "name");
  const std::string relative = kubernetes::BucketObjectKey("", gvr, ns, name);
  Put(config_.base_path + "/" + relative, body, stop);
  result->entries.push_back({relative, gvr.ToString(), ns, name, common::Sha256Hex(body),
                             static_cast<int64_t>(body.size())});
  result->bytes += static_cast<int64_t>(body.size());
  ++result->by_resource[gvr.ToString()];
}

BackupResult KubernetesBackup::Run(const BackupIdentity& identity, std::stop_token stop) {
  const auto started = std::chrono::steady_clock::now();
  BackupResult result;
  const json cluster_field = {{"name", identity.cluster_name}};

  // The namespaces, and their objects first (a restore creates them first too).
  std::vector<json> namespaces;
  if (config_.selector_matches_nothing) {
    // No namespace: only the index is written.
  } else if (config_.namespaces.empty()) {
    kube::ListOptions options;
    options.limit = options_.list_page_size;
    options.label_selector = config_.namespace_selector;
    namespaces = WithRetries([&] { return source_.ListAll(kNamespaces, "", options).items; }, options_,
                             Side::kSource, "listing the namespaces of KubernetesCluster " + identity.cluster_name, stop);
  } else {
    for (const std::string& name : config_.namespaces) {
      std::optional<json> ns = WithRetries(
          [&]() -> std::optional<json> {
            try {
              return source_.Get(kNamespaces, "", name);
            } catch (const std::exception& e) {
              if (kube::IsNotFound(e)) return std::nullopt;
              throw;
            }
          },
          options_, Side::kSource, "reading namespace " + name, stop);
      if (!ns) {
        throw BackupError("NamespaceNotFound",
                          "namespace " + name + " (spec.config.source.kubernetesCluster.namespaces) "
                          "does not exist in KubernetesCluster " + identity.cluster_name, false);
      }
      if (config_.namespace_selector.empty() ||
          kube::LabelSelector::Parse(config_.namespace_selector).MatchesObject(*ns)) {
        namespaces.push_back(std::move(*ns));
      }
    }
  }
  std::set<std::string> selected;
  for (const json& ns : namespaces) {
    if (stop.stop_requested()) return result;
    selected.insert(common::MetadataString(ns, "name"));
    Write(kNamespaces, ns, &result, stop);
  }
  result.namespaces.assign(selected.begin(), selected.end());

  std::vector<kube::ApiResource> resources;
  std::set<std::pair<std::string, std::string>> seen;  // group, resource: the preferred version only
  for (const kube::ApiResource& resource :
       WithRetries([&] { return source_.discovery().All(); }, options_, Side::kSource, "discovery", stop)) {
    if (!ShouldBackUpResource(resource)) continue;
    if (seen.insert({resource.gvr.group, resource.gvr.resource}).second) resources.push_back(resource);
  }

  std::set<std::pair<std::string, std::string>> custom_kinds;  // group, plural with objects
  std::set<std::string> written_keys;
  for (const kube::ApiResource& resource : resources) {
    const kube::GroupVersionResource& gvr = resource.gvr;
    // Every namespace: one list of the whole cluster; some: one list per namespace.
    std::vector<std::string> scopes = config_.namespaces.empty() ? std::vector<std::string>{""} : result.namespaces;
    for (const std::string& scope : scopes) {
      kube::ListOptions options;
      options.limit = options_.list_page_size;
      while (true) {
        if (stop.stop_requested()) return result;
        // An expired continue token (410 Gone) lists again from the start: objects
        // written already are written again, and listed once in the index.
        std::optional<kube::ObjectList> page = WithRetries(
            [&]() -> std::optional<kube::ObjectList> {
              try {
                return source_.List(gvr, scope, options);
              } catch (const std::exception& e) {
                if (!options.continue_token.empty() && kube::IsGone(e)) return std::nullopt;
                throw;
              }
            },
            options_, Side::kSource, "listing " + gvr.ToString() + (scope.empty() ? "" : " in namespace " + scope), stop);
        if (!page) {
          options.continue_token.clear();
          continue;
        }
        for (const json& object : page->items) {
          const std::string ns = common::MetadataString(object, "namespace");
          if (!selected.count(ns) || !ShouldBackUp(gvr, object)) continue;
          const std::string key = kubernetes::BucketObjectKey("", gvr, ns, common::MetadataString(object, "name"));
          if (!written_keys.insert(key).second) continue;
          Write(gvr, object, &result, stop);
          custom_kinds.insert({gvr.group, gvr.resource});
        }
        if (page->continue_token.empty()) break;
        options.continue_token = page->continue_token;
      }
    }
    log_.Info("resource backed up", {{"sourceCluster", cluster_field},
                                     {"resource", gvr.ToString()},
                                     {"objects", result.by_resource.count(gvr.ToString()) ? result.by_resource[gvr.ToString()] : 0}});
  }

  // The CRDs of the custom resources backed up, so that a restore into another cluster
  // can serve them. Reading CRDs needs a cluster-wide grant: without it, none are kept.
  try {
    kube::ListOptions options;
    options.limit = options_.list_page_size;
    const kube::ObjectList crds = source_.ListAll(kCustomResourceDefinitions, "", options);
    for (const json& crd : crds.items) {
      const json spec = crd.value("spec", json::object());
      const std::string group = spec.value("group", "");
      const std::string plural = spec.value("names", json::object()).value("plural", "");
      if (custom_kinds.count({group, plural})) Write(kCustomResourceDefinitions, crd, &result, stop);
    }
  } catch (const BackupError&) {
    throw;
  } catch (const std::exception& e) {
    log_.Warn("custom resource definitions not backed up", {{"sourceCluster", cluster_field}, {"error", e.what()}});
  }

  if (stop.stop_requested()) return result;
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  Put(config_.base_path + "/" + std::string(kIndexKey),
      BackupIndexJson(identity, result, std::chrono::system_clock::now()), stop);
  return result;
}

}  // namespace ro::plugins::backup
