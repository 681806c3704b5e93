#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The sanitizer and fuzz smoke that the test command (scripts/test.sh)
# runs after the normal suite. Two clang builds of their own, each with
# the library, the data loaders and the test binary ehi_sanitizer_smoke
# (tests/CMakeLists.txt names its files):
#   build-san   AddressSanitizer + UndefinedBehaviorSanitizer, with the
#               libFuzzer targets: the smoke tests, then every fuzz target
#               for FUZZ_RUNS executions from its seed corpus (fixed seed)
#   build-tsan  ThreadSanitizer: the tests that run calls at the same time
#               (searches during adds, removes and writes; thread counts)
# The whole suite under ASan+UBSan, and long fuzz runs, are in the README
# ("Reliability"); they take longer than the test command may.
# The ASan+UBSan run leaves out the factory round trips over every key
# (Keys/Factory, FactoryLarge): four fifths of its time under ASan, for
# code paths the other IO tests and the fuzz targets also cover.
# Environment: FUZZ_RUNS (executions per target, default 20000),
# FUZZ_SECONDS (cap per target, default 30: the factory-key target runs
# about 70 keys a second under ASan), JOBS (default nproc).
# Exits non-zero if a test fails, a sanitizer reports, or a fuzz target
# writes a reproducer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
FUZZ_RUNS=${FUZZ_RUNS:-20000}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
JOBS=${JOBS:-$(nproc)}

log() { printf '[sanitizers] %s\n' "$*"; }
run() { printf '[sanitizers] + %s\n' "$*"; "$@"; }

for tool in clang clang++; do
  command -v "$tool" >/dev/null ||
    { log "$tool is missing (scripts/setup.sh installs clang)"; exit 1; }
done

# -O1 and line tables: sanitizer reports keep file:line, and the builds
# take a fraction of -O2 -g's time.
configure() { # DIR SANITIZERS [cmake args...]
  local dir=$1 san=$2
  shift 2
  run env CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
    -DFAISS_EHI_SANITIZE="$san" -DFAISS_EHI_BUILD_TRAINER=OFF \
    -DFAISS_EHI_BUILD_PYTHON=OFF -DFAISS_EHI_WITH_CUDA=OFF \
    -DFAISS_EHI_BUILD_BENCHS=OFF "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
}

status=0
# ------------------------------------------------------ ASan + UBSan + fuzz
asan_start=$SECONDS
configure build-san address,undefined -DFAISS_EHI_BUILD_FUZZERS=ON
run cmake --build build-san -j"$JOBS" --target ehi_sanitizer_smoke ehi_fuzzers
# Leaks that belong to Faiss and the OpenMP runtime are suppressed (the
# file says which and why); UBSan stops the test at its first finding.
run env LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-san -R '^smoke\.' -E 'Keys/Factory\.|FactoryLarge\.' \
  -j"$JOBS" --output-on-failure --timeout 600 ||
  { log "ASan+UBSan smoke tests FAILED"; status=1; }
log "ASan+UBSan build and tests: $((SECONDS - asan_start))s"
fuzz_start=$SECONDS
log "fuzz smoke: $FUZZ_RUNS executions per target (at most ${FUZZ_SECONDS}s each)"
# From the seeds alone, as on a fresh clone, so that runs on one kind of
# machine try the same inputs (coverage, and so the mutations kept, follow
# the code paths the CPU takes: another CPU may try others).
rm -rf build-san/fuzz-corpus
run env BUILD_DIR=build-san NO_BUILD=1 SEED=1 CHUNK=1000 \
  TARGET_SECONDS="$FUZZ_SECONDS" PROCESS_SECONDS=$((FUZZ_SECONDS * 4)) \
  bash benchs/run_fuzz.sh "$FUZZ_RUNS" ||
  { log "fuzz smoke FAILED: reproducers under build-san/fuzz-artifacts/"; status=1; }
log "fuzz smoke: $((SECONDS - fuzz_start))s"

# ------------------------------------------------------------------ TSan
tsan_start=$SECONDS
configure build-tsan thread
run cmake --build build-tsan -j"$JOBS" --target ehi_sanitizer_smoke
# The OpenMP runtime is not instrumented: its own synchronisation is
# invisible to TSan, which would report it as races.
run env TSAN_OPTIONS=ignore_noninstrumented_modules=1:halt_on_error=1 \
  ctest --test-dir build-tsan -R '^smoke\.' --output-on-failure --timeout 600 ||
  { log "TSan smoke tests FAILED"; status=1; }
log "TSan smoke: $((SECONDS - tsan_start))s"

exit $status
