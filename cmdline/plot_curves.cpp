/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */

#include "cmdline/plot_curves.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ehi_cmdline {

namespace {

/// gnuplot single-quoted string: a quote is doubled.
std::string quoted(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    return out + "'";
}

std::string temp_file(const char* prefix) {
    std::string tmpl = std::string("/tmp/") + prefix + "XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    int fd = mkstemp(buf.data());
    if (fd < 0) {
        throw std::runtime_error("mkstemp failed for a plot data file");
    }
    close(fd);
    return buf.data();
}

/// One end of a gnuplot range: "*" (automatic) for NaN.
std::string range_end(double v) {
    if (std::isnan(v)) {
        return "*";
    }
    std::ostringstream o;
    o << v;
    return o.str();
}

} // namespace

bool plot_panels(const std::string& file, const std::string& title,
                 const std::vector<Panel>& panels) {
    if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
        printf("gnuplot not found (apt-get install gnuplot-nox): no plot "
               "written\n");
        return false;
    }
    std::vector<std::string> tmp;
    std::string script = temp_file("ehi_plot_");
    tmp.push_back(script);
    {
        std::ofstream g(script);
        int w = 560 * int(panels.size());
        g << "set terminal pngcairo size " << w << ",520 font 'sans,10'\n"
          << "set output " << quoted(file) << "\n"
          << "set multiplot layout 1," << panels.size() << " title "
          << quoted(title) << " noenhanced\n";
        for (const Panel& p : panels) {
            g << "unset logscale\n";
            if (p.log_x) {
                g << "set logscale x\n";
            }
            g << "set yrange [" << range_end(p.y_min) << ":"
              << range_end(p.y_max) << "]\n";
            g << "set title " << quoted(p.title) << " noenhanced\n"
              << "set xlabel " << quoted(p.xlabel) << " noenhanced\n"
              << "set ylabel " << quoted(p.ylabel) << " noenhanced\n"
              << "set key bottom right\nset grid\n";
            std::string plot = "plot ";
            for (size_t i = 0; i < p.curves.size(); i++) {
                const Curve& c = p.curves[i];
                std::string data = temp_file("ehi_plot_data_");
                tmp.push_back(data);
                std::ofstream d(data);
                size_t n = 0;
                for (size_t j = 0; j < c.x.size() && j < c.y.size(); j++) {
                    if (std::isfinite(c.x[j]) && std::isfinite(c.y[j]) &&
                        (!p.log_x || c.x[j] > 0)) {
                        d << c.x[j] << " " << c.y[j] << "\n";
                        n++;
                    }
                }
                if (n == 0) {
                    continue;
                }
                plot += (plot.size() > 5 ? ", " : "") + quoted(data) +
                        " using 1:2 with linespoints lw 2 pt 7 title " +
                        quoted(c.name) + " noenhanced";
            }
            if (plot.size() > 5) {
                g << plot << "\n";
            }
        }
        g << "unset multiplot\n";
    }
    std::string cmd = "gnuplot " + quoted(script) + " 2>&1";
    int rc = std::system(cmd.c_str());
    for (const std::string& f : tmp) {
        unlink(f.c_str());
    }
    if (rc != 0) {
        printf("gnuplot failed (exit status %d): no plot written\n", rc);
        return false;
    }
    return true;
}

} // namespace ehi_cmdline
