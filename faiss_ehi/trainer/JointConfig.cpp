/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * JointTrainerConfig: the field table made from
 * FAISS_EHI_JOINT_CONFIG_FIELDS, the checks, descriptions and recipes
 * derived from it, and the PairData checks (torch-free, fast to compile).
 */
#include <faiss_ehi/trainer/JointTrainer.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <type_traits>

#include <faiss/impl/FaissAssert.h>

namespace faiss_ehi {

const std::vector<std::pair<trainer::TrainRecipe, const char*>>&
EnumNames<trainer::TrainRecipe>::all() {
    using trainer::TrainRecipe;
    static const std::vector<std::pair<TrainRecipe, const char*>> names = {
            {TrainRecipe::JOINT, "joint"}, {TrainRecipe::PROBE, "probe"}};
    return names;
}

const std::vector<std::pair<trainer::TreeInit, const char*>>&
EnumNames<trainer::TreeInit>::all() {
    using trainer::TreeInit;
    static const std::vector<std::pair<TreeInit, const char*>> names = {
            {TreeInit::KMEANS, "kmeans"}, {TreeInit::RANDOM, "random"}};
    return names;
}

namespace trainer {

namespace {

// ---- text of a field's value, and back, by type

std::string value_text(int v, int) {
    return std::to_string(v);
}
std::string value_text(uint64_t v, int) {
    return std::to_string(v);
}
std::string value_text(bool v, int) {
    return v ? "1" : "0";
}
std::string value_text(float v, int precision) {
    std::ostringstream s;
    s.precision(precision);
    s << v;
    return s.str();
}
std::string value_text(const std::string& v, int) {
    return v;
}
template <class E, class = std::enable_if_t<std::is_enum<E>::value>>
std::string value_text(E v, int) {
    const char* name = enum_name(v);
    return name[0] == '?' ? std::to_string(int(v)) : std::string(name);
}

[[noreturn]] void bad_text(const char* field, const std::string& text,
                           const char* expected) {
    FAISS_THROW_FMT("JointTrainerConfig: %s = '%s' is not %s", field,
                    text.c_str(), expected);
}

void parse_value(const char* field, const std::string& t, int& v) {
    char* end = nullptr;
    errno = 0;
    long x = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != 0 || errno != 0 ||
        x < std::numeric_limits<int>::min() ||
        x > std::numeric_limits<int>::max()) {
        bad_text(field, t, "an integer");
    }
    v = int(x);
}
void parse_value(const char* field, const std::string& t, uint64_t& v) {
    char* end = nullptr;
    errno = 0;
    unsigned long long x = std::strtoull(t.c_str(), &end, 10);
    if (t.empty() || t[0] == '-' || *end != 0 || errno != 0) {
        bad_text(field, t, "an unsigned integer");
    }
    v = uint64_t(x);
}
void parse_value(const char* field, const std::string& t, bool& v) {
    if (t == "1" || t == "true" || t == "True") {
        v = true;
    } else if (t == "0" || t == "false" || t == "False") {
        v = false;
    } else {
        bad_text(field, t, "true, false, 1 or 0");
    }
}
void parse_value(const char* field, const std::string& t, float& v) {
    char* end = nullptr;
    errno = 0;
    double x = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != 0 || errno == ERANGE) {
        bad_text(field, t, "a number");
    }
    v = float(x);
}
void parse_value(const char*, const std::string& t, std::string& v) {
    v = t;
}
template <class E, class = std::enable_if_t<std::is_enum<E>::value>>
void parse_value(const char* field, const std::string& t, E& v) {
    // a value's name, or its integer value
    for (const auto& n : EnumNames<E>::all()) {
        if (t == n.second || t == std::to_string(int(n.first))) {
            v = n.first;
            return;
        }
    }
    std::string what = std::string("JointTrainerConfig: ") + field;
    throw_bad_enum_name(what.c_str(), t, enum_choices<E>());
}

// ---- per type: the ConfigFieldType, the finiteness check, enum names

template <class T>
ConfigFieldType type_of() {
    if (std::is_same<T, int>::value) {
        return ConfigFieldType::INT;
    }
    if (std::is_same<T, float>::value) {
        return ConfigFieldType::FLOAT;
    }
    if (std::is_same<T, bool>::value) {
        return ConfigFieldType::BOOL;
    }
    if (std::is_same<T, uint64_t>::value) {
        return ConfigFieldType::UINT64;
    }
    if (std::is_enum<T>::value) {
        return ConfigFieldType::ENUM;
    }
    return ConfigFieldType::STRING;
}

/// Values every field of type T must have: finite floats, named enums.
template <class T>
bool representable(const T& v) {
    if constexpr (std::is_floating_point<T>::value) {
        return std::isfinite(v);
    } else if constexpr (std::is_enum<T>::value) {
        return enum_name(v)[0] != '?';
    } else {
        return true;
    }
}

template <class T>
std::vector<std::pair<std::string, int>> choices_of() {
    std::vector<std::pair<std::string, int>> c;
    if constexpr (std::is_enum<T>::value) {
        for (const auto& n : EnumNames<T>::all()) {
            c.emplace_back(n.second, int(n.first));
        }
    }
    return c;
}

/** The ConfigField of member `member`; `valid` says whether a value is in
 * range (floats must also be finite, enumerations named values). */
template <class T>
ConfigField make_field(const char* name, T JointTrainerConfig::*member,
                       bool (*valid)(const T&), const char* valid_text,
                       unsigned roles, const char* help) {
    ConfigField f;
    f.name = name;
    f.type = type_of<T>();
    f.roles = roles;
    f.valid_text = valid_text;
    f.help = help;
    f.choices = choices_of<T>();
    f.text = [member](const JointTrainerConfig& c, int precision) {
        return value_text(c.*member, precision);
    };
    f.parse = [name, member](JointTrainerConfig& c, const std::string& t) {
        parse_value(name, t, c.*member);
    };
    f.check = [name, member, valid, valid_text,
               choices = f.choices](const JointTrainerConfig& c) {
        const T& v = c.*member;
        if (representable(v) && valid(v)) {
            return;
        }
        std::string want = valid_text;
        if (!choices.empty()) {
            want = "one of";
            for (const auto& ch : choices) {
                want += (want == "one of" ? " '" : ", '") + ch.first + "'";
            }
        } else if (want.empty() || std::is_floating_point<T>::value) {
            want = want.empty() ? std::string("finite") : "finite and " + want;
        }
        FAISS_THROW_FMT("JointTrainerConfig: %s = %s, must be %s", name,
                        value_text(v, 6).c_str(), want.c_str());
    };
    return f;
}

std::vector<ConfigField> make_fields() {
    using namespace field_role;
    std::vector<ConfigField> fields;
#define FAISS_EHI_FIELD_ENTRY(type, name, def, valid, valid_text, roles, help) \
    fields.push_back(make_field<type>(                                         \
            #name, &JointTrainerConfig::name,                                  \
            [](const type& v) { return bool(valid); }, valid_text, roles,      \
            help));
    FAISS_EHI_JOINT_CONFIG_FIELDS(FAISS_EHI_FIELD_ENTRY)
#undef FAISS_EHI_FIELD_ENTRY
    return fields;
}

} // namespace

const std::vector<ConfigField>& joint_config_fields() {
    static const std::vector<ConfigField> fields = make_fields();
    return fields;
}

const ConfigField* find_joint_config_field(const std::string& name) {
    for (const ConfigField& f : joint_config_fields()) {
        if (name == f.name) {
            return &f;
        }
    }
    return nullptr;
}

void JointTrainerConfig::check() const {
    for (const ConfigField& f : joint_config_fields()) {
        f.check(*this);
    }
    // the settings that depend on each other
    double L = std::pow(double(B), double(H));
    FAISS_THROW_IF_NOT_FMT(L <= double(1 << 24),
                           "JointTrainerConfig: B^H = %g leaves, at most 2^24",
                           L);
    FAISS_THROW_IF_NOT_FMT(
            d2l <= L, "JointTrainerConfig: d2l = %d outside [1, B^H]", d2l);
    FAISS_THROW_IF_NOT_MSG(encoder != EncoderKind::IDENTITY || hidden == 0,
                           "JointTrainerConfig: hidden > 0 needs a HEAD or "
                           "TEXT encoder, not IDENTITY");
    FAISS_THROW_IF_NOT_MSG(lambda1 + lambda2 + lambda3 + balance + routing > 0,
                           "JointTrainerConfig: every loss weight is 0");
    FAISS_THROW_IF_NOT_MSG(!fixed_leaves || init == TreeInit::KMEANS ||
                                   paper_recipe,
                           "JointTrainerConfig: fixed_leaves needs init = "
                           "kmeans (the leaves are the k-means centroids)");
    FAISS_THROW_IF_NOT_MSG(!recluster || fixed_leaves || paper_recipe,
                           "JointTrainerConfig: recluster needs fixed_leaves "
                           "(it re-fits the leaves the documents are kept "
                           "at)");
    FAISS_THROW_IF_NOT_MSG(!resume || !checkpoint_dir.empty(),
                           "JointTrainerConfig: resume needs checkpoint_dir");
    FAISS_THROW_IF_NOT_MSG(recipe != TrainRecipe::PROBE ||
                                   (encoder == EncoderKind::IDENTITY &&
                                    form == NodeForm::PER_NODE),
                           "JointTrainerConfig: the probe recipe needs the "
                           "identity encoder and the per-node form (k-NN "
                           "data); use the joint recipe for relevance data");
}

JointTrainerConfig JointTrainerConfig::resolved(int d_in) const {
    JointTrainerConfig c = *this;
    if (c.paper_recipe) {
        c.lambda1 = 0.2f;
        c.lambda2 = 0.8f;
        c.lambda3 = 0.2f;
        if (c.epochs < 0) {
            c.epochs = 100;
        }
        c.balance = 0;
        c.init = TreeInit::RANDOM;
        c.routing = 0;
        c.warmup_epochs = 0;
        c.joint_enc_lr = -1;
        c.fixed_leaves = false;
        c.warmup_negatives = false;
        c.recluster = false;
        c.tree_grad = 1.0f;
        c.balanced_targets = false;
        c.de_negatives = 0;
        c.stop_on_collapse = false;
    }
    if (c.d_out == 0 || c.encoder == EncoderKind::IDENTITY) {
        c.d_out = d_in;
    }
    return c;
}

JointTrainerConfig JointTrainerConfig::scheduled(size_t train_pairs) const {
    JointTrainerConfig c = *this;
    if (c.epochs < 0) {
        if (c.recipe == TrainRecipe::PROBE) {
            c.epochs = 20;
        } else {
            // About 100,000 pairs seen (1,560 steps of 64): what the
            // dual encoder needed to converge on the development
            // collections (900 to 1,600 pairs, 100 to 120 epochs).
            double e = 1e5 / double(std::max<size_t>(train_pairs, 1));
            c.epochs = int(std::lround(std::min(120.0, std::max(10.0, e))));
        }
    }
    if (c.warmup_epochs < 0) {
        c.warmup_epochs = c.epochs / 2;
    }
    return c;
}

JointTrainerConfig JointTrainerConfig::dual_encoder() const {
    JointTrainerConfig de = *this;
    de.lambda1 = 1.0f;
    de.lambda2 = de.lambda3 = de.balance = de.routing = 0.0f;
    de.paper_recipe = false;
    de.warmup_epochs = 0;
    de.joint_enc_lr = -1.0f;
    de.fixed_leaves = false;
    de.recluster = false;
    de.balanced_targets = false;
    de.stop_on_collapse = false;
    de.checkpoint_dir.clear();
    de.resume = false;
    return de;
}

std::string JointTrainerConfig::fingerprint() const {
    // full float precision: a resumed run must get the same values
    std::string s;
    for (const ConfigField& f : joint_config_fields()) {
        if (f.roles & field_role::MODEL) {
            s += (s.empty() ? "" : " ") + std::string(f.name) + "=" +
                    f.text(*this, 9);
        }
    }
    return s;
}

std::string JointTrainerConfig::describe() const {
    // what training will use: the paper recipe overrides some fields
    JointTrainerConfig c = resolved(1);
    c.d_out = d_out;
    const bool probe = c.recipe == TrainRecipe::PROBE;
    const unsigned role = probe ? field_role::PROBE : field_role::DESCRIBED;
    std::string s = probe ? "recipe=probe" : "";
    for (const ConfigField& f : joint_config_fields()) {
        if (!(f.roles & role)) {
            continue;
        }
        std::string v = f.text(c, 6);
        if ((f.roles & field_role::AUTO) && v == "-1") {
            v = "auto";
        }
        s += (s.empty() ? "" : " ") + std::string(f.name) + "=" + v;
    }
    return s;
}

void PairData::check(EncoderKind kind, int64_t vocab_size) const {
    FAISS_THROW_IF_NOT_FMT(nq >= 1 && nd >= 1,
                           "PairData: nq = %zd and nd = %zd must be >= 1",
                           size_t(nq), size_t(nd));
    FAISS_THROW_IF_NOT_MSG(!pairs.empty(), "PairData: no relevance pairs");
    for (const auto& p : pairs) {
        FAISS_THROW_IF_NOT_FMT(
                p.first >= 0 && p.first < nq && p.second >= 0 && p.second < nd,
                "PairData: pair (%zd, %zd) out of range "
                "(nq = %zd, nd = %zd)",
                size_t(p.first), size_t(p.second), size_t(nq), size_t(nd));
    }
    if (kind == EncoderKind::TEXT) {
        FAISS_THROW_IF_NOT_FMT(
                int64_t(query_tokens.size()) == nq &&
                        int64_t(doc_tokens.size()) == nd,
                "PairData: TEXT needs nq and nd token lists (got %zd, %zd)",
                query_tokens.size(), doc_tokens.size());
        for (const auto* side : {&query_tokens, &doc_tokens}) {
            for (const auto& toks : *side) {
                for (int64_t t : toks) {
                    FAISS_THROW_IF_NOT_FMT(t >= 0 && t < vocab_size,
                                           "PairData: token id %zd outside "
                                           "the vocabulary [0, %zd)",
                                           size_t(t), size_t(vocab_size));
                }
            }
        }
        return;
    }
    FAISS_THROW_IF_NOT_FMT(d >= 1, "PairData: d = %d, must be >= 1", d);
    FAISS_THROW_IF_NOT_FMT(
            query_vecs.size() == size_t(nq) * d &&
                    doc_vecs.size() == size_t(nd) * d,
            "PairData: %zd query floats and %zd doc floats, expected %zd x %d "
            "and %zd x %d",
            query_vecs.size(), doc_vecs.size(), size_t(nq), d, size_t(nd), d);
    for (const auto* v : {&query_vecs, &doc_vecs}) {
        for (size_t i = 0; i < v->size(); i++) {
            FAISS_THROW_IF_NOT_FMT(std::isfinite((*v)[i]),
                                   "PairData: non-finite value in %s vector "
                                   "%zd",
                                   v == &query_vecs ? "query" : "document",
                                   i / d);
        }
    }
}

} // namespace trainer
} // namespace faiss_ehi
