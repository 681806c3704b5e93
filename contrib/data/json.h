/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * A small pull parser for JSON text held in memory: enough for BEIR's
 * .jsonl files and the GloVe package's single large JSON object, without a
 * DOM (the GloVe file holds 34 million numbers). Errors throw
 * std::runtime_error with the source name and the byte offset.
 */
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>

namespace faiss_ehi {
namespace data {

class JsonCursor {
  public:
    /// `text` must outlive the cursor; `source` names it in errors.
    JsonCursor(const char* text, size_t size, std::string source);

    /// Skip white space; the next significant character, or 0 at the end.
    char peek();
    /// Whether only white space is left.
    bool at_end();
    /// Consume `c` (after white space) or throw.
    void expect(char c);
    /// Consume `c` (after white space) if it is next.
    bool consume(char c);

    /// Read a string value (escapes, \uXXXX and surrogate pairs decoded to
    /// UTF-8).
    std::string read_string();
    /// Read a number value as double.
    double read_number();
    /// Read a number value as float (faster; no double rounding issues for
    /// the short decimals these files hold).
    float read_float();
    /// Read true/false.
    bool read_bool();
    /// Skip any value (object, array, string, number, literal). Throws if
    /// objects and arrays nest deeper than kMaxDepth.
    void skip_value();

    /** Deepest nesting of objects and arrays that skip_value and raw_value
     * follow: each level is a recursion, and a line of a few hundred
     * kilobytes of '[' would otherwise overflow the stack. */
    static constexpr int kMaxDepth = 512;
    /// The text of any value, verbatim (for debugging and "other" fields).
    std::string raw_value();

    /** Walk an object: calls `on_key(key)` for each member with the cursor
     * on its value; `on_key` must consume the value. */
    template <typename F>
    void for_each_member(F&& on_key) {
        expect('{');
        if (consume('}')) {
            return;
        }
        do {
            std::string key = read_string();
            expect(':');
            on_key(key);
        } while (consume(','));
        expect('}');
    }

    /** Walk an array: calls `on_elem()` with the cursor on each element;
     * `on_elem` must consume it. */
    template <typename F>
    void for_each_element(F&& on_elem) {
        expect('[');
        if (consume(']')) {
            return;
        }
        do {
            on_elem();
        } while (consume(','));
        expect(']');
    }

    /// Throw a std::runtime_error naming the source and current offset.
    [[noreturn]] void fail(const std::string& what) const;

    size_t offset() const {
        return pos_;
    }

  private:
    void skip_ws();
    const char* p_;
    size_t n_;
    size_t pos_ = 0;
    int depth_ = 0; ///< objects and arrays skip_value is inside
    std::string source_;
};

/** Parse one JSON object whose members are scalars (BEIR lines): strings
 * are decoded, numbers and literals kept as their text, nested objects and
 * arrays kept verbatim. Throws on malformed input or trailing text. */
std::unordered_map<std::string, std::string> parse_flat_object(
        const std::string& line, const std::string& source);

} // namespace data
} // namespace faiss_ehi
