#!/usr/bin/env bash
# Multi-rank tests of the cluster code. Builds the package, then:
#   1. runs hdlabel-mpitest under mpirun with 1, 2, 3 and 4 ranks (oversubscribed on small machines),
#   2. once more with 3 ranks over TCP only (--mca btl tcp,self),
#   3. a killed-rank test: the cluster job with HDLABEL_TEST_KILL_RANK=1 (that rank SIGKILLs itself after the graph
#      phase; a test hook in ClusterJob) must make mpirun exit non-zero within a timeout, leaving no output file;
#      a control run without the hook must succeed and write the output,
#   4. worker-side labeling (--distributed-labeling) with 1-4 ranks and 3 over TCP: the CSV must equal the one labeled
#      on root (the single-process code),
#   5. label-issue detection (`hdlabel issues` under mpirun, 1, 2 and 4 ranks): the CSV must equal the single-process one.
# Prints one line per test and `N passed, M failed`; exits non-zero on any failure.
# Environment: CONFIG=debug|release (default debug), TIMEOUT seconds per mpirun (default 300).
set -u
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-debug}
TIMEOUT=${TIMEOUT:-300}

# MPI settings for this script only.
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none   # containers often forbid CMA (ptrace) between ranks
MPIRUN=(mpirun --oversubscribe)
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi

swift build -c "$CONFIG" >/dev/null 2>build.log.tmp || { cat build.log.tmp; rm -f build.log.tmp; echo "0 passed, 1 failed"; exit 1; }
rm -f build.log.tmp
BIN=$(swift build -c "$CONFIG" --show-bin-path)

passed=0; failed=0
ok() { echo "PASS $1"; passed=$((passed + 1)); }
ko() { echo "FAIL $1"; failed=$((failed + 1)); }

run_checks() {  # name, mpirun args...
    local name=$1; shift
    local log; log=$(mktemp)
    timeout "$TIMEOUT" "${MPIRUN[@]}" "$@" "$BIN/hdlabel-mpitest" >"$log" 2>&1
    local rc=$?
    local summary; summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ $rc -eq 0 ] && [[ "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]]; then
        ok "$name: $summary"
    else
        ko "$name (exit $rc): ${summary:-no summary}"; grep -v '^PASS' "$log" | head -n 40
    fi
    rm -f "$log"
}

for np in 1 2 3 4; do run_checks "mpitest -np $np" -np "$np"; done
run_checks "mpitest -np 3 over tcp" -np 3 --mca btl tcp,self

# Killed-rank test on the real CLI job.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN/hdlabel-mpitest" gen "$work/emb.npy" "$work/labels.npy" 3000 32 5 5 || ko "generate data"
JOB=("$BIN/hdlabel" cluster "$work/emb.npy" "$work/labels.npy" -o "$work/out.csv" --tile 64 --blas-threads 1)

timeout "$TIMEOUT" "${MPIRUN[@]}" -np 3 "${JOB[@]}" >"$work/ok.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -s "$work/out.csv" ] && [ "$(wc -l <"$work/out.csv")" -eq 3001 ]; then ok "job -np 3 writes $((3000)) labeled rows"
else ko "job -np 3 control run (exit $rc)"; tail -n 20 "$work/ok.log"; fi
rm -f "$work/out.csv" "$work/out.csv.manifest.json"

# Worker-side labeling: the CSV of --distributed-labeling on 1-4 ranks (and 3 over TCP) equals the root-labeled one
# (Labeling.run on root, the single-process code); default (auto) evidence, and graph evidence on 3 ranks.
for ev in auto graph; do
    REF=("${JOB[@]}" --evidence "$ev")
    timeout "$TIMEOUT" "${MPIRUN[@]}" -np 1 "${REF[@]}" -o "$work/ref.csv" >"$work/ref.log" 2>&1 || { ko "root-labeled reference ($ev)"; tail -n 20 "$work/ref.log"; }
    runs=("1" "2" "3" "4" "3 tcp"); [ "$ev" = graph ] && runs=("3")
    for run in "${runs[@]}"; do
        set -- $run
        extra=(); [ "${2:-}" = tcp ] && extra=(--mca btl tcp,self)
        rm -f "$work/dist.csv"*
        timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$1" "${extra[@]}" "${REF[@]}" --distributed-labeling -o "$work/dist.csv" >"$work/dist.log" 2>&1
        rc=$?
        if [ $rc -eq 0 ] && [ -s "$work/ref.csv" ] && cmp -s "$work/ref.csv" "$work/dist.csv"; then ok "job --distributed-labeling --evidence $ev -np $run == root-labeled CSV"
        else ko "job --distributed-labeling --evidence $ev -np $run (exit $rc)"; tail -n 20 "$work/dist.log"; fi
    done
    rm -f "$work/ref.csv"* "$work/dist.csv"*
done

# Label-issue detection under mpirun: the CLI's CSV on 1, 2 and 4 ranks equals the single-process run's (fully
# labeled with pair noise, and partly labeled with 3 cleaning rounds).
for spec in "1.0 1" "0.5 3"; do
    set -- $spec
    "$BIN/hdlabel-mpitest" gen-noisy "$work/iemb.npy" "$work/ilab.npy" 3000 32 5 0.2 "$1" || ko "generate noisy labels"
    ISS=("$BIN/hdlabel" issues "$work/iemb.npy" "$work/ilab.npy" --all --rounds "$2" -q)
    "${ISS[@]}" -o "$work/iss-ref.csv" 2>"$work/iss.log" || { ko "issues single-process (labeled $1)"; cat "$work/iss.log"; }
    for np in 1 2 4; do
        rm -f "$work/iss-mpi.csv"
        timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "${ISS[@]}" --tile 64 --blas-threads 1 -o "$work/iss-mpi.csv" >"$work/iss.log" 2>&1
        rc=$?
        if [ $rc -eq 0 ] && [ "$(wc -l <"$work/iss-ref.csv")" -gt 100 ] && cmp -s "$work/iss-ref.csv" "$work/iss-mpi.csv"; then
            ok "issues -np $np (labeled $1, rounds $2) == single-process CSV"
        else ko "issues -np $np (labeled $1, rounds $2) (exit $rc)"; tail -n 20 "$work/iss.log"; fi
    done
done

# Determinism across tiles and rank counts (docs/cluster.md, "Determinism"): the labels CSV of `hdlabel cluster` and
# the issues CSV of `hdlabel issues` with tiles 64, 256 and 1024 on 1-4 ranks equal the single-process outputs with
# the default tile, byte for byte (the graph is canonical, so the tile changes only sgemm call shapes).
"$BIN/hdlabel" label "$work/emb.npy" "$work/labels.npy" -o "$work/det-ref.csv" -q 2>"$work/det.log" || { ko "determinism reference"; cat "$work/det.log"; }
"$BIN/hdlabel" issues "$work/iemb.npy" "$work/ilab.npy" --all -q -o "$work/det-iss-ref.csv" 2>"$work/det.log" || { ko "determinism issues reference"; cat "$work/det.log"; }
for tile in 64 256 1024; do
    bad=""
    for np in 1 2 3 4; do
        rm -f "$work/det.csv"* "$work/det-iss.csv"
        timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "$BIN/hdlabel" cluster "$work/emb.npy" "$work/labels.npy" -o "$work/det.csv" \
            --tile "$tile" --blas-threads 1 >"$work/det.log" 2>&1 && cmp -s "$work/det-ref.csv" "$work/det.csv" || bad+=" label:np$np"
        timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "$BIN/hdlabel" issues "$work/iemb.npy" "$work/ilab.npy" --all -q -o "$work/det-iss.csv" \
            --tile "$tile" --blas-threads 1 >"$work/det.log" 2>&1 && cmp -s "$work/det-iss-ref.csv" "$work/det-iss.csv" || bad+=" issues:np$np"
    done
    if [ -z "$bad" ]; then ok "tile $tile, 1-4 ranks: labels and issues CSVs == single process (tile 1024)"
    else ko "tile $tile differs from the single process:$bad"; tail -n 5 "$work/det.log"; fi
done

start=$(date +%s)
timeout 120 env HDLABEL_TEST_KILL_RANK=1 "${MPIRUN[@]}" -x HDLABEL_TEST_KILL_RANK -np 3 "${JOB[@]}" >"$work/kill.log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
left=$(ls "$work" | grep -E '^out\.csv' || true)
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ -z "$left" ]; then ok "killed rank 1: mpirun exit $rc after ${took}s, no output"
else ko "killed rank 1: exit $rc after ${took}s, left: ${left:-nothing}"; tail -n 20 "$work/kill.log"; fi

timeout 120 env HDLABEL_TEST_KILL_RANK=1 "${MPIRUN[@]}" -x HDLABEL_TEST_KILL_RANK -np 3 "${JOB[@]}" --sharded-output >"$work/kill2.log" 2>&1
rc=$?
left=$(ls "$work" | grep -E '^out\.csv' || true)
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ -z "$left" ]; then ok "killed rank 1 with sharded output: exit $rc, no output"
else ko "killed rank 1 with sharded output: exit $rc, left: ${left:-nothing}"; tail -n 20 "$work/kill2.log"; fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
