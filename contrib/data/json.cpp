/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/json.h"

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace faiss_ehi {
namespace data {

JsonCursor::JsonCursor(const char* text, size_t size, std::string source)
        : p_(text), n_(size), source_(std::move(source)) {}

void JsonCursor::fail(const std::string& what) const {
    throw std::runtime_error("malformed JSON in " + source_ + " at byte " +
                             std::to_string(pos_) + ": " + what);
}

void JsonCursor::skip_ws() {
    while (pos_ < n_) {
        char c = p_[pos_];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            pos_++;
        } else {
            break;
        }
    }
}

char JsonCursor::peek() {
    skip_ws();
    return pos_ < n_ ? p_[pos_] : 0;
}

bool JsonCursor::at_end() {
    skip_ws();
    return pos_ >= n_;
}

void JsonCursor::expect(char c) {
    skip_ws();
    if (pos_ >= n_) {
        fail(std::string("unexpected end of input, expected '") + c + "'");
    }
    if (p_[pos_] != c) {
        fail(std::string("expected '") + c + "', found '" + p_[pos_] + "'");
    }
    pos_++;
}

bool JsonCursor::consume(char c) {
    skip_ws();
    if (pos_ < n_ && p_[pos_] == c) {
        pos_++;
        return true;
    }
    return false;
}

namespace {
void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}
} // namespace

std::string JsonCursor::read_string() {
    expect('"');
    std::string out;
    while (true) {
        // Copy the run without escapes in one go.
        size_t start = pos_;
        while (pos_ < n_ && p_[pos_] != '"' && p_[pos_] != '\\') {
            if ((unsigned char)p_[pos_] < 0x20) {
                fail("control character in a string");
            }
            pos_++;
        }
        out.append(p_ + start, pos_ - start);
        if (pos_ >= n_) {
            fail("unterminated string");
        }
        if (p_[pos_] == '"') {
            pos_++;
            return out;
        }
        // Escape.
        pos_++;
        if (pos_ >= n_) {
            fail("unterminated escape");
        }
        char e = p_[pos_++];
        switch (e) {
            case '"':
                out += '"';
                break;
            case '\\':
                out += '\\';
                break;
            case '/':
                out += '/';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': {
                auto hex4 = [&]() {
                    if (pos_ + 4 > n_) {
                        fail("truncated \\u escape");
                    }
                    uint32_t v = 0;
                    for (int i = 0; i < 4; i++) {
                        char h = p_[pos_++];
                        v <<= 4;
                        if (h >= '0' && h <= '9') {
                            v |= uint32_t(h - '0');
                        } else if (h >= 'a' && h <= 'f') {
                            v |= uint32_t(h - 'a' + 10);
                        } else if (h >= 'A' && h <= 'F') {
                            v |= uint32_t(h - 'A' + 10);
                        } else {
                            fail("bad hex digit in \\u escape");
                        }
                    }
                    return v;
                };
                uint32_t cp = hex4();
                if (cp >= 0xD800 && cp < 0xDC00 && pos_ + 6 <= n_ &&
                    p_[pos_] == '\\' && p_[pos_ + 1] == 'u') {
                    size_t save = pos_;
                    pos_ += 2;
                    uint32_t lo = hex4();
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else {
                        pos_ = save; // lone high surrogate
                    }
                }
                append_utf8(out, cp);
                break;
            }
            default:
                fail(std::string("bad escape \\") + e);
        }
    }
}

double JsonCursor::read_number() {
    skip_ws();
    double v = 0;
    auto r = std::from_chars(p_ + pos_, p_ + n_, v);
    if (r.ec != std::errc() || r.ptr == p_ + pos_) {
        fail("expected a number");
    }
    pos_ = size_t(r.ptr - p_);
    return v;
}

float JsonCursor::read_float() {
    skip_ws();
    float v = 0;
    auto r = std::from_chars(p_ + pos_, p_ + n_, v);
    if (r.ptr == p_ + pos_ ||
        (r.ec != std::errc() && r.ec != std::errc::result_out_of_range)) {
        fail("expected a number");
    }
    pos_ = size_t(r.ptr - p_);
    return v;
}

bool JsonCursor::read_bool() {
    skip_ws();
    if (n_ - pos_ >= 4 && std::memcmp(p_ + pos_, "true", 4) == 0) {
        pos_ += 4;
        return true;
    }
    if (n_ - pos_ >= 5 && std::memcmp(p_ + pos_, "false", 5) == 0) {
        pos_ += 5;
        return false;
    }
    fail("expected true or false");
}

void JsonCursor::skip_value() {
    char c = peek();
    if (c == '{' || c == '[') {
        if (depth_ >= kMaxDepth) {
            fail("objects and arrays nested deeper than " +
                 std::to_string(kMaxDepth) + " levels");
        }
        depth_++;
        // restores the depth on the way out, also when a member throws
        struct Leave {
            int& depth;
            ~Leave() {
                depth--;
            }
        } leave{depth_};
        if (c == '{') {
            for_each_member([&](const std::string&) { skip_value(); });
        } else {
            for_each_element([&]() { skip_value(); });
        }
        return;
    }
    switch (c) {
        case '"':
            read_string();
            return;
        case 't':
        case 'f':
            read_bool();
            return;
        case 'n':
            if (n_ - pos_ >= 4 && std::memcmp(p_ + pos_, "null", 4) == 0) {
                pos_ += 4;
                return;
            }
            fail("expected null");
        case 0:
            fail("unexpected end of input, expected a value");
        default:
            read_number();
    }
}

std::string JsonCursor::raw_value() {
    skip_ws();
    size_t start = pos_;
    skip_value();
    return std::string(p_ + start, pos_ - start);
}

std::unordered_map<std::string, std::string> parse_flat_object(
        const std::string& line, const std::string& source) {
    std::unordered_map<std::string, std::string> out;
    JsonCursor c(line.data(), line.size(), source);
    if (c.peek() != '{') {
        c.fail("expected a JSON object");
    }
    c.for_each_member([&](const std::string& key) {
        if (c.peek() == '"') {
            out[key] = c.read_string();
        } else {
            out[key] = c.raw_value();
        }
    });
    if (!c.at_end()) {
        c.fail("trailing text after the object");
    }
    return out;
}

} // namespace data
} // namespace faiss_ehi
