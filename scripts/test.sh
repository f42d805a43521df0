#!/usr/bin/env bash
# The test command: lint, the test suite (Triton kernels in the interpreter when there is no GPU),
# then the documented benchmark command, `pytest bench/ --benchmark-only` (the CPU configurations here; the GPU
# ones skip without a GPU), so that what the README tells users to run is what CI runs.
source "$(dirname "$0")/env.sh"
ruff check .
set +e
pytest tests/ -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "[test] pytest collected no tests: failing" >&2; exit 1; fi
[ "$rc" -eq 0 ] || exit "$rc"
pytest bench/ -q --benchmark-only
