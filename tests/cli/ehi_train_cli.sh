#!/usr/bin/env bash
# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
#
# ehi_train from the command line (run by ctest):
#  1. bad flags and missing or malformed data files end with a non-zero exit
#     status and a message that names the problem (never a crash);
#  2. a run killed with SIGKILL after a checkpoint and resumed with --resume
#     writes the same index, byte for byte, as an uninterrupted run.
# Usage: ehi_train_cli.sh PATH/TO/ehi_train
set -uo pipefail
EHI_TRAIN=$1
WORK=$(mktemp -d /tmp/ehi_train_cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_error NEEDLE ARGS...: the command fails (not by a signal) and its
# output contains NEEDLE.
expect_error() {
  local needle=$1; shift
  local out rc
  out=$("$EHI_TRAIN" "$@" 2>&1); rc=$?
  [[ $rc -ne 0 ]] || fail "exit 0 for: $*"
  [[ $rc -lt 128 ]] || fail "killed by a signal ($rc) for: $*"
  grep -qF -- "$needle" <<<"$out" || fail "no '$needle' in the output of: $*
$out"
  echo "ok: $* -> $needle"
}

# A small k-NN data set: 2,000 clustered 16-d vectors (fvecs).
/usr/bin/python3 - "$WORK" <<'PY' || fail "python3 with numpy is needed"
import sys, numpy as np
rng = np.random.default_rng(7)
c = rng.normal(size=(20, 16)).astype(np.float32)
x = (c[rng.integers(0, 20, 2000)] + 0.3 * rng.normal(size=(2000, 16))).astype(np.float32)
with open(sys.argv[1] + "/base.fvecs", "wb") as f:
    for row in x:
        np.int32(16).tofile(f); row.tofile(f)
with open(sys.argv[1] + "/bad.fvecs", "wb") as f:
    f.write(b"\x10\x00\x00\x00garbage")
PY
DATA="vecs:$WORK/base.fvecs"
COMMON=(--data "$DATA" --B 4 --H 2 --epochs 4 --batch 256 --threads 1 --progress=false --recipe joint)
# k-NN data defaults to the probe recipe, which takes none of the joint
# loop's flags
PROBE=(--data "$DATA" --B 4 --H 2 --threads 1 --progress=false)

# ---- 1. errors
expect_error "--data and --out are required"
expect_error "unknown data spec" --data nonsense --out "$WORK/x.fehi"
expect_error "/nonexistent/base.fvecs" --data vecs:/nonexistent/base.fvecs --out "$WORK/x.fehi"
expect_error "bad.fvecs" --data "vecs:$WORK/bad.fvecs" --out "$WORK/x.fehi"
expect_error "B = 1" "${COMMON[@]}" --B 1 --out "$WORK/x.fehi"
expect_error "bad training flag --form: JointTrainerConfig: form = 'weird', expected one of 'paper', 'node'" "${COMMON[@]}" --form weird --out "$WORK/x.fehi"
expect_error "--encoder text needs text data" "${COMMON[@]}" --encoder text --out "$WORK/x.fehi"
expect_error "resume" "${COMMON[@]}" --resume --out "$WORK/x.fehi"
expect_error "ERROR: unknown command line flag" "${COMMON[@]}" --no_such_flag 1 --out "$WORK/x.fehi"
expect_error "cannot" "${COMMON[@]}" --out /nonexistent-dir/x.fehi
expect_error "--lambda2 belong to --recipe joint" "${PROBE[@]}" --lambda2 0.5 --out "$WORK/x.fehi"
expect_error "recipe = 'other', expected one of 'joint', 'probe'" "${PROBE[@]}" --recipe other --out "$WORK/x.fehi"
expect_error "collapse_load" "${PROBE[@]}" --collapse_load 0.5 --out "$WORK/x.fehi"

# ---- 1b. the probe recipe with no recipe flag writes a readable index
"$EHI_TRAIN" "${PROBE[@]}" --out "$WORK/probe.fehi" > "$WORK/probe.log" 2>&1 ||
  fail "probe-recipe run failed: $(tail -5 "$WORK/probe.log")"
grep -q "probe recipe" "$WORK/probe.log" ||
  fail "the default k-NN run did not use the probe recipe: $(tail -5 "$WORK/probe.log")"
[[ -s $WORK/probe.fehi ]] || fail "probe-recipe run wrote no index"

# ---- 2. kill and resume
"$EHI_TRAIN" "${COMMON[@]}" --out "$WORK/straight.fehi" > "$WORK/straight.log" 2>&1 ||
  fail "uninterrupted run failed: $(tail -5 "$WORK/straight.log")"
CK=$WORK/ckpt
"$EHI_TRAIN" "${COMMON[@]}" --checkpoint_dir "$CK" --out "$WORK/resumed.fehi" \
  > "$WORK/killed.log" 2>&1 &
pid=$!
# wait for the first checkpoint, then kill without warning
for _ in $(seq 1 600); do
  [[ -s $CK/joint_trainer.ckpt ]] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[[ -s $CK/joint_trainer.ckpt ]] || fail "no checkpoint was written: $(tail -5 "$WORK/killed.log")"
if [[ -e $WORK/resumed.fehi ]]; then
  echo "note: the run finished before the kill; resuming from its last checkpoint"
  rm -f "$WORK/resumed.fehi"
fi
"$EHI_TRAIN" "${COMMON[@]}" --checkpoint_dir "$CK" --resume \
  --out "$WORK/resumed.fehi" > "$WORK/resumed.log" 2>&1 ||
  fail "resumed run failed: $(tail -5 "$WORK/resumed.log")"
grep -q "resumed from" "$WORK/resumed.log" || fail "the resumed run did not say it resumed"
cmp "$WORK/straight.fehi" "$WORK/resumed.fehi" ||
  fail "killed + resumed index differs from the uninterrupted one"
echo "ok: killed after a checkpoint and resumed: identical index"
echo "PASS"
