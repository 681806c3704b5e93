/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "cmdline/program_main.h"

#include <exception>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "cmdline/threads.h"

namespace ehi_cmdline {

int program_main(int argc, char** argv, const char* usage, int (*run)()) {
    reexec_with_passive_omp(argv);
    FLAGS_logtostderr = true;
    gflags::SetUsageMessage(usage);
    gflags::ParseCommandLineFlags(&argc, &argv, true);
    google::InitGoogleLogging(argv[0]);
    try {
        return run();
    } catch (const std::exception& e) {
        LOG(ERROR) << "error: " << e.what();
        return 1;
    }
}

} // namespace ehi_cmdline
