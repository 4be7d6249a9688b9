#!/usr/bin/env bash
# Quick label-quality benchmark (part of Scripts/test.sh): 5,000 Fashion-MNIST rows, 10 labels/class, balanced and
# rho=10, one seed; every method, plus scikit-learn baselines when .venv/ exists. Fails when any method scores NaN or
# below chance. Skips with a message when the Fashion-MNIST package is absent (not root: Scripts/deps.sh says so).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ -z "${HDLABEL_FASHION_MNIST:-}" ]; then
  echo "bench-quick.sh: skipped: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"; exit 0
fi
BIN=${HDLABEL_BIN:-.build/debug/hdlabel}
[ -x "$BIN" ] || swift build
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$BIN" bench quality --quick --out "$out" | tail -n 12
