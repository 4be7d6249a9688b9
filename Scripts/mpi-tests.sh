#!/usr/bin/env bash
# Multi-rank tests of the cluster code. Builds the package, then:
#   1. runs hdlabel-mpitest under mpirun with 1, 2, 3 and 4 ranks (oversubscribed on small machines),
#   2. once more with 3 ranks over TCP only (--mca btl tcp,self),
#   3. a control run of the CLI job on 3 ranks,
#   4. worker-side labeling (--distributed-labeling) with 1-4 ranks and 3 over TCP: the CSV must equal the one labeled
#      on root (the single-process code),
#   5. label-issue detection (`hdlabel issues` under mpirun, 1, 2 and 4 ranks): the CSV must equal the single-process one,
#   6. fault injection at every collective phase (a rank throws or is SIGKILLed at a named point; the job must end
#      within FAULT_LIMIT seconds with one message and no output), chunked MPI transfers end to end,
#   7. the multi-host checks of Scripts/netns-cluster.sh (as root with `ip netns`; skipped with the reason otherwise).
# Prints one line per test and `N passed, M failed`; exits non-zero on any failure.
# Environment: CONFIG=debug|release (default debug), TIMEOUT seconds per mpirun (default 900: a hang is still caught,
# and the 4-rank debug run of hdlabel-mpitest on 2 cores busy with other work took over 300 s).
set -u
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-debug}
TIMEOUT=${TIMEOUT:-900}

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
    local t0=$SECONDS
    timeout "$TIMEOUT" "${MPIRUN[@]}" "$@" "$BIN/hdlabel-mpitest" >"$log" 2>&1
    local rc=$?
    name="$name [$((SECONDS - t0)) s]"
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

# Shard-list input: the embeddings as a directory of 3 uneven .npy shards (borders inside tiles); the cluster on 2 and 3
# ranks, exact and approximate graph, writes the same CSV as the single process on the one-file input.
mkdir -p "$work/shards"; "$BIN/hdlabel-mpitest" split "$work/emb.npy" "$work/shards" 3 || ko "split into shards"
for g in exact approx; do
    "$BIN/hdlabel" label "$work/emb.npy" "$work/labels.npy" -o "$work/sh-ref.csv" -q --graph "$g" 2>"$work/sh.log" || { ko "shard reference ($g)"; cat "$work/sh.log"; }
    bad=""
    for np in 2 3; do
        rm -f "$work/sh.csv"*
        timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "$BIN/hdlabel" cluster "$work/shards" "$work/labels.npy" -o "$work/sh.csv" \
            --tile 64 --blas-threads 1 --graph "$g" >"$work/sh.log" 2>&1 && cmp -s "$work/sh-ref.csv" "$work/sh.csv" || bad+=" np$np"
    done
    if [ -z "$bad" ]; then ok "shard directory input, --graph $g, 2 and 3 ranks == single process on one file"
    else ko "shard directory input, --graph $g differs:$bad"; tail -n 5 "$work/sh.log"; fi
done

# A graph file as input: `hdlabel graph` once, then the cluster reads each rank's rows of it (labels and issues, root
# and worker-side labeling) and writes what the single process writes with --knn-graph; a graph of other rows is
# refused with one error and no output.
"$BIN/hdlabel" graph "$work/emb.npy" -o "$work/kg" --k 64 2>"$work/kg.log" || { ko "hdlabel graph"; cat "$work/kg.log"; }
"$BIN/hdlabel" label "$work/emb.npy" "$work/labels.npy" -o "$work/kg-ref.csv" -q --knn-graph "$work/kg" 2>"$work/kg.log" || { ko "label --knn-graph"; cat "$work/kg.log"; }
"$BIN/hdlabel" issues "$work/emb.npy" "$work/labels.npy" --all -q --graph-k 50 -o "$work/kg-iss-ref.csv" --knn-graph "$work/kg" 2>"$work/kg.log" || { ko "issues --knn-graph"; cat "$work/kg.log"; }
bad=""
for np in 2 3; do
    rm -f "$work/kg.csv"* "$work/kgd.csv"* "$work/kg-iss.csv"
    timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "$BIN/hdlabel" cluster "$work/emb.npy" "$work/labels.npy" -o "$work/kg.csv" \
        --knn-graph "$work/kg" --tile 64 --blas-threads 1 >"$work/kg.log" 2>&1 && cmp -s "$work/kg-ref.csv" "$work/kg.csv" || bad+=" root:np$np"
    timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "$BIN/hdlabel" cluster "$work/emb.npy" "$work/labels.npy" -o "$work/kgd.csv" \
        --knn-graph "$work/kg" --tile 64 --blas-threads 1 --distributed-labeling >"$work/kg.log" 2>&1 && cmp -s "$work/kg-ref.csv" "$work/kgd.csv" || bad+=" distributed:np$np"
    timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "$BIN/hdlabel" issues "$work/emb.npy" "$work/labels.npy" --all -q --graph-k 50 -o "$work/kg-iss.csv" \
        --knn-graph "$work/kg" --tile 64 --blas-threads 1 >"$work/kg.log" 2>&1 && cmp -s "$work/kg-iss-ref.csv" "$work/kg-iss.csv" || bad+=" issues:np$np"
done
if [ -z "$bad" ]; then ok "--knn-graph under mpirun (labels root/worker-side, issues; 2 and 3 ranks) == single process"
else ko "--knn-graph under mpirun differs:$bad"; tail -n 5 "$work/kg.log"; fi
"$BIN/hdlabel-mpitest" split "$work/emb.npy" "$work/kgsmall" 2 >/dev/null 2>&1
"$BIN/hdlabel" graph "$work/kgsmall/part-000.npy" -o "$work/kgs" --k 30 2>"$work/kg.log" || { ko "hdlabel graph (half)"; cat "$work/kg.log"; }
rm -f "$work/kgx.csv"*
if timeout "$TIMEOUT" "${MPIRUN[@]}" -np 2 "$BIN/hdlabel" cluster "$work/emb.npy" "$work/labels.npy" -o "$work/kgx.csv" --knn-graph "$work/kgs" \
        --tile 64 --blas-threads 1 >"$work/kg.log" 2>&1; then ko "--knn-graph of other rows accepted under mpirun"
elif [ "$(grep -c 'error' "$work/kg.log")" -eq 1 ] && grep -q "graph has .* rows, the embeddings have" "$work/kg.log" && [ ! -e "$work/kgx.csv" ]; then ok "--knn-graph of other rows under mpirun: one error, no output"
else ko "--knn-graph of other rows under mpirun: unclear failure"; cat "$work/kg.log"; fi

# `hdlabel graph` under mpirun: every rank writes its rows into the staged files; the files equal the single
# process's byte for byte (exact and approximate, 2 and 4 ranks); k >= n fails with one error and leaves the
# previous graph files unchanged.
bad=""
for g in exact approx; do
    "$BIN/hdlabel" graph "$work/emb.npy" -o "$work/gs-$g" --graph "$g" --k 12 --tile 64 2>"$work/gf.log" || { ko "graph reference ($g)"; cat "$work/gf.log"; }
    for np in 2 4; do
        rm -f "$work/gm".*
        timeout "$TIMEOUT" "${MPIRUN[@]}" -np "$np" "$BIN/hdlabel" graph "$work/emb.npy" -o "$work/gm" --graph "$g" --k 12 --tile 64 \
            --blas-threads 1 >"$work/gf.log" 2>&1 && cmp -s "$work/gs-$g.neighbors.npy" "$work/gm.neighbors.npy" \
            && cmp -s "$work/gs-$g.similarities.npy" "$work/gm.similarities.npy" && [ -s "$work/gm.manifest.json" ] || bad+=" $g:np$np"
    done
done
if [ -z "$bad" ]; then ok "hdlabel graph under mpirun (exact, approx; 2 and 4 ranks) == single-process files"
else ko "hdlabel graph under mpirun differs:$bad"; tail -n 5 "$work/gf.log"; fi
sum_before=$(cat "$work/gm".* | md5sum)
"$BIN/hdlabel-mpitest" gen "$work/tiny.npy" "$work/tinyl.npy" 600 32 5 5 >/dev/null 2>&1
if timeout "$TIMEOUT" "${MPIRUN[@]}" -np 2 "$BIN/hdlabel" graph "$work/tiny.npy" -o "$work/gm" --k 1000 --blas-threads 1 --tile 64 >"$work/gf.log" 2>&1; then
    ko "hdlabel graph under mpirun accepted k >= n"
elif [ "$(grep -c 'error' "$work/gf.log")" -eq 1 ] && grep -q "number of points" "$work/gf.log" && [ "$(cat "$work/gm".* | md5sum)" = "$sum_before" ] \
        && [ -z "$(ls -a "$work" | grep -E '^\.?gm.*tmp|\.tmp')" ]; then
    ok "hdlabel graph under mpirun, k >= n: one error, previous files unchanged, no temporary left"
else ko "hdlabel graph under mpirun, k >= n: unclear failure or files changed"; cat "$work/gf.log"; ls -a "$work"; fi

# Fault injection at every collective phase (hdlabel-mpitest's `job` / `issues-job` modes run the job in-process
# with a test FaultInjector; Faults.swift). Each case: every rank exits, mpirun non-zero within FAULT_LIMIT seconds
# of the fault,
# exactly one error line naming the rank and phase (throw) or mpirun naming the killed rank (kill), the existing
# output file unchanged and no other output or manifest.
FAULT_LIMIT=${FAULT_LIMIT:-30}
MT="$BIN/hdlabel-mpitest"
fault_case() {  # np, kind (throw|kill), rank, phase text expected, mode (job|issues-job), extra args...
    local np=$1 kind=$2 victim=$3 phase=$4 mode=$5; shift 5
    local name="fault $kind rank $victim at '$phase' (-np $np, $mode $*)"
    rm -rf "$work/f"; mkdir -p "$work/f"; echo previous >"$work/f/out.csv"
    local emb=$work/emb.npy lab=$work/labels.npy
    [ "$mode" = issues-job ] && { emb=$work/iemb.npy; lab=$work/ilab.npy; }
    local t0; t0=$(date +%s.%N)
    timeout 120 "${MPIRUN[@]}" -np "$np" "$MT" "$mode" "$emb" "$lab" "$work/f/out.csv" --tile 64 "$@" >"$work/f.log" 2>&1
    local rc=$?
    local end; end=$(date +%s.%N)
    local took; took=$(printf '%.1f' "$(echo "$end - $t0" | bc)")
    # From the fault (the injector prints its wall-clock time) to mpirun's exit.
    local tf; tf=$(grep -o 'test: [a-z]* at .*, t=[0-9.]*' "$work/f.log" | head -n 1 | sed 's/.*t=//')
    local after="?"; [ -n "$tf" ] && after=$(printf '%.1f' "$(echo "$end - $tf" | bc)")
    local errs; errs=$(grep -c 'error:' "$work/f.log")
    local left; left=$(ls "$work/f")
    local why=""
    [ $rc -eq 0 ] && why="exit 0"
    [ $rc -eq 124 ] && why="hung until timeout"
    [ "$after" = "?" ] && why="$why fault never injected"
    [ "$after" != "?" ] && [ "$(echo "$after > $FAULT_LIMIT" | bc)" = 1 ] && why="$why exit ${after}s after the fault"
    [ "$(cat "$work/f/out.csv")" = previous ] || why="$why existing output changed"
    [ "$left" = out.csv ] || why="$why files left: $(echo $left)"
    if [ "$kind" = throw ]; then
        [ "$errs" -eq 1 ] || why="$why $errs error lines"
        grep 'error:' "$work/f.log" | grep -q "rank $victim.*failed during $phase" || why="$why error does not name rank $victim / $phase"
    else
        grep -q "rank $victim.*signal 9\|rank $victim.*Killed\|process rank $victim" "$work/f.log" || why="$why mpirun does not name rank $victim"
        [ "$errs" -le 1 ] || why="$why $errs error lines"
    fi
    if [ -z "$why" ]; then ok "$name: exit $rc ${after}s after the fault (${took}s in all)"
    else ko "$name:$why (exit $rc, ${after}s after the fault, ${took}s in all)"; tail -n 15 "$work/f.log"; fi
    FAULT_TIMES+=("$kind@$phase:$after")
}
FAULT_TIMES=()
"$MT" gen-noisy "$work/iemb.npy" "$work/ilab.npy" 3000 32 5 0.2 0.5 || ko "generate noisy labels"
# A one-rank failure inside a collective sequence (ring step, a labeling collective, an issues round) stops the job
# (one message from that rank, MPI_Abort); at a phase boundary it is agreed (one message from rank 0, naming it).
fault_case 3 throw 1 "graph" job --fault "throw:graph step 1:1"
fault_case 3 throw 2 "graph" job --fault "throw:graph:2"
fault_case 2 throw 1 "gather" job --fault "throw:gather:1"
fault_case 3 throw 0 "labeling" job --fault "throw:labeling:0"
fault_case 3 throw 1 "labeling" job --distributed-labeling --fault "throw:labeling collective:1:40"
fault_case 4 throw 3 "labeling" job --distributed-labeling --fault "throw:labeling collective:3:200"
fault_case 4 throw 2 "broadcast" job --fault "throw:broadcast:2"
fault_case 3 throw 1 "write" job --fault "throw:write:1"
rm -rf "$work/ckpt-fault"; fault_case 2 throw 1 "checkpoint" job --checkpoint "$work/ckpt-fault" --fault "throw:checkpoint:1"
fault_case 3 throw 1 "detecting label issues" issues-job --rounds 3 --fault "throw:issues round 2:1"
fault_case 2 throw 0 "write" issues-job --fault "throw:write:0"
fault_case 3 kill 1 "graph" job --fault "kill:graph step 1:1"
fault_case 2 kill 1 "gather" job --fault "kill:gather:1"
fault_case 3 kill 2 "labeling" job --distributed-labeling --fault "kill:labeling collective:2:40"
fault_case 2 kill 0 "write" job --fault "kill:write:0"
fault_case 4 kill 3 "write" job --sharded-output --fault "kill:write:3"
fault_case 3 kill 2 "issues" issues-job --rounds 3 --fault "kill:issues round 2:2"
echo "fault-to-exit (s): ${FAULT_TIMES[*]}"

# A rank killed mid-graph with --checkpoint: the rerun resumes the ring at the last step every rank saved and
# writes the same labels as an uninterrupted run.
# 4 ranks: steps 0, 1, 2 (each pair scored once: steps 0 ... P/2).
timeout "$TIMEOUT" "${MPIRUN[@]}" -np 4 "$MT" job "$work/emb.npy" "$work/labels.npy" "$work/rs-ref.csv" --tile 64 >"$work/rs.log" 2>&1
fault_case 4 kill 1 "graph" job --checkpoint "$work/ckpt-ring" --fault "kill:graph step 2:1"
timeout "$TIMEOUT" "${MPIRUN[@]}" -np 4 "$MT" job "$work/emb.npy" "$work/labels.npy" "$work/rs.csv" --tile 64 --checkpoint "$work/ckpt-ring" >>"$work/rs.log" 2>&1
if grep -q "resuming the ring at step 2 of 3" "$work/rs.log" && cmp -s "$work/rs-ref.csv" "$work/rs.csv"; then
    ok "rerun after a rank killed at ring step 2 resumes there; labels == uninterrupted run"
else ko "ring resume after a killed rank"; tail -n 20 "$work/rs.log"; fi

# Chunked MPI transfers end to end: the job with a 1000-element limit per MPI call writes the same CSV.
timeout "$TIMEOUT" "${MPIRUN[@]}" -np 3 "$MT" job "$work/emb.npy" "$work/labels.npy" "$work/ch-ref.csv" --tile 64 >"$work/ch.log" 2>&1
timeout "$TIMEOUT" "${MPIRUN[@]}" -np 3 "$MT" job "$work/emb.npy" "$work/labels.npy" "$work/ch.csv" --tile 64 --max-count 1000 >>"$work/ch.log" 2>&1
if cmp -s "$work/ch-ref.csv" "$work/ch.csv" && [ -s "$work/ch.csv" ]; then ok "job with --max-count 1000 (chunked gather/scatter) == unchunked CSV"
else ko "job with --max-count 1000"; tail -n 20 "$work/ch.log"; fi

# Multi-host: 3 network namespaces on a private bridge, TCP only, a node lost mid-job, checkpoint resume.
if [ -x Scripts/netns-cluster.sh ]; then
    Scripts/netns-cluster.sh selftest "$BIN" >"$work/netns.log" 2>&1
    grep -E '^(PASS|FAIL|SKIP)|time-to-exit' "$work/netns.log"
    passed=$((passed + $(grep -c '^PASS' "$work/netns.log"))); failed=$((failed + $(grep -c '^FAIL' "$work/netns.log")))
    grep -q '^[0-9]* passed, [0-9]* failed$' "$work/netns.log" || { ko "netns selftest did not finish"; tail -n 30 "$work/netns.log"; }
    grep -q '^FAIL' "$work/netns.log" && grep -vE '^(PASS|FAIL)' "$work/netns.log" | tail -n 40
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
