#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The project's main job (README): set up and build (scripts/setup.sh),
# then train EHI on Fashion-MNIST (from the Debian package
# dataset-fashion-mnist) and compare it with Faiss IVF-Flat (k-means, same
# number of leaves) at equal fraction of documents visited:
# build/benchs/bench_visited. It prints the recall@10 table at 1, 2, 5, 10,
# 20, 50 and 100% visited and the path of the plot (PNG), the JSON and the
# CSV, written under build/main_job/ (overwritten on every run).
#
# Arguments are passed on to bench_visited (gflags; a later flag overrides
# an earlier one), e.g.
#   bash scripts/main_job.sh --data glove100          # another data set
#   bash scripts/main_job.sh --data beir:../shared/data/scifact
#   bash scripts/main_job.sh --epochs 5 --plot fm.png
#   bash scripts/main_job.sh --help
# No recipe flag is passed: bench_visited trains with the project's
# defaults for the data set (cmdline/train_flags.cpp). On k-NN data that is
# the probe recipe (flat k-means leaves in balanced groups, learned probing
# toward each sampled vector's nearest neighbours, probe calibration),
# the same as the drop-in train() with the LibTorch trainer. The job
# measures the first 2,000 of the 10,000 test queries
# (--max_test_queries 2000) to stay within ten minutes on 2 cores.
# Your own flags come after these and override them. Other data sets get
# bench_visited's per-data-set defaults (cmdline/train_flags.cpp).
# MAIN_JOB_OUT=DIR changes the output directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

BENCH=build/benchs/bench_visited
if [[ ! -x $BENCH ]]; then
  printf '[main_job] ERROR: %s was not built (see the build output above)\n' \
    "$BENCH" >&2
  exit 1
fi
OUT=${MAIN_JOB_OUT:-build/main_job}
mkdir -p "$OUT"
# (a later flag wins in gflags: the caller's own --max_test_queries or
# --data replace these)
ARGS=(--data fmnist --max_test_queries 2000
      --visited 0.005,0.01,0.02,0.05,0.1,0.2)
ARGS+=(--json "$OUT/bench_visited.json"
      --csv "$OUT/bench_visited.csv"
      --plot "$OUT/bench_visited.png"
      "$@")
printf '[main_job] + %s %s\n' "$BENCH" "${ARGS[*]}"
exec "$BENCH" "${ARGS[@]}"
