/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * PNG line plots through gnuplot (Debian package gnuplot-nox), the only
 * plotting tool the command-line programs use. Without gnuplot a message says how to
 * install it and nothing is written; the tables still print.
 */
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace ehi_cmdline {

/// One curve: points (x, y); points with a non-finite y are skipped.
struct Curve {
    std::string name;
    std::vector<double> x;
    std::vector<double> y;
};

/// One panel of a figure.
struct Panel {
    std::string title;
    std::string xlabel;
    std::string ylabel;
    bool log_x = true;
    /// y range; NaN (the default) lets gnuplot choose that end
    double y_min = std::numeric_limits<double>::quiet_NaN();
    double y_max = std::numeric_limits<double>::quiet_NaN();
    std::vector<Curve> curves;
};

/** Write the panels side by side into a PNG `file`. Returns false (after
 * printing why) when gnuplot is missing or fails. */
bool plot_panels(const std::string& file, const std::string& title,
                 const std::vector<Panel>& panels);

} // namespace ehi_cmdline
