#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The project's test command (README): set up and build (scripts/setup.sh),
# run the CTest suite, then check the installed package: install into a
# temporary prefix and build and run the outside project tests/consumer/
# against it with find_package(faiss_ehi CONFIG REQUIRED), and the C++
# drop-in with CMake and with pkg-config's flags; then the Python
# tests (tests/python, pytest under /usr/bin/python3; skipped with a
# message when python3-faiss is absent), then the Debian packages
# (scripts/deb_check.sh: built from build/, installed, used, removed;
# skipped without dpkg-deb), then the sanitizer and fuzz smoke
# (scripts/sanitizer_smoke.sh).
# Extra arguments go to ctest (e.g. `bash scripts/test.sh -R EHITree`).
# Exits non-zero if anything fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

log() { printf '[test] %s\n' "$*"; }
run() { printf '[test] + %s\n' "$*"; "$@"; }

# ------------------------------------------------------ set-up and build
run bash scripts/setup.sh

# ---------------------------------------------------------------- ctest
# Per-test default limit (tests may set their own TIMEOUT property).
ctest_rc=0
run ctest --test-dir build -j"$(nproc)" --output-on-failure --timeout 600 "$@" ||
  ctest_rc=$?

# -------------------------------------------------------- install check
TMP=$(mktemp -d "${TMPDIR:-/tmp}/faiss_ehi_install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX="$TMP/prefix"
install_rc=0
# Called as `install_check || ...`, where bash ignores set -e inside the
# function: every step therefore returns on failure explicitly.
install_check() {
  log "+ cmake --install build --prefix $PREFIX"
  cmake --install build --prefix "$PREFIX" >"$TMP/install.log" ||
    { cat "$TMP/install.log"; return 1; }
  log "installed $(grep -c '^-- Installing' "$TMP/install.log") files under $PREFIX"
  run cmake -S tests/consumer -B "$TMP/consumer-build" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX" || return 1
  # The consumer must have found the installed package, not the build tree.
  local found
  found=$(sed -n 's/^faiss_ehi_DIR:PATH=//p' \
          "$TMP/consumer-build/CMakeCache.txt") || return 1
  if [[ $found != "$PREFIX"/* ]]; then
    log "consumer found faiss_ehi at '$found', not under $PREFIX"
    return 1
  fi
  log "consumer uses $found"
  run cmake --build "$TMP/consumer-build" -j"$(nproc)" || return 1
  run "$TMP/consumer-build/consumer" || return 1
  # The C++ drop-in: a program that knows only Faiss, linked with the
  # installed faiss_ehi::dropin (CMake) and with pkg-config's
  # dropin_ldflags (any other build system), runs EHI keys.
  run "$TMP/consumer-build/tutorial_dropin" "EHI8x2,Flat" || return 1
  run "$TMP/consumer-build/tutorial_dropin" "IDMap,EHI8x2,SQ8" || return 1
  local pcdir ldflags
  pcdir=$(dirname "$(compgen -G "$PREFIX/lib*/pkgconfig/faiss_ehi.pc" | head -n1)")
  ldflags=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=dropin_ldflags faiss_ehi) ||
    return 1
  # shellcheck disable=SC2086 # the flags are a word list
  run c++ -std=c++17 -O1 tests/dropin/tutorial.cpp -o "$TMP/tutorial_pc" \
    $ldflags || return 1
  run "$TMP/tutorial_pc" "PCA16,EHI8x1,Flat" || return 1
  # The drop-in: an installed trainer must be usable by linking it alone.
  if compgen -G "$PREFIX/lib*/libfaiss_ehi_trainer.a" >/dev/null; then
    [[ -x $TMP/consumer-build/consumer_torch ]] ||
      { log "the trainer is installed but consumer_torch was not built"; return 1; }
    run "$TMP/consumer-build/consumer_torch" || return 1
  fi
}
install_check || install_rc=$?

# --------------------------------------------------------- Python tests
# The Python package (contrib/python, built into build/python) under
# Debian's /usr/bin/python3 and its python3-faiss: pytest on tests/python,
# then an import of the copy installed into the temporary prefix.
python_rc=0
python_state=passed
python_tests() {
  local py=/usr/bin/python3
  if ! "$py" -c 'import faiss' >/dev/null 2>&1; then
    log "SKIPPED the Python tests: python3-faiss is not installed for $py (apt-get install python3-faiss)"
    python_state="SKIPPED (no python3-faiss)"
    return 0
  fi
  if ! compgen -G "build/python/faiss_ehi/_faiss_ehi*.so" >/dev/null; then
    log "the Python package was not built: see the 'faiss_ehi: Python package' line of the cmake output"
    return 1
  fi
  run env PYTHONPATH="$ROOT/build/python${PYTHONPATH:+:$PYTHONPATH}" \
    PYTHONDONTWRITEBYTECODE=1 "$py" -m pytest -q -p no:cacheprovider \
    tests/python || return 1
  local site
  site=$(find "$PREFIX" -type d -name faiss_ehi -path '*-packages/*' -print -quit)
  [[ -n $site ]] || { log "faiss_ehi not installed under $PREFIX"; return 1; }
  run env PYTHONPATH="$(dirname "$site")" PYTHONDONTWRITEBYTECODE=1 "$py" -c \
    'import faiss, faiss_ehi; i = faiss_ehi.index_factory(8, "EHI2x2"); assert isinstance(i, faiss.IndexIVF); print("installed faiss_ehi", faiss_ehi.__version__, "at", faiss_ehi.__file__)' ||
    return 1
}
python_tests || python_rc=$?

# ------------------------------------------------------ Debian packages
# After the Python tests: the packages are installed into /usr for the
# check only, and scripts/deb_check.sh removes them again on any exit.
deb_rc=0
deb_state=passed
if ! command -v dpkg-deb >/dev/null 2>&1; then
  log "SKIPPED the Debian packages: dpkg-deb not found (not a Debian system)"
  deb_state="SKIPPED (no dpkg-deb)"
else
  run bash scripts/deb_check.sh || deb_rc=$?
fi

# ------------------------------------------- sanitizer and fuzz smoke
# ASan+UBSan and TSan builds of the smoke suite, and every fuzz target for
# a fixed number of executions (scripts/sanitizer_smoke.sh says what).
# SANITIZER_SMOKE=0 skips it (say so when you report a run).
sanitizer_rc=0
sanitizer_state=passed
if [[ ${SANITIZER_SMOKE:-1} == 0 ]]; then
  log "SKIPPED the sanitizer and fuzz smoke (SANITIZER_SMOKE=0)"
  sanitizer_state="SKIPPED (SANITIZER_SMOKE=0)"
else
  run bash scripts/sanitizer_smoke.sh || sanitizer_rc=$?
fi

# -------------------------------------------------------------- summary
if [[ $ctest_rc -eq 0 ]]; then
  log "ctest: passed"
else
  log "ctest: FAILED (exit $ctest_rc)"
fi
if [[ $install_rc -eq 0 ]]; then
  log "install check (tests/consumer): passed"
else
  log "install check (tests/consumer): FAILED (exit $install_rc)"
fi
if [[ $python_rc -eq 0 ]]; then
  log "Python tests (tests/python): $python_state"
else
  log "Python tests (tests/python): FAILED (exit $python_rc)"
fi
if [[ $deb_rc -eq 0 ]]; then
  log "Debian packages (scripts/deb_check.sh): $deb_state"
else
  log "Debian packages (scripts/deb_check.sh): FAILED (exit $deb_rc)"
fi
if [[ $sanitizer_rc -eq 0 ]]; then
  log "sanitizer and fuzz smoke (scripts/sanitizer_smoke.sh): $sanitizer_state"
else
  log "sanitizer and fuzz smoke (scripts/sanitizer_smoke.sh): FAILED (exit $sanitizer_rc)"
fi
if [[ $ctest_rc -ne 0 || $install_rc -ne 0 || $python_rc -ne 0 ||
      $deb_rc -ne 0 || $sanitizer_rc -ne 0 ]]; then
  log "FAILED after ${SECONDS}s ($ROOT)"
  exit 1
fi
log "all passed in ${SECONDS}s"
