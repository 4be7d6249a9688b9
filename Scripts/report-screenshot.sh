#!/usr/bin/env bash
# Renders an hdlabel report in headless Chromium and writes a PNG screenshot of it.
#   Scripts/report-screenshot.sh report.html shot.png [HEIGHT]
# Window 1280 x HEIGHT (default 4000). Needs Debian's `chromium` (apt-get install -y chromium); exits 2 without it.
# Exits non-zero when Chromium fails or writes no image.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 REPORT.html OUT.png [HEIGHT]" >&2; exit 64; fi
html="$1"; png="$2"; height="${3:-4000}"
browser="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$browser" ]; then echo "report-screenshot.sh: chromium not installed (apt-get install -y chromium)" >&2; exit 2; fi
[ -f "$html" ] || { echo "report-screenshot.sh: no such file: $html" >&2; exit 1; }
abs="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
out="$(cd "$(dirname "$png")" && pwd)/$(basename "$png")"
rm -f "$out"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# No network is needed: the page has no external resource. Chromium's D-Bus complaints go to the log only.
log="$profile/chromium.log"
if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
        --screenshot="$out" --window-size=1280,"$height" "file://$abs" >"$log" 2>&1; then
    cat "$log" >&2; echo "report-screenshot.sh: chromium failed" >&2; exit 1
fi
if [ ! -s "$out" ]; then cat "$log" >&2; echo "report-screenshot.sh: no screenshot written" >&2; exit 1; fi
echo "$out"
