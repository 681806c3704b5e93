#!/usr/bin/env bash
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
#
# The project's main job (README): set up and build (scripts/setup.sh),
# then run the demo build/benchs/ehi_demo. By default it routes
# Fashion-MNIST (from the Debian package dataset-fashion-mnist) through an
# EHI tree and reports recall against the fraction of vectors visited.
# Arguments are passed to the demo (gflags), e.g.
#   bash scripts/main_job.sh --plot fmnist.png
#   bash scripts/main_job.sh --help
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

DEMO=build/benchs/ehi_demo
if [[ ! -x $DEMO ]]; then
  printf '[main_job] ERROR: %s was not built (see the build output above)\n' \
    "$DEMO" >&2
  exit 1
fi
printf '[main_job] + %s %s\n' "$DEMO" "$*"
exec "$DEMO" "$@"
