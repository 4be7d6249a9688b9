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

/// Options for building a graph. `tile` is the edge of the `sgemm` score blocks (speed and memory only: candidates
/// are ranked by canonical similarities, so the graph is bit-identical for any tile, split over ranks and kernel).
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
    /// by the smaller global id, so the result depends neither on merge order nor on the BLAS kernel. When more than
    /// k of the tile's scores pass, the tile's own k-th best score bounds the row's final k-th similarity from below
    /// (`candidateCut`), so only the scores near the top are re-scored (rows sorted by class would otherwise re-score
    /// most of their class).
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
                    let cand = UnsafeMutablePointer<Int32>.allocate(capacity: dbCount)
                    let vals = UnsafeMutablePointer<Float>.allocate(capacity: dbCount)
                    defer { cand.deallocate(); vals.deallocate() }
                    for r in r0 ..< r1 {
                        let lr = qStart + r
                        let selfId = first + lr
                        let rowIds = idp + lr * k, rowSims = smp + lr * k
                        let sc = scores + r * ldScores
                        let qRow = queries + lr * d
                        var cut = rowSims[k - 1] - slack   // sgemm scores below this cannot reach the k-th canonical similarity
                        // The scores that pass (self excluded), 8 skipped at once when none can.
                        var m = 0, c = 0
                        while c < dbCount {
                            if c + 8 <= dbCount && TopKAccumulator.max8(sc + c) < cut { c += 8; continue }
                            let end = min(dbCount, c + 8)
                            for cc in c ..< end where sc[cc] >= cut && dbStart + cc != selfId { cand[m] = Int32(cc); m += 1 }
                            c = end
                        }
                        if m == 0 { continue }
                        let floor = TopKAccumulator.candidateCut(scores: sc, stride: 1, cand: cand, count: m, k: k, slack: slack, scratch: vals)
                        cut = max(cut, floor)
                        for t in 0 ..< m {
                            let c = Int(cand[t])
                            if sc[c] < cut { continue }
                            let s = CanonicalSimilarity.dot(qRow, database + c * d, d)
                            let (thr, _) = TopKAccumulator.insert(s, Int32(dbStart + c), rowIds: rowIds, rowSims: rowSims, k: k)
                            cut = max(thr - slack, floor)
                        }
                    }
                }
            }
        }
    }

    /// A lower bound on the `sgemm` scores worth re-scoring among `count` candidates of one row (or column) of a
    /// score tile (`scores[cand[t] * stride]`, self excluded): with more than k of them, the k-th largest score `v_k`
    /// has k pairs whose canonical similarities are at least `v_k − slack`, so the row's final k-th similarity is at
    /// least that, and a score below `v_k − 2·slack` has a canonical similarity strictly below it (never kept, never
    /// a tie). `-infinity` with at most k candidates. O(count) (quickselect on `scratch`).
    @inlinable
    static func candidateCut(scores: UnsafePointer<Float>, stride: Int, cand: UnsafePointer<Int32>, count m: Int, k: Int,
                             slack: Float, scratch a: UnsafeMutablePointer<Float>) -> Float {
        if m <= k { return -.infinity }
        for t in 0 ..< m { a[t] = scores[Int(cand[t]) * stride] }
        // Quickselect the k-th largest (index k − 1 in descending order).
        var lo = 0, hi = m - 1
        let target = k - 1
        while lo < hi {
            let x = a[lo], y = a[(lo + hi) / 2], z = a[hi]
            let pivot = max(min(x, y), min(max(x, y), z))
            var i = lo, j = hi
            while i <= j {
                while a[i] > pivot { i += 1 }
                while a[j] < pivot { j -= 1 }
                if i <= j { let t = a[i]; a[i] = a[j]; a[j] = t; i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { break }
        }
        return a[target] - 2 * slack
    }
}

extension TopKAccumulator {
    /// Inserts `(s, gid)` into the sorted row at `rowIds`/`rowSims` (similarity descending, ties by the smaller id)
    /// when it beats the row's k-th entry. Returns the row's new k-th similarity and id. O(k).
    @inlinable @inline(__always)
    static func insert(_ s: Float, _ gid: Int32, rowIds: UnsafeMutablePointer<Int32>, rowSims: UnsafeMutablePointer<Float>,
                       k: Int) -> (Float, Int32) {
        let thr = rowSims[k - 1], thrId = rowIds[k - 1]
        if s < thr || (s == thr && thrId >= 0 && gid > thrId) { return (thr, thrId) }
        var p = k - 1
        while p > 0 {
            let ps = rowSims[p - 1]
            if ps > s || (ps == s && rowIds[p - 1] >= 0 && rowIds[p - 1] < gid) { break }
            rowSims[p] = ps; rowIds[p] = rowIds[p - 1]
            p -= 1
        }
        rowSims[p] = s; rowIds[p] = gid
        return (rowSims[k - 1], rowIds[k - 1])
    }

    /// Merges a score tile *by columns*: `scores[r*ldScores + c]` is the `sgemm` similarity of row `r` of `rowData`
    /// (global id `rowStart + r`, `r < rowCount`) with this accumulator's local row `cStart + c` (`c < cCount`),
    /// whose embedding is `mine + (cStart + c) * d`. The transpose of `merge`: the same candidate rule (an `sgemm`
    /// score within `CanonicalSimilarity.slack(d:)` of the row's k-th is re-scored canonically; ties by the smaller
    /// id; the tile's k-th best score as a floor, `candidateCut`), so a pair scored once serves both its rows.
    /// Columns are split over threads; each thread streams its strip of every score row against a vector of its
    /// columns' cuts (8 at a time), listing the rows that pass per column, then re-scores column by column.
    /// O(rowCount · cCount) compares; memory per thread: a strip × rowCount list of Int32.
    @inlinable
    public mutating func mergeColumns(scores: UnsafePointer<Float>, ldScores: Int, cStart: Int, cCount: Int,
                                      rowStart: Int, rowCount: Int, rowData: UnsafePointer<Float>,
                                      mine: UnsafePointer<Float>, d: Int) {
        let k = self.k, first = self.firstRow
        let slack = CanonicalSimilarity.slack(d: d)
        ids.withUnsafeMutableBufferPointer { idb in
            sims.withUnsafeMutableBufferPointer { smb in
                let idp = idb.baseAddress!, smp = smb.baseAddress!
                let chunks = cCount >= TopKAccumulator.rowsPerThread ? min(TopKAccumulator.mergeThreads, cCount / TopKAccumulator.rowsPerThread) : 1
                // Strips of a multiple of 8 columns, so every strip but the last runs the vector path only.
                let per = ((cCount + chunks - 1) / chunks + 7) / 8 * 8
                DispatchQueue.concurrentPerform(iterations: chunks) { ch in
                    let c0 = ch * per, c1 = min(cCount, c0 + per)
                    if c0 >= c1 { return }
                    let w = c1 - c0
                    // Pass 1: per column, the score rows that pass its cut (self excluded), 8 columns compared at once.
                    let cut = UnsafeMutablePointer<Float>.allocate(capacity: w + 8)
                    let count = UnsafeMutablePointer<Int>.allocate(capacity: w)
                    let lists = UnsafeMutablePointer<Int32>.allocate(capacity: w * rowCount)
                    let vals = UnsafeMutablePointer<Float>.allocate(capacity: rowCount)
                    defer { cut.deallocate(); count.deallocate(); lists.deallocate(); vals.deallocate() }
                    for c in 0 ..< w { cut[c] = smp[(cStart + c0 + c) * k + k - 1] - slack; count[c] = 0 }
                    for c in w ..< w + 8 { cut[c] = .infinity }
                    for r in 0 ..< rowCount {
                        let sc = scores + r * ldScores + c0
                        let gid = rowStart + r
                        var c = 0
                        while c < w {
                            if c + 8 <= w {
                                let v = UnsafeRawPointer(sc + c).loadUnaligned(as: SIMD8<Float>.self)
                                let cv = UnsafeRawPointer(cut + c).loadUnaligned(as: SIMD8<Float>.self)
                                if !any(v .>= cv) { c += 8; continue }
                            }
                            let end = min(w, c + 8)
                            for cc in c ..< end where sc[cc] >= cut[cc] && gid != first + cStart + c0 + cc {
                                lists[cc * rowCount + count[cc]] = Int32(r); count[cc] += 1
                            }
                            c = end
                        }
                    }
                    // Pass 2: per column, the tile's k-th best score bounds what is worth re-scoring (`candidateCut`).
                    for cc in 0 ..< w where count[cc] > 0 {
                        let m = count[cc], list = lists + cc * rowCount
                        let col = scores + c0 + cc
                        let lr = cStart + c0 + cc
                        let floor = TopKAccumulator.candidateCut(scores: col, stride: ldScores, cand: list, count: m, k: k, slack: slack, scratch: vals)
                        var cutc = max(cut[cc], floor)
                        for t in 0 ..< m {
                            let r = Int(list[t])
                            if col[r * ldScores] < cutc { continue }
                            let s = CanonicalSimilarity.dot(mine + lr * d, rowData + r * d, d)
                            let (thr, _) = TopKAccumulator.insert(s, Int32(rowStart + r), rowIds: idp + lr * k, rowSims: smp + lr * k, k: k)
                            cutc = max(thr - slack, floor)
                        }
                    }
                }
            }
        }
    }

    /// Merges another accumulator's lists for the same rows (`other.rows == rows`, same `firstRow`; unfilled
    /// entries have id -1) into this one: per row the top k of both lists by (similarity desc, id asc). The two
    /// lists must hold disjoint pairs (each pair scored once), so the result equals scoring both sets here. O(rows · k).
    public mutating func mergeLists(_ other: TopKAccumulator) {
        precondition(other.rows == rows && other.k == k && other.firstRow == firstRow)
        let k = self.k
        var tmpIds = [Int32](repeating: -1, count: k), tmpSims = [Float](repeating: -.infinity, count: k)
        for i in 0 ..< rows where other.ids[i * k] >= 0 {
            // a, b <= t < k: each output entry consumes one input entry.
            var a = 0, b = 0
            for t in 0 ..< k {
                let ai = ids[i * k + a], bi = other.ids[i * k + b]
                let takeA: Bool
                if bi < 0 { takeA = true }
                else if ai < 0 { takeA = false }
                else {
                    let sa = sims[i * k + a], sb = other.sims[i * k + b]
                    takeA = sa > sb || (sa == sb && ai < bi)
                }
                if takeA { tmpIds[t] = ai; tmpSims[t] = sims[i * k + a]; a += 1 }
                else { tmpIds[t] = bi; tmpSims[t] = other.sims[i * k + b]; b += 1 }
            }
            for t in 0 ..< k { ids[i * k + t] = tmpIds[t]; sims[i * k + t] = tmpSims[t] }
        }
    }
}

/// Builds exact kNN graphs with blocked `cblas_sgemm` and a partial top-k selection per row, scoring each unordered
/// pair once (the tiles J ≥ I; a tile's scores are merged by rows into I's top-k and by columns into J's): about
/// n²·d multiply-adds for n rows, half of an all-pairs `sgemm`. Memory beyond the inputs: one `tile × tile` score
/// block plus the `rows × k` result; never n².
public enum KNNGraphBuilder {
    /// Scores every pair of rows `rows` (local rows of `acc`, whose embeddings are `x + localRow * d`) **once**: the
    /// tiles `(I, J)` with `J ≥ I` of the range's tile grid, one `cblas_sgemm` each, merged by rows into the rows of
    /// `I` and (for `J > I`) by columns into the rows of `J`. Half the products of scoring every ordered pair, the
    /// same graph bit for bit (canonical similarities, ties by id). `rowTileDone(rowsDone)` is called when a row
    /// tile is complete (its rows then have every pair of the range merged). `rowTileLimit` stops after that many
    /// row tiles (timing a prefix of the triangle; the later rows are then incomplete).
    public static func accumulateSelf(x: UnsafePointer<Float>, rows: Range<Int>, d: Int, tile: Int,
                                      into acc: inout TopKAccumulator, scratch: inout [Float],
                                      rowTileDone: ((Int) -> Void)? = nil, rowTileLimit: Int? = nil) {
        if scratch.count < tile * tile { scratch = [Float](repeating: 0, count: tile * tile) }
        var i0 = rows.lowerBound
        var done = 0
        while i0 < rows.upperBound && done < (rowTileLimit ?? Int.max) {
            done += 1
            let ic = min(tile, rows.upperBound - i0)
            var j0 = i0
            while j0 < rows.upperBound {
                let jc = min(tile, rows.upperBound - j0)
                scratch.withUnsafeMutableBufferPointer { sb in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(ic), Int32(jc), Int32(d),
                                1.0, x + i0 * d, Int32(d), x + j0 * d, Int32(d), 0.0, sb.baseAddress!, Int32(jc))
                    acc.merge(scores: sb.baseAddress!, ldScores: jc, qStart: i0, qCount: ic, dbStart: acc.firstRow + j0,
                              dbCount: jc, queries: x, database: x + j0 * d, d: d)
                    if j0 != i0 {
                        acc.mergeColumns(scores: sb.baseAddress!, ldScores: jc, cStart: j0, cCount: jc,
                                         rowStart: acc.firstRow + i0, rowCount: ic, rowData: x + i0 * d, mine: x, d: d)
                    }
                }
                j0 += jc
            }
            i0 += ic
            rowTileDone?(i0 - rows.lowerBound)
        }
    }

    /// Scores every pair (row of `a`, row of `b`) once: local rows `aRows` of `accA` (embeddings `a + row * d`)
    /// against local rows `bRows` of `accB` (embeddings `b + row * d`), tile by tile, merged by rows into `accA`
    /// and by columns into `accB`. The two accumulators hold disjoint row sets (e.g. two ranks' shards). Used by
    /// the ring (`DistributedGraph`): `accB` goes back to the rank that owns `b`'s rows (`mergeLists`).
    public static func accumulateCross(a: UnsafePointer<Float>, aRows: Range<Int>, into accA: inout TopKAccumulator,
                                       b: UnsafePointer<Float>, bRows: Range<Int>, into accB: inout TopKAccumulator,
                                       d: Int, tile: Int, scratch: inout [Float]) {
        if scratch.count < tile * tile { scratch = [Float](repeating: 0, count: tile * tile) }
        var i0 = aRows.lowerBound
        while i0 < aRows.upperBound {
            let ic = min(tile, aRows.upperBound - i0)
            var j0 = bRows.lowerBound
            while j0 < bRows.upperBound {
                let jc = min(tile, bRows.upperBound - j0)
                scratch.withUnsafeMutableBufferPointer { sb in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(ic), Int32(jc), Int32(d),
                                1.0, a + i0 * d, Int32(d), b + j0 * d, Int32(d), 0.0, sb.baseAddress!, Int32(jc))
                    accA.merge(scores: sb.baseAddress!, ldScores: jc, qStart: i0, qCount: ic, dbStart: accB.firstRow + j0,
                               dbCount: jc, queries: a, database: b + j0 * d, d: d)
                    accB.mergeColumns(scores: sb.baseAddress!, ldScores: jc, cStart: j0, cCount: jc,
                                      rowStart: accA.firstRow + i0, rowCount: ic, rowData: a + i0 * d, mine: b, d: d)
                }
                j0 += jc
            }
            i0 += ic
        }
    }

    /// The exact kNN graph of all rows of `x` (already L2-normalised) on one process.
    /// `progress(doneRows, totalRows)` is called after each row tile: rows `0 ..< doneRows` are complete. Row tile I
    /// scores the tiles J ≥ I, so the early tiles take longest (the first half of the rows is about 3/4 of the work).
    public static func build(_ x: Embeddings, options: GraphOptions, progress: ((Int, Int) -> Void)? = nil) throws -> KNNGraph {
        let n = x.rows, d = x.cols, k = options.k
        try KNNGraph.checkRowCount(n)
        guard k >= 1 else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k >= 1") }
        guard k < n else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k < number of points (\(n))") }
        var scratch = [Float]()
        var acc = TopKAccumulator(rows: n, k: k, firstRow: 0)
        // Each unordered pair once (tiles J >= I); rows of a tile are complete once their row tile is done.
        x.data.withUnsafeBufferPointer { xb in
            accumulateSelf(x: xb.baseAddress!, rows: 0 ..< n, d: d, tile: options.tile, into: &acc, scratch: &scratch,
                           rowTileDone: { progress?($0, n) })
        }
        return try acc.finish()
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
