// The tokenizer of the label selector string form, as labels.Lexer in
// k8s.io/apimachinery/pkg/labels/selector.go: internal to ro_kube, exposed in this
// header only so that the unit tests can check it token by token.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ro::kube::internal {

enum class SelectorToken {
  kEnd,           // end of the text
  kClosedPar,     // ")"
  kComma,         // ","
  kDoesNotExist,  // "!"
  kDoubleEquals,  // "=="
  kEquals,        // "="
  kGreaterThan,   // ">"
  kIdentifier,    // a key or value: a run of anything but the symbols and whitespace
  kIn,            // "in" (an identifier where a key or value is expected)
  kLessThan,      // "<"
  kNotEquals,     // "!="
  kNotIn,         // "notin" (an identifier where a key or value is expected)
  kOpenPar,       // "("
};

struct SelectorLexeme {
  SelectorToken token;
  std::string literal;  // the text of the token ("" for kEnd)
  bool operator==(const SelectorLexeme&) const = default;
};

// Splits a selector into tokens. Whitespace (space, tab, CR, LF) separates tokens and is
// dropped; the symbols are ! != = == ( ) , > < (longest match); every other run of
// characters is an identifier, or the keyword "in"/"notin". Never fails: what a token
// means is the parser's business. Not thread-safe (one lexer per parse).
class SelectorLexer {
 public:
  explicit SelectorLexer(std::string_view text) : text_(text) {}

  // The next token; kEnd (forever) once the text is consumed.
  SelectorLexeme Lex();

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// Every token of `text`, ending with exactly one kEnd.
std::vector<SelectorLexeme> ScanSelector(std::string_view text);

}  // namespace ro::kube::internal
