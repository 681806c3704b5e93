#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# Build the Debian packages (cmake/packaging.cmake) from the existing build
# tree, check them, install them, use them, and remove them again:
#   1. re-configure build/ for the prefix /usr (a few seconds: the install
#      rules change, no object does, so nothing is compiled), run cpack into
#      build/debs/, and configure build/ back to the prefix it had;
#   2. dpkg-deb -I/-c: names, version, Depends and the expected files;
#   3. apt-get install ./build/debs/*.deb;
#   4. tests/consumer built against /usr with no CMAKE_PREFIX_PATH, run
#      with the drop-in tutorial; pkg-config's faiss_ehi.pc; the Python
#      module imported by /usr/bin/python3 without PYTHONPATH; the
#      installed ehi_train;
#   5. always (trap): remove the packages, so that later tests (the Python
#      tests use build/python through PYTHONPATH) never see an installed
#      copy, and the machine is as before.
# Needs root (or sudo) for apt-get and dpkg, and a built tree
# (scripts/setup.sh). Safe to run again. Usage: bash scripts/deb_check.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BUILD=$ROOT/build
DEBS=$BUILD/debs
PACKAGES=(libfaiss-ehi-dev faiss-ehi-tools python3-faiss-ehi)

log() { printf '[deb] %s\n' "$*"; }
die() { printf '[deb] ERROR: %s\n' "$*" >&2; exit 1; }
run() { printf '[deb] + %s\n' "$*"; "$@"; }

for tool in dpkg-deb dpkg-shlibdeps cpack apt-get pkg-config; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' not found (dpkg-dev, cmake, apt and pkgconf provide them)"
done
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 ||
    die "installing the packages needs root; run as root (or install sudo)"
  SUDO=(sudo)
fi
[[ -f $BUILD/CMakeCache.txt ]] ||
  die "no configured build tree at $BUILD: run scripts/setup.sh first"

cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
OLD_PREFIX=$(cache_get CMAKE_INSTALL_PREFIX)
OLD_PYDIR=$(cache_get FAISS_EHI_PYTHON_INSTALL_DIR)
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || true)
MULTIARCH=${MULTIARCH:-$(dpkg-architecture -qDEB_HOST_MULTIARCH)}
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[[ -n $VERSION ]] || die "no CMAKE_PROJECT_VERSION in $BUILD/CMakeCache.txt"
HAVE_TRAINER=no
[[ -f $BUILD/faiss_ehi/trainer/libfaiss_ehi_trainer.a ]] && HAVE_TRAINER=yes
HAVE_PYTHON=no
compgen -G "$BUILD/python/faiss_ehi/_faiss_ehi*.so" >/dev/null && HAVE_PYTHON=yes

TMP=$(mktemp -d "${TMPDIR:-/tmp}/faiss_ehi_deb.XXXXXX")
reconfigured=no
restore_build() {
  [[ $reconfigured == yes ]] || return 0
  reconfigured=no
  log "+ cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$OLD_PREFIX (back as it was)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$OLD_PREFIX" \
    -DFAISS_EHI_PYTHON_INSTALL_DIR="$OLD_PYDIR" >"$TMP/restore.log" 2>&1 ||
    { cat "$TMP/restore.log" >&2; log "could not configure $BUILD back"; return 1; }
}
remove_packages() {
  local installed=() p
  for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ?i* ]]; then
      installed+=("$p")
    fi
  done
  [[ ${#installed[@]} -eq 0 ]] && return 0
  run "${SUDO[@]}" dpkg --purge "${installed[@]}"
}
cleanup() {
  local rc=$?
  restore_build || rc=1
  remove_packages || { log "could not remove ${PACKAGES[*]}"; rc=1; }
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

# Left installed by an interrupted run: remove first, so that what is
# checked below is what this run built.
remove_packages

# ------------------------------------------------------------- 1. build
# FAISS_EHI_PYTHON_INSTALL_DIR empty: the module goes where the prefix
# /usr wants it (contrib/python/CMakeLists.txt).
reconfigured=yes
log "+ cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr (was $OLD_PREFIX)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_INSTALL_PREFIX=/usr \
  -DFAISS_EHI_PYTHON_INSTALL_DIR= >"$TMP/configure.log" 2>&1 ||
  { cat "$TMP/configure.log" >&2; die "configuring $BUILD for /usr failed"; }
rm -rf "$DEBS"
run cpack --config "$BUILD/CPackConfig.cmake" -B "$DEBS" >"$TMP/cpack.log" 2>&1 ||
  { cat "$TMP/cpack.log" >&2; die "cpack failed (log above)"; }
restore_build
rm -rf "$DEBS/_CPack_Packages"   # cpack's staging copies

# ------------------------------------------------------------- 2. check
deb_of() {
  local f
  f=$(compgen -G "$DEBS/${1}_${VERSION}-*.deb" | head -n1) ||
    die "no $1 package in $DEBS: $(ls "$DEBS")"
  printf '%s\n' "$f"
}
# expect DEB PATH...: each path (relative to /) is in the package.
expect() {
  local deb=$1 path
  shift
  dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's,^\./,/,' >"$TMP/list"
  for path in "$@"; do
    grep -qx -- "$path" "$TMP/list" ||
      die "$(basename "$deb") lacks $path; it has:
$(cat "$TMP/list")"
  done
}
field() { dpkg-deb -f "$1" "$2"; }

LIB=/usr/lib/$MULTIARCH
want_debs=(libfaiss-ehi-dev faiss-ehi-tools)
[[ $HAVE_PYTHON == yes ]] && want_debs+=(python3-faiss-ehi)
for p in "${want_debs[@]}"; do
  deb=$(deb_of "$p")
  [[ $(field "$deb" Version) == "$VERSION"-* ]] ||
    die "$p: Version '$(field "$deb" Version)' is not the project's $VERSION"
  [[ -n $(field "$deb" Maintainer) && -n $(field "$deb" Description) ]] ||
    die "$p: no Maintainer or Description"
  [[ -n $(field "$deb" Depends) ]] || die "$p: empty Depends"
  log "$(basename "$deb"): Depends: $(field "$deb" Depends)"
  expect "$deb" "/usr/share/doc/$p/copyright"
done

dev=$(deb_of libfaiss-ehi-dev)
dev_files=(/usr/include/faiss_ehi/faiss_ehi.h
  "$LIB/libfaiss_ehi.a" "$LIB/libfaiss_ehi_dropin.a"
  "$LIB/cmake/faiss_ehi/faiss_ehiConfig.cmake"
  "$LIB/cmake/faiss_ehi/faiss_ehiConfigVersion.cmake"
  "$LIB/cmake/faiss_ehi/faiss_ehiTargets.cmake"
  "$LIB/pkgconfig/faiss_ehi.pc")
if [[ $HAVE_TRAINER == yes ]]; then
  dev_files+=("$LIB/libfaiss_ehi_trainer.a")
  [[ $(field "$dev" Depends) == *libtorch-dev* ]] ||
    die "libfaiss-ehi-dev holds the trainer but does not depend on libtorch-dev"
fi
expect "$dev" "${dev_files[@]}"
if grep -q -e gpu -e '^/usr/local' -e '^/usr/lib/lib' "$TMP/list"; then
  die "libfaiss-ehi-dev holds files it should not (gpu, /usr/local, non-multiarch lib): $(grep -e gpu -e '^/usr/local' -e '^/usr/lib/lib' "$TMP/list")"
fi

tools=$(deb_of faiss-ehi-tools)
tool_files=(/usr/bin/ehi_demo /usr/bin/bench_qps /usr/bin/bench_scan
  /usr/bin/bench_routing /usr/bin/bench_routing_time)
if [[ $HAVE_TRAINER == yes ]]; then
  tool_files+=(/usr/bin/ehi_train /usr/bin/bench_visited /usr/bin/bench_train)
fi
expect "$tools" "${tool_files[@]}"
# dpkg-shlibdeps found the shared libraries the programs load.
[[ $(field "$tools" Depends) == *libc6* ]] ||
  die "faiss-ehi-tools: Depends has no libc6, so dpkg-shlibdeps did not run"

if [[ $HAVE_PYTHON == yes ]]; then
  py=$(deb_of python3-faiss-ehi)
  expect "$py" /usr/lib/python3/dist-packages/faiss_ehi/__init__.py
  grep -q '^/usr/lib/python3/dist-packages/faiss_ehi/_faiss_ehi.*\.so$' "$TMP/list" ||
    die "python3-faiss-ehi lacks the extension _faiss_ehi*.so"
  [[ $(dpkg-deb --ctrl-tarfile "$py" | tar -t) == *prerm* ]] ||
    die "python3-faiss-ehi has no prerm (it removes the bytecode)"
fi
log "the packages hold the expected files"

# ----------------------------------------------------------- 3. install
debs=()
for p in "${want_debs[@]}"; do debs+=("$(deb_of "$p")"); done
run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 "${debs[@]}" ||
  die "apt-get could not install the packages (its output above says why)"
for p in "${want_debs[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] ||
    die "$p is not installed after apt-get install"
done

# --------------------------------------------------------------- 4. use
# The consumer finds the package in /usr by CMake's default search, with
# no CMAKE_PREFIX_PATH (cleared, in case the caller's environment sets it).
run env -u CMAKE_PREFIX_PATH cmake -S tests/consumer -B "$TMP/consumer" \
  -DCMAKE_BUILD_TYPE=Release >"$TMP/consumer.log" 2>&1 ||
  { cat "$TMP/consumer.log"; die "configuring tests/consumer against /usr failed"; }
found=$(sed -n 's/^faiss_ehi_DIR:PATH=//p' "$TMP/consumer/CMakeCache.txt")
[[ $found == "$LIB/cmake/faiss_ehi" ]] ||
  die "tests/consumer found faiss_ehi at '$found', not the package's $LIB/cmake/faiss_ehi"
log "consumer uses $found"
# consumer_torch is left out for time (LibTorch's headers take a minute to
# compile); the install check of scripts/test.sh builds it.
run cmake --build "$TMP/consumer" -j"$(nproc)" --target consumer tutorial_dropin \
  >"$TMP/consumer-build.log" 2>&1 ||
  { cat "$TMP/consumer-build.log"; die "building tests/consumer against /usr failed"; }
run "$TMP/consumer/consumer"
run "$TMP/consumer/tutorial_dropin" "IDMap,EHI8x2,SQ8"

# pkg-config finds faiss_ehi.pc on its default path, and its relative
# prefix resolves to the multiarch libdir.
libdir=$(env -u PKG_CONFIG_PATH pkg-config --variable=libdir faiss_ehi) ||
  die "pkg-config does not find faiss_ehi.pc"
[[ $(readlink -f "$libdir") == "$LIB" ]] ||
  die "faiss_ehi.pc's libdir is '$libdir', not $LIB"
log "pkg-config: faiss_ehi $(pkg-config --modversion faiss_ehi), libdir $libdir"

if [[ $HAVE_PYTHON == yes ]]; then
  # From /, without PYTHONPATH and without writing bytecode: only the
  # installed copy can be imported.
  pyfile=$(cd / && env -u PYTHONPATH PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c \
    'import faiss, faiss_ehi; i = faiss_ehi.index_factory(8, "EHI2x2"); assert isinstance(i, faiss.IndexIVF); print(faiss_ehi.__file__)') ||
    die "/usr/bin/python3 cannot import the installed faiss_ehi"
  [[ $pyfile == /usr/lib/python3/* ]] ||
    die "/usr/bin/python3 imported faiss_ehi from $pyfile, not /usr/lib/python3"
  log "python3 imports the installed faiss_ehi from $pyfile"
fi

# gflags' --help prints the flags and exits with status 1: check the text.
installed_prog=/usr/bin/ehi_demo
[[ $HAVE_TRAINER == yes ]] && installed_prog=/usr/bin/ehi_train
[[ $(command -v "$(basename "$installed_prog")") == "$installed_prog" ]] ||
  die "$(basename "$installed_prog") on PATH is not the package's $installed_prog"
"$installed_prog" --help >"$TMP/help.txt" 2>&1 || true
grep -q -- "Flags from" "$TMP/help.txt" ||
  die "$installed_prog --help printed no flags: $(head -n 20 "$TMP/help.txt")"
log "$installed_prog --help lists $(grep -c -- '^    -' "$TMP/help.txt") flags"

# ------------------------------------------------------------ 5. remove
trap - EXIT
remove_packages
for path in /usr/include/faiss_ehi "$LIB/cmake/faiss_ehi" \
            /usr/lib/python3/dist-packages/faiss_ehi "$installed_prog"; do
  [[ ! -e $path ]] || die "$path is still there after removing the packages"
done
rm -rf "$TMP"
log "packages in $DEBS built, installed, used and removed again"
