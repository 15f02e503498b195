// A line-by-line port of Go's time.ParseDuration / Duration.String (src/time/format.go
// and src/time/time.go), so values and errors match what the Go operator accepted.
#include "ro/common/duration.h"

#include <array>
#include <cstdint>
#include <optional>

namespace ro::common {
namespace {

constexpr std::uint64_t kNanosecond = 1;
constexpr std::uint64_t kMicrosecond = 1000 * kNanosecond;
constexpr std::uint64_t kMillisecond = 1000 * kMicrosecond;
constexpr std::uint64_t kSecond = 1000 * kMillisecond;
constexpr std::uint64_t kMinute = 60 * kSecond;
constexpr std::uint64_t kHour = 60 * kMinute;
// 1<<63: the magnitude of the most negative int64; larger magnitudes overflow.
constexpr std::uint64_t kLimit = std::uint64_t{1} << 63;

// Go's quote(): the input between double quotes, with '"', '\' and non-printable bytes
// escaped so the message stays one readable line.
std::string Quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20 || b == 0x7f) {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    } else {
      out += c;  // printable ASCII and UTF-8 sequences ("µs") as they are
    }
  }
  out += '"';
  return out;
}

[[noreturn]] void Fail(std::string_view original, std::string_view why) {
  throw DurationError("invalid duration " + Quote(original) + ": " + std::string(why));
}

std::optional<std::uint64_t> UnitNanoseconds(std::string_view unit) {
  if (unit == "ns") return kNanosecond;
  if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") return kMicrosecond;
  if (unit == "ms") return kMillisecond;
  if (unit == "s") return kSecond;
  if (unit == "m") return kMinute;
  if (unit == "h") return kHour;
  return std::nullopt;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Go's leadingInt: consumes [0-9]*; nullopt on overflow past 1<<63.
std::optional<std::uint64_t> LeadingInt(std::string_view& s) {
  std::uint64_t x = 0;
  std::size_t i = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    if (x > kLimit / 10) return std::nullopt;
    x = x * 10 + static_cast<std::uint64_t>(s[i] - '0');
    if (x > kLimit) return std::nullopt;
  }
  s.remove_prefix(i);
  return x;
}

// Go's leadingFraction: consumes [0-9]*, keeping as many digits as fit; value = x/scale.
struct Fraction {
  std::uint64_t x = 0;
  double scale = 1;
};
Fraction LeadingFraction(std::string_view& s) {
  Fraction f;
  bool overflow = false;
  std::size_t i = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    if (overflow) continue;
    if (f.x > (kLimit - 1) / 10) {
      overflow = true;
      continue;
    }
    const std::uint64_t y = f.x * 10 + static_cast<std::uint64_t>(s[i] - '0');
    if (y > kLimit) {
      overflow = true;
      continue;
    }
    f.x = y;
    f.scale *= 10;
  }
  s.remove_prefix(i);
  return f;
}

// Go's fmtFrac: writes the fraction of v/10^prec (without trailing zeros, and without
// the '.' when it is zero) before buf[w]; returns the new start and v/10^prec.
std::size_t FormatFraction(std::array<char, 32>& buf, std::size_t w, std::uint64_t& v,
                           int prec) {
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    const auto digit = static_cast<char>(v % 10);
    print = print || digit != 0;
    if (print) buf[--w] = static_cast<char>('0' + digit);
    v /= 10;
  }
  if (print) buf[--w] = '.';
  return w;
}

// Go's fmtInt: writes v in decimal before buf[w]; returns the new start.
std::size_t FormatInt(std::array<char, 32>& buf, std::size_t w, std::uint64_t v) {
  if (v == 0) {
    buf[--w] = '0';
    return w;
  }
  while (v > 0) {
    buf[--w] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return w;
}

}  // namespace

std::chrono::nanoseconds ParseDuration(std::string_view text) {
  const std::string_view original = text;
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds{0};
  if (s.empty()) Fail(original, "empty");

  std::uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || IsDigit(s[0]))) Fail(original, "want a number before each unit");
    const std::size_t before_int = s.size();
    const std::optional<std::uint64_t> whole = LeadingInt(s);
    if (!whole) Fail(original, "overflow");
    std::uint64_t v = *whole;
    const bool pre = before_int != s.size();

    Fraction fraction;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      const std::size_t before_fraction = s.size();
      fraction = LeadingFraction(s);
      post = before_fraction != s.size();
    }
    if (!pre && !post) Fail(original, "want digits around '.'");

    std::size_t unit_len = 0;
    while (unit_len < s.size() && s[unit_len] != '.' && !IsDigit(s[unit_len])) ++unit_len;
    if (unit_len == 0) Fail(original, "missing unit (ns, us, ms, s, m or h)");
    const std::string_view unit_text = s.substr(0, unit_len);
    s.remove_prefix(unit_len);
    const std::optional<std::uint64_t> unit = UnitNanoseconds(unit_text);
    if (!unit) Fail(original, "unknown unit " + Quote(unit_text));

    if (v > kLimit / *unit) Fail(original, "overflow");
    v *= *unit;
    if (fraction.x > 0) {
      // Double precision keeps fractions of an hour nanosecond-accurate, as in Go.
      v += static_cast<std::uint64_t>(static_cast<double>(fraction.x) *
                                      (static_cast<double>(*unit) / fraction.scale));
      if (v > kLimit) Fail(original, "overflow");
    }
    total += v;
    if (total > kLimit) Fail(original, "overflow");
  }
  if (negative) {
    // Two's complement: 0 - 2^63 is INT64_MIN, the one value without a positive twin.
    return std::chrono::nanoseconds{static_cast<std::int64_t>(0 - total)};
  }
  if (total > kLimit - 1) Fail(original, "overflow");
  return std::chrono::nanoseconds{static_cast<std::int64_t>(total)};
}

std::chrono::nanoseconds ParseNonNegativeDuration(std::string_view text) {
  const std::chrono::nanoseconds d = ParseDuration(text);
  if (d.count() < 0) Fail(text, "must not be negative");
  return d;
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  // Longest output: "-2562047h47m16.854775808s" (25 bytes) fits in 32.
  std::array<char, 32> buf{};
  std::size_t w = buf.size();
  const bool negative = d.count() < 0;
  std::uint64_t u = static_cast<std::uint64_t>(d.count());
  if (negative) u = 0 - u;

  if (u < kSecond) {
    // Below one second: the largest unit of ns, µs and ms with a fraction, like "1.2ms".
    int prec = 0;
    buf[--w] = 's';
    if (u == 0) return "0s";
    if (u < kMicrosecond) {
      prec = 0;
      buf[--w] = 'n';
    } else if (u < kMillisecond) {
      prec = 3;
      buf[--w] = '\xb5';  // U+00B5 MICRO SIGN is 0xC2 0xB5 in UTF-8
      buf[--w] = '\xc2';
    } else {
      prec = 6;
      buf[--w] = 'm';
    }
    w = FormatFraction(buf, w, u, prec);
    w = FormatInt(buf, w, u);
  } else {
    buf[--w] = 's';
    w = FormatFraction(buf, w, u, 9);
    w = FormatInt(buf, w, u % 60);  // u is now whole seconds
    u /= 60;
    if (u > 0) {
      buf[--w] = 'm';
      w = FormatInt(buf, w, u % 60);  // u is now whole minutes
      u /= 60;
      if (u > 0) {  // hours are the largest unit: days differ in length
        buf[--w] = 'h';
        w = FormatInt(buf, w, u);
      }
    }
  }
  if (negative) buf[--w] = '-';
  return std::string(buf.data() + w, buf.size() - w);
}

}  // namespace ro::common
