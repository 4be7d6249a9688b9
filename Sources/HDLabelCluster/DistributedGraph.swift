import HDLabelIO
import Foundation
import HDLabelCore

/// The exact kNN graph computed by all ranks together with a ring exchange of embedding blocks.
///
/// In step `s` (0 ≤ s < P) rank r holds the block of rank `(r + s) mod P`, multiplies its own rows against it on the
/// global tile grid (`KNNGraphBuilder.accumulate`) and merges into its running top-k. Meanwhile the block for step
/// `s + 1` is already in flight: r receives it from rank `r + 1` and passes the current block to rank `r − 1`
/// (double buffer, `MPI_Irecv`/`MPI_Isend`). Block sizes come from the shard table, so no size messages are needed.
///
/// Because shards start at multiples of `tile` and `accumulate` only ever multiplies whole grid tiles, every pair's
/// similarity comes from the same `sgemm` call shape as in `KNNGraphBuilder.build`, and ties are broken by the
/// smaller global id whatever the merge order: each rank's rows are bit-identical to the single-process graph.
///
/// Cost per rank: compute `(n/P) · n · d · 2` FLOPs, communication `(P − 1)` blocks of `(n/P) · d · 4` bytes;
/// memory: own rows + two receive buffers of the largest shard + `(n/P) · k · 8` bytes of top-k.
public enum DistributedGraph {
    /// **Collective.** Returns this rank's rows of the kNN graph (`shard.rows.count` rows, global neighbour ids).
    ///
    /// - shard: this rank's L2-normalised rows; `shard.rows` must equal `table.rows(of: comm.rank)`.
    /// - table: the shard table (same on every rank); `table.ranks == comm.size`.
    /// - k: neighbours per row, `1 ≤ k < table.n` (checked collectively).
    /// - timings: `compute` and `commWait` seconds and `bytesSent` are added.
    /// - ring: save the running top-k after every step and resume from the latest step every rank saved
    ///   (`RingCheckpoint`); nil = no per-step checkpoints.
    public static func build(shard: Shard, table: ShardTable, k: Int, comm: Communicator,
                             timings: inout PhaseTimings, ring: RingCheckpoint? = nil) throws -> KNNGraph {
        let r = comm.rank, p = comm.size
        let d = try comm.allreduce(shard.x.cols, .max)
        try comm.agree({ () -> Error? in
            if table.ranks != p { return HDLError.cluster("shard table is for \(table.ranks) ranks, job has \(p)") }
            if shard.rows != table.rows(of: r) { return HDLError.cluster("holds rows \(shard.rows), table says \(table.rows(of: r))") }
            if shard.x.cols != d { return HDLError.cluster("rows have \(shard.x.cols) columns, other ranks \(d)") }
            if k < 1 || k >= table.n { return HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "1 <= k < number of points (\(table.n))") }
            return nil
        }(), phase: "graph setup")

        let tile = table.tile, counts = table.counts
        // Query tiles of this rank, each with its own top-k (the same per-tile split KNNGraphBuilder.build uses).
        var accs: [TopKAccumulator] = [], queries: [[Float]] = []
        var q0 = 0
        while q0 < shard.rows.count {
            let qc = min(tile, shard.rows.count - q0)
            accs.append(TopKAccumulator(rows: qc, k: k, firstRow: shard.rows.lowerBound + q0))
            queries.append(Array(shard.x.data[q0 * d ..< (q0 + qc) * d]))
            q0 += qc
        }
        var scratch = [Float]()

        // Double buffer, sized for the largest shard; the memory must outlive every pending request.
        let capacity = max(1, table.maxCount * d)
        var current = UnsafeMutableBufferPointer<Float>.allocate(capacity: capacity)
        var next = UnsafeMutableBufferPointer<Float>.allocate(capacity: capacity)
        defer { current.deallocate(); next.deallocate() }
        _ = shard.x.data.withUnsafeBufferPointer { current.initialize(from: $0) }

        // Resume: the latest step every rank saved; that step's block is re-read from the file.
        var first = 0
        if let ring, p > 1 {
            let mine = try comm.together("checking checkpoint") { try ring.available() }
            let latest = try comm.allreduce(mine.max() ?? 0, .min)
            let everyone = try comm.allreduce(latest == 0 || mine.contains(latest) ? 1 : 0, .min) == 1
            if latest > 0, everyone {
                let owner = (r + latest) % p
                try comm.together("resuming the ring") { () throws -> Bool in
                    let (ids, sims) = try ring.load(done: latest)
                    var off = 0
                    for t in accs.indices {
                        let m = accs[t].rows * k
                        accs[t].ids = Array(ids[off ..< off + m]); accs[t].sims = Array(sims[off ..< off + m]); off += m
                    }
                    let block = try Shard.load(path: ring.embeddings, rows: table.rows(of: owner), d: d)
                    _ = block.x.data.withUnsafeBufferPointer { current.initialize(from: $0) }
                    return true
                }
                if comm.isRoot { ring.log("checkpoint: resuming the ring at step \(latest) of \(p) (steps 0..<\(latest) were saved)") }
                first = latest
            }
        }

        let left = (r - 1 + p) % p, right = (r + 1) % p
        for s in first ..< p {
            try comm.point("graph step \(s)")
            let owner = (r + s) % p
            let count = counts[owner]
            var recv = MPIRequest.null, send = MPIRequest.null
            if s < p - 1 {
                let incoming = counts[(owner + 1) % p]
                recv = try comm.irecv(UnsafeMutableBufferPointer(rebasing: next[0 ..< incoming * d]), from: right, tag: s)
                send = try comm.isend(UnsafeBufferPointer(rebasing: current[0 ..< count * d]), to: left, tag: s)
                timings.bytesSent += count * d * MemoryLayout<Float>.size
            }
            if count > 0 {
                for t in accs.indices {
                    let t0 = WallClock.now()
                    KNNGraphBuilder.accumulate(queries: queries[t], database: UnsafePointer(current.baseAddress!),
                                               dbStart: table.bounds[owner], dbCount: count, d: d, tile: tile,
                                               into: &accs[t], scratch: &scratch)
                    let t1 = WallClock.now()
                    // Nudge the transfers along between tiles (OpenMPI progresses them inside MPI calls).
                    try comm.test(&recv); try comm.test(&send)
                    timings.add(.compute, t1 - t0)
                    timings.add(.commWait, WallClock.now() - t1)
                }
            }
            try timings.time(.commWait) {
                try comm.wait(&recv)
                try comm.wait(&send)
            }
            swap(&current, &next)
            if let ring, s + 1 < p {
                let ids = accs.flatMap(\.ids), sims = accs.flatMap(\.sims)
                try comm.together("saving ring checkpoint") { try ring.save(done: s + 1, ids: ids, sims: sims) }
            }
        }

        let parts = accs.map { KNNGraph(n: $0.rows, k: k, neighbors: $0.ids, similarities: $0.sims) }
        var all = TopKAccumulator(rows: shard.rows.count, k: k, firstRow: shard.rows.lowerBound)
        if !parts.isEmpty {
            let g = KNNGraph.concatenate(parts)
            all.ids = g.neighbors; all.sims = g.similarities
        }
        return try comm.together("graph") { try all.finish() }
    }
}
