#include "ro/kube/label_selector.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <system_error>
#include <utility>

#include "label_selector_lexer.h"

#include "ro/common/validation.h"

namespace ro::kube {
namespace {

// Length limits of k8s.io/apimachinery/pkg/util/validation.
constexpr std::size_t kMaxLabelNameLength = 63;   // a DNS-1123 label (one DNS name part)

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool IsQualifiedNamePart(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Sorted, unique values (as sets.String in Go).
std::vector<std::string> Normalize(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

// A base-10 int64 with an optional sign, as Go's strconv.ParseInt(s, 10, 64); nullopt
// when `s` is not one or does not fit.
std::optional<std::int64_t> ParseInt64(std::string_view s) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;  // "+-1"
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
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
    case Op::kGreaterThan:
    case Op::kLessThan:
      if (values.size() != 1) {
        throw SelectorError(count_part, "for '>', '<' operators, exactly one value is required "
                                         "(key " + Quote(key) + ")");
      }
      if (!ParseInt64(values.front())) {
        throw SelectorError(values_part.empty() ? values.front() : values_part,
                            "for '>', '<' operators, the value must be an integer, got " +
                                Quote(values.front()) + " for key " + Quote(key));
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
    case Op::kGreaterThan:
    case Op::kLessThan: {
      // Both sides as integers; a label value that is not one does not match.
      if (!value || r.values.size() != 1) return false;
      const std::optional<std::int64_t> have = ParseInt64(*value);
      const std::optional<std::int64_t> bound = ParseInt64(r.values.front());
      if (!have || !bound) return false;
      return r.op == Op::kGreaterThan ? *have > *bound : *have < *bound;
    }
  }
  return false;
}

// ---- string form: a recursive-descent parser as labels.Parser in labels/selector.go ----

using internal::ScanSelector;
using internal::SelectorLexeme;
using internal::SelectorToken;

// What "in" and "notin" are: keywords only where an operator is expected (labels'
// KeyAndOperator context); anywhere else (keys, values) they are identifiers, so
// "notin=in" and "in in (in)" are valid selectors.
enum class Context { kKeyAndOperator, kValues };

class Parser {
 public:
  explicit Parser(std::string_view text) : items_(ScanSelector(text)) {}

  std::vector<LabelRequirement> ParseAll() {
    std::vector<LabelRequirement> out;
    while (true) {
      const SelectorLexeme& t = Lookahead(Context::kValues);
      if (t.token == SelectorToken::kEnd) return out;
      if (t.token != SelectorToken::kIdentifier && t.token != SelectorToken::kDoesNotExist) {
        Fail(t, "expected '!', a label key or the end of the selector");
      }
      out.push_back(ParseRequirement());
      const SelectorLexeme next = Consume(Context::kValues);
      if (next.token == SelectorToken::kEnd) return out;
      if (next.token != SelectorToken::kComma) Fail(next, "expected ',' or end of selector");
      const SelectorLexeme& after = Lookahead(Context::kValues);
      if (after.token != SelectorToken::kIdentifier &&
          after.token != SelectorToken::kDoesNotExist) {
        Fail(after, "expected '!' or a label key after ','");
      }
    }
  }

 private:
  using Op = LabelRequirement::Operator;

  [[noreturn]] static void Fail(const SelectorLexeme& t, const std::string& why) {
    const std::string near =
        t.token == SelectorToken::kEnd ? std::string("end of selector") : t.literal;
    throw SelectorError(near, "label selector: " + why + " near " + Quote(near));
  }

  // The current token (kEnd at the end), with in/notin as identifiers in kValues.
  SelectorLexeme Lookahead(Context context) const {
    SelectorLexeme t = items_[std::min(pos_, items_.size() - 1)];
    if (context == Context::kValues &&
        (t.token == SelectorToken::kIn || t.token == SelectorToken::kNotIn)) {
      t.token = SelectorToken::kIdentifier;
    }
    return t;
  }
  SelectorLexeme Consume(Context context) {
    SelectorLexeme t = Lookahead(context);
    if (pos_ < items_.size()) ++pos_;
    return t;
  }

  LabelRequirement ParseRequirement() {
    SelectorLexeme key = Consume(Context::kValues);
    const bool negated = key.token == SelectorToken::kDoesNotExist;
    if (negated) key = Consume(Context::kValues);
    if (key.token != SelectorToken::kIdentifier) Fail(key, "expected a label key");
    const SelectorToken next = Lookahead(Context::kValues).token;
    if (negated) return MakeRequirement(key.literal, Op::kDoesNotExist, {}, key.literal, "");
    if (next == SelectorToken::kEnd || next == SelectorToken::kComma) {
      return MakeRequirement(key.literal, Op::kExists, {}, key.literal, "");
    }
    const SelectorLexeme op = Consume(Context::kKeyAndOperator);
    switch (op.token) {
      case SelectorToken::kEquals:
      case SelectorToken::kDoubleEquals:
        return MakeRequirement(key.literal, Op::kEquals, {ParseExactValue()}, key.literal, "");
      case SelectorToken::kNotEquals:
        return MakeRequirement(key.literal, Op::kNotEquals, {ParseExactValue()}, key.literal,
                               "");
      case SelectorToken::kGreaterThan:
        return MakeRequirement(key.literal, Op::kGreaterThan, {ParseExactValue()}, key.literal,
                               "");
      case SelectorToken::kLessThan:
        return MakeRequirement(key.literal, Op::kLessThan, {ParseExactValue()}, key.literal, "");
      case SelectorToken::kIn:
        return MakeRequirement(key.literal, Op::kIn, ParseValueSet(), key.literal, "");
      case SelectorToken::kNotIn:
        return MakeRequirement(key.literal, Op::kNotIn, ParseValueSet(), key.literal, "");
      default:
        Fail(op, "invalid operator (want =, ==, !=, in, notin, >, <)");
    }
  }

  // The value after =, ==, !=, > or <; none ("a=", "a=,b") is the empty value.
  std::string ParseExactValue() {
    const SelectorToken next = Lookahead(Context::kValues).token;
    if (next == SelectorToken::kEnd || next == SelectorToken::kComma) return "";
    const SelectorLexeme t = Consume(Context::kValues);
    if (t.token != SelectorToken::kIdentifier) Fail(t, "expected a label value");
    return t.literal;
  }

  // "(v1,v2,...)". An empty element ("(a,)", "(,a)", "(a,,b)") and the empty set "()"
  // both mean the empty value, as labels.Parser's parseValues/parseIdentifiersList.
  std::vector<std::string> ParseValueSet() {
    const SelectorLexeme open = Consume(Context::kValues);
    if (open.token != SelectorToken::kOpenPar) Fail(open, "expected '(' after in/notin");
    const SelectorLexeme& first = Lookahead(Context::kValues);
    if (first.token == SelectorToken::kClosedPar) {
      Consume(Context::kValues);
      return {""};
    }
    if (first.token != SelectorToken::kIdentifier && first.token != SelectorToken::kComma) {
      Fail(first, "expected a label value, ',' or ')' in the value set");
    }
    std::vector<std::string> values;
    while (true) {
      const SelectorLexeme t = Consume(Context::kValues);
      if (t.token == SelectorToken::kIdentifier) {
        values.push_back(t.literal);
        const SelectorLexeme& sep = Lookahead(Context::kValues);
        if (sep.token == SelectorToken::kClosedPar) break;
        if (sep.token != SelectorToken::kComma) {
          Fail(sep, "expected ',' or ')' in the value set");
        }
      } else if (t.token == SelectorToken::kComma) {
        if (values.empty()) values.emplace_back();  // "(,"
        const SelectorToken next = Lookahead(Context::kValues).token;
        if (next == SelectorToken::kClosedPar || next == SelectorToken::kComma) {
          values.emplace_back();  // ",)" or ",,"
        }
        if (next == SelectorToken::kClosedPar) break;
      } else {
        Fail(t, "expected a label value or ',' in the value set");
      }
    }
    Consume(Context::kValues);  // the ')' seen above
    return values;
  }

  std::vector<SelectorLexeme> items_;  // ends with kEnd
  std::size_t pos_ = 0;
};

std::optional<std::string_view> LookupJson(const nlohmann::json& labels, const std::string& key) {
  if (!labels.is_object()) return std::nullopt;
  const auto it = labels.find(key);
  if (it == labels.end() || !it->is_string()) return std::nullopt;
  return std::string_view(it->get_ref<const std::string&>());
}

}  // namespace

namespace internal {
namespace {

bool IsSelectorWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool IsSelectorSymbol(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

}  // namespace

SelectorLexeme SelectorLexer::Lex() {
  while (pos_ < text_.size() && IsSelectorWhitespace(text_[pos_])) ++pos_;
  if (pos_ >= text_.size()) return {SelectorToken::kEnd, ""};
  const char c = text_[pos_];
  if (IsSelectorSymbol(c)) {
    const bool then_equals = pos_ + 1 < text_.size() && text_[pos_ + 1] == '=';
    SelectorToken token = SelectorToken::kEnd;
    std::size_t length = 1;
    switch (c) {
      case '!':
        token = then_equals ? SelectorToken::kNotEquals : SelectorToken::kDoesNotExist;
        length = then_equals ? 2 : 1;
        break;
      case '=':
        token = then_equals ? SelectorToken::kDoubleEquals : SelectorToken::kEquals;
        length = then_equals ? 2 : 1;
        break;
      case '(':
        token = SelectorToken::kOpenPar;
        break;
      case ')':
        token = SelectorToken::kClosedPar;
        break;
      case ',':
        token = SelectorToken::kComma;
        break;
      case '>':
        token = SelectorToken::kGreaterThan;
        break;
      default:  // '<'
        token = SelectorToken::kLessThan;
        break;
    }
    SelectorLexeme lexeme{token, std::string(text_.substr(pos_, length))};
    pos_ += length;
    return lexeme;
  }
  std::size_t end = pos_;
  while (end < text_.size() && !IsSelectorSymbol(text_[end]) &&
         !IsSelectorWhitespace(text_[end])) {
    ++end;
  }
  SelectorLexeme lexeme{SelectorToken::kIdentifier, std::string(text_.substr(pos_, end - pos_))};
  pos_ = end;
  if (lexeme.literal == "in") lexeme.token = SelectorToken::kIn;
  if (lexeme.literal == "notin") lexeme.token = SelectorToken::kNotIn;
  return lexeme;
}

std::vector<SelectorLexeme> ScanSelector(std::string_view text) {
  SelectorLexer lexer(text);
  std::vector<SelectorLexeme> out;
  while (true) {
    out.push_back(lexer.Lex());
    if (out.back().token == SelectorToken::kEnd) return out;
  }
}

}  // namespace internal

SelectorError::SelectorError(std::string part, const std::string& message)
    : std::invalid_argument(message), part_(std::move(part)) {}

std::string ValidateLabelKey(std::string_view key) {
  std::string_view name = key;
  if (const auto slash = key.find('/'); slash != std::string_view::npos) {
    const std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty()) return "prefix part must be non-empty";
    if (!common::IsDns1123Subdomain(prefix)) {
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
    case Operator::kGreaterThan:
      return key + ">" + joined();
    case Operator::kLessThan:
      return key + "<" + joined();
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
