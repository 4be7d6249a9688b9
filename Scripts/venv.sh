#!/usr/bin/env bash
# Creates .venv/ at the repository root with the pinned Python baseline dependencies.
#   Scripts/venv.sh            # benchmark baselines only (scikit-learn, numpy)
#   Scripts/venv.sh --embed    # also the WordNet embedding dependencies (torch, sentence encoder)
#   Scripts/venv.sh --edges    # also Scripts/embed.py / Scripts/retrain.py (torchvision, timm, open_clip, pytest)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
export OMP_WAIT_POLICY=PASSIVE
if [ ! -x "$root/.venv/bin/python" ]; then
    "$py" -m venv "$root/.venv"
fi
"$root/.venv/bin/python" -m pip install --quiet --upgrade pip
"$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-bench.txt"
case "${1:-}" in
    --embed) "$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-embed.txt" ;;
    # One resolver run over both files, so the torch pin holds for every package that depends on torch.
    --edges) "$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-embed.txt" \
                 -r "$root/Scripts/requirements-edges.txt" ;;
    "") ;;
    *) echo "venv.sh: unknown option '$1' (use --embed or --edges)" >&2; exit 2 ;;
esac
"$root/.venv/bin/python" -c 'import numpy, sklearn; print("venv ready: numpy", numpy.__version__, "scikit-learn", sklearn.__version__)'
