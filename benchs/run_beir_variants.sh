#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The table of relevance-data recipe variants in benchs/RESULTS.md: each
# variant of the joint trainer on one BEIR-format collection, trained on
# 70% of the training queries (the other 30% are the held-out column the
# default recipe is chosen by), with bench_visited's test columns and the
# load balance of EHI's lists. Then the summary (benchs/beir_summary.py).
#   bash benchs/run_beir_variants.sh [DATA_DIR] [OUT_DIR] [extra flags]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${1:-../shared/data/scifact}
OUT=${2:-build/beir_variants/$(basename "$DATA")}
shift 2 || shift $# || true
mkdir -p "$OUT"
BENCH=${BENCH:-build/benchs/bench_visited}
[[ -x $BENCH ]] || { echo "build first: bash scripts/setup.sh" >&2; exit 1; }
COMMON=(--data "beir:$DATA" --heldout_fraction 0.3 --progress=false
        --plot "" "$@")
# The recipe before this table (frozen encoder): its flags, spelled out.
# The variants before the default name each recipe setting, so that the
# defaults' choice does not leak into them (the step_docs*, default_* and
# balanced_targets* rows are the defaults plus the flags shown). The end of
# training re-fit has no switch: rows run before it existed are marked so
# in RESULTS.md.
BASE=(--epochs 120 --batch 64 --lambda1 1 --lambda2 0.8 --lambda3 0.2
      --balance 0 --routing 1 --doc_routing 0 --fixed_leaves --refresh 5
      --de_negatives 0 --hard_negatives 1 --balanced_targets=false)
FROZEN=("${BASE[@]}" --warmup_epochs 100 --joint_enc_lr 0 --recluster=false
        --tree_grad 1)
E2E=("${BASE[@]}" --warmup_epochs 100 --joint_enc_lr -1 --recluster
     --tree_grad 0)
run() {
  local name=$1
  shift
  if [[ -s $OUT/$name.json ]]; then
    printf '[variants] %s: done before\n' "$name"
    return
  fi
  printf '[variants] %s: %s\n' "$name" "$*"
  "$BENCH" "${COMMON[@]}" "$@" --json "$OUT/$name.json" \
    > "$OUT/$name.txt" 2>&1 || printf '[variants] %s failed (see %s)\n' \
    "$name" "$OUT/$name.txt"
}
VARIANTS=${VARIANTS:-all}
want() { [[ $VARIANTS == all || " $VARIANTS " == *" $1 "* ]]; }
want paper_table2 && run paper_table2 --stop_on_collapse=false --epochs 100 --batch 64 \
  --lambda1 0.2 --lambda2 0.8 --lambda3 0.2 --balance 1 --routing 0 \
  --fixed_leaves=false --recluster=false --warmup_epochs 0 --joint_enc_lr -1 \
  --de_negatives 0 --refresh 5 --tree_grad 1
want frozen && run frozen "${FROZEN[@]}"
want frozen_deneg && run frozen_deneg "${FROZEN[@]}" --de_negatives 5
want e2e_no_recluster && run e2e_no_recluster "${E2E[@]}" \
  --recluster=false --de_negatives 5 --stop_on_collapse=false
want e2e_deneg_tg1 && run e2e_deneg_tg1 "${E2E[@]}" --de_negatives 5 \
  --tree_grad 1 --stop_on_collapse=false
want e2e_deneg_tg0.1 && run e2e_deneg_tg0.1 "${E2E[@]}" --de_negatives 5 \
  --tree_grad 0.1 --stop_on_collapse=false
want e2e && run e2e "${E2E[@]}"
want e2e_deneg && run e2e_deneg "${E2E[@]}" --de_negatives 5
want e2e_deneg_r1 && run e2e_deneg_r1 "${E2E[@]}" --de_negatives 5 --refresh 1
want e2e_deneg_routing_only && run e2e_deneg_routing_only "${E2E[@]}" \
  --de_negatives 5 --lambda2 0 --lambda3 0
want e2e_deneg_w60 && run e2e_deneg_w60 "${E2E[@]}" --de_negatives 5 \
  --warmup_epochs 60
want e2e_deneg_b256 && run e2e_deneg_b256 "${E2E[@]}" --de_negatives 5 \
  --batch 256
want e2e_deneg_routing3 && run e2e_deneg_routing3 "${E2E[@]}" \
  --de_negatives 5 --routing 3
want e2e_w60 && run e2e_w60 "${E2E[@]}" --warmup_epochs 60
want e2e_w60_r1 && run e2e_w60_r1 "${E2E[@]}" --warmup_epochs 60 --refresh 1
want e2e_deneg1_w60 && run e2e_deneg1_w60 "${E2E[@]}" --warmup_epochs 60 \
  --de_negatives 1
# Rows run before corpus document routing became the default keep their
# recipe: STEP is that earlier default (the step's own documents routed,
# the gradient stopped at the tree, nearest-leaf targets).
STOPGRAD=(--balanced_targets=false --tree_grad 0)
STEP=(--doc_routing_corpus=false "${STOPGRAD[@]}")
want step_docs && run step_docs "${STEP[@]}"
want default_no_doc_routing && run default_no_doc_routing "${STOPGRAD[@]}" \
  --doc_routing 0
want step_docs_routing3 && run step_docs_routing3 "${STEP[@]}" --doc_routing 3
want step_docs_d2l2 && run step_docs_d2l2 "${STEP[@]}" --d2l 2
want step_docs_paper_form && run step_docs_paper_form "${STEP[@]}" --form paper
want step_docs_B80 && run step_docs_B80 "${STEP[@]}" --B 80 --beam 8
want step_docs_B20 && run step_docs_B20 "${STEP[@]}" --B 20 --beam 2
want step_docs_window && run step_docs_window "${STEP[@]}" \
  --doc_routing_window -1
want balanced_targets && run balanced_targets "${STEP[@]}" --balanced_targets
want balanced_targets_tg0.1 && run balanced_targets_tg0.1 "${STEP[@]}" \
  --balanced_targets --tree_grad 0.1 --stop_on_collapse=false
want balanced_targets_tg1 && run balanced_targets_tg1 "${STEP[@]}" \
  --balanced_targets --tree_grad 1 --stop_on_collapse=false
# The default of 4 Dec (morning): documents drawn from the whole corpus
# are routed, the gradient stopped at the tree (STOPGRAD).
want stopgrad && run stopgrad "${STOPGRAD[@]}"
want stopgrad_window && run stopgrad_window "${STOPGRAD[@]}" --doc_routing_window -1
want stopgrad_routing0.3 && run stopgrad_routing0.3 "${STOPGRAD[@]}" --doc_routing 0.3
want stopgrad_routing3 && run stopgrad_routing3 "${STOPGRAD[@]}" --doc_routing 3
want stopgrad_paper_form && run stopgrad_paper_form "${STOPGRAD[@]}" --form paper
want stopgrad_B80 && run stopgrad_B80 "${STOPGRAD[@]}" --B 80 --beam 8
want stopgrad_slack1.5 && run stopgrad_slack1.5 "${STOPGRAD[@]}" --leaf_slack 1.5
want stopgrad_slack2 && run stopgrad_slack2 "${STOPGRAD[@]}" --leaf_slack 2
want stopgrad_cl_lr0.008 && run stopgrad_cl_lr0.008 "${STOPGRAD[@]}" --cl_lr 0.008
want stopgrad_cl_lr0.032 && run stopgrad_cl_lr0.032 "${STOPGRAD[@]}" --cl_lr 0.032
want stopgrad_e2e && run stopgrad_e2e --balanced_targets --tree_grad 1 \
  --stop_on_collapse=false
# The default now (4 Dec, evening): the same with the routing targets fixed
# by the balanced re-fits and 0.5% of the tree terms' gradient in the
# encoder; its neighbours in tree_grad.
want default && run default
want default_tree_grad0.001 && run default_tree_grad0.001 --tree_grad 0.001
want default_tree_grad0.02 && run default_tree_grad0.02 --tree_grad 0.02
want default_tree_grad0.1 && run default_tree_grad0.1 --tree_grad 0.1
python3 benchs/beir_summary.py "$OUT"
