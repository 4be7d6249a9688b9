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
    /// Workers for the tile pairs (`KNNGraphBuilder.runRounds`); 0 = the OpenBLAS thread count at the call.
    public var threads: Int = 0
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

    /// How many workers share `count` rows (or columns) of a merge: at most `threads`, at least `rowsPerThread` each.
    @inlinable @inline(__always) static func chunks(_ count: Int, threads: Int) -> Int {
        count >= rowsPerThread ? max(1, min(threads, count / rowsPerThread)) : 1
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
    /// (`candidateCut`), so only the scores near the top are re-scored (the first tile a row meets, its k slots still
    /// empty, would otherwise re-score every score of it).
    /// `threads`: at most this many workers split the rows (1: on the calling thread).
    @inlinable
    public mutating func merge(scores: UnsafePointer<Float>, ldScores: Int, qStart: Int, qCount: Int, dbStart: Int, dbCount: Int,
                               queries: UnsafePointer<Float>, database: UnsafePointer<Float>, d: Int,
                               threads: Int = TopKAccumulator.mergeThreads) {
        let k = self.k, first = self.firstRow
        ids.withUnsafeMutableBufferPointer { idb in
            sims.withUnsafeMutableBufferPointer { smb in
                TopKAccumulator.mergeRows(ids: idb.baseAddress!, sims: smb.baseAddress!, k: k, firstRow: first, scores: scores,
                                          ldScores: ldScores, qStart: qStart, qCount: qCount, dbStart: dbStart, dbCount: dbCount,
                                          queries: queries, database: database, d: d, threads: threads)
            }
        }
    }

    /// `merge` on raw lists (`ids`/`sims`: the accumulator's `rows × k` arrays, local row 0 = global `firstRow`):
    /// what workers call concurrently on disjoint rows.
    @inlinable
    static func mergeRows(ids idp: UnsafeMutablePointer<Int32>, sims smp: UnsafeMutablePointer<Float>, k: Int, firstRow first: Int,
                          scores: UnsafePointer<Float>, ldScores: Int, qStart: Int, qCount: Int, dbStart: Int, dbCount: Int,
                          queries: UnsafePointer<Float>, database: UnsafePointer<Float>, d: Int, threads: Int) {
        let slack = CanonicalSimilarity.slack(d: d)
        // Rows are independent: split them over threads (each row's result does not depend on the split).
        let chunks = TopKAccumulator.chunks(qCount, threads: threads)
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
                    let thr = TopKAccumulator.insert(s, Int32(dbStart + c), rowIds: rowIds, rowSims: rowSims, k: k)
                    cut = max(thr - slack, floor)
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
    /// when it beats the row's k-th entry. Returns the row's new k-th similarity. O(k).
    @inlinable @inline(__always)
    static func insert(_ s: Float, _ gid: Int32, rowIds: UnsafeMutablePointer<Int32>, rowSims: UnsafeMutablePointer<Float>,
                       k: Int) -> Float {
        let thr = rowSims[k - 1], thrId = rowIds[k - 1]
        if s < thr || (s == thr && thrId >= 0 && gid > thrId) { return thr }
        var p = k - 1
        while p > 0 {
            let ps = rowSims[p - 1]
            if ps > s || (ps == s && rowIds[p - 1] >= 0 && rowIds[p - 1] < gid) { break }
            rowSims[p] = ps; rowIds[p] = rowIds[p - 1]
            p -= 1
        }
        rowSims[p] = s; rowIds[p] = gid
        return rowSims[k - 1]
    }

    /// Merges a score tile *by columns*: `scores[r*ldScores + c]` is the `sgemm` similarity of row `r` of `rowData`
    /// (global id `rowStart + r`, `r < rowCount`) with local row `cStart + c` (`c < cCount`) of the lists,
    /// whose embedding is `mine + (cStart + c) * d`. The transpose of `merge`: the same candidate rule (an `sgemm`
    /// score within `CanonicalSimilarity.slack(d:)` of the row's k-th is re-scored canonically; ties by the smaller
    /// id; the tile's k-th best score as a floor, `candidateCut`), so a pair scored once serves both its rows.
    /// Columns are split over threads; each thread streams its strip of every score row against a vector of its
    /// columns' cuts (8 at a time), listing the rows that pass per column, then re-scores column by column.
    /// O(rowCount · cCount) compares; memory per thread: a strip × rowCount list of Int32. Works on raw lists (see
    /// `mergeRows`): the tile-pair workers call it concurrently on disjoint rows.
    @inlinable
    static func mergeCols(ids idp: UnsafeMutablePointer<Int32>, sims smp: UnsafeMutablePointer<Float>, k: Int, firstRow first: Int,
                          scores: UnsafePointer<Float>, ldScores: Int, cStart: Int, cCount: Int, rowStart: Int, rowCount: Int,
                          rowData: UnsafePointer<Float>, mine: UnsafePointer<Float>, d: Int, threads: Int) {
        let slack = CanonicalSimilarity.slack(d: d)
        let chunks = TopKAccumulator.chunks(cCount, threads: threads)
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
                    let thr = TopKAccumulator.insert(s, Int32(rowStart + r), rowIds: idp + lr * k, rowSims: smp + lr * k, k: k)
                    cutc = max(thr - slack, floor)
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
    /// Rounds of tile pairs `(I, J)`, `I ≤ J`, covering every pair of `tiles` tiles once, no tile twice in a round
    /// (so the pairs of a round write disjoint rows): first the diagonal, then a round-robin tournament (circle
    /// method: `tiles − 1` rounds for an even count, one more with a bye for an odd one).
    static func selfRounds(tiles t: Int) -> [[(Int, Int)]] {
        var rounds: [[(Int, Int)]] = [(0 ..< t).map { ($0, $0) }]
        if t < 2 { return rounds }
        let m = t % 2 == 0 ? t : t + 1   // tile m − 1 is the bye when t is odd
        for r in 0 ..< m - 1 {
            var round: [(Int, Int)] = []
            func add(_ a: Int, _ b: Int) { if a < t && b < t { round.append((min(a, b), max(a, b))) } }
            add(m - 1, r)
            for i in 1 ..< m / 2 { add((r + i) % (m - 1), (r - i + m - 1) % (m - 1)) }
            rounds.append(round)
        }
        return rounds
    }

    /// Rounds of tile pairs `(I, J)` of two disjoint tile sets (`ta` and `tb` tiles) covering every pair once, no
    /// tile of either set twice in a round: round r pairs tile i of the smaller set with tile (i + r) mod (larger).
    static func crossRounds(ta: Int, tb: Int) -> [[(Int, Int)]] {
        if ta == 0 || tb == 0 { return [] }
        return ta <= tb ? (0 ..< tb).map { r in (0 ..< ta).map { ($0, ($0 + r) % tb) } }
                        : (0 ..< ta).map { r in (0 ..< tb).map { (($0 + r) % ta, $0) } }
    }

    /// Runs `rounds` of tile pairs: a round with at least `threads` pairs runs its pairs on `threads` workers, each
    /// with one BLAS thread, its own score block and the merges on its own thread (`body(pair, scratch, 1)`); a
    /// smaller round runs its pairs one by one with `threads` BLAS threads and merge workers. Pairs of a round write
    /// disjoint rows, and the merged lists do not depend on the order, so the graph is the same for any `threads`.
    /// `roundDone(pairsDone)` is called on the calling thread after each round.
    static func runRounds(_ rounds: [[(Int, Int)]], threads: Int, tile: Int,
                          roundDone: ((Int) -> Void)?,
                          body: @escaping @Sendable ((Int, Int), UnsafeMutablePointer<Float>, _ mergeThreads: Int) -> Void) {
        let workers = max(1, threads)
        let blocks = UnsafeMutablePointer<Float>.allocate(capacity: workers * tile * tile)
        defer { blocks.deallocate() }
        let saved = BLASThreads.current
        defer { BLASThreads.set(saved) }
        nonisolated(unsafe) let bp = blocks
        var done = 0
        for round in rounds {
            if workers > 1 && round.count >= workers {
                BLASThreads.set(1)
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for p in stride(from: w, to: round.count, by: workers) { body(round[p], bp + w * tile * tile, 1) }
                }
            } else {
                BLASThreads.set(workers)
                for pair in round { body(pair, bp, workers) }
            }
            done += round.count
            roundDone?(done)
        }
    }

    /// Scores every pair of rows `rows` (local rows of `acc`, whose embeddings are `x + localRow * d`) **once**: the
    /// tiles `(I, J)` with `J ≥ I` of the range's tile grid, one `cblas_sgemm` each, merged by rows into the rows of
    /// `I` and (for `J > I`) by columns into the rows of `J`. Half the products of scoring every ordered pair, the
    /// same graph bit for bit (canonical similarities, ties by id). Tile pairs run in rounds of disjoint tiles on
    /// `threads` workers (`runRounds`; 0 = the OpenBLAS thread count). `pairsDone(done, total)` after each round.
    public static func accumulateSelf(x: UnsafePointer<Float>, rows: Range<Int>, d: Int, tile: Int,
                                      into acc: inout TopKAccumulator, threads: Int = 0,
                                      pairsDone: ((Int, Int) -> Void)? = nil, roundLimit: Int? = nil) {
        let t = (rows.count + tile - 1) / tile
        var rounds = selfRounds(tiles: t)
        if let roundLimit { rounds = Array(rounds.prefix(roundLimit)) }
        let total = t * (t + 1) / 2
        let k = acc.k, first = acc.firstRow, lo = rows.lowerBound, hi = rows.upperBound
        nonisolated(unsafe) let xp = x
        acc.ids.withUnsafeMutableBufferPointer { idb in
            acc.sims.withUnsafeMutableBufferPointer { smb in
                nonisolated(unsafe) let idp = idb.baseAddress!, smp = smb.baseAddress!
                runRounds(rounds, threads: threads > 0 ? threads : BLASThreads.current, tile: tile,
                          roundDone: { pairsDone?($0, total) }) { pair, sb, merge in
                    let i0 = lo + pair.0 * tile, ic = min(tile, hi - i0)
                    let j0 = lo + pair.1 * tile, jc = min(tile, hi - j0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(ic), Int32(jc), Int32(d),
                                1.0, xp + i0 * d, Int32(d), xp + j0 * d, Int32(d), 0.0, sb, Int32(jc))
                    TopKAccumulator.mergeRows(ids: idp, sims: smp, k: k, firstRow: first, scores: sb, ldScores: jc, qStart: i0,
                                              qCount: ic, dbStart: first + j0, dbCount: jc, queries: xp, database: xp + j0 * d,
                                              d: d, threads: merge)
                    if j0 != i0 {
                        TopKAccumulator.mergeCols(ids: idp, sims: smp, k: k, firstRow: first, scores: sb, ldScores: jc, cStart: j0,
                                                  cCount: jc, rowStart: first + i0, rowCount: ic, rowData: xp + i0 * d, mine: xp,
                                                  d: d, threads: merge)
                    }
                }
            }
        }
    }

    /// Scores every pair (row of `a`, row of `b`) once: local rows `aRows` of `accA` (embeddings `a + row * d`)
    /// against local rows `bRows` of `accB` (embeddings `b + row * d`), tile by tile, merged by rows into `accA`
    /// and by columns into `accB`. The two accumulators hold disjoint row sets (e.g. two ranks' shards). Used by
    /// the ring (`DistributedGraph`): `accB` goes back to the rank that owns `b`'s rows (`mergeLists`). Tile pairs
    /// run in rounds as in `accumulateSelf`.
    public static func accumulateCross(a: UnsafePointer<Float>, aRows: Range<Int>, into accA: inout TopKAccumulator,
                                       b: UnsafePointer<Float>, bRows: Range<Int>, into accB: inout TopKAccumulator,
                                       d: Int, tile: Int, threads: Int = 0, roundDone: ((Int) -> Void)? = nil) {
        let ta = (aRows.count + tile - 1) / tile, tb = (bRows.count + tile - 1) / tile
        let rounds = crossRounds(ta: ta, tb: tb)
        let k = accA.k, firstA = accA.firstRow, firstB = accB.firstRow
        let aLo = aRows.lowerBound, aHi = aRows.upperBound, bLo = bRows.lowerBound, bHi = bRows.upperBound
        nonisolated(unsafe) let ap = a, bp = b
        accA.ids.withUnsafeMutableBufferPointer { aib in accA.sims.withUnsafeMutableBufferPointer { asb in
            accB.ids.withUnsafeMutableBufferPointer { bib in accB.sims.withUnsafeMutableBufferPointer { bsb in
                nonisolated(unsafe) let aIds = aib.baseAddress!, aSims = asb.baseAddress!, bIds = bib.baseAddress!, bSims = bsb.baseAddress!
                runRounds(rounds, threads: threads > 0 ? threads : BLASThreads.current, tile: tile, roundDone: roundDone) { pair, sb, merge in
                    let i0 = aLo + pair.0 * tile, ic = min(tile, aHi - i0)
                    let j0 = bLo + pair.1 * tile, jc = min(tile, bHi - j0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(ic), Int32(jc), Int32(d),
                                1.0, ap + i0 * d, Int32(d), bp + j0 * d, Int32(d), 0.0, sb, Int32(jc))
                    TopKAccumulator.mergeRows(ids: aIds, sims: aSims, k: k, firstRow: firstA, scores: sb, ldScores: jc, qStart: i0,
                                              qCount: ic, dbStart: firstB + j0, dbCount: jc, queries: ap, database: bp + j0 * d,
                                              d: d, threads: merge)
                    TopKAccumulator.mergeCols(ids: bIds, sims: bSims, k: k, firstRow: firstB, scores: sb, ldScores: jc, cStart: j0,
                                              cCount: jc, rowStart: firstA + i0, rowCount: ic, rowData: ap + i0 * d, mine: bp,
                                              d: d, threads: merge)
                }
            } }
        } }
    }

    /// The exact kNN graph of all rows of `x` (already L2-normalised) on one process.
    /// `progress(donePairs, totalPairs)` is called after each round of tile pairs (work done, in tile pairs).
    public static func build(_ x: Embeddings, options: GraphOptions, progress: ((Int, Int) -> Void)? = nil) throws -> KNNGraph {
        let n = x.rows, d = x.cols, k = options.k
        try KNNGraph.checkRowCount(n)
        guard k >= 1 else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k >= 1") }
        guard k < n else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k < number of points (\(n))") }
        var acc = TopKAccumulator(rows: n, k: k, firstRow: 0)
        // Each unordered pair once (tiles J >= I), in rounds of disjoint tiles on the BLAS thread count's workers.
        x.data.withUnsafeBufferPointer { xb in
            accumulateSelf(x: xb.baseAddress!, rows: 0 ..< n, d: d, tile: options.tile, into: &acc, threads: options.threads,
                           pairsDone: progress)
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
