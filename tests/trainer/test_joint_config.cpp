/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * JointTrainerConfig's field table: every field reaches the checks, the
 * resume fingerprint and the description line as its roles say, its text
 * form reads back, and the enumerations are named one way.
 */
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <faiss_ehi/enum_names.h>
#include <faiss_ehi/trainer/JointConfig.h>

#include "test_helpers.h"

using ehi_test::expect_error;
using faiss_ehi::trainer::ConfigField;
using faiss_ehi::trainer::ConfigFieldType;
using faiss_ehi::trainer::joint_config_fields;
using faiss_ehi::trainer::JointTrainerConfig;
namespace role = faiss_ehi::trainer::field_role;

namespace {

/// A value of f's type that differs from its value in c, as text.
std::string other_value(const ConfigField& f, const JointTrainerConfig& c) {
    std::string now = f.text(c, 9);
    switch (f.type) {
        case ConfigFieldType::BOOL:
            return now == "1" ? "0" : "1";
        case ConfigFieldType::INT:
        case ConfigFieldType::UINT64:
            return std::to_string(std::stoll(now) + 3);
        case ConfigFieldType::FLOAT:
            return std::to_string(std::stod(now) * 0.5 + 0.25);
        case ConfigFieldType::STRING:
            return now + "/elsewhere";
        case ConfigFieldType::ENUM:
            for (const auto& ch : f.choices) {
                if (ch.first != now) {
                    return ch.first;
                }
            }
    }
    return now;
}

bool has_item(const std::string& line, const std::string& name) {
    return (" " + line).find(" " + name + "=") != std::string::npos;
}

} // namespace

TEST(TrainerConfig, EveryFieldReachesEverySurface) {
    const JointTrainerConfig defaults;
    EXPECT_NO_THROW(defaults.check());
    JointTrainerConfig probe;
    probe.recipe = faiss_ehi::trainer::TrainRecipe::PROBE;
    std::set<std::string> names;
    for (const ConfigField& f : joint_config_fields()) {
        SCOPED_TRACE(f.name);
        EXPECT_TRUE(names.insert(f.name).second) << "duplicate field";
        EXPECT_EQ(faiss_ehi::trainer::find_joint_config_field(f.name), &f);
        EXPECT_GT(std::string(f.help).size(), 5u);
        // the text form reads back
        JointTrainerConfig c;
        f.parse(c, f.text(defaults, 9));
        EXPECT_EQ(c.fingerprint(), defaults.fingerprint());
        EXPECT_EQ(c.describe(), defaults.describe());
        // in the fingerprint and the descriptions as its roles say
        EXPECT_EQ(has_item(defaults.fingerprint(), f.name),
                  bool(f.roles & role::MODEL));
        EXPECT_EQ(has_item(defaults.describe(), f.name),
                  bool(f.roles & role::DESCRIBED));
        const bool is_recipe = std::string(f.name) == "recipe";
        EXPECT_EQ(has_item(probe.describe(), f.name) || is_recipe,
                  bool(f.roles & role::PROBE) || is_recipe);
        // a changed value shows in exactly those places
        f.parse(c, other_value(f, defaults));
        EXPECT_NE(f.text(c, 9), f.text(defaults, 9));
        EXPECT_EQ(c.fingerprint() != defaults.fingerprint(),
                  bool(f.roles & role::MODEL));
        EXPECT_EQ(c.describe() != defaults.describe(),
                  bool(f.roles & role::DESCRIBED));
        // garbage is refused naming the field
        if (f.type != ConfigFieldType::STRING) {
            JointTrainerConfig g;
            expect_error([&] { f.parse(g, "x1"); }, f.name);
        }
    }
    EXPECT_EQ(names.count("stop_after_epoch"), 0u); // a test hook
}

TEST(TrainerConfig, DescriptionsAndChecksNameTheValues) {
    JointTrainerConfig c;
    EXPECT_NE(c.describe().find("epochs=auto"), std::string::npos);
    EXPECT_NE(c.describe().find("encoder=head"), std::string::npos);
    EXPECT_NE(c.describe().find("form=node"), std::string::npos);
    EXPECT_NE(c.describe().find("recipe=joint"), std::string::npos);
    c.recipe = faiss_ehi::trainer::TrainRecipe::PROBE;
    c.B = 16;
    c.H = 2;
    c.normalize = false;
    c.epochs = 20;
    EXPECT_EQ(c.describe(),
              "recipe=probe B=16 H=2 beam=4 d2l=1 normalize=0 epochs=20 "
              "probe_k=10 seed=1234");
    // the paper recipe shows what it overrides
    JointTrainerConfig paper;
    paper.paper_recipe = true;
    EXPECT_NE(paper.describe().find("init=random"), std::string::npos);
    EXPECT_NE(paper.describe().find("epochs=100"), std::string::npos);

    JointTrainerConfig bad;
    bad.tree_grad = 1.5f;
    expect_error([&] { bad.check(); },
                 "tree_grad = 1.5, must be finite and in [0, 1]");
    bad = JointTrainerConfig();
    bad.form = faiss_ehi::NodeForm(9);
    expect_error([&] { bad.check(); },
                 "form = 9, must be one of 'paper', 'node'");
    JointTrainerConfig p;
    const ConfigField* seed =
            faiss_ehi::trainer::find_joint_config_field("seed");
    ASSERT_TRUE(seed);
    expect_error([&] { seed->parse(p, "-3"); }, "seed = '-3'");
    const ConfigField* form =
            faiss_ehi::trainer::find_joint_config_field("form");
    form->parse(p, "1"); // integer values are accepted too
    EXPECT_EQ(p.form, faiss_ehi::NodeForm::PER_NODE);
}

TEST(TrainerConfig, EnumNamesAreOneWay) {
    using faiss_ehi::enum_from_name;
    using faiss_ehi::enum_name;
    for (const auto& n : faiss_ehi::EnumNames<faiss_ehi::NodeForm>::all()) {
        EXPECT_EQ(enum_from_name<faiss_ehi::NodeForm>(n.second, "form"),
                  n.first);
    }
    EXPECT_STREQ(enum_name(faiss_ehi::DocAssignRule::NEAREST_LEAF), "nearest");
    EXPECT_STREQ(enum_name(faiss_ehi::BeamStrategy::GROUPED), "grouped");
    EXPECT_STREQ(enum_name(faiss_ehi::trainer::EncoderKind::TEXT), "text");
    EXPECT_STREQ(enum_name(faiss_ehi::NodeForm(7)), "?");
    expect_error(
            [] { enum_from_name<faiss_ehi::DocAssignRule>("far", "assign"); },
            "assign = 'far', expected one of 'probability', 'nearest', "
            "'soar'");
}
