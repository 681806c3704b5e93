/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// The list-valued flags of the benchmarks ("0.05,0.1,0.2", "1,2,4").
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cmdline/flag_lists.h"

using ehi_cmdline::parse_double_list;
using ehi_cmdline::parse_int_list;

namespace {

/// The message of what `f` throws (empty if nothing).
template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST(FlagLists, DoublesInRange) {
    EXPECT_EQ(parse_double_list("0.05,0.1,,1", "visited", 0, 1, true),
              (std::vector<double>{0.05, 0.1, 1.0}));
    EXPECT_EQ(parse_double_list("0,2.5", "prior", 0, INFINITY),
              (std::vector<double>{0.0, 2.5}));
    EXPECT_EQ(message_of([] { parse_double_list("0,0.1", "visited", 0, 1, true); }),
              "--visited: \"0\" is not a number in (0, 1]");
    EXPECT_EQ(message_of([] { parse_double_list("0.1,1.5", "visited", 0, 1, true); }),
              "--visited: \"1.5\" is not a number in (0, 1]");
    EXPECT_EQ(message_of([] { parse_double_list("0.1,abc", "spill", 0, 0.99); }),
              "--spill: \"abc\" is not a number in [0, 0.99]");
    EXPECT_EQ(message_of([] { parse_double_list("0.1x", "spill", 0, 0.99); }),
              "--spill: \"0.1x\" is not a number in [0, 0.99]");
    EXPECT_EQ(message_of([] { parse_double_list("nan", "prior", 0, INFINITY); }),
              "--prior: \"nan\" is not a number in [0, inf]");
    EXPECT_EQ(message_of([] { parse_double_list(",", "visited", 0, 1, true); }),
              "--visited is empty");
}

TEST(FlagLists, Integers) {
    EXPECT_EQ(parse_int_list("1,2,,4", "beams"), (std::vector<int>{1, 2, 4}));
    EXPECT_EQ(parse_int_list("0,-3", "nprobes", false),
              (std::vector<int>{0, -3}));
    EXPECT_EQ(message_of([] { parse_int_list("1,0", "beams"); }),
              "--beams: \"0\" is not a positive integer");
    EXPECT_EQ(message_of([] { parse_int_list("1.5", "beams", false); }),
              "--beams: \"1.5\" is not an integer");
}
