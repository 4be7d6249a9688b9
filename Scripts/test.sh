#!/usr/bin/env bash
# Builds hdlabel and runs every test: unit tests, CLI tests and the multi-rank MPI tests.
# Installs its own system dependencies when run as root (Scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/deps.sh
command -v swift >/dev/null || { echo "test.sh: swift not found on PATH" >&2; exit 1; }
echo "== swift build" >&2
swift build
echo "== swift test (unit + CLI)" >&2
swift test 2>&1 | tee /tmp/hdlabel-swift-test.log | grep -vE "^Test Case '.*' (started|passed)" || { echo "swift test failed" >&2; exit 1; }
if [ -x Scripts/mpi-tests.sh ]; then
  echo "== multi-rank MPI tests" >&2
  Scripts/mpi-tests.sh
fi
if [ -x Scripts/py-tests.sh ]; then
  echo "== python tests (embed.py, retrain.py)" >&2
  HDLABEL_BIN="$PWD/.build/debug/hdlabel" Scripts/py-tests.sh
fi
if [ -x Scripts/bench-quick.sh ]; then
  echo "== quick quality benchmark" >&2
  Scripts/bench-quick.sh
fi
echo "== all tests passed" >&2
