#include "ro/plugins/tasks/backup_restore.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/backoff.h"
#include "ro/common/digest.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/discovery.h"
#include "ro/kube/errors.h"
#include "ro/plugins/bucket_encryption.h"
#include "ro/plugins/kubernetes/apply_order.h"
#include "ro/plugins/s3_client.h"

namespace ro::plugins::tasks {

namespace {

using nlohmann::json;

constexpr std::string_view kKubesyncPrefix = "kubesync.astronetes.io/";
const kube::GroupVersionResource kNamespaces{"", "v1", "namespaces"};

bool IsCrd(const kube::GroupVersionResource& gvr) {
  return gvr.group == "apiextensions.k8s.io" && gvr.resource == "customresourcedefinitions";
}

// Drops kubesync's control keys of metadata[key].
void DropControlKeys(json& metadata, const char* key) {
  const auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_object()) return;
  for (auto entry = it->begin(); entry != it->end();) {
    entry = entry.key().rfind(kKubesyncPrefix, 0) == 0 ? it->erase(entry) : std::next(entry);
  }
  if (it->empty()) metadata.erase(it);
}

// One object of the index.
struct Entry {
  std::string key;
  std::string ns;
  std::string name;
  std::string sha256;
};

}  // namespace

json ReadBackupIndex(const OriginalReader& read, const std::string& base_path) {
  const std::string index_key = base_path + "/index.json";
  std::optional<std::string> index_text;
  try {
    index_text = read(index_key);
  } catch (const std::exception& e) {
    throw RestoreError("BucketError", "reading " + index_key + " from the bucket: " + e.what());
  }
  if (!index_text) {
    throw RestoreError("BackupNotFound", "no backup index at " + index_key +
                                             " in the bucket: the Backup did not finish, or basePath is wrong");
  }
  json index;
  try {
    index = json::parse(*index_text);
  } catch (const json::exception& e) {
    throw RestoreError("InvalidBackup", index_key + " is not JSON: " + e.what());
  }
  if (!index.is_object() || index.value("kind", "") != "BackupIndex" || !index.contains("objects") ||
      !index["objects"].is_array()) {
    throw RestoreError("InvalidBackup", index_key + " is not a BackupIndex");
  }
  return index;
}

std::optional<std::string> ReadBackupFile(const OriginalReader& read, const std::string& key,
                                          const TransformerOptions& options, kube::Clock& clock,
                                          std::stop_token stop) {
  common::Backoff backoff(options.initial_backoff, options.max_backoff, /*jitter=*/0);
  for (int attempt = 1;; ++attempt) {
    try {
      return read(key);
    } catch (const S3Error& e) {
      if (!e.retryable() || attempt >= options.max_attempts) throw;
      if (!clock.SleepFor(backoff.Next(), stop)) throw std::runtime_error("interrupted by shutdown");
    }
  }
}

BackupRestorer::BackupRestorer(RestoreConfig config, RunIdentity run, TransformationTarget target,
                               log::Logger log, kube::Clock& clock, TransformerOptions options)
    : config_(std::move(config)),
      run_(std::move(run)),
      target_(std::move(target)),
      log_(std::move(log)),
      clock_(clock),
      options_(std::move(options)) {
  if (target_.destination == nullptr || !target_.read_original) {
    throw std::invalid_argument("BackupRestorer: a destination client and a bucket reader are required");
  }
}

TransformationReport BackupRestorer::Run(std::stop_token stop) {
  TransformationReport report;
  report.dry_run = options_.dry_run;
  report.verb = "restored";
  const std::string index_key = config_.base_path + "/index.json";
  const json cluster = target_.destination_cluster.name.empty()
                           ? json(nullptr)
                           : json{{"name", target_.destination_cluster.name}, {"namespace", target_.destination_cluster.ns}};

  json index = ReadBackupIndex(target_.read_original, config_.base_path);
  if (const std::string plugin = index.value("plugin", ""); plugin == "zookeeper-nodes-to-bucket") {
    throw RestoreError("InvalidBackup", index_key + " is the index of a ZooKeeper backup: restore it with "
                                                    "zookeeper-nodes-from-backup into a Database");
  }

  // The index's objects by resource, in the index's order.
  std::vector<kube::GroupVersionResource> gvrs;
  std::map<kube::GroupVersionResource, std::vector<Entry>> entries;
  std::map<kube::GroupVersionResource, int64_t> listed;
  for (const json& object : index["objects"]) {
    kube::GroupVersionResource gvr;
    try {
      gvr = kube::GroupVersionResource::Parse(object.value("resource", ""));
    } catch (const std::exception&) {
      throw RestoreError("InvalidBackup", index_key + ": object " + object.dump() + " has no valid resource");
    }
    if (!entries.count(gvr)) gvrs.push_back(gvr);
    ++listed[gvr];
    Entry entry{object.value("key", ""), object.value("namespace", ""), object.value("name", ""),
                object.value("sha256", "")};
    // Only the chosen namespaces (a Namespace object by its name); CRDs always.
    const std::string& ns = gvr == kNamespaces ? entry.name : entry.ns;
    if (!config_.namespaces.empty() && !ns.empty() && !IsCrd(gvr) &&
        std::find(config_.namespaces.begin(), config_.namespaces.end(), ns) == config_.namespaces.end()) {
      entries[gvr];
      continue;
    }
    entries[gvr].push_back(std::move(entry));
  }
  std::vector<std::size_t> order(gvrs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (config_.order == ResourceOrder::kDependencies) order = kubernetes::DependencyOrder(gvrs);

  // Dry run: what the run creates before it needs them. The destination cannot validate a
  // create into a namespace, or of a custom resource, that does not exist yet.
  std::set<std::string> namespaces_created;
  std::set<std::pair<std::string, std::string>> kinds_created;  // group, plural of CRDs created
  for (const std::size_t i : order) {
    if (stop.stop_requested()) break;
    const kube::GroupVersionResource& gvr = gvrs[i];
    ResourceReport& counts = report.resources.emplace_back();
    counts.index = i;
    counts.gvr = gvr;
    counts.listed = true;
    counts.objects = listed[gvr];
    counts.selected = static_cast<int64_t>(entries[gvr].size());
    if (entries[gvr].empty()) continue;
    std::optional<kube::ApiResource> api;
    try {
      api = target_.destination->discovery().Find(gvr);
    } catch (const std::exception& e) {
      if (kube::IsRetryable(e)) throw;
      api.reset();
    }
    std::vector<std::string> crds_written;
    for (const Entry& entry : entries[gvr]) {
      if (stop.stop_requested()) break;
      const std::string target_ns = entry.ns.empty() ? "" : config_.MapNamespace(entry.ns);
      const std::string target_name = gvr == kNamespaces ? config_.MapNamespace(entry.name) : entry.name;
      PlannedChange change{gvr.ToString(), target_ns, target_name, PlannedAction::kFail, "[]", ""};
      const std::string description = gvr.ToString() + " " + (target_ns.empty() ? "" : target_ns + "/") + target_name;
      const auto fail = [&](std::string error) {
        log_.Error("error restoring object", {{"destinationCluster", cluster}, {"object", description}, {"error", error}});
        ++report.failed;
        if (report.failures.size() < options_.max_reported_failures) report.failures.push_back({description, error});
        change.action = PlannedAction::kFail;
        change.message = std::move(error);
      };
      const auto finish = [&] {
        if (options_.dry_run) AddPlannedChange(&report, change, options_.max_planned_bytes);
      };
      const bool kind_created_first = kinds_created.count({gvr.group, gvr.resource}) > 0;
      if (!api && !(options_.dry_run && kind_created_first)) {
        fail("not served by the destination cluster");
        finish();
        continue;
      }

      // The stored object, checked against the index.
      std::optional<std::string> body;
      try {
        body = ReadBackupFile(target_.read_original, config_.base_path + "/" + entry.key, options_, clock_, stop);
      } catch (const std::exception& e) {
        fail("reading " + entry.key + " from the bucket: " + e.what());
        finish();
        continue;
      }
      if (!body) {
        fail(entry.key + " is listed in the index but missing from the bucket");
        finish();
        continue;
      }
      if (!entry.sha256.empty() && common::Sha256Hex(*body) != entry.sha256) {
        fail(entry.key + " does not match the SHA-256 of the index: changed or damaged in the bucket");
        finish();
        continue;
      }
      json object;
      try {
        object = json::parse(*body);
      } catch (const json::exception& e) {
        fail(entry.key + " is not JSON: " + e.what());
        finish();
        continue;
      }
      json& metadata = object["metadata"];
      if (!metadata.is_object()) metadata = json::object();
      if (!target_ns.empty()) metadata["namespace"] = target_ns;
      metadata["name"] = target_name;
      DropControlKeys(metadata, "labels");
      DropControlKeys(metadata, "annotations");
      if (gvr == kNamespaces) {
        for (const auto& [key, value] : config_.namespace_labels) metadata["labels"][key] = value;
      }
      metadata["annotations"][std::string(kTaskRunUidKey)] = run_.uid;
      metadata["annotations"][std::string(kTaskRunAnnotation)] = run_.ns + "/" + run_.name;

      // Dry run of an object this run can only create after another one: reported from the
      // backup, not validated by the destination.
      const bool namespace_created_first = !target_ns.empty() && namespaces_created.count(target_ns) > 0;
      if (options_.dry_run && (!api || namespace_created_first)) {
        change.action = PlannedAction::kCreate;
        change.patch = RedactSecretValues(gvr, ChangeBetween(json(nullptr), object)).dump();
        change.message = !api ? "not validated by the destination: the run creates its CustomResourceDefinition first"
                              : "not validated by the destination: the run creates namespace " + target_ns + " first";
        ++report.patched;
        ++counts.patched;
        finish();
        continue;
      }
      kube::WriteOptions write;
      write.field_manager = options_.field_manager;
      write.dry_run = options_.dry_run;
      // Only a dry run reads the written object (its change report); a restore reads
      // nothing of the answer, so the destination sends its metadata only.
      write.metadata_only = !options_.dry_run;
      bool done = false;
      std::string last_error;
      common::Backoff write_backoff(options_.initial_backoff, options_.max_backoff, /*jitter=*/0);
      // Create first (one request for an object the destination lacks, the usual case);
      // AlreadyExists reads it and decides.
      bool may_exist = false;
      for (int attempt = 1; attempt <= options_.max_attempts && !done; ++attempt) {
        try {
          std::optional<json> current;
          if (may_exist) current = target_.destination->GetIfExists(gvr, target_ns, target_name);
          if (!current) {
            const json created = target_.destination->Create(gvr, target_ns, object, write);
            change.action = PlannedAction::kCreate;
            // The report's patch is only for a dry run: a real restore does not diff.
            if (options_.dry_run) change.patch = RedactSecretValues(gvr, ChangeBetween(json(nullptr), created)).dump();
            ++report.patched;
            ++counts.patched;
            if (IsCrd(gvr) && !options_.dry_run) crds_written.push_back(target_name);
            if (IsCrd(gvr)) {
              const json spec = object.value("spec", json::object());
              kinds_created.insert({spec.value("group", ""), spec.value("names", json::object()).value("plural", "")});
            }
            if (gvr == kNamespaces) namespaces_created.insert(target_name);
            log_.Info(options_.dry_run ? "dry run: object would be created in cluster" : "object created in cluster",
                      {{"destinationCluster", cluster}, {"object", description}});
          } else if (ChangedByRun(*current, run_.uid)) {
            change.action = PlannedAction::kUnchanged;
            ++report.patched;
            ++counts.patched;
          } else if (config_.existing == RestoreConfig::Existing::kSkip) {
            change.action = PlannedAction::kSkip;
            change.message = "exists in the destination (existing: Skip)";
            ++report.skipped;
          } else {
            json desired = RestoreFromOriginal(*current, object);
            desired["metadata"]["annotations"][std::string(kTaskRunUidKey)] = run_.uid;
            desired["metadata"]["annotations"][std::string(kTaskRunAnnotation)] = run_.ns + "/" + run_.name;
            const json updated = target_.destination->Update(gvr, target_ns, desired, write);
            change.action = PlannedAction::kPatch;
            if (options_.dry_run) {
              const json patch = RedactSecretValues(gvr, ChangeBetween(*current, updated));
              if (patch.empty()) change.action = PlannedAction::kUnchanged;
              change.patch = patch.dump();
            }
            ++report.patched;
            ++counts.patched;
            log_.Info(options_.dry_run ? "dry run: object would be updated in cluster" : "object updated in cluster",
                      {{"destinationCluster", cluster}, {"object", description}});
          }
          done = true;
        } catch (const std::exception& e) {
          last_error = e.what();
          // It exists, or changed meanwhile: read it and decide again. Transient: wait.
          if (kube::IsAlreadyExists(e) || kube::IsConflict(e)) {
            may_exist = true;
            continue;
          }
          if (!kube::IsRetryable(e)) break;
          if (attempt < options_.max_attempts && !clock_.SleepFor(write_backoff.Next(), stop)) break;
        }
      }
      if (!done) fail(last_error);
      finish();
    }
    if (!crds_written.empty()) {
      for (std::string& error : WaitEstablished(*target_.destination, crds_written, clock_,
                                                options_.established_timeout, options_.established_poll, stop)) {
        report.resource_errors.push_back(std::move(error));
      }
      // Their custom resources are served now.
      target_.destination->discovery().Invalidate();
    }
  }
  return report;
}

}  // namespace ro::plugins::tasks
