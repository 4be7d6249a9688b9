#!/usr/bin/env bash
# Strong and weak scaling of the cluster job on this machine; writes benchmarks/results/scaling.md and the raw
# per-run timing JSON under benchmarks/results/scaling/.
#   strong: n = N_STRONG (default 40000) x D (default 256), ranks 1, 2, 4
#   weak:   n = N_WEAK_PER_RANK (default 10000) x P, ranks 1, 2, 4
# BLAS threads per rank = max(1, cores / ranks), so ranks x threads <= cores whenever ranks <= cores (4 ranks on
# 2 cores are oversubscribed: that row measures time-sharing, and says so). Each configuration runs REPEATS times
# (default 2); the run with the smallest total time is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
GRAPH=${GRAPH:-exact}; export GRAPH   # the exact ring by default (GFLOP/s below counts its 2·n²·d)
N_STRONG=${N_STRONG:-40000}; N_WEAK_PER_RANK=${N_WEAK_PER_RANK:-10000}; D=${D:-256}; K=${K:-10}; REPEATS=${REPEATS:-2}
CORES=$(nproc)
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(mpirun --oversubscribe --bind-to none)   # unbound: a 1-rank run may use both cores
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi

swift build -c release >/dev/null
BIN=$(swift build -c release --show-bin-path)
out=benchmarks/results/scaling
mkdir -p "$out"
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

run() {  # label n ranks threads [extra job args...]
    local label=$1 n=$2 p=$3 t=$4; shift 4
    [ -f "$data/e$n.npy" ] || "$BIN/hdlabel-mpitest" gen "$data/e$n.npy" "$data/l$n.npy" "$n" "$D" 50 5
    local best="" bestT=""
    for r in $(seq "$REPEATS"); do
        local load; load=$(cut -d' ' -f1 /proc/loadavg)   # other work on the node skews the numbers; record it
        rm -f "$data/out.csv"*
        "${MPIRUN[@]}" -np "$p" "$BIN/hdlabel" cluster "$data/e$n.npy" "$data/l$n.npy" -o "$data/out.csv" \
            --k "$K" --blas-threads "$t" --graph "$GRAPH" --timings "$data/t.json" "$@" 2>/dev/null
        local tt; tt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totalSeconds"])' "$data/t.json")
        if [ -z "$bestT" ] || python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$tt" "$bestT"; then
            bestT=$tt; cp "$data/t.json" "$out/$label.json"; echo "$load" >"$out/$label.load"
        fi
    done
    echo "$label: n=$n P=$p threads=$t total=${bestT}s"
}

threads() { local t=$((CORES / $1)); [ $t -ge 1 ] && echo $t || echo 1; }
run strong-p1-t1 "$N_STRONG" 1 1 --threads 1   # one core: one BLAS thread and one labeling thread
for p in 1 2 4; do run "strong-p$p" "$N_STRONG" "$p" "$(threads "$p")"; done
for p in 1 2 4; do run "dist-p$p" "$N_STRONG" "$p" "$(threads "$p")" --distributed-labeling; done
for p in 1 2 4; do run "weak-p$p" $((N_WEAK_PER_RANK * p)) "$p" "$(threads "$p")"; done

python3 - "$out" "$CORES" "$D" "$K" <<'PY'
import json, sys, os
out, cores, d, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(name): return json.load(open(os.path.join(out, name + ".json")))
phases = ["read", "normalize", "compute", "commWait", "checkpoint", "gather", "hierarchy", "broadcast", "write"]
def row(name, ref, weak):
    t = load(name); s = t["maxSeconds"]; p = t["ranks"]; n = int(t["info"]["n"]); tot = t["totalSeconds"]
    comm = s["commWait"] + s["gather"] + s["broadcast"]
    r = load(ref)
    if weak:
        # All-pairs work grows as n^2: per-rank work at P ranks is P times that of one rank on n/P rows.
        n1 = int(r["info"]["n"]); eff = (r["totalSeconds"] * (n / n1) ** 2 / p) / tot; sp = ""
    else:
        sp = r["totalSeconds"] / tot; eff = sp / p
    gflops = 2.0 * n * n * d / p / s["compute"] / 1e9 if s["compute"] > 0 else 0
    cells = [str(p), t["info"]["blasThreads"], t["info"].get("labelingThreads", "–"), str(n)] + ["%.3f" % s[x] for x in phases] + [
        "%.2f" % tot, ("%.2f" % sp) if sp != "" else "–", "%.0f%%" % (100 * eff),
        "%.1f" % (max((t.get("bytesSentByRank") or {}).get("total", [t["maxBytesSentPerRank"]])) / 2**20), "%.1f%%" % (100 * comm / tot), "%.1f" % gflops,
        open(os.path.join(out, name + ".load")).read().strip()]
    return "| " + " | ".join(cells) + " |"
head = ["ranks", "BLAS thr/rank", "label thr (root)", "n"] + phases + ["total s", "speedup", "efficiency", "MiB sent/rank", "comm share", "GFLOP/s/rank", "load avg before"]
lines = ["# Cluster scaling (measured)", "",
 f"Machine: {cores} cores, one node (ranks talk through shared memory). Data: synthetic clustered float32, d={d}, "
 f"50 classes, 5 seeds per class; k={k}, tile=1024 (default), `--graph {os.environ.get('GRAPH', 'exact')}`, method hdl (defaults). Release build.",
 "Times are seconds, max over ranks per phase (`--timings` JSON, raw files in `scaling/`); total = job wall time.",
 "comm share = (commWait + gather + broadcast) / total. GFLOP/s/rank = 2·n·(n/P)·d / compute seconds. MiB sent/rank = max over ranks of every byte a rank sent (all stages, `bytesSentByRank`).",
 "Ranks beyond the core count are oversubscribed (time-shared), so 4 ranks on 2 cores cannot speed up; that row",
 "checks correctness and communication volume, not parallel speed.",
 "The node is shared: `load avg before` is the 1-minute load average when the kept run started; a load above the",
 "job's own rank count means other processes competed for the cores and the row is pessimistic.", "",
 "## Strong scaling (fixed n)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
lines.append(row("strong-p1-t1", "strong-p1-t1", False))
for p in (1, 2, 4): lines.append(row(f"strong-p{p}", "strong-p1", False))
lines += ["", "First row: 1 rank with 1 BLAS thread and 1 labeling thread (`--threads 1`: the one-core baseline); speedup and",
          "efficiency of the other rows are relative to 1 rank using all cores (2 BLAS threads), i.e. the same hardware.",
          "`label thr (root)` = the labeling kernels' threads (`--threads`, default every core of the node: in root mode the",
          "other ranks sleep while root labels, so root's threads have the node's cores).", ""]
t1 = load("strong-p1-t1")["totalSeconds"]
def eff(name):
    t = load(name); return t1 / (cores * t["totalSeconds"]), t["totalSeconds"], t["maxSeconds"]["compute"], t["maxSeconds"]["hierarchy"]
b = load("strong-p1-t1")
lines += ["## Parallel efficiency against one core", "",
          f"T₁ / ({cores} · T) on the strong-scaling job, T₁ = 1 rank × 1 BLAS thread × 1 labeling thread = {t1:.2f} s "
          f"(graph compute {b['maxSeconds']['compute']:.2f} s, hierarchy {b['maxSeconds']['hierarchy']:.2f} s).", "",
          "| layout | total s | graph compute s | hierarchy s | efficiency |", "|---|---|---|---|---|"]
for name, label in ((f"strong-p1", f"1 rank × {cores} threads"), ("strong-p2", f"2 ranks × {max(1, cores // 2)} thread(s)"),
                    ("dist-p2", f"2 ranks × {max(1, cores // 2)} thread(s), `--distributed-labeling`")):
    e, tt, c, h = eff(name)
    lines.append(f"| {label} | {tt:.2f} | {c:.2f} | {h:.2f} | {e:.2f} |")
lines += ["",
          "## Strong scaling with `--distributed-labeling` (the hierarchy runs on every rank's rows)", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
for p in (1, 2, 4): lines.append(row(f"dist-p{p}", "strong-p1", False))
lines += ["", "Speedup and efficiency relative to the same 1-rank, 2-thread root-labeling run as above.", "",
          "## Weak scaling (fixed n/P)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
for p in (1, 2, 4): lines.append(row(f"weak-p{p}", "weak-p1", True))
lines += ["", "Exact kNN is all-pairs, so at fixed n/P the work per rank still grows ∝ P (n/P rows × n database rows).",
          "Weak efficiency = T1·(n_P/n_1)²/P / T_P: 100% means per-rank work is done at the 1-rank rate."]
open(os.path.join(out, "..", "scaling.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
