import Foundation
import HDLabelCore

/// The approximate kNN graph (`ApproxKNNGraph`) computed by all ranks, no rank holding all rows.
///
/// 1. Every rank draws the same k-means sample ids; the owners contribute those rows (`Allgatherv`, rank order =
///    ascending ids) and every rank fits the same centroids (`KMeans.fit(sample:)`).
/// 2. Each rank assigns its own rows to their `overlap` nearest cells (canonical, row by row).
/// 3. Cell c is owned by rank c mod P; each (point, cell) membership travels to the owner with the point's row
///    (`Alltoallv`). Members arrive in rank order, each rank's in ascending id, so a cell's members are ascending.
/// 4. Owners join their cells (`ApproxKNNGraph.joinCell`, which depends only on the members) and send each member's
///    list back to the member's row owner (`Alltoallv`), which merges its `overlap` lists as the single process does.
/// 5. Rows short of k (cells of ≤ k points) are completed exactly: their rows go to every rank (`Allgatherv`), each
///    scores its own rows (`GraphRecall.exactNeighbors` over a row range) and the partials are merged.
/// Hence each rank's rows equal the single-process graph bit for bit for any P. Refinement rounds are not
/// distributed yet (`refineRounds` must be 0). Memory per rank: its rows, plus the rows of the memberships it owns
/// (≈ overlap · n/P · d · 4 bytes), plus n/P · overlap · k · 8 bytes of lists.
public enum DistributedApproxGraph {
    /// **Collective.** This rank's rows of the approximate graph (`shard.rows.count` rows, global ids).
    public static func build(shard: Shard, table: ShardTable, options o: ApproxGraphOptions, comm: Communicator) throws -> KNNGraph {
        let r = comm.rank, p = comm.size, n = table.n, k = o.k, m = o.overlap
        let d = try comm.allreduce(shard.x.cols, .max)
        try comm.agree({ () -> Error? in
            if table.ranks != p { return HDLError.cluster("shard table is for \(table.ranks) ranks, job has \(p)") }
            if shard.rows != table.rows(of: r) { return HDLError.cluster("holds rows \(shard.rows), table says \(table.rows(of: r))") }
            if shard.x.cols != d { return HDLError.cluster("rows have \(shard.x.cols) columns, other ranks \(d)") }
            do { try o.validate(n: n) } catch { return error }
            if o.refineRounds != 0 {
                return HDLError.invalidParameter(name: "refineRounds", value: "\(o.refineRounds)", allowed: "0 (refinement is not distributed yet)")
            }
            return nil
        }(), phase: "approximate graph setup")
        let rows = shard.rows, local = rows.count
        let cells = o.cellCount(n: n)

        // 1. Same sample, same centroids everywhere.
        let sample = KMeans.sample(n: n, count: min(n, max(cells, o.samplePerCell * cells)), seed: o.seed)
        let mine = sample.filter { rows.contains($0) }
        var piece = [Float](); piece.reserveCapacity(mine.count * d)
        for id in mine { piece.append(contentsOf: shard.x.data[(id - rows.lowerBound) * d ..< (id - rows.lowerBound + 1) * d]) }
        let sub = Embeddings(rows: sample.count, cols: d, data: try comm.allgatherv(piece))
        let centroids = KMeans.fit(sample: sub, cells: cells, iterations: o.kmeansIterations, seed: o.seed, threads: o.threads)

        // 2. Own rows' cells.
        var assign = [Int32](repeating: 0, count: local * m)
        if local > 0 { KMeans.nearest(shard.x.data, rows: local, d: d, centroids: centroids, cells: cells, m: m, into: &assign, threads: o.threads) }

        // 3. Memberships (id, cell) and rows to the cell owners.
        func owner(ofCell c: Int) -> Int { c % p }
        var sendMeta = [[Int32]](repeating: [], count: p), sendRows = [[Float]](repeating: [], count: p)
        for i in 0 ..< local {
            for s in 0 ..< m {
                let c = Int(assign[i * m + s]), dest = owner(ofCell: c)
                sendMeta[dest].append(Int32(rows.lowerBound + i)); sendMeta[dest].append(Int32(c))
                sendRows[dest].append(contentsOf: shard.x.data[i * d ..< (i + 1) * d])
            }
        }
        let meta = try comm.alltoallv(sendMeta.flatMap { $0 }, sendCounts: sendMeta.map(\.count))
        let got = try comm.alltoallv(sendRows.flatMap { $0 }, sendCounts: sendRows.map(\.count))
        sendRows = []
        let entries = meta.count / 2
        var byCell: [Int: [Int]] = [:]   // cell -> entry indices, in arrival order (ascending ids)
        for e in 0 ..< entries { byCell[Int(meta[2 * e + 1]), default: []].append(e) }

        // 4. Join owned cells; results (id, cell, k ids, k sims) back to the row owners.
        let owned = byCell.keys.sorted()
        var results = [(ids: [Int32], sims: [Float])](repeating: ([], []), count: owned.count)
        results.withUnsafeMutableBufferPointer { rb in
            let out = rb.baseAddress!
            got.withUnsafeBufferPointer { gb in
                DispatchQueue.concurrentPerform(iterations: owned.count) { t in
                    let es = byCell[owned[t]]!
                    var buf = [Float](repeating: 0, count: es.count * d)
                    for (j, e) in es.enumerated() { for q in 0 ..< d { buf[j * d + q] = gb[e * d + q] } }
                    let ids = es.map { meta[2 * $0] }
                    out[t] = buf.withUnsafeBufferPointer { ApproxKNNGraph.joinCell(rows: $0.baseAddress!, ids: ids, d: d, k: k) }
                }
            }
        }
        func owner(ofRow id: Int) -> Int {
            var lo = 0, hi = p - 1   // last rank whose range starts at or before id and is non-empty
            while lo < hi { let mid = (lo + hi + 1) / 2; if table.bounds[mid] <= id { lo = mid } else { hi = mid - 1 } }
            while table.counts[lo] == 0 { lo -= 1 }
            return lo
        }
        var backMeta = [[Int32]](repeating: [], count: p), backIds = [[Int32]](repeating: [], count: p), backSims = [[Float]](repeating: [], count: p)
        for (t, c) in owned.enumerated() {
            for (j, e) in byCell[c]!.enumerated() {
                let id = meta[2 * e], dest = owner(ofRow: Int(id))
                backMeta[dest].append(id); backMeta[dest].append(Int32(c))
                backIds[dest].append(contentsOf: results[t].ids[j * k ..< (j + 1) * k])
                backSims[dest].append(contentsOf: results[t].sims[j * k ..< (j + 1) * k])
            }
        }
        results = []
        let rMeta = try comm.alltoallv(backMeta.flatMap { $0 }, sendCounts: backMeta.map(\.count))
        let rIds = try comm.alltoallv(backIds.flatMap { $0 }, sendCounts: backIds.map(\.count))
        let rSims = try comm.alltoallv(backSims.flatMap { $0 }, sendCounts: backSims.map(\.count))
        var slotIds = [Int32](repeating: -1, count: local * m * k), slotSims = [Float](repeating: -.infinity, count: local * m * k)
        for e in 0 ..< rMeta.count / 2 {
            let i = Int(rMeta[2 * e]) - rows.lowerBound, c = rMeta[2 * e + 1]
            var slot = 0
            while assign[i * m + slot] != c { slot += 1 }
            for j in 0 ..< k { slotIds[(i * m + slot) * k + j] = rIds[e * k + j]; slotSims[(i * m + slot) * k + j] = rSims[e * k + j] }
        }
        var ids = [Int32](repeating: -1, count: local * k), sims = [Float](repeating: -.infinity, count: local * k)
        ids.withUnsafeMutableBufferPointer { ib in
            sims.withUnsafeMutableBufferPointer { sb in
                var cand: [(Float, Int32)] = []
                for i in 0 ..< local {
                    cand.removeAll(keepingCapacity: true)
                    for e in i * m * k ..< (i + 1) * m * k where slotIds[e] >= 0 { cand.append((slotSims[e], slotIds[e])) }
                    ApproxKNNGraph.writeTop(&cand, k: k, row: i, ids: ib.baseAddress!, sims: sb.baseAddress!)
                }
            }
        }

        // 5. Short rows, exactly, each rank scoring its own row range.
        let shortLocal = (0 ..< local).filter { ids[$0 * k + k - 1] < 0 }
        let shortIds = try comm.allgatherv(shortLocal.map { Int32(rows.lowerBound + $0) }).map(Int.init)
        if !shortIds.isEmpty {
            var q = [Float](); q.reserveCapacity(shortLocal.count * d)
            for i in shortLocal { q.append(contentsOf: shard.x.data[i * d ..< (i + 1) * d]) }
            let queries = Embeddings(rows: shortIds.count, cols: d, data: try comm.allgatherv(q))
            let part = GraphRecall.exactNeighbors(queries: queries, ids: shortIds, database: shard.x, range: rows, k: k)
            let allIds = try comm.allgatherv(part.ids), allSims = try comm.allgatherv(part.sims)
            let per = shortIds.count * k
            let parts = (0 ..< p).map { rk in
                GraphRecall.Partial(rows: shortIds, k: k, ids: Array(allIds[rk * per ..< (rk + 1) * per]), sims: Array(allSims[rk * per ..< (rk + 1) * per]))
            }
            let exact = GraphRecall.merge(parts)
            for (t, id) in shortIds.enumerated() where rows.contains(id) {
                let i = id - rows.lowerBound
                for j in 0 ..< k { ids[i * k + j] = exact.ids[t * k + j]; sims[i * k + j] = exact.sims[t * k + j] }
            }
        }
        try comm.agree(ids.contains(-1) ? HDLError.invalidInput("a row has fewer than k=\(k) neighbours") : nil, phase: "approximate graph")
        return KNNGraph(n: local, k: k, neighbors: ids, similarities: sims)
    }
}

/// The recall estimate of a graph whose rows are spread over the ranks (`GraphRecall.estimate`, distributed).
public enum DistributedRecall {
    /// **Collective.** Recall@min(k, 10) of the distributed graph on `sampleSize` deterministic sample rows
    /// (`GraphRecall.sampleRows`): the owners contribute the sample's rows (`Allgatherv`, sample.count × d floats),
    /// every rank scores them against its own rows only (one sgemm of sample × n/P × d) and the per-rank top-k lists
    /// are merged (canonical similarities, ties by id), so the estimate equals the single process's for any P.
    /// `local`: this rank's rows of the graph; `shard`: its L2-normalised rows.
    public static func estimate(local g: KNNGraph, shard: Shard, n: Int, comm: Communicator, sampleSize: Int = 1000) throws -> GraphRecall.Estimate {
        let rows = shard.rows, d = shard.x.cols
        let sample = GraphRecall.sampleRows(n: n, count: sampleSize)
        let ke = min(10, g.k)
        var piece = [Float](), neighbors = [Int32]()
        for id in sample where rows.contains(id) {
            let r = id - rows.lowerBound
            piece.append(contentsOf: shard.x.data[r * d ..< (r + 1) * d])
            neighbors.append(contentsOf: g.neighbors[r * g.k ..< r * g.k + ke])
        }
        let queries = Embeddings(rows: sample.count, cols: d, data: try comm.allgatherv(piece))
        let mine = GraphRecall.exactNeighbors(queries: queries, ids: sample, database: shard.x, range: rows, k: ke)
        let ids = try comm.allgatherv(mine.ids), sims = try comm.allgatherv(mine.sims)
        let per = sample.count * ke
        let parts = (0 ..< comm.size).map { r in
            GraphRecall.Partial(rows: sample, k: ke, ids: Array(ids[r * per ..< (r + 1) * per]), sims: Array(sims[r * per ..< (r + 1) * per]))
        }
        return GraphRecall.recall(sampleNeighbors: try comm.allgatherv(neighbors), k: ke, exact: GraphRecall.merge(parts), n: n)
    }
}
