#!/usr/bin/env bash
# Creates .venv/ at the repository root with the pinned Python baseline dependencies.
#   Scripts/venv.sh            # benchmark baselines only (scikit-learn, numpy)
#   Scripts/venv.sh --embed    # also the WordNet embedding dependencies (torch, sentence encoder)
#   Scripts/venv.sh --edges    # also Scripts/embed.py / Scripts/retrain.py (torchvision, timm, open_clip, pytest)
#   Scripts/venv.sh --noise    # also cleanlab (label-issue baseline of `hdlabel bench noise`)
#   Scripts/venv.sh --graph    # also the kNN-graph peers of Scripts/bench-graph.sh (faiss-cpu, pynndescent, numba)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
export OMP_WAIT_POLICY=PASSIVE
if [ ! -x "$root/.venv/bin/python" ]; then
    "$py" -m venv "$root/.venv"
fi
"$root/.venv/bin/python" -m pip install --quiet --upgrade pip
"$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-bench.txt"
for opt in "$@"; do
    case "$opt" in
        --embed) "$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-embed.txt" ;;
        # One resolver run over both files, so the torch pin holds for every package that depends on torch.
        --edges) "$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-embed.txt" \
                     -r "$root/Scripts/requirements-edges.txt" ;;
        --noise) "$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-noise.txt" ;;
        --graph) "$root/.venv/bin/python" -m pip install --quiet -r "$root/Scripts/requirements-graph.txt" ;;
        *) echo "venv.sh: unknown option '$opt' (known: --embed --edges --noise --graph)" >&2; exit 2 ;;
    esac
done
"$root/.venv/bin/python" -c 'import numpy, sklearn; print("venv ready: numpy", numpy.__version__, "scikit-learn", sklearn.__version__)'
