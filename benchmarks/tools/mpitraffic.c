/* Per-rank MPI traffic and peak memory, for benchmarks only (not linked into hdlabel).
 * Built as a shared library and preloaded (LD_PRELOAD) under mpirun; through the MPI profiling interface it counts
 * the payload bytes each rank hands to other ranks, by call, and at MPI_Finalize appends one line per rank to
 * $MPITRAFFIC_OUT:  rank=R vmhwm_kb=K p2p=B before=B gather=B scatter=B bcast=B allgather=B alltoall=B allreduce=B
 * where the per-call collective counts are those after the rank's last point-to-point send (with the exact ring
 * graph: the labeling phase) and `before` is every collective byte up to it (header, seeds, ring bookkeeping).
 * Counting rule (logical payload leaving this rank, whatever algorithm MPI uses underneath):
 *   Isend/Send: count · size;  Gatherv/Gather: own piece if not root;  Scatterv: root, the pieces of the others;
 *   Bcast: root, count · size · (P − 1);  Allgather(v): own piece · (P − 1);  Alltoall(v): pieces for the other
 *   ranks;  Allreduce: count · size · (P − 1) (what every rank's contribution must reach; small here).
 * Build: mpicc -O2 -shared -fPIC -o libmpitraffic.so mpitraffic.c */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long p2p, gat, sca, bca, allg, a2a, allr;
/* Collective bytes up to the last point-to-point send (the ring kNN graph's phase), moved here at every Isend/Send. */
static long long before;
static void ring_send(void) { before += gat + sca + bca + allg + a2a + allr; gat = sca = bca = allg = a2a = allr = 0; }

static long long tsize(MPI_Datatype t) { int s = 0; PMPI_Type_size(t, &s); return s; }
static int me(MPI_Comm c) { int r = 0; PMPI_Comm_rank(c, &r); return r; }
static int np(MPI_Comm c) { int s = 1; PMPI_Comm_size(c, &s); return s; }

int MPI_Isend(const void *b, int n, MPI_Datatype t, int d, int tag, MPI_Comm c, MPI_Request *r) {
    if (d != me(c)) { p2p += (long long)n * tsize(t); ring_send(); }
    return PMPI_Isend(b, n, t, d, tag, c, r);
}
int MPI_Send(const void *b, int n, MPI_Datatype t, int d, int tag, MPI_Comm c) {
    if (d != me(c)) { p2p += (long long)n * tsize(t); ring_send(); }
    return PMPI_Send(b, n, t, d, tag, c);
}
int MPI_Gatherv(const void *sb, int sn, MPI_Datatype st, void *rb, const int rc[], const int dp[], MPI_Datatype rt, int root, MPI_Comm c) {
    if (me(c) != root) gat += (long long)sn * tsize(st);
    return PMPI_Gatherv(sb, sn, st, rb, rc, dp, rt, root, c);
}
int MPI_Gather(const void *sb, int sn, MPI_Datatype st, void *rb, int rn, MPI_Datatype rt, int root, MPI_Comm c) {
    if (me(c) != root) gat += (long long)sn * tsize(st);
    return PMPI_Gather(sb, sn, st, rb, rn, rt, root, c);
}
int MPI_Scatterv(const void *sb, const int sc[], const int dp[], MPI_Datatype st, void *rb, int rn, MPI_Datatype rt, int root, MPI_Comm c) {
    if (me(c) == root) { int p = np(c); for (int r = 0; r < p; r++) if (r != root) sca += (long long)sc[r] * tsize(st); }
    return PMPI_Scatterv(sb, sc, dp, st, rb, rn, rt, root, c);
}
int MPI_Bcast(void *b, int n, MPI_Datatype t, int root, MPI_Comm c) {
    if (me(c) == root) bca += (long long)n * tsize(t) * (np(c) - 1);
    return PMPI_Bcast(b, n, t, root, c);
}
int MPI_Ibcast(void *b, int n, MPI_Datatype t, int root, MPI_Comm c, MPI_Request *r) {
    if (me(c) == root) bca += (long long)n * tsize(t) * (np(c) - 1);
    return PMPI_Ibcast(b, n, t, root, c, r);
}
int MPI_Allgatherv(const void *sb, int sn, MPI_Datatype st, void *rb, const int rc[], const int dp[], MPI_Datatype rt, MPI_Comm c) {
    allg += (long long)sn * tsize(st) * (np(c) - 1);
    return PMPI_Allgatherv(sb, sn, st, rb, rc, dp, rt, c);
}
int MPI_Allgather(const void *sb, int sn, MPI_Datatype st, void *rb, int rn, MPI_Datatype rt, MPI_Comm c) {
    allg += (long long)sn * tsize(st) * (np(c) - 1);
    return PMPI_Allgather(sb, sn, st, rb, rn, rt, c);
}
int MPI_Alltoallv(const void *sb, const int sc[], const int sd[], MPI_Datatype st, void *rb, const int rc[], const int rd[], MPI_Datatype rt, MPI_Comm c) {
    int p = np(c), m = me(c);
    for (int r = 0; r < p; r++) if (r != m) a2a += (long long)sc[r] * tsize(st);
    return PMPI_Alltoallv(sb, sc, sd, st, rb, rc, rd, rt, c);
}
int MPI_Alltoall(const void *sb, int sn, MPI_Datatype st, void *rb, int rn, MPI_Datatype rt, MPI_Comm c) {
    a2a += (long long)sn * tsize(st) * (np(c) - 1);
    return PMPI_Alltoall(sb, sn, st, rb, rn, rt, c);
}
int MPI_Allreduce(const void *sb, void *rb, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c) {
    allr += (long long)n * tsize(t) * (np(c) - 1);
    return PMPI_Allreduce(sb, rb, n, t, op, c);
}

static long vmhwm(void) {
    FILE *f = fopen("/proc/self/status", "r"); char line[256]; long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) if (!strncmp(line, "VmHWM:", 6)) { kb = atol(line + 6); break; }
    fclose(f); return kb;
}

int MPI_Finalize(void) {
    const char *out = getenv("MPITRAFFIC_OUT");
    if (out) {
        FILE *f = fopen(out, "a");
        if (f) {
            fprintf(f, "rank=%d vmhwm_kb=%ld p2p=%lld before=%lld gather=%lld scatter=%lld bcast=%lld allgather=%lld alltoall=%lld allreduce=%lld\n",
                    me(MPI_COMM_WORLD), vmhwm(), p2p, before, gat, sca, bca, allg, a2a, allr);
            fclose(f);
        }
    }
    return PMPI_Finalize();
}
