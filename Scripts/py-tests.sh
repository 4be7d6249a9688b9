#!/usr/bin/env bash
# Python tests of the ML edges (Scripts/embed.py, Scripts/retrain.py): Tests/python under pytest in .venv/.
# Creates/updates the venv with `Scripts/venv.sh --edges`. When that fails because the package registry cannot be
# reached (no network), the tests are skipped with a message and exit 0; any other failure fails.
# Needs hdlabel: uses HDLABEL_BIN, else .build/release/hdlabel, else .build/debug/hdlabel, else runs `swift build`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "== python venv (Scripts/venv.sh --edges)" >&2
if ! Scripts/venv.sh --edges >"$log" 2>&1; then
    probe="$(mktemp -d)"
    if ! "${PYTHON:-python3}" -m pip download --no-deps --quiet -d "$probe" pytest==9.2.0 >/dev/null 2>&1; then
        rm -rf "$probe"
        cat "$log" >&2
        echo "py-tests.sh: skipped: the venv could not be created and the package registry is unreachable (no network)"
        exit 0
    fi
    rm -rf "$probe"
    cat "$log" >&2
    echo "py-tests.sh: Scripts/venv.sh --edges failed (the registry is reachable, so this is a real failure)" >&2
    exit 1
fi
tail -1 "$log" >&2
if [ -z "${HDLABEL_BIN:-}" ]; then
    for c in .build/release/hdlabel .build/debug/hdlabel; do
        if [ -x "$c" ]; then HDLABEL_BIN="$root/$c"; break; fi
    done
    if [ -z "${HDLABEL_BIN:-}" ]; then
        swift build >&2
        HDLABEL_BIN="$root/.build/debug/hdlabel"
    fi
fi
export HDLABEL_BIN
echo "== pytest Tests/python (hdlabel: $HDLABEL_BIN)" >&2
exec .venv/bin/python -m pytest -q -p no:cacheprovider Tests/python "$@"
