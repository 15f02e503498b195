#include "ro/kube/label_selector.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

namespace ro::kube {
namespace {

// Length limits of k8s.io/apimachinery/pkg/util/validation.
constexpr std::size_t kMaxLabelNameLength = 63;   // a DNS-1123 label (one DNS name part)
constexpr std::size_t kMaxSubdomainLength = 253;  // a DNS-1123 subdomain (a full DNS name)

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool IsQualifiedNamePart(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*
bool IsDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > kMaxSubdomainLength) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view part =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    const auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (part.empty() || !lower_alnum(part.front()) || !lower_alnum(part.back())) return false;
    if (!std::all_of(part.begin(), part.end(),
                     [&](char c) { return lower_alnum(c) || c == '-'; })) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Sorted, unique values (as sets.String in Go).
std::vector<std::string> Normalize(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

// Builds a validated requirement. `key_part`/`values_part` are what SelectorError::part()
// reports (JSON paths for the object form); an empty `values_part` (string form) reports
// the bad value itself, or the key when the number of values is wrong.
LabelRequirement MakeRequirement(std::string key, LabelRequirement::Operator op,
                                 std::vector<std::string> values, const std::string& key_part,
                                 const std::string& values_part) {
  if (std::string why = ValidateLabelKey(key); !why.empty()) {
    throw SelectorError(key_part, "invalid label key " + Quote(key) + ": " + why);
  }
  using Op = LabelRequirement::Operator;
  const std::string& count_part = values_part.empty() ? key_part : values_part;
  switch (op) {
    case Op::kEquals:
    case Op::kNotEquals:
      if (values.size() != 1) {
        throw SelectorError(count_part, "exactly one value required for key " + Quote(key));
      }
      break;
    case Op::kIn:
    case Op::kNotIn:
      if (values.empty()) {
        throw SelectorError(count_part, "for 'in', 'notin' operators, values set can't be "
                                         "empty (key " + Quote(key) + ")");
      }
      break;
    case Op::kExists:
    case Op::kDoesNotExist:
      if (!values.empty()) {
        throw SelectorError(count_part, "values set must be empty for exists and does not "
                                         "exist (key " + Quote(key) + ")");
      }
      break;
  }
  for (const std::string& v : values) {
    if (std::string why = ValidateLabelValue(v); !why.empty()) {
      throw SelectorError(values_part.empty() ? v : values_part,
                          "invalid label value " + Quote(v) + " for key " + Quote(key) +
                              ": " + why);
    }
  }
  return LabelRequirement{std::move(key), op, Normalize(std::move(values))};
}

// Evaluates a requirement against any label source: lookup(key) -> optional value.
template <typename Lookup>
bool RequirementMatches(const LabelRequirement& r, const Lookup& lookup) {
  using Op = LabelRequirement::Operator;
  const std::optional<std::string_view> value = lookup(r.key);
  const auto in_values = [&] {
    return value && std::binary_search(r.values.begin(), r.values.end(), *value);
  };
  switch (r.op) {
    case Op::kEquals:
    case Op::kIn:
      return in_values();
    case Op::kNotEquals:
    case Op::kNotIn:
      return !in_values();
    case Op::kExists:
      return value.has_value();
    case Op::kDoesNotExist:
      return !value.has_value();
  }
  return false;
}

// ---- string form: a lexer and a recursive-descent parser as in labels/selector.go ----

enum class Tok { kIdent, kNot, kEquals, kNotEquals, kOpen, kClose, kComma, kIn, kNotIn, kGtLt, kEnd };

struct Token {
  Tok kind;
  std::string text;
};

bool IsSpecial(char c) {
  return c == '!' || c == '=' || c == ',' || c == '(' || c == ')' || c == '<' || c == '>' ||
         std::isspace(static_cast<unsigned char>(c)) != 0;
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Token Next() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (pos_ >= text_.size()) return {Tok::kEnd, ""};
    const char c = text_[pos_];
    const auto two = [&](char second) {
      return pos_ + 1 < text_.size() && text_[pos_ + 1] == second;
    };
    switch (c) {
      case '!':
        if (two('=')) return Take(2, Tok::kNotEquals);
        return Take(1, Tok::kNot);
      case '=':
        return Take(two('=') ? 2 : 1, Tok::kEquals);
      case ',':
        return Take(1, Tok::kComma);
      case '(':
        return Take(1, Tok::kOpen);
      case ')':
        return Take(1, Tok::kClose);
      case '<':
      case '>':
        return Take(1, Tok::kGtLt);
      default:
        break;
    }
    std::size_t end = pos_;
    while (end < text_.size() && !IsSpecial(text_[end])) ++end;
    Token t{Tok::kIdent, std::string(text_.substr(pos_, end - pos_))};
    pos_ = end;
    if (t.text == "in") t.kind = Tok::kIn;
    if (t.text == "notin") t.kind = Tok::kNotIn;
    return t;
  }

  Token Peek() {
    const std::size_t saved = pos_;
    Token t = Next();
    pos_ = saved;
    return t;
  }

  std::string Rest() const { return std::string(text_.substr(std::min(pos_, text_.size()))); }

 private:
  Token Take(std::size_t n, Tok kind) {
    Token t{kind, std::string(text_.substr(pos_, n))};
    pos_ += n;
    return t;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : lex_(text) {}

  std::vector<LabelRequirement> ParseAll() {
    std::vector<LabelRequirement> out;
    if (lex_.Peek().kind == Tok::kEnd) return out;
    while (true) {
      out.push_back(ParseRequirement());
      const Token t = lex_.Next();
      if (t.kind == Tok::kEnd) return out;
      if (t.kind != Tok::kComma) Fail(t, "expected ',' or end of selector");
    }
  }

 private:
  using Op = LabelRequirement::Operator;

  [[noreturn]] void Fail(const Token& t, const std::string& why) {
    const std::string near = t.kind == Tok::kEnd ? std::string("end of selector") : t.text;
    throw SelectorError(near, "label selector: " + why + " near " + Quote(near));
  }

  LabelRequirement ParseRequirement() {
    Token t = lex_.Next();
    if (t.kind == Tok::kNot) {
      const Token key = lex_.Next();
      if (key.kind != Tok::kIdent) Fail(key, "expected a label key after '!'");
      return MakeRequirement(key.text, Op::kDoesNotExist, {}, key.text, "");
    }
    if (t.kind != Tok::kIdent) Fail(t, "expected a label key");
    const std::string key = t.text;
    const Token op = lex_.Peek();
    switch (op.kind) {
      case Tok::kComma:
      case Tok::kEnd:
        return MakeRequirement(key, Op::kExists, {}, key, "");
      case Tok::kEquals:
      case Tok::kNotEquals: {
        lex_.Next();
        std::string value = ParseExactValue();
        return MakeRequirement(key, op.kind == Tok::kEquals ? Op::kEquals : Op::kNotEquals,
                               {value}, key, "");
      }
      case Tok::kIn:
      case Tok::kNotIn: {
        lex_.Next();
        std::vector<std::string> values = ParseValueSet();
        return MakeRequirement(key, op.kind == Tok::kIn ? Op::kIn : Op::kNotIn,
                               std::move(values), key, "");
      }
      default:
        lex_.Next();
        Fail(op, "invalid operator (want =, ==, !=, in, notin)");
    }
  }

  // A value after = or !=; "a=" (empty value) is allowed.
  std::string ParseExactValue() {
    const Token t = lex_.Peek();
    if (t.kind == Tok::kComma || t.kind == Tok::kEnd) return "";
    lex_.Next();
    if (t.kind == Tok::kIdent || t.kind == Tok::kIn || t.kind == Tok::kNotIn) return t.text;
    Fail(t, "expected a label value");
  }

  // "(v1,v2,...)"; an empty element ("(a,)") is the empty value.
  std::vector<std::string> ParseValueSet() {
    const Token open = lex_.Next();
    if (open.kind != Tok::kOpen) Fail(open, "expected '(' after in/notin");
    std::vector<std::string> values;
    if (lex_.Peek().kind == Tok::kClose) {
      lex_.Next();
      return values;
    }
    while (true) {
      const Token v = lex_.Peek();
      if (v.kind == Tok::kIdent || v.kind == Tok::kIn || v.kind == Tok::kNotIn) {
        lex_.Next();
        values.push_back(v.text);
      } else if (v.kind == Tok::kComma || v.kind == Tok::kClose) {
        values.emplace_back();
      } else {
        lex_.Next();
        Fail(v, "expected a label value in the value set");
      }
      const Token sep = lex_.Next();
      if (sep.kind == Tok::kClose) return values;
      if (sep.kind != Tok::kComma) Fail(sep, "expected ',' or ')' in the value set");
    }
  }

  Lexer lex_;
};

std::optional<std::string_view> LookupJson(const nlohmann::json& labels, const std::string& key) {
  if (!labels.is_object()) return std::nullopt;
  const auto it = labels.find(key);
  if (it == labels.end() || !it->is_string()) return std::nullopt;
  return std::string_view(it->get_ref<const std::string&>());
}

}  // namespace

SelectorError::SelectorError(std::string part, const std::string& message)
    : std::invalid_argument(message), part_(std::move(part)) {}

std::string ValidateLabelKey(std::string_view key) {
  std::string_view name = key;
  if (const auto slash = key.find('/'); slash != std::string_view::npos) {
    const std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty()) return "prefix part must be non-empty";
    if (!IsDns1123Subdomain(prefix)) {
      return "prefix part must be a lowercase DNS-1123 subdomain of at most 253 characters";
    }
    if (name.find('/') != std::string_view::npos) return "at most one '/' is allowed";
  }
  if (name.empty()) return "name part must be non-empty";
  if (name.size() > kMaxLabelNameLength) return "name part must be no more than 63 characters";
  if (!IsQualifiedNamePart(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
           "start and end with an alphanumeric character";
  }
  return "";
}

std::string ValidateLabelValue(std::string_view value) {
  if (value.empty()) return "";
  if (value.size() > kMaxLabelNameLength) return "must be no more than 63 characters";
  if (!IsQualifiedNamePart(value)) {
    return "must consist of alphanumeric characters, '-', '_' or '.', and must start and "
           "end with an alphanumeric character";
  }
  return "";
}

bool LabelRequirement::Matches(const std::map<std::string, std::string, std::less<>>& labels) const {
  return RequirementMatches(*this, [&](const std::string& k) -> std::optional<std::string_view> {
    const auto it = labels.find(k);
    if (it == labels.end()) return std::nullopt;
    return std::string_view(it->second);
  });
}

std::string LabelRequirement::ToString() const {
  const auto joined = [&] {
    std::string out;
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      out += values[i];
    }
    return out;
  };
  switch (op) {
    case Operator::kEquals:
      return key + "=" + joined();
    case Operator::kNotEquals:
      return key + "!=" + joined();
    case Operator::kIn:
      return key + " in (" + joined() + ")";
    case Operator::kNotIn:
      return key + " notin (" + joined() + ")";
    case Operator::kExists:
      return key;
    case Operator::kDoesNotExist:
      return "!" + key;
  }
  return key;
}

LabelSelector::LabelSelector(std::vector<LabelRequirement> requirements)
    : requirements_(std::move(requirements)) {
  std::stable_sort(requirements_.begin(), requirements_.end(),
                   [](const LabelRequirement& a, const LabelRequirement& b) { return a.key < b.key; });
}

LabelSelector LabelSelector::Parse(std::string_view text) {
  return LabelSelector(Parser(text).ParseAll());
}

LabelSelector LabelSelector::Nothing() {
  LabelSelector s;
  s.nothing_ = true;
  return s;
}

LabelSelector LabelSelector::FromJson(const nlohmann::json& selector) {
  if (selector.is_null()) return Nothing();
  if (!selector.is_object()) throw SelectorError("selector", "label selector must be an object");
  std::vector<LabelRequirement> reqs;
  if (const auto ml = selector.find("matchLabels"); ml != selector.end() && !ml->is_null()) {
    if (!ml->is_object()) throw SelectorError("matchLabels", "matchLabels must be an object");
    for (const auto& [key, value] : ml->items()) {
      const std::string part = "matchLabels." + key;
      if (!value.is_string()) throw SelectorError(part, part + ": value must be a string");
      reqs.push_back(MakeRequirement(key, LabelRequirement::Operator::kEquals,
                                     {value.get<std::string>()}, part, part));
    }
  }
  if (const auto me = selector.find("matchExpressions"); me != selector.end() && !me->is_null()) {
    if (!me->is_array()) {
      throw SelectorError("matchExpressions", "matchExpressions must be an array");
    }
    for (std::size_t i = 0; i < me->size(); ++i) {
      const nlohmann::json& expr = (*me)[i];
      const std::string base = "matchExpressions[" + std::to_string(i) + "]";
      if (!expr.is_object()) throw SelectorError(base, base + " must be an object");
      const auto key = expr.find("key");
      if (key == expr.end() || !key->is_string()) {
        throw SelectorError(base + ".key", base + ".key: required string");
      }
      const auto op_it = expr.find("operator");
      const std::string op_text =
          op_it != expr.end() && op_it->is_string() ? op_it->get<std::string>() : "";
      LabelRequirement::Operator op;
      if (op_text == "In") {
        op = LabelRequirement::Operator::kIn;
      } else if (op_text == "NotIn") {
        op = LabelRequirement::Operator::kNotIn;
      } else if (op_text == "Exists") {
        op = LabelRequirement::Operator::kExists;
      } else if (op_text == "DoesNotExist") {
        op = LabelRequirement::Operator::kDoesNotExist;
      } else {
        throw SelectorError(base + ".operator", base + ".operator: " + Quote(op_text) +
                                                    " is not a valid label selector operator "
                                                    "(In, NotIn, Exists, DoesNotExist)");
      }
      std::vector<std::string> values;
      if (const auto vs = expr.find("values"); vs != expr.end() && !vs->is_null()) {
        if (!vs->is_array()) throw SelectorError(base + ".values", base + ".values: must be an array");
        for (const auto& v : *vs) {
          if (!v.is_string()) {
            throw SelectorError(base + ".values", base + ".values: must be strings");
          }
          values.push_back(v.get<std::string>());
        }
      }
      reqs.push_back(MakeRequirement(key->get<std::string>(), op, std::move(values),
                                     base + ".key", base + ".values"));
    }
  }
  return LabelSelector(std::move(reqs));
}

bool LabelSelector::Matches(const Labels& labels) const {
  if (nothing_) return false;
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&](const LabelRequirement& r) { return r.Matches(labels); });
}

bool LabelSelector::Matches(const nlohmann::json& labels) const {
  if (nothing_) return false;
  return std::all_of(requirements_.begin(), requirements_.end(), [&](const LabelRequirement& r) {
    return RequirementMatches(r, [&](const std::string& k) { return LookupJson(labels, k); });
  });
}

bool LabelSelector::MatchesObject(const nlohmann::json& object) const {
  static const nlohmann::json kNoLabels;  // immutable null
  if (!object.is_object()) return Matches(kNoLabels);
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return Matches(kNoLabels);
  const auto labels = meta->find("labels");
  return Matches(labels == meta->end() ? kNoLabels : *labels);
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (const LabelRequirement& r : requirements_) {
    if (!out.empty()) out += ',';
    out += r.ToString();
  }
  return out;
}

}  // namespace ro::kube
