#!/usr/bin/env bash
# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
#
# Builds the GPU test and benchmark binaries here (no GPU needed) and
# assembles .gpu_carry/ for the lent GPU machine, which has no Faiss, no
# Debian packages and no registry:
#   .gpu_carry/payload.tar.xz  bin/ (ehi_gpu_tests, bench_gpu_qps, stripped),
#                              lib/ (the shared libraries they need except
#                              glibc and the CUDA driver: OpenBLAS, LAPACK,
#                              gfortran, gomp, glog, gflags, ...), data/
#                              (the GloVe-100 subset, fp16)
#   .gpu_carry/fmnist/         Fashion-MNIST images (already gzip'ed)
# Then run on the device: bash scripts/gpu_device_check.sh
# (carry: [".gpu_carry"]). The whole carry must stay under 64 MiB together
# with the git working tree; the script prints the sizes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-gpu}
CARRY=$ROOT/.gpu_carry
FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
GLOVE_NB=${GLOVE_NB:-60000}
GLOVE_NQ=${GLOVE_NQ:-2000}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DFAISS_EHI_BUILD_TRAINER=OFF -DFAISS_EHI_BUILD_PYTHON=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target ehi_gpu_tests bench_gpu_qps

TESTS=$BUILD/tests/gpu/ehi_gpu_tests
BENCH=$BUILD/benchs/bench_gpu_qps
[ -x "$TESTS" ] && [ -x "$BENCH" ] || {
  echo "gpu_pack: the GPU binaries were not built (is CUDA found?)" >&2
  exit 1
}

# keep the carry out of git
EXCL=$ROOT/.git/info/exclude
if [ -d "$ROOT/.git" ] && ! grep -qx '.gpu_carry/' "$EXCL" 2>/dev/null; then
  mkdir -p "$(dirname "$EXCL")"
  echo '.gpu_carry/' >>"$EXCL"
fi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/data"
cp "$TESTS" "$BENCH" "$STAGE/bin/"
strip "$STAGE/bin/"*

# shared libraries: everything ldd resolves except glibc, the loader and
# the CUDA driver (which the device has)
for b in "$TESTS" "$BENCH"; do
  ldd "$b" | awk '/=> \//{print $1, $3}'
done | sort -u | while read -r soname path; do
  case "$soname" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*|libcuda.so.*)
      continue ;;
  esac
  cp -L "$path" "$STAGE/lib/$soname"
done
strip --strip-unneeded "$STAGE/lib/"* 2>/dev/null || true

# GloVe-100 subset from the npm package (see contrib/data/glove.h)
if "$BENCH" --glove_export "$STAGE/data/glove100_sub.f16" \
     --glove_nb "$GLOVE_NB" --glove_nq "$GLOVE_NQ"; then
  :
else
  echo "gpu_pack: no GloVe package here; the device will skip GloVe" >&2
  rm -f "$STAGE/data/glove100_sub.f16"
fi

rm -rf "$CARRY"
mkdir -p "$CARRY/fmnist"
tar -C "$STAGE" -cf - bin lib data | xz -T0 -6 >"$CARRY/payload.tar.xz"
for f in train-images-idx3-ubyte t10k-images-idx3-ubyte; do
  if [ -f "$FMNIST_DIR/$f.gz" ]; then
    cp "$FMNIST_DIR/$f.gz" "$CARRY/fmnist/"
  elif [ -f "$FMNIST_DIR/$f" ]; then
    gzip -c "$FMNIST_DIR/$f" >"$CARRY/fmnist/$f.gz"
  else
    echo "gpu_pack: $FMNIST_DIR/$f[.gz] missing" >&2
    exit 1
  fi
done

echo "gpu_pack: staged files:"
(cd "$STAGE" && du -ah bin lib data | sort -h | tail -30)
echo "gpu_pack: carry:"
du -ah "$CARRY"
tree_kb=$(cd "$ROOT" && git ls-files -co --exclude-standard -z |
  xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
carry_kb=$(du -sk "$CARRY" | cut -f1)
echo "gpu_pack: working tree ${tree_kb} KiB + carry ${carry_kb} KiB =" \
     "$(( (tree_kb + carry_kb) / 1024 )) MiB (limit 64 MiB)"
