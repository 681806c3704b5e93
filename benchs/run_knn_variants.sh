#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The table of k-NN variants in benchs/RESULTS.md: each variant of the tree
# trainer on Fashion-MNIST (EHI16x2 against IVF256,Flat trained in the same
# process), recall@10 at 1, 2 and 5% of documents visited on 1,000
# training vectors used as queries (held-out column, what variants are
# chosen by) and on the first 2,000 test queries.
#   bash benchs/run_knn_variants.sh [OUT_DIR] [extra ehi_demo flags]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-build/knn_variants}
shift || true
mkdir -p "$OUT"
DEMO=build/benchs/ehi_demo
COMMON=(--data fmnist --nq 2000 --heldout_queries 1000 --plot "" "$@")
run() {
  local name=$1
  shift
  printf '[variants] %s: %s\n' "$name" "$*"
  "$DEMO" "${COMMON[@]}" "$@" > "$OUT/$name.txt" 2>&1
  grep -E "held-out|^ +[0-9]+%" "$OUT/$name.txt" | grep -v "^I20" || true
}
run nested_kmeans_best_first --trainer kmeans --flat_leaves=false --ehi_strategy best_first
run flat_kmeans_grouped_nocal --trainer kmeans --calibrate=false
run flat_kmeans_grouped --trainer kmeans
run nested_torch_routing --trainer torch --flat_leaves=false --ehi_assign nearest --ehi_strategy best_first
run probe_k10 --trainer torch
run probe_k100 --trainer torch --probe_k 100
run probe_k10_lr5e-3_e40 --trainer torch --probe_lr 5e-3 --probe_epochs 40
run probe_k10_soar_d2l2 --trainer torch --d2l 2 --ehi_assign soar
run kmeans_256x1 --trainer kmeans --B 256 --H 1
run probe_k10_best_first --trainer torch --ehi_strategy best_first
