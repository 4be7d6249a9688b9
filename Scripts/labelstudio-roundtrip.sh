#!/usr/bin/env bash
# The review loop against a real Label Studio server, as a new user would run it (docs/review.md):
#
#   1. .venv-labelstudio/ with the pinned label-studio from PyPI (Scripts/requirements-labelstudio.txt)
#   2. the demo's run (runs/demo/hdl.csv; Scripts/demo.sh is run first when it is missing)
#   3. hdlabel review export (CSV, for the ids) -> hdlabel items (the batch's and the seeds' PNGs from the Debian
#      package's IDX files) -> hdlabel review export --items --local-files-root (Label Studio tasks + config)
#   4. label-studio on 127.0.0.1 with a throwaway data directory; Scripts/labelstudio_roundtrip.py creates the
#      project, connects a local-files storage, imports the tasks, checks that every task's image is served
#      (HTTP 200, a PNG of the written size), answers every task as a scripted reviewer (the held-out truth),
#      exports, and with Chromium installed saves a screenshot of one logged-in task page
#   5. hdlabel review import -> new seeds (checked: every reviewed sample is a seed with the reviewer's answer)
#   6. hdlabel label with the new seeds; accuracy before and after on the same rows; the server is stopped
#
# Not part of Scripts/test.sh: it installs a web application (about 1 GB). Needs PyPI for step 1 only; the server
# and the browser reach nothing but 127.0.0.1 (version check, analytics and converter downloads are turned off).
# Environment: LS_COUNT tasks (default 20), LS_PORT (default 8090), LS_SCALE PNG pixel repetition (default 4),
#   LS_WORK output directory (default runs/labelstudio), CHROMIUM browser binary (default: chromium on PATH).
# Outputs in LS_WORK: review.csv, review.json (+ .config.xml), items/, export.json, seeds2.npy, run2.csv,
#   screenshot.png, server.log, roundtrip.md (the summary, also printed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
COUNT=${LS_COUNT:-20}
PORT=${LS_PORT:-8090}
SCALE=${LS_SCALE:-4}
WORK=${LS_WORK:-runs/labelstudio}
VENV=.venv-labelstudio
BIN=.build/release/hdlabel
DATA=data/demo
RUN=runs/demo/hdl.csv
EMAIL=reviewer@example.com
PASSWORD=hdlabel-review-$$

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'labelstudio-roundtrip: error: %s\n' "$*" >&2; exit 1; }
[[ $COUNT =~ ^[0-9]+$ ]] && [ "$COUNT" -ge 1 ] || die "LS_COUNT must be a positive integer, got '$COUNT'"
[[ $PORT =~ ^[0-9]+$ ]] || die "LS_PORT must be a port number, got '$PORT'"
[[ $SCALE =~ ^[0-9]+$ ]] && [ "$SCALE" -ge 1 ] && [ "$SCALE" -le 16 ] || die "LS_SCALE must be in 1..16, got '$SCALE'"

say "1/6 Label Studio venv ($VENV)"
want=$(sed -n 's/^label-studio==//p' Scripts/requirements-labelstudio.txt)
if [ ! -x "$VENV/bin/label-studio" ] || ! "$VENV/bin/python" -m pip show label-studio 2>/dev/null | grep -qx "Version: $want" \
   || ! "$VENV/bin/python" -c 'import websocket' 2>/dev/null; then
  command -v python3 >/dev/null || die "python3 not found"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet -r Scripts/requirements-labelstudio.txt \
    || die "pip could not install Scripts/requirements-labelstudio.txt (PyPI is needed once, for this step)"
fi
echo "label-studio $("$VENV/bin/python" -m pip show label-studio | sed -n 's/^Version: //p')" >&2

say "2/6 the demo's run ($RUN)"
if [ ! -f "$RUN" ] || [ ! -f "$DATA/split.json" ] || [ ! -x "$BIN" ]; then
  echo "missing: running Scripts/demo.sh first" >&2
  Scripts/demo.sh
fi
swift build -c release >/dev/null 2>&1 || die "swift build -c release failed"
rm -rf "$WORK"; mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

say "3/6 review export -> items -> Label Studio tasks ($COUNT samples)"
"$BIN" review export "$RUN" "$DATA/embeddings.npy" --count "$COUNT" --classes "$DATA/classes.txt" -o "$WORK/review.csv"
"$BIN" items "$DATA" -o "$WORK/items" --ids "$WORK/review.csv" --scale "$SCALE"
"$BIN" review export "$RUN" "$DATA/embeddings.npy" --count "$COUNT" --classes "$DATA/classes.txt" \
  --items "$WORK/items/items.csv" --local-files-root "$WORK" -o "$WORK/review.json"
# The scripted reviewer answers with the held-out truth (a perfect reviewer; real ones are slower).
"$VENV/bin/python" - "$WORK/review.json" "$DATA/truth.npy" "$DATA/classes.txt" "$WORK/answers.json" <<'EOF'
import json, sys, numpy as np
tasks, truth = json.load(open(sys.argv[1])), np.load(sys.argv[2])
names = [l.strip() for l in open(sys.argv[3]) if l.strip()]
json.dump({str(t["data"]["sample_id"]): names[int(truth[t["data"]["sample_id"]])] for t in tasks}, open(sys.argv[4], "w"))
EOF

say "4/6 Label Studio on 127.0.0.1:$PORT (data in $WORK/ls-data)"
"$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $PORT))" 2>/dev/null \
  || die "port $PORT on 127.0.0.1 is in use; set LS_PORT"
mkdir -p "$WORK/ls-data"
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -- -"$SERVER_PID" 2>/dev/null || kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 -- -"$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_server EXIT
(
  cd "$WORK"
  export LABEL_STUDIO_BASE_DATA_DIR="$WORK/ls-data" LOCAL_FILES_SERVING_ENABLED=true LOCAL_FILES_DOCUMENT_ROOT="$WORK" \
         LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false CONVERTER_DOWNLOAD_RESOURCES=false SENTRY_DSN= FRONTEND_SENTRY_DSN=
  unset HOST
  exec setsid "$ROOT/$VENV/bin/label-studio" start --internal-host 127.0.0.1 --port "$PORT" --no-browser \
    --username "$EMAIL" --password "$PASSWORD"
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
up=no
for _ in $(seq 180); do
  if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" 2>/dev/null; then up=yes; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 1
done
[ "$up" = yes ] || { tail -n 30 "$WORK/server.log" >&2; die "Label Studio did not start (log: $WORK/server.log)"; }
echo "up (pid $SERVER_PID)" >&2

SHOT=()
browser="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -n "$browser" ]; then SHOT=(--screenshot "$WORK/screenshot.png" --chromium "$browser"); else echo "chromium not installed: no screenshot" >&2; fi
"$VENV/bin/python" Scripts/labelstudio_roundtrip.py --url "http://127.0.0.1:$PORT" --email "$EMAIL" --password "$PASSWORD" \
  --tasks "$WORK/review.json" --config "$WORK/review.json.config.xml" --images-dir "$WORK/items/images" \
  --answers "$WORK/answers.json" --export "$WORK/export.json" --png-size $((28 * SCALE)) --summary "$WORK/api.json" "${SHOT[@]}" \
  2>&1 | tee "$WORK/api.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "the Label Studio round trip failed (above)"
stop_server; SERVER_PID=
echo "server stopped" >&2

say "5/6 review import -> new seeds"
"$BIN" review import "$WORK/export.json" "$DATA/seeds.npy" --classes "$DATA/classes.txt" -o "$WORK/seeds2.npy" 2>&1 | tee "$WORK/import.log"
CHECK=$("$VENV/bin/python" - "$WORK/export.json" "$DATA/seeds.npy" "$WORK/seeds2.npy" "$WORK/answers.json" "$DATA/classes.txt" <<'EOF'
import json, sys, numpy as np
export, s0, s1 = json.load(open(sys.argv[1])), np.load(sys.argv[2]), np.load(sys.argv[3])
answers = json.load(open(sys.argv[4])); names = [l.strip() for l in open(sys.argv[5]) if l.strip()]
ids = [t["data"]["sample_id"] for t in export]
bad = [i for i in ids if s1[i] < 0 or names[int(s1[i])] != answers[str(i)]]
untouched = int(((s0 >= 0) & (s1 != s0)).sum())
others = int(((s0 < 0) & (s1 >= 0)).sum()) - len(ids)
if bad or untouched or others:
    sys.exit(f"seeds wrong: {len(bad)} reviewed samples without the reviewer's label, {untouched} old seeds changed, {others} unexpected new seeds")
print(f"{len(ids)} reviewed samples are now seeds with the reviewer's label; {(s0 >= 0).sum()} old seeds unchanged; {(s1 >= 0).sum()} seeds in all")
EOF
) || die "$CHECK"
echo "$CHECK" >&2

say "6/6 relabel with the new seeds"
"$BIN" label "$DATA/embeddings.npy" "$WORK/seeds2.npy" -o "$WORK/run2.csv" >"$WORK/label2.log" 2>&1 || { tail "$WORK/label2.log" >&2; die "hdlabel label failed"; }
acc() { "$BIN" evaluate "$1" "$DATA/truth.npy" "$WORK/seeds2.npy" | awk '{ for (i = 1; i < NF; i++) if ($i == "accuracy") { print $(i + 1); exit } }'; }
BEFORE=$(acc "$RUN"); AFTER=$(acc "$WORK/run2.csv")

api() { "$VENV/bin/python" -c "import json,sys; d=json.load(open('$WORK/api.json')); print(eval(sys.argv[1]))" "$1"; }
{
  echo "# Label Studio round trip ($(date -u +%Y-%m-%d), label-studio $want)"
  echo
  echo "Command: \`LS_COUNT=$COUNT LS_SCALE=$SCALE Scripts/labelstudio-roundtrip.sh\` on the demo's run ($RUN)."
  echo
  echo "- tasks exported: $(api "d['tasks']"), imported by the server: $(api "d['imported']") ($(api "d['with_prediction']") with hdlabel's label as a prediction)"
  echo "- images served to the logged-in reviewer: $(api "d['images_checked']") (each task's item and its nearest labeled sample; HTTP 200, PNG $((28 * SCALE)) x $((28 * SCALE))); without a login: HTTP $(api "d['anonymous_status']")"
  echo "- answered by the scripted reviewer: $(api "d['answered']") ($(api "d['changed']") changed hdlabel's label); exported with annotations: $(api "d['exported_annotated']")"
  echo "- review import: $CHECK"
  echo "- accuracy on the rows unlabeled in both runs: before review $BEFORE, after relabeling with the new seeds $AFTER"
  if [ -f "$WORK/screenshot.png" ]; then echo "- screenshot of one task page: $WORK/screenshot.png ($(api "d['screenshot']['page']"))"; fi
} > "$WORK/roundtrip.md"
cat "$WORK/roundtrip.md"
