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
# On Fashion-MNIST (no --data, or --data fmnist) the job trains the
# configuration chosen on held-out training queries (benchs/RESULTS.md,
# "bench_visited on Fashion-MNIST"): documents stay at their k-means leaves
# of an EHI16x2 tree and the tree learns the query routing (identity
# encoder, 1 epoch, tree learning rate 0.001):
#   --fixed_leaves --routing 1 --lambda2 0 --lambda3 0 --balance 0
#   --joint_enc_lr 0 --epochs 1 --cl_lr 0.001
# (held-out recall@100 at beam 4 after 1 epoch: .945 with cl_lr 0.001
# against .892 with Table 2's 0.016, which moves the k-means start too far)
# and is measured on the first 2,000 of the 10,000 test queries
# (--max_test_queries 2000; the sweep up to 100% visited with all 10,000
# takes longer than the job's 10 minutes on 2 cores).
# Your own flags come after these and override them. Other data sets get
# bench_visited's per-data-set defaults (tools/train_flags.cpp).
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
FMNIST=1
for a in "$@"; do
  case $a in
    --data=fmnist*|--data=fashion-mnist*) FMNIST=1 ;;
    --data=*) FMNIST=0 ;;
  esac
done
prev=
for a in "$@"; do
  if [[ $prev == --data || $prev == -data ]]; then
    case $a in fmnist*|fashion-mnist*) FMNIST=1 ;; *) FMNIST=0 ;; esac
  fi
  prev=$a
done
ARGS=(--data fmnist)
if [[ $FMNIST == 1 ]]; then
  ARGS+=(--fixed_leaves --routing 1 --lambda2 0 --lambda3 0 --balance 0
         --joint_enc_lr 0 --epochs 1 --cl_lr 0.001 --max_test_queries 2000)
fi
ARGS+=(--json "$OUT/bench_visited.json"
      --csv "$OUT/bench_visited.csv"
      --plot "$OUT/bench_visited.png"
      "$@")
printf '[main_job] + %s %s\n' "$BENCH" "${ARGS[*]}"
exec "$BENCH" "${ARGS[@]}"
