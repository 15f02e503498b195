// The filters of one replication.resources[] entry (manual 6.2.2 "Filters", 6.2.6
// Filters): label `selector` on the object, `namespaceSelector` on the labels of the
// object's namespace, and `nameSelector` {regex[], excludeRegex[]} on metadata.name.
// Compiled once per entry and reused for every object: never compiles a regex per event.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/label_selector.h"
#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::kubernetes {

// An immutable, compiled filter. Cheap to copy (shared, const). Thread-safe.
//
// Matching (all present criteria must hold; an absent criterion selects all):
//   - selector: metav1.LabelSelector semantics on the object's metadata.labels.
//   - namespaceSelector: the same on the labels of the object's namespace. A
//     cluster-scoped object, or one whose namespace is unknown to the caller, never
//     matches a present namespaceSelector (even `{}`).
//   - nameSelector.regex: when non-empty, at least one must match metadata.name;
//     nameSelector.excludeRegex: none may match. RE2 syntax with Go's
//     regexp.MatchString semantics: unanchored (RE2::PartialMatch), so "config.*"
//     matches any name containing "config"; anchor with ^...$ explicitly.
class ObjectFilter {
 public:
  // Matches every object.
  ObjectFilter();

  // Compiles a `filters` object. Problems are appended to `problems` with field paths
  // under `field`: InvalidSelector ("<field>.selector.matchExpressions[0].operator"),
  // InvalidRegex ("<field>.nameSelector.excludeRegex[0]", the RE2 error in the message)
  // or InvalidConfig (wrong JSON types). A JSON null `filters` matches every object.
  // The invalid parts are left out of the result, which callers must not use when
  // problems were added.
  static ObjectFilter FromJson(const nlohmann::json& filters, const std::string& field,
                               std::vector<ConfigProblem>* problems);
  // Same, throws ConfigError (fields relative to the filters object, "selector...").
  static ObjectFilter FromJson(const nlohmann::json& filters);

  // `object` is a Kubernetes object. `namespace_labels` is the metadata.labels of the
  // object's namespace (a JSON object of strings, or JSON null for none), or nullptr when
  // the object is cluster-scoped or its namespace is not known.
  bool Matches(const nlohmann::json& object, const nlohmann::json* namespace_labels) const;

  // The nameSelector part alone.
  bool MatchesName(std::string_view name) const;

  // Present criteria (nullopt = absent, selects all).
  const std::optional<kube::LabelSelector>& selector() const noexcept;
  const std::optional<kube::LabelSelector>& namespace_selector() const noexcept;
  const std::vector<std::string>& name_regex() const noexcept;
  const std::vector<std::string>& name_exclude_regex() const noexcept;
  // True when no criterion is present.
  bool MatchesEverything() const noexcept;

  // The filter as given (selector, namespaceSelector, nameSelector; absent parts
  // omitted), for copying into a Task (manual 8.2 `filter`). `{}` when none.
  nlohmann::json ToJson() const;

 private:
  struct Impl;
  explicit ObjectFilter(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// True when no set of labels can satisfy both `a` and `b`: some requirement of `a` and
// some requirement of `b` on the same key contradict each other (Equals/In value sets
// that do not intersect; Equals/In against NotEquals/NotIn excluding all of those
// values; Exists/Equals/In against DoesNotExist). Sound but incomplete: false means
// "not provably disjoint".
bool SelectorsProvablyDisjoint(const kube::LabelSelector& a, const kube::LabelSelector& b);

// True when no object can match both filters: their `selector`s are provably disjoint,
// or their `namespaceSelector`s are. Name regexes are not analysed. This is the rule
// behind OverlappingTransformations (docs/kubesync.md "Configuration validation").
bool FiltersProvablyDisjoint(const ObjectFilter& a, const ObjectFilter& b);

}  // namespace ro::plugins::kubernetes
