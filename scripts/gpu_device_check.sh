#!/usr/bin/env bash
# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
#
# Runs on the lent GPU machine, from the repository root, with .gpu_carry/
# made by scripts/gpu_pack.sh: unpacks the binaries and libraries, runs the
# GPU tests, then the QPS benchmark. All output goes to $OUT/log as well
# (and the benchmark's JSON to $OUT/bench_gpu_qps.json).
#   GPU_CHECK_TESTS=0 / GPU_CHECK_BENCH=0 skip a part; BENCH_ARGS adds flags.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CARRY=$ROOT/.gpu_carry
OUT=${OUT:-/tmp/ehi_gpu_out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log") 2>&1

echo "== gpu_device_check $(date -u +%FT%TZ) on $(hostname)"
W=$(mktemp -d /tmp/ehi_gpu.XXXXXX)
tar -xJf "$CARRY/payload.tar.xz" -C "$W" || { echo "unpack failed"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
nproc

# cuBLAS is loaded at run time; find the device's copy
CUBLAS_DIR=""
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           /usr/local/cuda-13*/lib64 /usr/local/cuda-12*/lib64 \
           /usr/lib/x86_64-linux-gnu \
           $(python3 -c 'import site,glob;[print(p) for s in site.getsitepackages() for p in glob.glob(s+"/nvidia/*/lib")+glob.glob(s+"/nvidia/cu*/lib")]' 2>/dev/null); do
  for v in 13 12; do
    if [ -z "$CUBLAS_DIR" ] && [ -e "$dir/libcublas.so.$v" ]; then
      CUBLAS_DIR=$dir
    fi
  done
done
echo "cuBLAS directory: ${CUBLAS_DIR:-none (built-in GEMM kernel)}"
export LD_LIBRARY_PATH="$W/lib${CUBLAS_DIR:+:$CUBLAS_DIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ldd "$W/bin/ehi_gpu_tests" | grep -E "not found" && echo "MISSING LIBRARIES"

rc=0
if [ "${GPU_CHECK_TESTS:-1}" != 0 ]; then
  echo "== ehi_gpu_tests"
  timeout ${TEST_TIMEOUT:-120} "$W/bin/ehi_gpu_tests" --gtest_brief=1 \
    --gtest_output=xml:"$OUT/ehi_gpu_tests.xml"
  trc=$?
  echo "ehi_gpu_tests exit code $trc"
  [ $trc = 0 ] || rc=1
fi
if [ "${GPU_CHECK_BENCH:-1}" != 0 ]; then
  echo "== bench_gpu_qps"
  GLOVE_ARGS=()
  if [ -f "$W/data/glove100_sub.f16" ]; then
    GLOVE_ARGS=(--glove_file "$W/data/glove100_sub.f16")
  else
    GLOVE_ARGS=(--datasets fmnist)
  fi
  timeout ${BENCH_TIMEOUT:-170} "$W/bin/bench_gpu_qps" --fmnist_dir "$CARRY/fmnist" \
    "${GLOVE_ARGS[@]}" --json "$OUT/bench_gpu_qps.json" ${BENCH_ARGS:-}
  brc=$?
  echo "bench_gpu_qps exit code $brc"
  [ $brc = 0 ] || rc=1
fi
rm -rf "$W"
exit $rc
