// Label selectors (k8s.io/apimachinery/pkg/labels and metav1.LabelSelector): one value
// type built from either form Kubernetes uses,
//   - the string form of list/watch `labelSelector` and kubectl -l:
//       "a=b,c!=d,e in (x,y),f notin (z),g,!h,n>1,m<5"   ("==" is accepted as "=")
//   - a metav1.LabelSelector JSON object:
//       {"matchLabels": {"a": "b"},
//        "matchExpressions": [{"key": "e", "operator": "In", "values": ["x", "y"]}]}
// Semantics follow https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/
// and labels.Parse / metav1.LabelSelectorAsSelector: every requirement must hold (AND);
// "!=" and "notin" also match objects without the key; an empty selector matches
// everything. The string form follows labels.Parse exactly (its test tables are ported
// in tests/unit/kube_label_selector_test.cc): "in"/"notin" are keywords only in operator
// position ("notin=in" and "in in (a)" are valid), "x in ()" is the set {""}, and the
// integer comparisons "n>1" / "m<5" are accepted. The object form accepts only In,
// NotIn, Exists and DoesNotExist (Gt/Lt are refused, as metav1.LabelSelectorAsSelector).
// Known difference: labels.Parse keeps "==" in its String() form, ToString() writes "=".
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ro::kube {

// A selector is malformed. part() names the offending piece (a key, an operator, a
// value, or "matchExpressions[2].values"), what() the whole diagnosis.
class SelectorError : public std::invalid_argument {
 public:
  SelectorError(std::string part, const std::string& message);
  const std::string& part() const noexcept { return part_; }

 private:
  std::string part_;
};

// One requirement "key op values".
struct LabelRequirement {
  enum class Operator {
    kEquals,        // "a=b": the key exists with exactly that value (one value)
    kNotEquals,     // "a!=b": the key is absent or has another value (one value)
    kIn,            // "a in (x,y)": the key exists with one of the values (>= 1 value)
    kNotIn,         // "a notin (x)": the key is absent or has none of them (>= 1 value)
    kExists,        // "a": the key exists (no values)
    kDoesNotExist,  // "!a": the key is absent (no values)
    kGreaterThan,   // "a>1": the key exists and its value, as an int64, is greater (one
                    // int64 value; string form only)
    kLessThan,      // "a<1": the same, less (one int64 value; string form only)
  };
  std::string key;
  Operator op = Operator::kExists;
  std::vector<std::string> values;  // sorted, unique ("x in ()" holds one "")

  bool Matches(const std::map<std::string, std::string, std::less<>>& labels) const;
  // The string form of this requirement ("e in (x,y)").
  std::string ToString() const;
  bool operator==(const LabelRequirement&) const = default;
};

// An immutable, validated selector. Cheap to copy. Thread-safe (const only).
class LabelSelector {
 public:
  using Labels = std::map<std::string, std::string, std::less<>>;

  // The empty selector: matches every object (labels.Everything()).
  LabelSelector() = default;

  // Parses the string form as labels.Parse does. Whitespace (space, tab, CR, LF)
  // around tokens is ignored; "" is the empty selector. Throws SelectorError (part = the
  // bad key, value, operator or the text near a syntax error).
  static LabelSelector Parse(std::string_view text);

  // From a metav1.LabelSelector object. `{}` matches everything. A JSON null (an absent
  // selector field) matches NOTHING, as metav1.LabelSelectorAsSelector(nil) does
  // (labels.Nothing()): callers whose API says "absent selector selects all" must check
  // for null themselves. Throws SelectorError naming the field, e.g.
  // "matchExpressions[0].operator" for an unknown operator, "matchExpressions[1].values"
  // for In/NotIn without values or Exists/DoesNotExist with values, "matchLabels.<key>"
  // for a bad value.
  static LabelSelector FromJson(const nlohmann::json& selector);

  // The selector that matches no object (labels.Nothing()).
  static LabelSelector Nothing();

  bool Matches(const Labels& labels) const;
  // `labels` is an object's metadata.labels (a JSON object of strings; null or absent
  // means no labels).
  bool Matches(const nlohmann::json& labels) const;
  // Reads metadata.labels of a whole object.
  bool MatchesObject(const nlohmann::json& object) const;

  // Canonical string form: requirements sorted by key, values sorted, joined by ",".
  // Parse(ToString()) == *this. The empty selector gives "". Nothing() also gives ""
  // (there is no string that matches nothing); check MatchesNothing() before sending
  // the string to a server.
  std::string ToString() const;

  bool Empty() const noexcept { return requirements_.empty() && !nothing_; }
  bool MatchesNothing() const noexcept { return nothing_; }
  const std::vector<LabelRequirement>& requirements() const noexcept { return requirements_; }
  bool operator==(const LabelSelector&) const = default;

 private:
  explicit LabelSelector(std::vector<LabelRequirement> requirements);

  std::vector<LabelRequirement> requirements_;  // sorted by key (stable)
  bool nothing_ = false;
};

// Kubernetes label syntax (k8s.io/apimachinery/pkg/util/validation). Each returns ""
// when valid, else a message saying why.
//   key:   [prefix/]name; prefix a DNS-1123 subdomain of <= 253 characters; name <= 63
//          characters of [A-Za-z0-9-_.], starting and ending alphanumeric.
//   value: "" or <= 63 characters of the same alphabet, starting and ending alphanumeric.
std::string ValidateLabelKey(std::string_view key);
std::string ValidateLabelValue(std::string_view value);

}  // namespace ro::kube
