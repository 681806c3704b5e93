#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# Long soak of the threads contract (docs/DESIGN.md, "Threads"): the
# concurrency tests of ehi_tests (4 threads searching while one adds and
# one removes, each result checked, then a serial replay; write_index
# during adds) run for SECONDS each instead of the suite's 2 s. Each test
# prints its counts (searches, results checked, adds, removes).
#   bash benchs/run_soak.sh SECONDS [BUILD_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_EACH=${1:?usage: run_soak.sh SECONDS [BUILD_DIR]}
BUILD=${2:-build}
TESTS=$BUILD/tests/ehi_tests
if [[ ! -x $TESTS ]]; then
  echo "run_soak.sh: $TESTS not found (cmake --build $BUILD --target ehi_tests)" >&2
  exit 1
fi
EHI_SOAK_SECONDS=$SECONDS_EACH exec "$TESTS" \
  --gtest_filter='D2L/Concurrency.*:ConcurrencyWrite.*'
