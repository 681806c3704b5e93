#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The held-out selection of the relevance-data recipe, alone: one recipe
# variant trained on 70% of the training queries of each development
# collection, for each of three held-out splits, with only the held-out
# Recall@100 measured (no baseline and no test column, so a variant costs
# about a minute per split instead of two). Then the pooled table
# (benchs/beir_summary.py --pooled) of every variant run so far under OUT.
#   bash benchs/run_beir_heldout.sh OUT_DIR NAME [TRAINING_FLAGS...]
# environment: SPLITS (default "1234 2 3"), COLLECTIONS (default
# "scifact cisi med", from DATA, default ../shared/data), BENCH.
# Runs already done (their JSON exists) are kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ $# -lt 2 ]]; then
  echo "usage: bash benchs/run_beir_heldout.sh OUT_DIR NAME [TRAINING_FLAGS...]" >&2
  exit 2
fi
OUT=$1
NAME=$2
shift 2
SPLITS=${SPLITS:-1234 2 3}
COLLECTIONS=${COLLECTIONS:-scifact cisi med}
DATA=${DATA:-../shared/data}
BENCH=${BENCH:-build/benchs/bench_visited}
[[ -x $BENCH ]] || { echo "build first: bash scripts/setup.sh" >&2; exit 1; }
dirs=()
for s in $SPLITS; do
  dirs+=("$OUT/s$s")
  for c in $COLLECTIONS; do
    base=$OUT/s$s/$c/$NAME
    mkdir -p "$(dirname "$base")"
    [[ -s $base.json ]] && continue
    printf '[heldout] %s split %s %s\n' "$NAME" "$s" "$c"
    "$BENCH" --data "beir:$DATA/$c" --heldout_fraction 0.3 --seed "$s" \
      --progress=false --plot "" --baselines=false --adaptive=false "$@" \
      --json "$base.json" > "$base.txt" 2>&1 ||
      printf '[heldout] %s split %s %s failed (see %s.txt)\n' "$NAME" "$s" \
        "$c" "$base"
  done
done
python3 benchs/beir_summary.py --pooled "$DATA" "${dirs[@]}"
