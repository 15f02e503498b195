#include "ro/kubesync/runner/semantic_compare.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace ro::kubesync::runner {

using nlohmann::json;

namespace {

// Suffix multipliers of resource.Quantity (binary SI, decimal SI).
// A quantity suffix as a power of ten (decimal SI) or of two (binary SI).
struct Suffix {
  int base = 10;
  int exponent = 0;
};

std::optional<Suffix> ParseSuffix(std::string_view suffix) {
  static const std::pair<std::string_view, Suffix> kSuffixes[] = {
      {"", {10, 0}},   {"n", {10, -9}}, {"u", {10, -6}}, {"m", {10, -3}}, {"k", {10, 3}},
      {"M", {10, 6}},  {"G", {10, 9}},  {"T", {10, 12}}, {"P", {10, 15}}, {"E", {10, 18}},
      {"Ki", {2, 10}}, {"Mi", {2, 20}}, {"Gi", {2, 30}}, {"Ti", {2, 40}}, {"Pi", {2, 50}},
      {"Ei", {2, 60}}};
  for (const auto& [name, value] : kSuffixes) {
    if (name == suffix) return value;
  }
  return std::nullopt;
}

// digits * 10^exponent, dividing for negative exponents so that exact decimal values
// ("500m" = 500 / 1000) come out exact.
long double ScaleByPowerOfTen(long double digits, int exponent) {
  const long double power = std::pow(10.0L, std::abs(exponent));
  return exponent < 0 ? digits / power : digits * power;
}

std::optional<long double> QuantityOf(const json& value) {
  if (value.is_number()) return value.get<long double>();
  if (value.is_string()) return ParseQuantity(value.get_ref<const std::string&>());
  return std::nullopt;
}

bool ScalarsEqual(const json& desired, const json& actual, bool quantities) {
  if (quantities) {
    const std::optional<long double> a = QuantityOf(desired);
    const std::optional<long double> b = QuantityOf(actual);
    if (a && b) {
      // Relative tolerance far below any unit step a spec uses (1m of 1000 cores is 1e-6).
      return std::fabs(*a - *b) <= 1e-9L * std::max(std::fabs(*a), std::fabs(*b));
    }
  }
  if (desired.is_number() && actual.is_number()) {
    return desired.get<long double>() == actual.get<long double>();
  }
  return desired == actual;
}

bool Contained(const json& desired, const json& actual, bool quantities) {
  if (desired.is_object()) {
    if (!actual.is_object()) return false;
    for (auto it = desired.begin(); it != desired.end(); ++it) {
      const auto found = actual.find(it.key());
      if (found == actual.end()) {
        // An empty object or array the server dropped is still "the same".
        if ((it->is_object() || it->is_array()) && it->empty()) continue;
        return false;
      }
      // The values inside a "limits" or "requests" object are quantities.
      const bool in_quantities = quantities || it.key() == "limits" || it.key() == "requests";
      if (!Contained(*it, *found, in_quantities)) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!actual.is_array() || actual.size() != desired.size()) return false;
    for (std::size_t i = 0; i < desired.size(); ++i) {
      if (!Contained(desired[i], actual[i], false)) return false;
    }
    return true;
  }
  return ScalarsEqual(desired, actual, quantities);
}

}  // namespace

std::optional<long double> ParseQuantity(std::string_view text) {
  std::size_t i = 0;
  long double sign = 1.0L;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    if (text[i] == '-') sign = -1.0L;
    ++i;
  }
  // All digits as one integer, and the power of ten the decimal point implies.
  long double digits = 0.0L;
  int exponent = 0;
  bool any_digit = false;
  bool in_fraction = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' && !in_fraction) {
      in_fraction = true;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) break;
    digits = digits * 10.0L + (c - '0');
    if (in_fraction) --exponent;
    any_digit = true;
  }
  if (!any_digit) return std::nullopt;
  const std::string_view rest = text.substr(i);
  // Decimal exponent form: "1e3", "12E-2" ("1E" alone is the exa suffix).
  if (rest.size() > 1 && (rest[0] == 'e' || rest[0] == 'E')) {
    std::size_t j = 1;
    int exponent_sign = 1;
    if (rest[j] == '+' || rest[j] == '-') {
      if (rest[j] == '-') exponent_sign = -1;
      ++j;
    }
    if (j >= rest.size()) return std::nullopt;
    int value = 0;
    for (; j < rest.size(); ++j) {
      // 100: far beyond any quantity (the API caps exponents well below that).
      if (!std::isdigit(static_cast<unsigned char>(rest[j])) || value > 100) return std::nullopt;
      value = value * 10 + (rest[j] - '0');
    }
    return sign * ScaleByPowerOfTen(digits, exponent + exponent_sign * value);
  }
  const std::optional<Suffix> suffix = ParseSuffix(rest);
  if (!suffix) return std::nullopt;
  if (suffix->base == 10) return sign * ScaleByPowerOfTen(digits, exponent + suffix->exponent);
  return sign * ScaleByPowerOfTen(digits, exponent) * std::pow(2.0L, suffix->exponent);
}

bool IsSemanticSubset(const json& desired, const json& actual) {
  return Contained(desired, actual, false);
}

}  // namespace ro::kubesync::runner
