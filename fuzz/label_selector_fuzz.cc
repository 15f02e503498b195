// ro::kube::LabelSelector on arbitrary text: the string form (labels.Parse) and, when the
// text is JSON, the metav1.LabelSelector form. Both return a selector or throw
// SelectorError. Properties (label_selector.h): Parse(ToString()) == selector, ToString()
// is canonical (a fixed point), and the map and JSON forms of Matches agree.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "ro/kube/label_selector.h"

namespace {

using ro::fuzz::Check;
using ro::kube::LabelSelector;
using ro::kube::SelectorError;

// Labels that exercise the selector's own keys: each key with its first value (or "x"),
// every other requirement's key left out.
LabelSelector::Labels LabelsFor(const LabelSelector& selector, bool skip_odd) {
  LabelSelector::Labels labels;
  for (std::size_t i = 0; i < selector.requirements().size(); ++i) {
    if (skip_odd && i % 2 == 1) continue;
    const ro::kube::LabelRequirement& r = selector.requirements()[i];
    labels.emplace(r.key, r.values.empty() ? "x" : r.values.front());
  }
  return labels;
}

void CheckMatchesAgree(const LabelSelector& selector) {
  for (const bool skip_odd : {false, true}) {
    const LabelSelector::Labels labels = LabelsFor(selector, skip_odd);
    nlohmann::json as_json = nlohmann::json::object();
    for (const auto& [key, value] : labels) as_json[key] = value;
    const nlohmann::json object = {{"metadata", {{"labels", as_json}}}};
    const bool by_map = selector.Matches(labels);
    Check(selector.Matches(as_json) == by_map, "Matches(json) == Matches(map)");
    Check(selector.MatchesObject(object) == by_map, "MatchesObject == Matches(map)");
  }
}

void CheckRoundTrip(const LabelSelector& selector) {
  const std::string text = selector.ToString();
  try {
    const LabelSelector again = LabelSelector::Parse(text);
    Check(again == selector, "Parse(ToString()) == selector");
    Check(again.ToString() == text, "ToString() is canonical");
  } catch (const SelectorError&) {
    Check(false, "ToString() parses");
  }
  CheckMatchesAgree(selector);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    CheckRoundTrip(LabelSelector::Parse(text));
  } catch (const SelectorError&) {
  }
  const nlohmann::json json = ro::fuzz::ParseJsonInput(text);
  if (json.is_discarded()) return 0;
  try {
    const LabelSelector selector = LabelSelector::FromJson(json);
    if (selector.MatchesNothing()) {
      Check(json.is_null(), "only null matches nothing");
      return 0;
    }
    CheckRoundTrip(selector);
  } catch (const SelectorError&) {
  }
  return 0;
}
