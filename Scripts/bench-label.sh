#!/usr/bin/env bash
# Labeling speed against a peer pipeline, same run, interleaved; writes benchmarks/results/label-speed.md.
#   Scripts/bench-label.sh                       # 200,000 x 128 (100 classes) and 50,000 x 384 (50 classes), 1 % labels
#   SIZES="20000x128x10" REPEATS=3 Scripts/bench-label.sh
#   NO_SGEMM="200000x128x100" ...    # skip the sgemm run for these sizes (`bench graph` also builds the graph: 2x time)
#   SUMMARY_SIZES="..." ...          # sizes in the table (default SIZES; runs of other sizes stay in $DATA/runs)
#   GRAPH=approx ...                 # our graph builder (default exact: the same exact kNN graph as the peer's)
#   SUMMARY_ONLY=1 ...               # rewrite the table from the runs kept in $DATA/runs (no new runs)
# Per size and repeat, one after the other: `hdlabel label` (release, HDL defaults; phases from its manifest's
# timingsSeconds, the labeling split into pilot / layers / refinement by the arrival times of its HDL log lines),
# the peer (Scripts/label_peer.py: faiss IndexFlatIP exact kNN + 30 iterations of Zhou-style propagation in scipy,
# the venv's python), and `hdlabel bench graph` (a plain cblas_sgemm of all n x n x d products, and of the upper
# triangle's only: what our builder multiplies, each unordered pair once). Medians over
# repeats. Data: clustered synthetic float32 (label_peer.py gen), cached in $DATA (default /tmp/hdlabel-bench-label).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"200000x128x100 50000x384x50"}
REPEATS=${REPEATS:-1}
GRAPH=${GRAPH:-exact}; export GRAPH
DATA=${DATA:-/tmp/hdlabel-bench-label}
OUT=${OUT:-benchmarks/results/label-speed.md}
mkdir -p "$DATA"
swift build -c release >/dev/null
BIN=$(swift build -c release --show-bin-path)
PY=.venv/bin/python
[ -x "$PY" ] || Scripts/venv.sh
"$PY" -c 'import faiss' 2>/dev/null || "$PY" -m pip install --quiet faiss-cpu==1.15.1
export OMP_WAIT_POLICY=PASSIVE   # faiss' OpenMP threads must not spin while the other programs run
NO_SGEMM=${NO_SGEMM:-}
SUMMARY_SIZES=${SUMMARY_SIZES:-$SIZES}
runs="$DATA/runs"; mkdir -p "$runs"
if [ -z "${SUMMARY_ONLY:-}" ]; then   # SUMMARY_ONLY=1: only rewrite the table from the runs kept in $DATA/runs
for size in $SIZES; do rm -f "$runs"/*-"$size"-*; done

# Runs a command, recording the arrival time of every stderr line (seconds since start) in $1.
stamp() {
    local out=$1; shift
    python3 - "$out" "$@" <<'PY'
import json, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
lines = []
for line in p.stderr:
    lines.append([time.monotonic() - t0, line.rstrip("\n")])
    sys.stderr.write(line)
rc = p.wait()
json.dump({"wall": time.monotonic() - t0, "rc": rc, "lines": lines}, open(out, "w"))
sys.exit(rc)
PY
}

for size in $SIZES; do
    IFS=x read -r n d c <<<"$size"
    per=$(( n / 100 / c )); [ "$per" -ge 1 ] || per=1
    e="$DATA/e-$size.npy"; l="$DATA/l-$size.npy"; t="$DATA/t-$size.npy"
    [ -f "$e" ] || "$PY" Scripts/label_peer.py gen "$e" "$l" "$t" "$n" "$d" "$c" "$per"
    for r in $(seq "$REPEATS"); do
        echo "== $size repeat $r: hdlabel label" >&2
        stamp "$runs/ours-$size-$r.json" "$BIN/hdlabel" label "$e" "$l" -o "$runs/ours-$size-$r.csv" --graph "$GRAPH"
        echo "== $size repeat $r: peer (faiss + scipy)" >&2
        "$PY" Scripts/label_peer.py run "$e" "$l" --truth "$t" --json "$runs/peer-$size-$r.json" >/dev/null
        case " $NO_SGEMM " in *" $size "*) continue ;; esac
        echo "== $size repeat $r: plain sgemm (hdlabel bench graph)" >&2
        "$BIN/hdlabel" bench graph --n "$n" --d "$d" --k 30 --repeats 1 | tee "$runs/sgemm-$size-$r.txt" >&2
    done
done
fi

python3 - "$runs" "$OUT" "$REPEATS" "$SUMMARY_SIZES" "$BIN/hdlabel" "$(nproc)" "${OPENBLAS_CORETYPE:-(unset)}" <<'PY'
import json, os, re, statistics, subprocess, sys
runs, out, repeats, sizes, hd, cores, coretype = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5], sys.argv[6], sys.argv[7]
def med(v): return statistics.median(v) if v else float("nan")
def truth_acc(size, r):
    import numpy as np
    dd = os.path.dirname(runs)
    t = np.load(f"{dd}/t-{size}.npy"); s = np.load(f"{dd}/l-{size}.npy")
    lab = [line.split(",") for line in open(f"{runs}/ours-{size}-{r}.csv").read().splitlines()[1:]]
    pred = np.array([int(x[1]) if x[1] != "" else -1 for x in lab])
    un = s < 0
    return float((pred[un] == t[un]).mean())
rows = []
for size in sizes:
    cols = {k: [] for k in ["total", "graph", "label", "pilot", "layers", "refine", "peer", "peer_graph", "peer_prop", "sgemm", "half", "acc", "peer_acc", "solves", "iters"]}
    for r in range(1, repeats + 1):
        o = json.load(open(f"{runs}/ours-{size}-{r}.json"))
        man = json.load(open(f"{runs}/ours-{size}-{r}.csv.manifest.json"))
        ts = man["timingsSeconds"]
        lines = o["lines"]
        def at(pat):
            hits = [t for t, l in lines if re.search(pat, l)]
            return hits[-1] if hits else None
        g_end = at(r"kNN graph: 100% ")
        p_end = at(r"HDL: pilot work")
        ref = at(r"HDL: refinement")
        end = at(r"HDL: work after the pilot")
        before_ref = max([t for t, l in lines if ref is not None and t < ref and "HDL:" in l], default=None)
        pilot = p_end - g_end
        refine = (ref - before_ref) if ref is not None else 0.0
        label = ts["label"]
        cols["pilot"].append(pilot); cols["refine"].append(refine); cols["layers"].append(label - pilot - refine)
        cols["total"].append(sum(ts.values())); cols["graph"].append(ts["graph"]); cols["label"].append(label)
        for t, l in lines:
            m = re.search(r"(pilot work|work after the pilot): (\d+) graph solves \((\d+) CG iterations", l)
            if m: cols["solves"].append(int(m.group(2))); cols["iters"].append(int(m.group(3)))
        p = json.load(open(f"{runs}/peer-{size}-{r}.json"))
        cols["peer"].append(p["total"]); cols["peer_graph"].append(p["graph"]); cols["peer_prop"].append(p["propagation"] + p["normalise"])
        cols["peer_acc"].append(p["accuracy"])
        try:
            txt = open(f"{runs}/sgemm-{size}-{r}.txt").read()
            row = [l for l in txt.splitlines() if l.startswith("| ") and l[2].isdigit()][0].split("|")
            cols["sgemm"].append(float(row[6]))
            if len(row) > 11: cols["half"].append(float(row[10]))
        except (OSError, IndexError):
            pass
        cols["acc"].append(truth_acc(size, r))
    solves = sum(cols["solves"]) / repeats; iters = sum(cols["iters"]) / repeats
    m = {k: med(v) for k, v in cols.items() if k not in ("solves", "iters")}
    rows.append((size, m, solves, iters, p))
head = ("| n × d, classes | ours total s | graph s | labeling s (pilot / layers / refinement) | graph solves, CG iterations | "
        "peer total s (faiss graph / propagation) | ours / peer | plain sgemm s | ours / sgemm | sgemm n²/2 s | ours / sgemm n²/2 | accuracy ours / peer |")
lines = ["# Labeling speed: `hdlabel label` against faiss + scipy, same run", "",
         "```sh", "Scripts/bench-label.sh   # defaults: SIZES=\"200000x128x100 50000x384x50\" REPEATS=1", "```", "",
         f"Machine: {cores} cores shared with other jobs (timings are noisy; medians of {repeats} interleaved repeat(s)). "
         f"OPENBLAS_CORETYPE={coretype}. Data: clustered synthetic float32 (`Scripts/label_peer.py gen`), 1 % labels "
         "(the first n/100/C rows of every class). Ours: release build, HDL defaults, `--graph " + os.environ.get("GRAPH", "exact") + "`, `timingsSeconds` of the manifest "
         "(total = read + normalise + graph + label + write); the labeling split comes from the arrival times of the HDL "
         "log lines (pilot = graph done → pilot line, refinement = last layer line → refinement line, layers = the rest). "
         "Peer: `Scripts/label_peer.py run` — faiss `IndexFlatIP` exact kNN (k = 10) on L2-normalised rows, "
         "30 iterations of F ← αSF + (1−α)Y in scipy (total excludes reading the file). Plain sgemm: `hdlabel bench "
         "graph --n N --d D --k 30 --repeats 1`, one `cblas_sgemm` of every n × n × d product, no top-k; sgemm n²/2: the "
         "same command's upper-triangle products only (row slabs × the columns from the slab on), what our builder "
         "multiplies since it scores each unordered pair once.", "",
         head, "|" + "---|" * (head.count("|") - 1)]
for size, m, solves, iters, p in rows:
    n, d, c = size.split("x")
    lines.append(f"| {int(n):,} × {d}, {c} | {m['total']:.1f} | {m['graph']:.1f} | {m['label']:.1f} ({m['pilot']:.1f} / {m['layers']:.1f} / {m['refine']:.1f}) | "
                 f"{solves:.0f}, {iters:.0f} | {m['peer']:.1f} ({m['peer_graph']:.1f} / {m['peer_prop']:.1f}) | {m['total'] / m['peer']:.2f}× | "
                 + (f"{m['sgemm']:.1f} | {m['total'] / m['sgemm']:.2f}× | " if m['sgemm'] == m['sgemm'] else "not run | – | ")
                 + (f"{m['half']:.1f} | {m['total'] / m['half']:.2f}× | " if m['half'] == m['half'] else "not run | – | ")
                 + f"{100 * m['acc']:.1f} / {100 * m['peer_acc']:.1f} |")
lines += ["", f"faiss {p['faiss']} ({p['omp_threads']} OpenMP threads); ours: OpenBLAS threads = cores, labeling threads = cores."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
