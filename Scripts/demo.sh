#!/usr/bin/env bash
# hdlabel demo: label Fashion-MNIST from 10 seed labels per class, on a 2-rank MPI "cluster" and on one process.
#
#   1. Scripts/deps.sh                      system packages (installs them as root, lists what is missing otherwise)
#   2. swift build -c release
#   3. hdlabel prepare fashion-mnist        PCA-50 embeddings, 10 seeds/class, hidden truth -> data/demo/ (cached)
#   4. mpirun -np 2 hdlabel cluster         the main job, on the ranks listed in hostfiles/localhost
#   5. hdlabel label --method hdl|knn|spreading|propagation   single-process runs of HDL and the baselines
#   6. hdlabel evaluate                     accuracy / coverage on the unlabeled rows, final table
#
# Environment:
#   DEMO_N     rows of Fashion-MNIST train+test to use (default 70000, the whole data set)
#   DEMO_NP    MPI ranks (default 2; more than the hostfile's slots adds --oversubscribe)
#   HOSTFILE   OpenMPI hostfile (default hostfiles/localhost)
# Outputs: runs/demo/*.csv (+ .manifest.json), runs/demo/timings.json, runs/demo/*.log, runs/demo/summary.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DEMO_N=${DEMO_N:-70000}
DEMO_NP=${DEMO_NP:-2}
HOSTFILE=${HOSTFILE:-hostfiles/localhost}
PER_CLASS=10
PCA=50
SEED=0
DATA=data/demo
RUNS=runs/demo
BIN=.build/release/hdlabel

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[[ $DEMO_N =~ ^[0-9]+$ ]] && [ "$DEMO_N" -ge 100 ] && [ "$DEMO_N" -le 70000 ] || die "DEMO_N must be an integer in 100..70000, got '$DEMO_N'"
[[ $DEMO_NP =~ ^[0-9]+$ ]] && [ "$DEMO_NP" -ge 1 ] || die "DEMO_NP must be a positive integer, got '$DEMO_NP'"
[ -f "$HOSTFILE" ] || die "hostfile '$HOSTFILE' not found"
mkdir -p "$RUNS"
DEMO_START=$(now)

# Runs a command with its output in a log file; on failure shows the end of the log and stops.
# Sets LAST_SECONDS to the command's wall time.
run_logged() {  # LOG cmd...
  local log=$1; shift
  local t0; t0=$(now)
  if ! "$@" >"$log" 2>&1; then
    echo "demo: command failed: $*" >&2
    echo "---- last lines of $log ----" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
  LAST_SECONDS=$(secs "$t0" "$(now)")
}

say "1/6 system dependencies (Scripts/deps.sh)"
Scripts/deps.sh || die "missing system packages (see above); install them, then rerun $0"
command -v mpirun >/dev/null || die "mpirun not found on PATH (Debian package openmpi-bin)"
echo "ok" >&2

say "2/6 swift build -c release"
run_logged "$RUNS/build.log" swift build -c release
[ -x "$BIN" ] || die "build finished but $BIN is missing"
echo "built in ${LAST_SECONDS}s ($BIN)" >&2

say "3/6 prepare Fashion-MNIST ($DEMO_N rows, PCA-$PCA, $PER_CLASS seeds per class) -> $DATA/"
PREP_ARGS="fashion-mnist --n $DEMO_N --pca $PCA --per-class $PER_CLASS --seed $SEED"
STAMP="$DATA/prepare.args"
if [ -f "$DATA/split.json" ] && [ -f "$DATA/embeddings.npy" ] && [ -f "$DATA/seeds.npy" ] && [ -f "$DATA/truth.npy" ] \
   && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PREP_ARGS" ]; then
  echo "cached: $DATA was prepared with '$PREP_ARGS' (delete $DATA to redo)" >&2
  PREP_NOTE="cached in $DATA"
else
  rm -f "$STAMP"
  # shellcheck disable=SC2086  # PREP_ARGS is a list of simple words
  run_logged "$RUNS/prepare.log" "$BIN" prepare $PREP_ARGS -o "$DATA"
  echo "$PREP_ARGS" > "$STAMP"
  PREP_NOTE="${LAST_SECONDS}s"
  grep -E 'explained variance|split ' "$RUNS/prepare.log" | sed 's/^hdlabel: *//' >&2
  echo "prepared in $PREP_NOTE" >&2
fi
EMB=$DATA/embeddings.npy SEEDS=$DATA/seeds.npy TRUTH=$DATA/truth.npy

say "4/6 main job: $DEMO_NP MPI ranks, hostfile $HOSTFILE"
MPIRUN=(mpirun -np "$DEMO_NP" --hostfile "$HOSTFILE")
if [ "$(id -u)" -eq 0 ]; then MPIRUN+=(--allow-run-as-root); fi
SLOTS=$(awk '!/^[[:space:]]*#/ && NF { n = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { sub(/^slots=/, "", $i); n = $i } s += n } END { print s + 0 }' "$HOSTFILE")
if [ "$DEMO_NP" -gt "$SLOTS" ]; then MPIRUN+=(--oversubscribe); fi
# Containers often forbid the cross-process memory attach (CMA) that shared-memory transfers use by default.
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
CLUSTER_CMD=("${MPIRUN[@]}" "$BIN" cluster "$EMB" "$SEEDS" -o "$RUNS/hdl.csv" --timings "$RUNS/timings.json")
echo "${CLUSTER_CMD[*]}" >&2
run_logged "$RUNS/hdl.log" "${CLUSTER_CMD[@]}"
WALL_hdl_cluster=$LAST_SECONDS
grep -E 'labeled .* rank' "$RUNS/hdl.log" | sed 's/^hdlabel: *//' >&2 || true

say "5/6 single process: hdl and the baselines"
for m in hdl knn spreading propagation; do
  out="$RUNS/$m-single.csv"
  [ "$m" = hdl ] || out="$RUNS/$m.csv"
  run_logged "$RUNS/$(basename "$out" .csv).log" "$BIN" label "$EMB" "$SEEDS" -o "$out" --method "$m"
  printf -v "WALL_$m" '%s' "$LAST_SECONDS"
  echo "$m: ${LAST_SECONDS}s -> $out" >&2
done

# Same labels from the cluster and the single process? Compare the label column of the two CSVs.
if cmp -s <(cut -d, -f1,2 "$RUNS/hdl.csv") <(cut -d, -f1,2 "$RUNS/hdl-single.csv"); then
  IDENTICAL=yes
else
  IDENTICAL=no
  diffs=$(paste -d, <(cut -d, -f2 "$RUNS/hdl.csv") <(cut -d, -f2 "$RUNS/hdl-single.csv") | awk -F, 'NR > 1 && $1 != $2' | wc -l)
  echo "demo: $diffs row(s) differ between $RUNS/hdl.csv and $RUNS/hdl-single.csv" >&2
fi

say "6/6 evaluate against the hidden ground truth ($TRUTH)"
TABLE="$RUNS/summary.md"
{
  echo "| method | run | accuracy | coverage | wall s |"
  echo "|---|---|---:|---:|---:|"
} > "$TABLE"
row() {  # METHOD RUN CSV WALL
  local ev; ev=$("$BIN" evaluate "$3" "$TRUTH" "$SEEDS") || die "evaluate failed for $3"
  local acc cov
  acc=$(awk '{ for (i = 1; i < NF; i++) if ($i == "accuracy") { print $(i + 1); exit } }' <<<"$ev")
  cov=$(awk '{ for (i = 1; i < NF; i++) if ($i == "coverage") print $(i + 1) }' <<<"$ev")
  echo "| $1 | $2 | $acc | $cov | $4 |" >> "$TABLE"
}
row hdl "mpirun -np $DEMO_NP" "$RUNS/hdl.csv" "$WALL_hdl_cluster"
row hdl "1 process" "$RUNS/hdl-single.csv" "$WALL_hdl"
row knn "1 process" "$RUNS/knn.csv" "$WALL_knn"
row spreading "1 process" "$RUNS/spreading.csv" "$WALL_spreading"
row propagation "1 process" "$RUNS/propagation.csv" "$WALL_propagation"
UNLABELED=$("$BIN" evaluate "$RUNS/hdl.csv" "$TRUTH" "$SEEDS" | sed -n 's/.*(\([0-9]*\) unlabeled rows.*/\1/p')
TOTAL=$(secs "$DEMO_START" "$(now)")
{
  echo
  echo "Fashion-MNIST, $DEMO_N rows, PCA-$PCA, $PER_CLASS seed labels per class; scored on the $UNLABELED unlabeled rows."
  echo "Wall s = whole command (read, kNN graph, labeling, write) on $(nproc) cores; prepare: $PREP_NOTE."
  echo "cluster labels identical to single process: $IDENTICAL"
  echo "demo wall time: ${TOTAL}s (including the build step)"
} >> "$TABLE"

echo
cat "$TABLE"
echo
echo "outputs: $RUNS/ (labels CSVs with manifests, timings.json per phase of the cluster run, logs)"
[ "$IDENTICAL" = yes ] || die "the cluster and single-process labels differ (they should be identical)"
