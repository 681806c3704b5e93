#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The relevance-data table of benchs/RESULTS.md: bench_visited with the
# default recipe (no training flag) on each development collection and
# seed, then the summary with means and spreads (benchs/beir_summary.py)
# and the paired, query-by-query gaps with their bootstrap intervals
# (benchs/beir_paired.py).
#   bash benchs/run_beir_seeds.sh [OUT_DIR] [SEEDS] [COLLECTIONS] [LABEL
#        TRAINING_FLAGS...]
# defaults: build/beir_seeds, "1 2 3", "scifact cisi med" (from
# ../shared/data), label "default" and no training flag. Runs already done
# (their JSON exists) are kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-build/beir_seeds}
SEEDS=${2:-1 2 3}
COLLECTIONS=${3:-scifact cisi med}
LABEL=${4:-default}
shift 4 2>/dev/null || shift $#
BENCH=${BENCH:-build/benchs/bench_visited}
[[ -x $BENCH ]] || { echo "build first: bash scripts/setup.sh" >&2; exit 1; }
for c in $COLLECTIONS; do
  mkdir -p "$OUT/$c"
  for s in $SEEDS; do
    base=$OUT/$c/${LABEL}_s$s
    [[ -s $base.json ]] && continue
    printf '[seeds] %s seed %s\n' "$c" "$s"
    "$BENCH" --data "beir:../shared/data/$c" --seed "$s" --progress=false "$@" \
      --json "$base.json" --plot "$base.png" > "$base.txt" 2>&1 ||
      printf '[seeds] %s seed %s failed (see %s.txt)\n' "$c" "$s" "$base"
  done
done
python3 benchs/beir_summary.py "$OUT"/*
echo
python3 benchs/beir_paired.py "$OUT"
