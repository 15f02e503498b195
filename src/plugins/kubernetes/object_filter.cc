#include "ro/plugins/kubernetes/object_filter.h"

#include <algorithm>
#include <iterator>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>
#include <re2/re2.h>

#include "config_reader.h"

namespace ro::plugins::kubernetes {
namespace {

using kube::LabelRequirement;
using kube::LabelSelector;
using nlohmann::json;
using internal::AddProblem;
using internal::Field;
using internal::Index;
using internal::Quote;

// A glob-like pattern such as "*.test" (the manual's own sample) fails with "missing
// argument to repetition operator"; suggest the regular expression the user meant.
std::string GlobHint(const std::string& pattern) {
  if (pattern.size() < 2 || pattern.front() != '*') return "";
  const std::string rest = pattern.substr(1);
  const bool plain = std::all_of(rest.begin(), rest.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
  });
  if (!plain) return "";
  return " (a leading \"*\" is a glob, not a regular expression: " +
         Quote(RE2::QuoteMeta(rest) + "$") + " matches names ending in " + Quote(rest) + ")";
}

// Compiles each string of `list` (a JSON array of strings).
std::vector<std::unique_ptr<RE2>> CompileAll(const json& list, const std::string& field,
                                             std::vector<std::string>* texts,
                                             std::vector<ConfigProblem>* problems) {
  std::vector<std::unique_ptr<RE2>> compiled;
  if (!list.is_array()) {
    AddProblem(problems, field, reason::kInvalidConfig,
               std::string("must be an array of regular expressions, got ") + list.type_name());
    return compiled;
  }
  RE2::Options options;
  options.set_log_errors(false);  // the error goes into the problem, not to stderr
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string item_field = Index(field, i);
    if (!list[i].is_string()) {
      AddProblem(problems, item_field, reason::kInvalidConfig,
                 std::string("must be a string, got ") + list[i].type_name());
      continue;
    }
    const std::string& pattern = list[i].get_ref<const std::string&>();
    auto re = std::make_unique<RE2>(pattern, options);
    if (!re->ok()) {
      AddProblem(problems, item_field, reason::kInvalidRegex,
                 "invalid regular expression " + Quote(pattern) + ": " + re->error() +
                     GlobHint(pattern));
      continue;
    }
    texts->push_back(pattern);
    compiled.push_back(std::move(re));
  }
  return compiled;
}

std::optional<LabelSelector> CompileSelector(const json& filters, std::string_view key,
                                             const std::string& field,
                                             std::vector<ConfigProblem>* problems) {
  const json* value = internal::Member(filters, key);
  if (value == nullptr) return std::nullopt;
  try {
    return LabelSelector::FromJson(*value);
  } catch (const kube::SelectorError& e) {
    const std::string where = e.part() == "selector" ? field : Field(field, e.part());
    AddProblem(problems, where, reason::kInvalidSelector, e.what());
    return std::nullopt;
  }
}

bool Positive(LabelRequirement::Operator op) {
  return op == LabelRequirement::Operator::kEquals || op == LabelRequirement::Operator::kIn;
}
bool Negative(LabelRequirement::Operator op) {
  return op == LabelRequirement::Operator::kNotEquals || op == LabelRequirement::Operator::kNotIn;
}

// True when no label value satisfies both requirements (same key). Values are sorted.
bool Contradict(const LabelRequirement& a, const LabelRequirement& b) {
  using Op = LabelRequirement::Operator;
  if (Positive(a.op) && Positive(b.op)) {
    std::vector<std::string> common;
    std::set_intersection(a.values.begin(), a.values.end(), b.values.begin(), b.values.end(),
                          std::back_inserter(common));
    return common.empty();
  }
  if (Positive(a.op) && Negative(b.op)) {
    return std::includes(b.values.begin(), b.values.end(), a.values.begin(), a.values.end());
  }
  if (Negative(a.op) && Positive(b.op)) return Contradict(b, a);
  const bool a_needs_key = Positive(a.op) || a.op == Op::kExists;
  const bool b_needs_key = Positive(b.op) || b.op == Op::kExists;
  return (a_needs_key && b.op == Op::kDoesNotExist) || (b_needs_key && a.op == Op::kDoesNotExist);
}

}  // namespace

struct ObjectFilter::Impl {
  std::optional<LabelSelector> selector;
  std::optional<LabelSelector> namespace_selector;
  std::vector<std::string> regex_text;
  std::vector<std::string> exclude_text;
  std::vector<std::unique_ptr<RE2>> regex;
  std::vector<std::unique_ptr<RE2>> exclude;
  json as_json = json::object();
};

ObjectFilter::ObjectFilter() {
  // Immutable and shared by every match-all filter: default construction allocates nothing.
  static const std::shared_ptr<const Impl> kEverything = std::make_shared<const Impl>();
  impl_ = kEverything;
}
ObjectFilter::ObjectFilter(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

ObjectFilter ObjectFilter::FromJson(const json& filters, const std::string& field,
                                    std::vector<ConfigProblem>* problems) {
  auto impl = std::make_shared<Impl>();
  if (filters.is_null()) return ObjectFilter(std::move(impl));
  if (!filters.is_object()) {
    AddProblem(problems, field, reason::kInvalidConfig,
               std::string("must be an object, got ") + filters.type_name());
    return ObjectFilter(std::move(impl));
  }
  impl->selector = CompileSelector(filters, "selector", Field(field, "selector"), problems);
  impl->namespace_selector =
      CompileSelector(filters, "namespaceSelector", Field(field, "namespaceSelector"), problems);
  for (const char* key : {"selector", "namespaceSelector"}) {
    if (const json* value = internal::Member(filters, key)) impl->as_json[key] = *value;
  }
  const std::string name_field = Field(field, "nameSelector");
  if (const json* names = internal::TypedMember(filters, "nameSelector", json::value_t::object,
                                                "an object", name_field, problems)) {
    if (const json* regex = internal::Member(*names, "regex")) {
      impl->regex = CompileAll(*regex, Field(name_field, "regex"), &impl->regex_text, problems);
    }
    if (const json* exclude = internal::Member(*names, "excludeRegex")) {
      impl->exclude =
          CompileAll(*exclude, Field(name_field, "excludeRegex"), &impl->exclude_text, problems);
    }
    json name_json = json::object();
    if (!impl->regex_text.empty()) name_json["regex"] = impl->regex_text;
    if (!impl->exclude_text.empty()) name_json["excludeRegex"] = impl->exclude_text;
    if (!name_json.empty()) impl->as_json["nameSelector"] = std::move(name_json);
  }
  return ObjectFilter(std::move(impl));
}

ObjectFilter ObjectFilter::FromJson(const json& filters) {
  std::vector<ConfigProblem> problems;
  ObjectFilter filter = FromJson(filters, "", &problems);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return filter;
}

bool ObjectFilter::Matches(const json& object, const json* namespace_labels) const {
  const Impl& f = *impl_;
  if (f.selector && !f.selector->MatchesObject(object)) return false;
  const json* meta = nullptr;
  if (object.is_object()) {
    const auto it = object.find("metadata");
    if (it != object.end() && it->is_object()) meta = &*it;
  }
  if (f.namespace_selector) {
    if (namespace_labels == nullptr || meta == nullptr) return false;
    const auto ns = meta->find("namespace");
    if (ns == meta->end() || !ns->is_string() || ns->get_ref<const std::string&>().empty()) {
      return false;
    }
    if (!f.namespace_selector->Matches(*namespace_labels)) return false;
  }
  if (f.regex.empty() && f.exclude.empty()) return true;
  std::string_view name;
  if (meta != nullptr) {
    const auto it = meta->find("name");
    if (it != meta->end() && it->is_string()) name = it->get_ref<const std::string&>();
  }
  return MatchesName(name);
}

bool ObjectFilter::MatchesName(std::string_view name) const {
  const Impl& f = *impl_;
  const auto matches = [&](const std::unique_ptr<RE2>& re) { return RE2::PartialMatch(name, *re); };
  if (!f.regex.empty() && std::none_of(f.regex.begin(), f.regex.end(), matches)) return false;
  return std::none_of(f.exclude.begin(), f.exclude.end(), matches);
}

const std::optional<LabelSelector>& ObjectFilter::selector() const noexcept {
  return impl_->selector;
}
const std::optional<LabelSelector>& ObjectFilter::namespace_selector() const noexcept {
  return impl_->namespace_selector;
}
const std::vector<std::string>& ObjectFilter::name_regex() const noexcept {
  return impl_->regex_text;
}
const std::vector<std::string>& ObjectFilter::name_exclude_regex() const noexcept {
  return impl_->exclude_text;
}
bool ObjectFilter::MatchesEverything() const noexcept {
  const Impl& f = *impl_;
  return !f.selector && !f.namespace_selector && f.regex.empty() && f.exclude.empty();
}
json ObjectFilter::ToJson() const { return impl_->as_json; }

bool SelectorsProvablyDisjoint(const LabelSelector& a, const LabelSelector& b) {
  if (a.MatchesNothing() || b.MatchesNothing()) return true;
  for (const LabelRequirement& ra : a.requirements()) {
    for (const LabelRequirement& rb : b.requirements()) {
      if (ra.key == rb.key && Contradict(ra, rb)) return true;
    }
  }
  return false;
}

bool FiltersProvablyDisjoint(const ObjectFilter& a, const ObjectFilter& b) {
  if (a.selector() && b.selector() && SelectorsProvablyDisjoint(*a.selector(), *b.selector())) {
    return true;
  }
  return a.namespace_selector() && b.namespace_selector() &&
         SelectorsProvablyDisjoint(*a.namespace_selector(), *b.namespace_selector());
}

}  // namespace ro::plugins::kubernetes
