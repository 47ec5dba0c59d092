#!/usr/bin/env bash
# Runs the benchmark harness from the repository root; flags go to benchrun.
#
#   bench/run.sh            full run (about 10 minutes), rewrites BENCHMARKS.md
#   bench/run.sh -smoke     a few seconds, writes nothing
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/cmd/benchrun "$@"
