// What a Kubesync component derives from its configuration file, once
// (docs/kubesync.md, "Configuration file"): the parsed spec.config, the wire names, the
// stamp of destination objects and the log fields of the manual's section 6.2.4.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "ro/kubesync/component.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::kubesync {

// Everything a component derives from its configuration file, once. Immutable after
// construction; thread-safe for concurrent readers.
class PipelineContext {
 public:
  // Parses file.spec_config with ParseLiveSyncConfig. Throws
  // plugins::kubernetes::ConfigError (invalid spec.config) or KubesyncConfigError
  // (spec.config names a bucket but the file has none).
  PipelineContext(KubesyncConfig file, ComponentId component, std::string consumer_id);

  const KubesyncConfig& file() const { return file_; }
  const plugins::kubernetes::LiveSyncConfig& config() const { return config_; }
  const PipelineNames& names() const { return names_; }
  // What the processor stamps on destination objects (source cluster = the
  // KubernetesCluster named by spec.config.sourceName).
  const plugins::kubernetes::StampInfo& stamp() const { return stamp_; }
  // The LiveSynchronization generation of the file (KubesyncConfig::generation): stamped
  // on what this component publishes; the stage runtime NAKs newer messages.
  std::int64_t generation() const { return file_.generation; }
  ComponentId component() const { return component_; }
  std::string_view process_id() const { return ProcessId(component_); }
  // process.consumerID of the processor's and synchronizer's lines, e.g.
  // "processor-kubesync-pre-7d9f-x2" ($POD_NAME, else hostname-pid).
  const std::string& consumer_id() const { return consumer_id_; }
  // components.<this component>.concurrentTasks (defaults: docs/kubesync.md), >= 1.
  int concurrent_tasks() const;

  // Log fields of manual 6.2.4: {"name","namespace","resourceVersion","uid"} of the
  // source/destination KubernetesCluster and of the Bucket (JSON null without bucket).
  nlohmann::json SourceClusterField() const;
  nlohmann::json DestinationClusterField() const;
  nlohmann::json BucketField() const;

 private:
  KubesyncConfig file_;
  plugins::kubernetes::LiveSyncConfig config_;
  PipelineNames names_;
  plugins::kubernetes::StampInfo stamp_;
  ComponentId component_;
  std::string consumer_id_;
};

}  // namespace ro::kubesync
