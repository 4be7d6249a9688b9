import HDLabelIO
import Foundation
import HDLabelCore

/// The exact kNN graph computed by all ranks together with a ring exchange of embedding blocks, each unordered
/// pair of rows scored once.
///
/// Steps `s = 0 … ⌊P/2⌋`. Step 0: rank r scores its own rows with each other (`KNNGraphBuilder.accumulateSelf`, tiles
/// J ≥ I). Step s ≥ 1: rank r holds the block of rank `owner = (r + s) mod P`, scores its rows against it
/// (`accumulateCross`: by rows into its own top-k, by columns into a top-k for the owner's rows), sends the owner
/// that list and receives from rank `r − s` the list it scored for r's rows (`mergeLists`). For even P the last step
/// meets every partner from both sides, so rank r < P/2 takes the owner's first half of rows and rank r ≥ P/2 its own
/// second half: every pair once. Meanwhile the block for step `s + 1` is already in flight: r receives it from rank
/// `r + 1` and passes the current block to rank `r − 1` (double buffer, `MPI_Irecv`/`MPI_Isend`). Block sizes come
/// from the shard table, so no size messages are needed.
///
/// Every candidate is ranked by its canonical similarity (`CanonicalSimilarity`), ties by the smaller global id, and
/// the top-k of disjoint candidate sets merges exactly, so each rank's rows are bit-identical to the single-process
/// graph whatever the rank count, tile, thread count or BLAS kernel.
///
/// Cost per rank: compute about `(n/P) · n · d` FLOPs (half of scoring every ordered pair), communication ⌊P/2⌋
/// blocks of `(n/P) · d · 4` bytes plus ⌊P/2⌋ lists of `(n/P) · k · 8` bytes; memory: own rows + two receive buffers
/// of the largest shard + `(n/P) · k · 8` bytes of top-k and two such lists in flight.
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

        let tile = table.tile, counts = table.counts, bounds = table.bounds
        let own = shard.rows.count
        var acc = TopKAccumulator(rows: own, k: k, firstRow: shard.rows.lowerBound)
        // Steps 0 ... P/2: step 0 scores the shard with itself, step s the pairs with the shard of rank r + s; for
        // even P the last step (s = P/2) meets each partner from both sides, so each side takes half (below).
        let steps = p / 2 + 1

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
            if latest > 0, latest < steps, everyone {
                let owner = (r + latest) % p
                _ = try comm.together("resuming the ring") { () throws -> Bool in
                    let (ids, sims) = try ring.load(done: latest)
                    acc.ids = ids; acc.sims = sims
                    let block = try Shard.load(path: ring.embeddings, rows: table.rows(of: owner), d: d)
                    _ = block.x.data.withUnsafeBufferPointer { current.initialize(from: $0) }
                    return true
                }
                if comm.isRoot { ring.log("checkpoint: resuming the ring at step \(latest) of \(steps) (steps 0..<\(latest) were saved)") }
                first = latest
            }
        }

        let left = (r - 1 + p) % p, right = (r + 1) % p
        for s in first ..< steps {
            try comm.point("graph step \(s)")
            let owner = (r + s) % p
            let count = counts[owner]
            var recv = MPIRequest.null, send = MPIRequest.null
            if s < steps - 1 {
                let incoming = counts[(owner + 1) % p]
                recv = try comm.irecv(UnsafeMutableBufferPointer(rebasing: next[0 ..< incoming * d]), from: right, tag: 3 * s)
                send = try comm.isend(UnsafeBufferPointer(rebasing: current[0 ..< count * d]), to: left, tag: 3 * s)
                timings.bytesSent += count * d * MemoryLayout<Float>.size
            }
            let block = UnsafePointer(current.baseAddress!)
            if s == 0 {
                let t0 = WallClock.now()
                shard.x.data.withUnsafeBufferPointer { xb in
                    // Between rounds, nudge the block in flight along (OpenMPI progresses transfers inside MPI calls).
                    KNNGraphBuilder.accumulateSelf(x: xb.baseAddress!, rows: 0 ..< own, d: d, tile: tile, into: &acc,
                                                   pairsDone: { _, _ in _ = try? comm.test(&recv); _ = try? comm.test(&send) })
                }
                timings.add(.compute, WallClock.now() - t0)
            } else {
                // The pairs (own row, row of `owner`) scored here; the owner's side of each goes back in `theirs`.
                // Even P, s = P/2: rank r < P/2 takes the owner's first half of rows against all own rows, rank
                // r >= P/2 its own second half against all the owner's rows: together every pair once.
                var aRows = 0 ..< own, bRows = 0 ..< count
                if p % 2 == 0 && s == p / 2 {
                    if r < p / 2 { bRows = 0 ..< count / 2 } else { aRows = own / 2 ..< own }
                }
                var theirs = TopKAccumulator(rows: count, k: k, firstRow: bounds[owner])
                let t0 = WallClock.now()
                if !aRows.isEmpty && !bRows.isEmpty {
                    shard.x.data.withUnsafeBufferPointer { xb in
                        KNNGraphBuilder.accumulateCross(a: xb.baseAddress!, aRows: aRows, into: &acc, b: block, bRows: bRows,
                                                        into: &theirs, d: d, tile: tile,
                                                        roundDone: { _ in _ = try? comm.test(&recv); _ = try? comm.test(&send) })
                    }
                }
                let t1 = WallClock.now()
                timings.add(.compute, t1 - t0)
                // Send `theirs` to the owner; receive from rank r - s the lists it scored for our rows.
                let source = (r - s + p) % p
                var got = TopKAccumulator(rows: own, k: k, firstRow: shard.rows.lowerBound)
                try timings.time(.commWait) {
                    var rq = [MPIRequest](repeating: .null, count: 4)
                    try got.ids.withUnsafeMutableBufferPointer { gi in
                        try got.sims.withUnsafeMutableBufferPointer { gs in
                            try theirs.ids.withUnsafeBufferPointer { ti in
                                try theirs.sims.withUnsafeBufferPointer { ts in
                                    rq[0] = try comm.irecv(gi, from: source, tag: 3 * s + 1)
                                    rq[1] = try comm.irecv(gs, from: source, tag: 3 * s + 2)
                                    rq[2] = try comm.isend(ti, to: owner, tag: 3 * s + 1)
                                    rq[3] = try comm.isend(ts, to: owner, tag: 3 * s + 2)
                                    for q in rq.indices { try comm.wait(&rq[q]) }
                                }
                            }
                        }
                    }
                }
                timings.bytesSent += count * k * (MemoryLayout<Int32>.size + MemoryLayout<Float>.size)
                let t2 = WallClock.now()
                acc.mergeLists(got)
                timings.add(.compute, WallClock.now() - t2)
            }
            try timings.time(.commWait) {
                try comm.wait(&recv)
                try comm.wait(&send)
            }
            swap(&current, &next)
            if let ring, s + 1 < steps {
                let ids = acc.ids, sims = acc.sims
                try comm.together("saving ring checkpoint") { try ring.save(done: s + 1, ids: ids, sims: sims) }
            }
        }
        return try comm.together("graph") { try acc.finish() }
    }
}
