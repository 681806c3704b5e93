/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The training flags of the command-line programs: one flag per
 * JointTrainerConfig field, with the field's default, and each flag
 * reaching its field through config_from_flags.
 */
#include <string>

#include <gflags/gflags.h>
#include <gtest/gtest.h>

#include <faiss_ehi/trainer/JointConfig.h>

#include "cmdline/train_flags.h"

namespace ft = faiss_ehi::trainer;

namespace {

/// A small text task: the flags' own defaults apply (the relevance recipe).
faiss_ehi::data::RetrievalTask text_task() {
    faiss_ehi::data::RetrievalTask t;
    t.name = "flags-test";
    t.is_text = true;
    return t;
}

/// A value of f's type other than `now`, as flag text.
std::string other_value(const ft::ConfigField& f, const std::string& now) {
    switch (f.type) {
        case ft::ConfigFieldType::BOOL:
            return now == "1" ? "false" : "true";
        case ft::ConfigFieldType::INT:
        case ft::ConfigFieldType::UINT64:
            return std::to_string(std::stoll(now) + 3);
        case ft::ConfigFieldType::FLOAT:
            return std::to_string(std::stod(now) * 0.5 + 0.25);
        case ft::ConfigFieldType::STRING:
            return now + "/elsewhere";
        case ft::ConfigFieldType::ENUM:
            for (const auto& ch : f.choices) {
                if (ch.first != now) {
                    return ch.first;
                }
            }
    }
    return now;
}

} // namespace

TEST(CmdlineTrainFlags, OneFlagPerFieldWithItsDefault) {
    const ft::JointTrainerConfig defaults;
    for (const ft::ConfigField& f : ft::joint_config_fields()) {
        SCOPED_TRACE(f.name);
        gflags::CommandLineFlagInfo info;
        ASSERT_TRUE(gflags::GetCommandLineFlagInfo(f.name, &info));
        EXPECT_NE(info.description.find(f.help), std::string::npos);
        // the flag's default reads back as the field's default
        ft::JointTrainerConfig c;
        c.seed = defaults.seed + 1; // something to overwrite
        f.parse(c, info.default_value);
        EXPECT_EQ(f.text(c, 9), f.text(defaults, 9));
    }
}

TEST(CmdlineTrainFlags, EachFlagReachesItsField) {
    gflags::FlagSaver restore_all; // config_from_flags sets defaults
    const ft::JointTrainerConfig base =
            ehi_tools::config_from_flags(text_task());
    EXPECT_EQ(base.encoder, ft::EncoderKind::TEXT);
    size_t reached = 0; // fields whose changed flag trained with it
    for (const ft::ConfigField& f : ft::joint_config_fields()) {
        SCOPED_TRACE(f.name);
        gflags::FlagSaver restore; // every flag back after this field
        const std::string value = other_value(f, f.text(base, 9));
        ASSERT_FALSE(
                gflags::SetCommandLineOption(f.name, value.c_str()).empty());
        try {
            ft::JointTrainerConfig c =
                    ehi_tools::config_from_flags(text_task());
            EXPECT_NE(f.text(c, 9), f.text(base, 9));
            reached++;
        } catch (const std::invalid_argument& e) {
            // a value that another setting rules out (e.g. the probe
            // recipe for text data) is refused naming this flag
            EXPECT_NE(std::string(e.what()).find(f.name), std::string::npos)
                    << e.what();
        }
    }
    // all but the few that other settings rule out (encoder, recipe,
    // resume, fixed_leaves, init; leaf_slack and drift_refit at the test
    // value, which is below 1)
    EXPECT_GE(reached, ft::joint_config_fields().size() - 7);
}

TEST(CmdlineTrainFlags, BadValuesNameTheFlag) {
    gflags::FlagSaver restore;
    gflags::SetCommandLineOption("form", "weird");
    try {
        ehi_tools::config_from_flags(text_task());
        FAIL() << "no error for --form weird";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(
                          "--form: JointTrainerConfig: form = 'weird', "
                          "expected one of 'paper', 'node'"),
                  std::string::npos)
                << e.what();
    }
}
