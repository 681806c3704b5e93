/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */

#include "train_flags.h"

#include <map>
#include <stdexcept>

#include <gflags/gflags.h>

namespace ft = faiss_ehi::trainer;

namespace ehi_tools {

namespace {

/// A gflags flag of type T; its storage lives as long as the program
/// (gflags keeps pointers to it).
template <class T>
void register_flag(const char* name, const char* help, const T& value) {
    new gflags::FlagRegisterer(name, help, __FILE__, new T(value),
                               new T(value));
}

/** One gflags flag per JointTrainerConfig field, named as the field, with
 * its help, valid values and default, registered before main() parses the
 * command line. */
bool register_config_flags() {
    const ft::JointTrainerConfig defaults;
    for (const ft::ConfigField& f : ft::joint_config_fields()) {
        std::string help = f.help;
        if (!f.choices.empty()) {
            help += " (one of";
            for (size_t i = 0; i < f.choices.size(); i++) {
                help += (i ? ", " : " ") + f.choices[i].first;
            }
            help += ")";
        } else if (f.valid_text[0]) {
            help += std::string(" (") + f.valid_text + ")";
        }
        const char* name = f.name;
        const char* text = (new std::string(help))->c_str();
        const std::string def = f.text(defaults, 9);
        switch (f.type) {
            case ft::ConfigFieldType::INT:
                register_flag<gflags::int32>(name, text, std::stoi(def));
                break;
            case ft::ConfigFieldType::UINT64:
                register_flag<gflags::uint64>(name, text, std::stoull(def));
                break;
            case ft::ConfigFieldType::FLOAT:
                register_flag<double>(name, text, std::stod(def));
                break;
            case ft::ConfigFieldType::BOOL:
                register_flag<bool>(name, text, def == "1");
                break;
            case ft::ConfigFieldType::STRING:
            case ft::ConfigFieldType::ENUM:
                register_flag<std::string>(name, text, def);
                break;
        }
    }
    return true;
}

const bool config_flags_registered = register_config_flags();

/** The message of a Faiss exception without its "Error in FUNCTION at
 * FILE:LINE: " prefix, which says nothing to a command-line user. */
std::string message_of(const std::exception& e) {
    std::string m = e.what();
    if (m.rfind("Error in ", 0) == 0) {
        size_t at = m.find(" at ");
        size_t colon = at == std::string::npos ? at : m.find(": ", at);
        if (colon != std::string::npos) {
            return m.substr(colon + 2);
        }
    }
    return m;
}

bool is_default(const char* name) {
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name, &info)) {
        throw std::logic_error(std::string("no flag --") + name);
    }
    return info.is_default;
}

/// Per-data-set values for flags left at their defaults.
std::map<std::string, std::string> dataset_defaults(
        const faiss_ehi::data::RetrievalTask& t) {
    if (t.is_text) {
        // The relevance recipe is the flags' own defaults (those of
        // JointTrainerConfig); text data only needs the text encoder.
        return {{"encoder", "text"}};
    }
    // k-NN data: the Faiss drop-in's setting (identity encoder, ranking in
    // the data's own metric), trees of the mission's shapes.
    std::map<std::string, std::string> m = {
            {"encoder", "identity"}, {"normalize", "false"},
            {"epochs", "20"},        {"batch", "256"},
            {"refresh", "2"},        {"recipe", "probe"}};
    if (t.name == "fashion-mnist") {
        m["B"] = "16";
        m["H"] = "2";
    } else if (t.name.rfind("glove", 0) == 0) {
        m["B"] = "64";
        m["H"] = "2";
        m["normalize"] = "true";
    } else {
        m["B"] = "8";
        m["H"] = "2";
    }
    return m;
}

} // namespace

ft::JointTrainerConfig config_from_flags(
        const faiss_ehi::data::RetrievalTask& task) {
    (void)config_flags_registered;
    for (const auto& kv : dataset_defaults(task)) {
        if (is_default(kv.first.c_str())) {
            gflags::SetCommandLineOptionWithMode(kv.first.c_str(),
                                                 kv.second.c_str(),
                                                 gflags::SET_FLAGS_DEFAULT);
        }
    }
    ft::JointTrainerConfig c;
    for (const ft::ConfigField& f : ft::joint_config_fields()) {
        std::string text;
        if (!gflags::GetCommandLineOption(f.name, &text)) {
            throw std::logic_error(std::string("no flag --") + f.name);
        }
        try {
            f.parse(c, text);
        } catch (const std::exception& e) {
            throw std::invalid_argument("bad training flag --" +
                                        std::string(f.name) + ": " +
                                        message_of(e));
        }
    }
    if (task.is_text != (c.encoder == ft::EncoderKind::TEXT)) {
        throw std::invalid_argument(
                task.is_text ? "--encoder must be text for text data (BEIR)"
                             : "--encoder text needs text data (beir:DIR)");
    }
    if (c.recipe == ft::TrainRecipe::PROBE) {
        // The joint loop's settings mean nothing to the probe recipe: a
        // user who sets one expects it to act, so say which recipe runs.
        std::string ignored;
        for (const ft::ConfigField& f : ft::joint_config_fields()) {
            if ((f.roles & ft::field_role::JOINT_ONLY) && !is_default(f.name)) {
                ignored += std::string(ignored.empty() ? "" : ", ") + "--" +
                        f.name;
            }
        }
        if (!ignored.empty()) {
            throw std::invalid_argument(
                    "bad training flags: " + ignored +
                    " belong to --recipe joint, but this run uses --recipe "
                    "probe (the default for k-NN data); add --recipe joint "
                    "to train with them");
        }
    }
    try {
        c.check();
    } catch (const std::exception& e) {
        throw std::invalid_argument(std::string("bad training flags: ") +
                                    message_of(e));
    }
    return c;
}

} // namespace ehi_tools
