#!/usr/bin/env bash
# The main job. Until the eval package's demo grid exists, it runs the loss benchmarks in their quick CPU
# mode (fused vs reference in the same run) and prints the comparison table; the JSON lands in runs/.
source "$(dirname "$0")/env.sh"
mkdir -p runs
out="runs/bench-$(date -u +%Y%m%dT%H%M%SZ).json"
pytest bench/ -q -k quick --benchmark-only --benchmark-json "$out" "$@"
python -m bench.summarize "$out"
