import CBLAS
import Dispatch
import Foundation

/// A k-nearest-neighbour graph over `n` points (cosine similarity on L2-normalised rows).
///
/// Row `i`'s neighbours are `neighbors[i*k ..< (i+1)*k]` (global ids, `Int32`) with similarities
/// `similarities[i*k ..< (i+1)*k]`, ordered by similarity descending, ties by smaller id.
/// A point is never its own neighbour; exact duplicates are ordinary neighbours at similarity ~1.
public struct KNNGraph: Sendable, Equatable {
    /// Row ids (neighbour lists, labels' row numbers) are Int32: at most 2³¹ − 1 rows.
    public static let maxRows = Int(Int32.max)

    /// Throws a clear error when `n` rows cannot be addressed by Int32 ids (n ≥ 2³¹).
    public static func checkRowCount(_ n: Int) throws {
        guard n <= maxRows else {
            throw HDLError.invalidInput("\(n) rows: at most \(maxRows) rows are supported (row ids are 32-bit, n < 2^31)")
        }
    }

    public var n: Int
    public var k: Int
    public var neighbors: [Int32]
    public var similarities: [Float]

    public init(n: Int, k: Int, neighbors: [Int32], similarities: [Float]) {
        precondition(neighbors.count == n * k && similarities.count == n * k)
        self.n = n; self.k = k; self.neighbors = neighbors; self.similarities = similarities
    }

    /// The same graph keeping only each row's first `k2 <= k` neighbours.
    public func truncated(to k2: Int) -> KNNGraph {
        precondition(k2 >= 1 && k2 <= k)
        if k2 == k { return self }
        var nb = [Int32](repeating: 0, count: n * k2), sm = [Float](repeating: 0, count: n * k2)
        for i in 0 ..< n {
            for j in 0 ..< k2 { nb[i * k2 + j] = neighbors[i * k + j]; sm[i * k2 + j] = similarities[i * k + j] }
        }
        return KNNGraph(n: n, k: k2, neighbors: nb, similarities: sm)
    }

    /// Concatenates row blocks (e.g. the partial graphs of several ranks, in rank order).
    public static func concatenate(_ parts: [KNNGraph]) -> KNNGraph {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.k == parts[0].k })
        return KNNGraph(n: parts.reduce(0) { $0 + $1.n }, k: parts[0].k,
                        neighbors: parts.flatMap(\.neighbors), similarities: parts.flatMap(\.similarities))
    }
}

/// Options for building a graph. `tile` fixes the global tile grid: every pair's similarity comes from an
/// `sgemm` call whose shape and position depend only on global row indices, so the graph is bit-identical
/// however the rows are split across ranks (as long as shards start at multiples of `tile`).
public struct GraphOptions: Sendable {
    public var k: Int
    public var tile: Int
    /// Default tile edge: 1024 measured faster than 512 at d = 50 and d = 384 (`hdlabel bench graph`).
    public static let defaultTile = 1024
    /// Tile edges accepted everywhere (one score block is tile² floats: 16 GiB at the top).
    public static let tileRange = 8 ... 65536
    public init(k: Int, tile: Int = GraphOptions.defaultTile) { self.k = k; self.tile = tile }
}

/// A running top-k per query row: the state a rank keeps while database blocks stream past.
/// Shapes: `rows × k`; entries not yet filled have id -1 and similarity -infinity.
public struct TopKAccumulator: Sendable {
    /// Threads a score tile's merge is split over (at most), and the fewest rows one thread gets.
    public static let mergeThreads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    public static let rowsPerThread = 32
    public let rows: Int
    public let k: Int
    /// Global id of local row 0.
    public let firstRow: Int
    public var ids: [Int32]
    public var sims: [Float]

    public init(rows: Int, k: Int, firstRow: Int) {
        self.rows = rows; self.k = k; self.firstRow = firstRow
        ids = [Int32](repeating: -1, count: rows * k)
        sims = [Float](repeating: -.infinity, count: rows * k)
    }

    /// The graph once every database block has been merged. Throws if a row has fewer than k neighbours.
    public func finish() throws -> KNNGraph {
        if let bad = ids.firstIndex(of: -1) {
            throw HDLError.invalidInput("row \(firstRow + bad / k) has fewer than k=\(k) neighbours (k must be < number of points)")
        }
        return KNNGraph(n: rows, k: k, neighbors: ids, similarities: sims)
    }

    /// The largest of the 8 scores at `p` (the top-k scans skip 8 scores at once when this is below their cut).
    /// `@inlinable` so that the inlinable `merge` may call it.
    @inlinable @inline(__always) static func max8(_ p: UnsafePointer<Float>) -> Float {
        max(max(max(p[0], p[1]), max(p[2], p[3])), max(max(p[4], p[5]), max(p[6], p[7])))
    }

    /// Merges a score tile: `scores[r*ldScores + c]` is the `sgemm` similarity of local query row `qStart + r`
    /// (row `queries + (qStart + r) * d`) with global database id `dbStart + c` (row `database + c * d`), for
    /// `r < qCount`, `c < dbCount`. Skips self (same global id). A score within `CanonicalSimilarity.slack(d:)` of
    /// the row's current k-th similarity is re-scored with `CanonicalSimilarity.dot` and ranked by that value, ties
    /// by the smaller global id, so the result depends neither on merge order nor on the BLAS kernel.
    @inlinable
    public mutating func merge(scores: UnsafePointer<Float>, ldScores: Int, qStart: Int, qCount: Int, dbStart: Int, dbCount: Int,
                               queries: UnsafePointer<Float>, database: UnsafePointer<Float>, d: Int) {
        let k = self.k, first = self.firstRow
        let slack = CanonicalSimilarity.slack(d: d)
        ids.withUnsafeMutableBufferPointer { idb in
            sims.withUnsafeMutableBufferPointer { smb in
                let idp = idb.baseAddress!, smp = smb.baseAddress!
                // Rows are independent: split them over threads (the merge is the sgemm's companion on the node's
                // cores; each row's result does not depend on the split).
                let chunks = qCount >= TopKAccumulator.rowsPerThread ? min(TopKAccumulator.mergeThreads, qCount / TopKAccumulator.rowsPerThread) : 1
                let per = (qCount + chunks - 1) / chunks
                DispatchQueue.concurrentPerform(iterations: chunks) { ch in
                    let r0 = ch * per, r1 = min(qCount, r0 + per)
                    if r0 >= r1 { return }
                    for r in r0 ..< r1 {
                        let lr = qStart + r
                        let selfId = first + lr
                        let rowIds = idp + lr * k, rowSims = smp + lr * k
                        let sc = scores + r * ldScores
                        let qRow = queries + lr * d
                        var thr = rowSims[k - 1]
                        var thrId = rowIds[k - 1]
                        var cut = thr - slack   // sgemm scores below this cannot reach the k-th canonical similarity
                        var c = 0
                        while c < dbCount {
                            // Fast path: skip 8 scores at once when none can reach the current k-th similarity.
                            if c + 8 <= dbCount {
                                let p = sc + c
                                let m = TopKAccumulator.max8(p)
                                if m < cut { c += 8; continue }
                            }
                            let approx = sc[c]
                            c += 1
                            if approx < cut { continue }
                            let c = c - 1
                            let gid = dbStart + c
                            if gid == selfId { continue }
                            let s = CanonicalSimilarity.dot(qRow, database + c * d, d)
                            if s < thr { continue }
                            if s == thr && (thrId >= 0 && Int32(gid) > thrId) { continue }
                            // Insert (s, gid) into the sorted row (desc similarity, asc id).
                            var p = k - 1
                            while p > 0 {
                                let ps = rowSims[p - 1]
                                if ps > s || (ps == s && rowIds[p - 1] >= 0 && rowIds[p - 1] < Int32(gid)) { break }
                                rowSims[p] = ps; rowIds[p] = rowIds[p - 1]
                                p -= 1
                            }
                            rowSims[p] = s; rowIds[p] = Int32(gid)
                            thr = rowSims[k - 1]; thrId = rowIds[k - 1]; cut = thr - slack
                        }
                    }
                }
            }
        }
    }
}

/// Builds exact kNN graphs with blocked `cblas_sgemm` and a partial top-k selection per row.
/// Memory beyond the inputs: one `tile × tile` score block plus the `rows × k` result; never n².
public enum KNNGraphBuilder {
    /// Multiplies query rows against one database block on the global tile grid and merges into `acc`.
    ///
    /// - `queries`: `acc.rows × d` L2-normalised rows whose global ids start at `acc.firstRow` (a multiple of `tile`).
    /// - `database`: `dbCount × d` rows with global ids starting at `dbStart` (a multiple of `tile`).
    /// Called by the single-process builder (database = all rows) and by every rank in the ring exchange.
    public static func accumulate(
        queries: [Float], database: UnsafePointer<Float>, dbStart: Int, dbCount: Int, d: Int,
        tile: Int, into acc: inout TopKAccumulator, scratch: inout [Float]
    ) {
        if scratch.count < tile * tile { scratch = [Float](repeating: 0, count: tile * tile) }
        let q = acc.rows
        queries.withUnsafeBufferPointer { qb in
            var r0 = 0
            while r0 < q {
                let rc = min(tile, q - r0)
                var c0 = 0
                while c0 < dbCount {
                    let cc = min(tile, dbCount - c0)
                    scratch.withUnsafeMutableBufferPointer { sb in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rc), Int32(cc), Int32(d),
                                    1.0, qb.baseAddress! + r0 * d, Int32(d), database + c0 * d, Int32(d),
                                    0.0, sb.baseAddress!, Int32(cc))
                        acc.merge(scores: sb.baseAddress!, ldScores: cc, qStart: r0, qCount: rc, dbStart: dbStart + c0, dbCount: cc,
                                  queries: qb.baseAddress!, database: database + c0 * d, d: d)
                    }
                    c0 += cc
                }
                r0 += rc
            }
        }
    }

    /// The exact kNN graph of all rows of `x` (already L2-normalised) on one process.
    /// `progress(doneRows, totalRows)` is called after each row tile.
    public static func build(_ x: Embeddings, options: GraphOptions, progress: ((Int, Int) -> Void)? = nil) throws -> KNNGraph {
        let n = x.rows, d = x.cols, k = options.k
        try KNNGraph.checkRowCount(n)
        guard k >= 1 else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k >= 1") }
        guard k < n else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k < number of points (\(n))") }
        var scratch = [Float]()
        // Process query rows tile by tile so progress can be reported; results equal one big call.
        let tile = options.tile
        var r0 = 0
        var parts: [TopKAccumulator] = []
        x.data.withUnsafeBufferPointer { xb in
            while r0 < n {
                let rc = min(tile, n - r0)
                var acc = TopKAccumulator(rows: rc, k: k, firstRow: r0)
                let q = Array(xb[r0 * d ..< (r0 + rc) * d])
                accumulate(queries: q, database: xb.baseAddress!, dbStart: 0, dbCount: n, d: d, tile: tile, into: &acc, scratch: &scratch)
                parts.append(acc)
                r0 += rc
                progress?(r0, n)
            }
        }
        return KNNGraph.concatenate(try parts.map { try $0.finish() })
    }

    /// O(n²·d) reference with canonical similarities (no BLAS), used by tests: equals `build` bit for bit.
    public static func bruteForce(_ x: Embeddings, k: Int) -> KNNGraph {
        let n = x.rows, d = x.cols
        var nb = [Int32](), sm = [Float]()
        for i in 0 ..< n {
            var cand: [(Float, Int)] = []
            for j in 0 ..< n where j != i {
                let s = x.data.withUnsafeBufferPointer { CanonicalSimilarity.dot($0.baseAddress! + i * d, $0.baseAddress! + j * d, d) }
                cand.append((s, j))
            }
            cand.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            for t in 0 ..< k { nb.append(Int32(cand[t].1)); sm.append(cand[t].0) }
        }
        return KNNGraph(n: n, k: k, neighbors: nb, similarities: sm)
    }
}

/// OpenBLAS thread control (ranks × threads should not exceed cores).
public enum BLASThreads {
    public static func set(_ n: Int) { hdl_blas_set_threads(Int32(n)) }
    public static var current: Int { Int(hdl_blas_get_threads()) }
}
