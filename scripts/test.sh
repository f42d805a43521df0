#!/usr/bin/env bash
# The test command: lint, the test suite (Triton kernels in the interpreter when there is no GPU),
# then one untimed pass over the quick benchmarks so that they cannot rot.
source "$(dirname "$0")/env.sh"
ruff check .
set +e
pytest tests/ -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "[test] pytest collected no tests: failing" >&2; exit 1; fi
[ "$rc" -eq 0 ] || exit "$rc"
pytest bench/ -q -k quick --benchmark-disable
