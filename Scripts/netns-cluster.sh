#!/usr/bin/env bash
# A real multi-host OpenMPI cluster on one machine: every "host" is a Linux network namespace with its own address
# on a private bridge, ranks talk TCP only, and a host can lose its link mid-job. Needs root and `ip netns`.
#
#   Scripts/netns-cluster.sh up [HOSTS]        create HOSTS namespaces (default 3): hdl-h1.. at 10.231.0.11..,
#                                              bridge hdlbr0 = 10.231.0.1 (mpirun's side), hostfile + rsh agent
#   Scripts/netns-cluster.sh down              kill what runs in the namespaces, remove namespaces and bridge
#   Scripts/netns-cluster.sh run -- ARGS...    mpirun ARGS on the namespace hosts (one slot per host)
#   Scripts/netns-cluster.sh link-down HOST    cut HOST's link (h1, h2, ...): its veth port leaves the bridge, down
#   Scripts/netns-cluster.sh link-up HOST      restore it
#   Scripts/netns-cluster.sh selftest BIN      the multi-host checks of Scripts/mpi-tests.sh (BIN = swift build dir)
#
# Addresses: 10.231.0.0/24 only, which exists only inside this machine (bridge + veth pairs); nothing else is ever a
# target. mpirun (the ORTE head node) runs in the root namespace on 10.231.0.1; OpenMPI starts one orted per host
# through the agent ($STATE/agent HOST CMD...), which runs CMD as `ip netns exec hdl-hN unshare --uts` with the
# hostname hN, so every rank lives on its own host (own network stack and host name; the file system is shared).
# Lost-node detection: OOB TCP keepalive (NETNS_KEEPALIVE seconds idle, then 1 s probes, 3 missed = lost).
set -u
STATE=${NETNS_STATE:-/tmp/hdlabel-netns}
NET=10.231.0
BR=hdlbr0
KEEPALIVE=${NETNS_KEEPALIVE:-2}

die() { echo "netns-cluster: $*" >&2; exit 1; }
hosts() { cat "$STATE/hosts.list" 2>/dev/null; }
ipof() { echo "$NET.$((10 + ${1#h}))"; }

usable() {  # prints why not and fails when this machine cannot run it
    if [ "$(id -u)" != 0 ]; then echo "not root"; return 1; fi
    command -v ip >/dev/null || { echo "no 'ip' command (iproute2)"; return 1; }
    command -v mpirun >/dev/null || { echo "no mpirun"; return 1; }
    ip netns add hdl-probe 2>/dev/null || { echo "'ip netns add' is not permitted here"; return 1; }
    ip netns del hdl-probe
    ip link add hdl-probe-br type bridge 2>/dev/null || { echo "cannot create a bridge here"; return 1; }
    ip link del hdl-probe-br
}

up() {
    local count=${1:-3}
    down >/dev/null 2>&1
    mkdir -p "$STATE"
    # A fixed MAC: a bridge otherwise takes the lowest MAC of its ports, which changes when a port leaves (link-down)
    # and comes back, and the hosts' ARP entries for the head node would go stale.
    ip link add "$BR" address 02:00:0a:e7:00:01 type bridge || die "cannot create bridge $BR"
    ip addr add "$NET.1/24" dev "$BR"
    ip link set "$BR" up
    : >"$STATE/hosts.list"; : >"$STATE/hostfile"; : >"$STATE/hosts"
    for i in $(seq 1 "$count"); do
        local h=h$i ns=hdl-h$i ipaddr; ipaddr=$(ipof "h$i")
        ip netns add "$ns"
        ip link add "hdlv-$h" type veth peer name eth0 netns "$ns"
        ip link set "hdlv-$h" master "$BR" up
        ip -n "$ns" addr add "$ipaddr/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" route add default via "$NET.1" 2>/dev/null || true
        echo "$h" >>"$STATE/hosts.list"
        echo "$ipaddr slots=1" >>"$STATE/hostfile"
        echo "$ipaddr $h" >>"$STATE/hosts"
    done
    cat >"$STATE/agent" <<AGENT
#!/bin/sh
# rsh agent for OpenMPI: \$1 is the host's address, the rest the command (orted ...) to run there.
host=\$1; shift
i=\${host##*.}; i=\$((i - 10))
exec ip netns exec "hdl-h\$i" unshare --uts /bin/sh -c "hostname h\$i; \$*"
AGENT
    chmod +x "$STATE/agent"
    # Every host must route to the head node over its veth.
    for h in $(hosts); do ip -n "hdl-$h" route get "$NET.1" 2>/dev/null | grep -q "dev eth0" || die "$h has no route to $NET.1"; done
    echo "netns-cluster: $(hosts | wc -l) hosts up: $(hosts | while read -r h; do printf '%s=%s ' "$h" "$(ipof "$h")"; done)"
}

down() {
    for ns in $(ip netns list 2>/dev/null | awk '/^hdl-h[0-9]+/ {print $1}'); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns"
    done
    ip link del "$BR" 2>/dev/null
    rm -rf "$STATE"
}

mpirun_args() {
    local n; n=$(hosts | wc -l)
    echo --allow-run-as-root --hostfile "$STATE/hostfile" -np "$n" --map-by node \
        --mca plm_rsh_agent "$STATE/agent" --mca plm_rsh_no_tree_spawn 1 \
        --mca btl tcp,self --mca btl_tcp_if_include "$NET.0/24" --mca oob_tcp_if_include "$NET.0/24" \
        --mca oob_tcp_keepalive_time "$KEEPALIVE" --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3 \
        --mca orte_startup_timeout 60
}

run() {
    [ -f "$STATE/hostfile" ] || die "not up (run '$0 up' first)"
    # shellcheck disable=SC2046
    timeout "${RUN_TIMEOUT:-600}" mpirun $(mpirun_args) -x OMPI_MCA_btl_vader_single_copy_mechanism=none "$@"
}

link() {  # down|up HOST
    local h=$2
    grep -qx "$h" "$STATE/hosts.list" 2>/dev/null || die "unknown host '$h'"
    if [ "$1" = down ]; then ip link set "hdlv-$h" nomaster; ip link set "hdlv-$h" down
    else ip link set "hdlv-$h" master "$BR" up; fi
}

selftest() {  # BIN: the built hdlabel and hdlabel-mpitest
    local bin=$1 why
    if ! why=$(usable); then echo "SKIP netns multi-host checks: $why"; echo "0 passed, 0 failed"; return 0; fi
    local passed=0 failed=0 work; work=$(mktemp -d /tmp/hdlabel-netns-test.XXXXXX)
    ok() { echo "PASS $1"; passed=$((passed + 1)); }
    ko() { echo "FAIL $1"; failed=$((failed + 1)); }
    up 3 >"$work/up.log" 2>&1 || { cat "$work/up.log"; ko "netns up"; echo "$passed passed, $failed failed"; return 1; }
    local mt=$bin/hdlabel-mpitest
    "$mt" gen "$work/emb.npy" "$work/labels.npy" 6000 48 6 5 || ko "generate data"
    local common=(--tile 64 --blas-threads 1)

    # (a) Labels across 3 hosts == the single-process command with the same options.
    "$bin/hdlabel" label "$work/emb.npy" "$work/labels.npy" -o "$work/single.csv" --tile 64 >"$work/single.log" 2>&1 \
        || { ko "single-process reference"; tail -n 5 "$work/single.log"; }
    RUN_TIMEOUT=300 run "$bin/hdlabel" cluster "$work/emb.npy" "$work/labels.npy" -o "$work/multi.csv" "${common[@]}" >"$work/a.log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ] && cmp -s "$work/single.csv" "$work/multi.csv" && grep -q "on 3 rank" "$work/a.log"; then
        ok "3 hosts (netns, TCP only): hdlabel cluster == hdlabel label, cmp"
    else ko "3 hosts: cluster vs label (exit $rc)"; tail -n 20 "$work/a.log"; fi

    # (b) A node lost mid-graph: every rank pauses at ring step 1 (rank 0 touches a marker), h3's link is cut, and
    # the job must end non-zero, naming the lost host, within LOST_LIMIT seconds of the cut, with no output.
    local limit=${LOST_LIMIT:-60}
    lost_run() {  # name, victim host, pause point, out, extra job args...
        local name=$1 victim=$2 point=$3 out=$4; shift 4
        rm -f "$work/paused"
        ( RUN_TIMEOUT=$((limit + 60)) run "$mt" job "$work/emb.npy" "$work/labels.npy" "$out" "${common[@]}" \
              --pause "$point:6:$work/paused" "$@" >"$work/$name.log" 2>&1; echo $? >"$work/$name.rc" ) &
        local pid=$! waited=0
        while [ ! -e "$work/paused" ] && [ $waited -lt 1200 ]; do sleep 0.1; waited=$((waited + 1)); done
        [ -e "$work/paused" ] || { echo "never paused"; kill "$pid" 2>/dev/null; return 1; }
        local t0; t0=$(date +%s.%N)
        link down "$victim"
        local n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt $((limit * 10 + 100)) ]; do sleep 0.1; n=$((n + 1)); done
        local took; took=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
        wait "$pid" 2>/dev/null
        LOST_TOOK=$took; LOST_RC=$(cat "$work/$name.rc" 2>/dev/null || echo none)
    }
    echo previous >"$work/lost.csv"
    lost_run lost h3 "graph step 1" "$work/lost.csv" --checkpoint "$work/ckpt"
    link up h3
    local ip3; ip3=$(ipof h3)
    if [ "$LOST_RC" != 0 ] && [ "$LOST_RC" != none ] && [ "$(echo "$LOST_TOOK <= $limit" | bc)" = 1 ] \
        && [ "$(cat "$work/lost.csv")" = previous ] && grep -q "lost communication" "$work/lost.log" && grep -q "$ip3" "$work/lost.log" \
        && grep -q "ranks per host: h1 0, h2 1, h3 2" "$work/lost.log"; then
        ok "node h3 lost mid-graph (ring step 1 of 2): exit $LOST_RC ${LOST_TOOK}s after the cut, names $ip3 (h3, rank 2 in the job's placement line), output unchanged"
    else ko "node h3 lost mid-graph: exit $LOST_RC after ${LOST_TOOK}s"; tail -n 25 "$work/lost.log"; fi
    echo "netns lost-node time-to-exit: ${LOST_TOOK}s after the cut (keepalive ${KEEPALIVE}s + 3 x 1s probes)"
    sleep 1

    # (c) After link-up, the rerun with the same --checkpoint resumes the ring at the step every rank saved and
    # writes the same labels as the single process.
    RUN_TIMEOUT=300 run "$mt" job "$work/emb.npy" "$work/labels.npy" "$work/lost.csv" "${common[@]}" --checkpoint "$work/ckpt" >"$work/resume.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q "resuming the ring at step 1 of 2" "$work/resume.log" && cmp -s "$work/single.csv" "$work/lost.csv"; then
        ok "rerun after link-up resumes the ring at step 1; labels == single process"
    else ko "checkpoint resume after the lost node (exit $rc)"; tail -n 10 "$work/resume.log"; fi

    # Lost after the graph was checkpointed (pause at the gather): the rerun reuses every rank's partial graph.
    lost_run ckpt h2 "gather" "$work/ckpt.csv" --checkpoint "$work/ckpt2"
    link up h2
    local first_rc=$LOST_RC first_took=$LOST_TOOK
    sleep 1
    RUN_TIMEOUT=300 run "$mt" job "$work/emb.npy" "$work/labels.npy" "$work/ckpt.csv" "${common[@]}" --checkpoint "$work/ckpt2" >"$work/resume2.log" 2>&1
    rc=$?
    if [ "$first_rc" != 0 ] && [ $rc -eq 0 ] && grep -q "reused checkpoint: true" "$work/resume2.log" && cmp -s "$work/single.csv" "$work/ckpt.csv"; then
        ok "h2 lost at the gather (exit $first_rc after ${first_took}s); rerun reuses the graph checkpoint, labels == single process"
    else ko "graph checkpoint reuse after a lost node (first exit $first_rc, rerun exit $rc)"; tail -n 10 "$work/ckpt.log"; tail -n 10 "$work/resume2.log"; fi

    # A checkpoint from another job is refused with the reason: another tile.
    run "$mt" job "$work/emb.npy" "$work/labels.npy" "$work/tile.csv" --tile 128 --blas-threads 1 --checkpoint "$work/ckpt2" >"$work/tile.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q "does not match this job (.*tile 64 → 128" "$work/tile.log" && [ ! -e "$work/tile.csv" ]; then
        ok "checkpoint from another tile refused with the reason"
    else ko "checkpoint mismatch (exit $rc)"; tail -n 10 "$work/tile.log"; fi

    down
    rm -rf "$work"
    echo "$passed passed, $failed failed"
    [ $failed -eq 0 ]
}

case "${1:-}" in
    up) shift; usable >/dev/null || die "$(usable)"; up "${1:-3}" ;;
    down) down ;;
    run) shift; [ "${1:-}" = -- ] && shift; run "$@" ;;
    link-down) link down "${2:?host}" ;;
    link-up) link up "${2:?host}" ;;
    selftest) selftest "${2:?build dir}" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
esac
