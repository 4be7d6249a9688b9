#!/usr/bin/env bash
# kNN-graph builders on the same clustered data, one command: ours (approximate; exact extrapolated from a timed
# subset of query rows) against pynndescent 0.7.0 (warm: numba JIT timed apart) and faiss-cpu 1.15.1 IVF-Flat / HNSW.
# Writes benchmarks/results/graph.md (and the raw JSON beside it under benchmarks/results/graph/).
#   Scripts/bench-graph.sh [--sizes 200000x128,1000000x384] [--repeats 2] [--faiss-repeats 1] [--exact-rows 4096]
#                          [--peers pynndescent,ivf,hnsw] [--data DIR]
# Needs: swift, the venv with the peers (Scripts/venv.sh --graph). Speed is compared as ratios within this run:
# ours and pynndescent are interleaved --repeats times (median reported), faiss runs --faiss-repeats times.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sizes="200000x128,1000000x384"; repeats=2; frepeats=1; exact_rows=4096; peers="pynndescent,ivf,hnsw"; data="$root/.build/graph-data"
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) sizes="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --faiss-repeats) frepeats="$2"; shift 2 ;;
        --exact-rows) exact_rows="$2"; shift 2 ;;
        --peers) peers="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        *) echo "bench-graph.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
py="$root/.venv/bin/python"
[ -x "$py" ] || { echo "no .venv: run Scripts/venv.sh --graph" >&2; exit 2; }
swift build -c release --product hdlabel >&2
bin="$root/.build/release/hdlabel"
out="$root/benchmarks/results/graph"; mkdir -p "$out" "$data"
cmd="Scripts/bench-graph.sh --sizes $sizes --repeats $repeats --faiss-repeats $frepeats --exact-rows $exact_rows --peers $peers"
IFS=',' read -ra size_list <<< "$sizes"
IFS=',' read -ra peer_list <<< "$peers"
for s in "${size_list[@]}"; do
    n="${s%x*}"; d="${s#*x}"; f="$data/clustered-$n-$d.npy"
    [ -f "$f" ] || "$py" Scripts/gen_clustered.py -n "$n" -d "$d" -o "$f" >&2
    rm -f "$out/$s".*.json
    for r in $(seq 1 "$repeats"); do
        echo "== $s repeat $r: ours approx" >&2
        "$bin" bench graph --graph approx --input "$f" --k 10 --json "$out/$s.approx.$r.json" >&2
        if [[ ",$peers," == *",pynndescent,"* ]]; then
            echo "== $s repeat $r: pynndescent" >&2
            "$py" Scripts/graph_peers.py "$f" --k 10 --engines pynndescent --json "$out/$s.pynndescent.$r.json" >&2
        fi
        echo "== $s repeat $r: ours exact on $exact_rows query rows" >&2
        "$bin" bench graph --graph exact --input "$f" --k 10 --exact-rows "$exact_rows" --json "$out/$s.exact.$r.json" >&2
    done
    for e in "${peer_list[@]}"; do
        [ "$e" = pynndescent ] && continue
        for r in $(seq 1 "$frepeats"); do
            echo "== $s repeat $r: faiss $e" >&2
            "$py" Scripts/graph_peers.py "$f" --k 10 --engines "$e" --json "$out/$s.$e.$r.json" >&2
        done
    done
done
"$py" - "$out" "$cmd" "$sizes" > "$root/benchmarks/results/graph.md" <<'PYEOF'
import glob, json, os, statistics, sys, platform, datetime
out, cmd, sizes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
def load(pattern):
    rows = []
    for p in sorted(glob.glob(os.path.join(out, pattern))):
        r = json.load(open(p)); rows += r if isinstance(r, list) else [r]
    return rows
print("# kNN graph builders: ours vs pynndescent and faiss\n")
print(f"Command: `{cmd}`  \n{datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores, shared with other builds: "
      "absolute seconds are noisy, compare the ratios, which come from interleaved runs).\n")
print("k = 10, recall@10 on the same 1,000 deterministic sample rows (95 % CI over rows). Build s = median over repeats. "
      "ratio = engine seconds / pynndescent warm seconds (and / our exact seconds); < 1 is faster.\n")
print("| engine | n × d | build s | recall@10 (95% CI) | peak RSS MiB | × pynndescent warm | × our exact | notes |")
print("|---|---|---|---|---|---|---|---|")
notes = []
for s in sizes:
    eng = {}
    for name in ["approx", "exact", "pynndescent", "ivf", "hnsw"]:
        rs = load(f"{s}.{name}.*.json")
        if rs: eng[name] = rs
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in eng.items()}
    for name, rs in eng.items():
        r = rs[0]
        if name in ("approx", "exact"):
            rec = r.get("recall"); rss = r["peakRSSBytes"]
            rtxt = f"{rec['recall']:.4f} ({rec['lower']:.4f}–{rec['upper']:.4f})" if rec else "1 (exact)"
            label = "hdlabel " + name
            note = (f"extrapolated from {r['parameters'].get('exactRows')} query rows × all rows" if r.get("extrapolated") else
                    "cells %s, overlap %s, refine %s, largest cell %s" % tuple(r["parameters"].get(x) for x in ("cells", "overlap", "refineRounds", "largestCell")))
            note += f"; {r.get('kernel', '')}"
        else:
            rss = max(x["peak_rss_bytes"] for x in rs)
            rtxt = f"{r['recall']:.4f} ({r['lower']:.4f}–{r['upper']:.4f})"
            label = {"pynndescent": "pynndescent 0.7.0 (warm)", "ivf": "faiss IVF-Flat nprobe 32", "hnsw": "faiss HNSW M32 ef64"}[name]
            if name == "pynndescent":
                note = "numba JIT %.1f s not included; n_neighbors 30 → 10" % statistics.median(x["jit_seconds"] for x in rs)
            else:
                note = ("search extrapolated from %s query rows; " % r["parameters"].get("timed_query_rows") if r.get("extrapolated") else "") + \
                       "build %.1f s; %s" % (r["build_seconds"], ", ".join(f"{k} {v}" for k, v in r["parameters"].items() if k != "timed_query_rows"))
            if r.get("blas"): note += "; " + r["blas"]
        n, d = s.split("x")
        times = ", ".join("%.1f" % x["seconds"] for x in rs)
        rp = "%.2f" % (med[name] / med["pynndescent"]) if "pynndescent" in med else "-"
        rx = "%.3f" % (med[name] / med["exact"]) if "exact" in med else "-"
        print(f"| {label} | {int(n):,} × {d} | {med[name]:.1f} ({times}) | {rtxt} | {rss / 2**20:.0f} | {rp} | {rx} | {note} |")
print("\nPeak RSS: the whole process (embeddings included; 10⁶ × 384 float32 = 1,465 MiB).")
PYEOF
echo "wrote benchmarks/results/graph.md" >&2
