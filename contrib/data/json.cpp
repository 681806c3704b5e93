/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/json.h"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace faiss_ehi {
namespace data {

void throw_json_error(const std::string& source, size_t byte,
                      const std::string& what) {
    throw std::runtime_error("malformed JSON in " + source + " at byte " +
                             std::to_string(byte) + ": " + what);
}

namespace {

/// nlohmann's message without its "[json.exception.parse_error.101] " tag.
std::string error_text(const nlohmann::detail::exception& e) {
    std::string s = e.what();
    size_t p = s.find("] ");
    return p == std::string::npos ? s : s.substr(p + 2);
}

/** Builds the DOM with nlohmann's own SAX builder, and adds what json::parse
 * lacks: the depth guard, checked at each object and array start before
 * its contents are read, and the source and byte offset in every error
 * (a number too large for a double comes as out_of_range, without the
 * offset, from json::parse). */
class GuardedBuilder : public nlohmann::json_sax<nlohmann::json> {
  public:
    GuardedBuilder(nlohmann::json& root, const std::string& source)
            : dom_(root), source_(source) {}

    bool null() override {
        return dom_.null();
    }
    bool boolean(bool v) override {
        return dom_.boolean(v);
    }
    bool number_integer(number_integer_t v) override {
        return dom_.number_integer(v);
    }
    bool number_unsigned(number_unsigned_t v) override {
        return dom_.number_unsigned(v);
    }
    bool number_float(number_float_t v, const string_t& s) override {
        return dom_.number_float(v, s);
    }
    bool string(string_t& v) override {
        return dom_.string(v);
    }
    bool binary(binary_t& v) override {
        return dom_.binary(v);
    }
    bool start_object(std::size_t n) override {
        enter();
        return dom_.start_object(n);
    }
    bool key(string_t& k) override {
        return dom_.key(k);
    }
    bool end_object() override {
        depth_--;
        return dom_.end_object();
    }
    bool start_array(std::size_t n) override {
        enter();
        return dom_.start_array(n);
    }
    bool end_array() override {
        depth_--;
        return dom_.end_array();
    }
    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception& ex) override {
        throw_json_error(source_, position, error_text(ex));
    }

  private:
    void enter() {
        // The top-level object is level 0, as in parse_event callbacks.
        if (depth_ > kJsonMaxDepth) {
            throw std::runtime_error(
                    "malformed JSON in " + source_ +
                    ": objects and arrays nested deeper than " +
                    std::to_string(kJsonMaxDepth) + " levels");
        }
        depth_++;
    }

    nlohmann::detail::json_sax_dom_parser<nlohmann::json> dom_;
    const std::string& source_;
    int depth_ = 0;
};

} // namespace

std::unordered_map<std::string, std::string> parse_flat_object(
        const std::string& line, const std::string& source) {
    nlohmann::json j;
    GuardedBuilder builder(j, source);
    nlohmann::json::sax_parse(line, &builder);
    if (!j.is_object()) {
        throw_json_error(source, 0, "expected a JSON object");
    }
    std::unordered_map<std::string, std::string> out;
    for (auto& kv : j.items()) {
        const nlohmann::json& v = kv.value();
        if (v.is_string()) {
            out[kv.key()] = v.get<std::string>();
        } else {
            out[kv.key()] = v.dump();
        }
    }
    return out;
}

} // namespace data
} // namespace faiss_ehi
