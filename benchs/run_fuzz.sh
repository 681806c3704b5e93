#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# Builds (if needed) and runs the libFuzzer targets of tests/fuzz, each for
# a set number of executions, and prints per target the executions, the
# corpus size and the reproducers written: crashes (crash-, leak-,
# deadly-: a sanitizer report or an uncaught exception), out-of-memory
# (oom-: a single allocation over MALLOC_MB or the RSS over 4 GB) and
# timeouts (timeout-, over 30 s for one input).
#   bash benchs/run_fuzz.sh [EXECUTIONS] [TARGETS]
# defaults: 200000 executions, all four targets. Environment: BUILD_DIR
# (default build-fuzz, configured with clang and FAISS_EHI_BUILD_FUZZERS=ON
# when missing), JOBS (build jobs, default 2), MAX_LEN (largest input,
# default 4096 bytes), NO_BUILD=1 (run the targets as built), MALLOC_MB (largest single allocation, default
# 2048), LEAKS (0 or 1: leak detection, default per target), CHUNK (most
# executions per fuzzer process, default all), SEED (libFuzzer seed of the
# first process; default random), PROCESS_SECONDS (wall-clock limit of one
# fuzzer process, default 3600), TARGET_SECONDS (time limit of a target,
# all its processes together; default none), FUZZ_FLAGS (more libFuzzer
# flags).
# Each target starts from its seeds (tests/fuzz/corpus/<target>, written by
# ehi_fuzz_seeds) copied into BUILD_DIR/fuzz-corpus/<target>, which keeps
# what the fuzzer finds between runs; reproducers of crashes go to
# BUILD_DIR/fuzz-artifacts/<target>/. Exit status 1 if any target wrote a reproducer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${1:-200000}
TARGETS=${2:-fuzz_read_index fuzz_text_encoder fuzz_index_factory fuzz_data_loaders}
BUILD_DIR=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}
MAX_LEN=${MAX_LEN:-4096}
MALLOC_MB=${MALLOC_MB:-2048}
CHUNK=${CHUNK:-$RUNS}
PROCESS_SECONDS=${PROCESS_SECONDS:-3600}
TARGET_SECONDS=${TARGET_SECONDS:-}
SEED=${SEED:-}

if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAISS_EHI_BUILD_FUZZERS=ON \
    -DFAISS_EHI_BUILD_TESTS=OFF -DFAISS_EHI_BUILD_TRAINER=OFF \
    -DFAISS_EHI_BUILD_PYTHON=OFF -DFAISS_EHI_WITH_CUDA=OFF \
    -DFAISS_EHI_BUILD_BENCHS=OFF > "$BUILD_DIR.configure.log"
fi
if [[ ${NO_BUILD:-0} != 1 ]]; then
  cmake --build "$BUILD_DIR" -j"$JOBS" --target ehi_fuzzers > /dev/null
fi

# Huge allocations requested by a corrupted size must surface as
# std::bad_alloc (which the targets catch), not as an ASan abort.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0}
# The targets are single-threaded; OpenMP threads would only slow them.
export OMP_NUM_THREADS=1

status=0
printf '%-20s %12s %8s %8s %6s %9s\n' target executions corpus crashes ooms timeouts
for t in $TARGETS; do
  seeds=tests/fuzz/corpus/$t
  if [[ ! -d $seeds ]]; then
    seeds=$BUILD_DIR/fuzz-seeds/$t
    [[ -d $seeds ]] || "$BUILD_DIR/tests/fuzz/ehi_fuzz_seeds" "$BUILD_DIR/fuzz-seeds"
  fi
  corpus=$BUILD_DIR/fuzz-corpus/$t
  art=$BUILD_DIR/fuzz-artifacts/$t
  log=$BUILD_DIR/fuzz-logs/$t.log
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  rm -f "$art"/*
  # Faiss leaks what it had built whenever it rejects an index file or a
  # factory key (see tests/sanitizers/lsan.supp): on these two targets
  # nearly every input would trigger a full leak scan, a hundredfold
  # slowdown, so leak detection is off there (LEAKS=1 turns it on); the
  # sanitizer build of ehi_tests checks those paths for leaks.
  leaks=${LEAKS:-}
  if [[ -z $leaks ]]; then
    case $t in
      fuzz_read_index | fuzz_index_factory) leaks=0 ;;
      *) leaks=1 ;;
    esac
  fi
  # The executions run in processes of at most CHUNK each (seed SEED, then
  # SEED+1, ...), each starting from the corpus the previous one grew: Faiss
  # leaks what it had read of every file it rejects, and over tens of
  # thousands of corrupt files those leaks alone exceed the RSS limit.
  : >"$log"
  execs=0
  chunk_no=0
  count() { find "$art" -type f \( "$@" \) | wc -l; }
  target_start=$SECONDS
  while ((execs < RUNS)); do
    n=$((RUNS - execs < CHUNK ? RUNS - execs : CHUNK))
    time_flag=()
    if [[ -n $TARGET_SECONDS ]]; then
      left=$((TARGET_SECONDS - (SECONDS - target_start)))
      ((left > 0)) || break
      time_flag=(-max_total_time="$left")
    fi
    seed_flag=()
    [[ -n $SEED ]] && seed_flag=(-seed=$((SEED + chunk_no)))
    # shellcheck disable=SC2086
    # The wall-clock limit keeps a wedged process from stalling the run:
    # the sanitizer's heap profile, printed when the RSS limit is hit,
    # stops the world with ptrace and has hung that way here.
    timeout -k 10 "$PROCESS_SECONDS" \
      "$BUILD_DIR/tests/fuzz/$t" -runs="$n" "${seed_flag[@]}" "${time_flag[@]}" -detect_leaks="$leaks" \
        -max_len="$MAX_LEN" -rss_limit_mb=4096 -malloc_limit_mb="$MALLOC_MB" -timeout=30 \
        -artifact_prefix="$art/" -print_final_stats=1 ${FUZZ_FLAGS:-} "$corpus" \
        >"$log.chunk" 2>&1 || rc=$?
    if [[ ${rc:-0} -eq 124 || ${rc:-0} -eq 137 ]]; then
      echo "$t: a fuzzer process ran past ${PROCESS_SECONDS}s and was stopped" >>"$log.chunk"
      touch "$art/timeout-process-$chunk_no"
    fi
    rc=0
    cat "$log.chunk" >>"$log"
    done_now=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log.chunk" |
      grep -o '[0-9]*$' | tail -1 || true)
    [[ -n $done_now ]] ||
      done_now=$(grep -o '^#[0-9]*' "$log.chunk" | tail -1 | tr -d '#' || true)
    rm -f "$log.chunk"
    execs=$((execs + ${done_now:-0}))
    chunk_no=$((chunk_no + 1))
    # Stop at a finding, or when a time limit cut a chunk short.
    if (($(find "$art" -type f | wc -l) > 0)) || ((${done_now:-0} < n)); then
      break
    fi
  done
  crashes=$(count -name 'crash-*' -o -name 'leak-*' -o -name 'deadly-*')
  ooms=$(count -name 'oom-*')
  timeouts=$(count -name 'timeout-*' -o -name 'slow-unit-*')
  printf '%-20s %12s %8s %8s %6s %9s\n' "$t" "${execs:-?}" \
    "$(find "$corpus" -type f | wc -l)" "$crashes" "$ooms" "$timeouts"
  if ((crashes + ooms + timeouts > 0)); then
    status=1
    echo "  log: $log; reproducers: $art/" >&2
    # What was found, in this output too: a run on another machine (CI)
    # keeps only what it printed.
    grep -m1 -A40 -E '^==[0-9]+== ?ERROR|^ERROR: libFuzzer|deadly signal|out-of-memory' \
      "$log" | sed 's/^/  | /' >&2 || true
    for f in "$art"/*; do
      [[ -f $f ]] || continue
      echo "  reproducer $(basename "$f") ($(stat -c %s "$f") bytes, base64):" >&2
      base64 -w 100 "$f" | head -n 60 | sed 's/^/    /' >&2
    done
  fi
done
exit $status
