#!/usr/bin/env bash
# Builds the deployment build (the one scripts/run.sh runs) and runs the end-to-end benchmark
# on it. Everything stays on 127.0.0.1. Options go to dtwin-bench, e.g.
#
#   Benchmarks/run.sh --messages 100000 --seconds 20
#   Benchmarks/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# valgrind counts the bridge's instructions per message; objcopy (binutils) makes the copy of
# the binary valgrind can read.
install_packages valgrind binutils
require_swift
build_release
exec "$DTWIN_RELEASE_BIN/dtwin-bench" "$@"
