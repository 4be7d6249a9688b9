import CBLAS
import Dispatch
import Foundation

/// Which kNN-graph builder to run.
public enum GraphMethod: String, CaseIterable, Sendable, Codable {
    /// All pairs, blocked `sgemm` (`KNNGraphBuilder.build`): exact, O(n²·d).
    case exact
    /// Overlapping k-means cells + neighbour-of-neighbour refinement (`ApproxKNNGraph.build`).
    case approx
    /// `exact` below `GraphMethod.crossover` points, `approx` from there on.
    case auto

    /// Smallest n at which `auto` picks `approx` (docs/graph.md: where the approximate builder became faster than
    /// the exact one at d = 128 and d = 384 on the 2-core development machine, measured in the same run).
    public static let crossover = 20_000

    /// `exact` or `approx` for `n` points.
    public func resolved(n: Int) -> GraphMethod {
        switch self {
        case .auto: return n < GraphMethod.crossover ? .exact : .approx
        default: return self
        }
    }
}

/// Parameters of the approximate builder. Defaults are documented in docs/graph.md with the measurements behind them.
public struct ApproxGraphOptions: Sendable, Codable, Equatable {
    /// Neighbours per point (1 ≤ k < n).
    public var k: Int
    /// The speed/recall knob: how many nearest cells each point joins (cuVS "overlap_factor"). The join cost grows
    /// about as overlap²; 3 is the default (docs/graph.md: more recall per second than 2 with smaller cells or with
    /// refinement rounds).
    public var overlap: Int
    /// k-means cells; `nil` = √n rounded (a cell then holds about overlap·√n points; docs/graph.md).
    public var cells: Int?
    /// Neighbour-of-neighbour refinement rounds after the cell joins (each reads the previous round's graph);
    /// 0 by default: a round adds 0.01–0.03 recall for about 0.6× the join's time, less than one more overlap.
    public var refineRounds: Int
    /// Lloyd iterations of the k-means fit.
    public var kmeansIterations: Int
    /// k-means sample: this many points per cell (capped at n).
    public var samplePerCell: Int
    /// Seed of the k-means sample and initial centroids.
    public var seed: UInt64
    /// Worker threads (`nil` = as many as the system gives). Work items are fixed by the data, so the graph is the
    /// same for any value.
    public var threads: Int?

    public init(k: Int, overlap: Int = 3, cells: Int? = nil, refineRounds: Int = 0, kmeansIterations: Int = 6,
                samplePerCell: Int = 32, seed: UInt64 = 0, threads: Int? = nil) {
        self.threads = threads
        self.k = k; self.overlap = overlap; self.cells = cells; self.refineRounds = refineRounds
        self.kmeansIterations = kmeansIterations; self.samplePerCell = samplePerCell; self.seed = seed
    }

    /// Cells used for `n` points.
    public func cellCount(n: Int) -> Int {
        let c = cells ?? Int(Double(n).squareRoot().rounded())
        return max(1, min(c, n))
    }

    /// Throws `HDLError.invalidParameter` for the first parameter out of range.
    public func validate(n: Int) throws {
        guard k >= 1 else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k >= 1") }
        guard k < n else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k < number of points (\(n))") }
        guard overlap >= 1 && overlap <= 16 else { throw HDLError.invalidParameter(name: "overlap", value: "\(overlap)", allowed: "1 ... 16") }
        if let c = cells, c < 1 || c > n {
            throw HDLError.invalidParameter(name: "cells", value: "\(c)", allowed: "1 ... number of points (\(n))")
        }
        guard overlap <= cellCount(n: n) else {
            throw HDLError.invalidParameter(name: "overlap", value: "\(overlap)", allowed: "at most the number of cells (\(cellCount(n: n)))")
        }
        guard refineRounds >= 0 && refineRounds <= 10 else { throw HDLError.invalidParameter(name: "refineRounds", value: "\(refineRounds)", allowed: "0 ... 10") }
        guard kmeansIterations >= 0 && kmeansIterations <= 100 else {
            throw HDLError.invalidParameter(name: "kmeansIterations", value: "\(kmeansIterations)", allowed: "0 ... 100")
        }
        if let t = threads, t < 1 { throw HDLError.invalidParameter(name: "threads", value: "\(t)", allowed: ">= 1 (or nil)") }
        guard samplePerCell >= 1 else { throw HDLError.invalidParameter(name: "samplePerCell", value: "\(samplePerCell)", allowed: ">= 1") }
    }
}

/// The approximate kNN graph: overlapping k-means cells, exact `sgemm` joins inside each cell, per-row merge,
/// then neighbour-of-neighbour refinement.
///
/// 1. k-means (`KMeans.fit`) on a fixed-seed sample gives `cells` unit centroids.
/// 2. Every point joins its `overlap` nearest cells (canonical ranking, ties by smaller centroid id).
/// 3. Each cell (members in ascending id order) runs the exact builder on its own rows: blocked `sgemm`, candidates
///    re-scored with `CanonicalSimilarity.dot`, top-k per member. A cell's result depends only on its members.
/// 4. Each point merges its `overlap` per-cell lists (duplicates removed) into one top-k.
/// 5. Each refinement round scores, for every row, its neighbours' neighbours and its reverse neighbours against
///    the previous round's graph (Jacobi style) and keeps the top-k.
/// Any row still short of k neighbours (only possible in tiny cells) is completed exactly against all rows.
///
/// Every similarity is a `CanonicalSimilarity.dot` value and every row is the top-k by (similarity desc, id asc)
/// over a candidate set fixed by the data and the options, so the graph is bit-identical for any thread count,
/// BLAS kernel, and order of cell processing.
public enum ApproxKNNGraph {
    /// Largest cell joined with one `ssyrk` (half the products) mirrored to the full block; larger cells use `sgemm`
    /// row blocks (measured at 200,000 × 128: ssyrk + mirror 6.1–6.9 s of CPU against 7.3–7.7 s for sgemm only).
    public static let syrkLimit = 4096

    /// What the last build did, for benchmarks and logs.
    public struct Stats: Sendable {
        public var cells = 0, largestCell = 0
        /// Join cost over the cost with equal cells: Σ s² · cells / (Σ s)² (1 = balanced; the joins cost ∝ s²).
        public var imbalance = 1.0
        public init() {}
    }

    public static func build(_ x: Embeddings, options: ApproxGraphOptions) throws -> KNNGraph {
        var stats = Stats(), none = NoTiming()
        return try build(x, options: options, stats: &stats, timing: &none)
    }

    /// `x`: L2-normalised rows. Throws `HDLError.invalidParameter` for bad options (k ≥ n among them). Phases
    /// (kmeans, assign, join, merge, refine, complete) are timed by `timing`.
    public static func build(_ x: Embeddings, options o: ApproxGraphOptions, stats: inout Stats, timing timer: inout some PhaseTiming) throws -> KNNGraph {
        let n = x.rows, d = x.cols, k = o.k, m = o.overlap
        try o.validate(n: n)
        let cells = o.cellCount(n: n)
        // 1. k-means on a sample.
        let centroids = timer.time("kmeans") { () -> [Float] in
            let sample = KMeans.sample(n: n, count: min(n, max(cells, o.samplePerCell * cells)), seed: o.seed)
            return KMeans.fit(x, sample: sample, cells: cells, iterations: o.kmeansIterations, seed: o.seed, threads: o.threads)
        }
        // 2. Overlapping assignment.
        var assign = [Int32](repeating: 0, count: n * m)
        timer.time("assign") { KMeans.nearest(x.data, rows: n, d: d, centroids: centroids, cells: cells, m: m, into: &assign, threads: o.threads) }
        var members = [[Int32]](repeating: [], count: cells)
        for p in 0 ..< n { for s in 0 ..< m { members[Int(assign[p * m + s])].append(Int32(p)) } }
        stats.cells = cells
        stats.largestCell = members.map(\.count).max() ?? 0
        let sizes = members.map { Double($0.count) }, total = sizes.reduce(0, +)
        stats.imbalance = total > 0 ? sizes.reduce(0) { $0 + $1 * $1 } * Double(cells) / (total * total) : 1
        // 3. Exact joins inside every cell; slot (p, s) receives cell assign[p*m+s]'s top-k for p.
        var slotIds = [Int32](repeating: -1, count: n * m * k)
        var slotSims = [Float](repeating: -.infinity, count: n * m * k)
        timer.time("join") {
            let sizes = members.map(\.count)
            let order = (0 ..< cells).sorted { (a: Int, b: Int) -> Bool in sizes[a] != sizes[b] ? sizes[a] > sizes[b] : a < b }
            let saved = BLASThreads.current
            BLASThreads.set(1)
            defer { BLASThreads.set(saved) }
            x.data.withUnsafeBufferPointer { xb in
                assign.withUnsafeBufferPointer { ab in
                    slotIds.withUnsafeMutableBufferPointer { sib in
                        slotSims.withUnsafeMutableBufferPointer { ssb in
                            joinCells(threads: o.threads, order: order, members: members, x: xb.baseAddress!, d: d, k: k, m: m, assign: ab.baseAddress!,
                                      slotIds: sib.baseAddress!, slotSims: ssb.baseAddress!)
                        }
                    }
                }
            }
        }
        // 4. Merge each point's slots.
        var ids = [Int32](repeating: -1, count: n * k)
        var sims = [Float](repeating: -.infinity, count: n * k)
        timer.time("merge") {
            slotIds.withUnsafeBufferPointer { sib in
                slotSims.withUnsafeBufferPointer { ssb in
                    ids.withUnsafeMutableBufferPointer { ib in
                        sims.withUnsafeMutableBufferPointer { smb in
                            let sip = sib.baseAddress!, ssp = ssb.baseAddress!, ip = ib.baseAddress!, sp = smb.baseAddress!
                            parallelRows(n, threads: o.threads) { lo, hi in
                                var cand: [(Float, Int32)] = []
                                for p in lo ..< hi {
                                    cand.removeAll(keepingCapacity: true)
                                    for e in p * m * k ..< (p + 1) * m * k where sip[e] >= 0 { cand.append((ssp[e], sip[e])) }
                                    writeTop(&cand, k: k, row: p, ids: ip, sims: sp)
                                }
                            }
                        }
                    }
                }
            }
        }
        slotIds = []; slotSims = []
        var graph = KNNGraph(n: n, k: k, neighbors: ids, similarities: sims)
        // 5. Refinement.
        if o.refineRounds > 0 {
            // Rows in primary-cell order: rows of one cell share most neighbours' neighbours, so their rows stay in cache.
            var byCell = [Int32](); byCell.reserveCapacity(n)
            var first = [Int](repeating: 0, count: cells + 1)
            for p in 0 ..< n { first[Int(assign[p * m]) + 1] += 1 }
            for c in 0 ..< cells { first[c + 1] += first[c] }
            byCell = [Int32](repeating: 0, count: n)
            for p in 0 ..< n { let c = Int(assign[p * m]); byCell[first[c]] = Int32(p); first[c] += 1 }
            for round in 0 ..< o.refineRounds {
                graph = timer.time("refine\(round + 1)") { refine(graph, x: x, rowOrder: byCell, threads: o.threads) }
            }
        }
        try timer.time("complete") { try completeShortRows(&graph, x: x) }
        return graph
    }

    /// Step 3: the exact top-k of every member within each cell, written to the member's slot for that cell.
    static func joinCells(threads: Int?, order: [Int], members: [[Int32]], x xp: UnsafePointer<Float>, d: Int, k: Int, m: Int,
                          assign ap: UnsafePointer<Int32>, slotIds sip: UnsafeMutablePointer<Int32>, slotSims ssp: UnsafeMutablePointer<Float>) {
        forEach(order.count, threads: threads) { t in
            let c0 = order[t]
            let mem = members[c0]
            let s = mem.count
            if s < 2 { return }
            var buf = [Float](repeating: 0, count: s * d)
            buf.withUnsafeMutableBufferPointer { bb in
                for (r, p) in mem.enumerated() { (bb.baseAddress! + r * d).update(from: xp + Int(p) * d, count: d) }
            }
            let (ids, sims) = buf.withUnsafeBufferPointer { joinCell(rows: $0.baseAddress!, ids: mem, d: d, k: k) }
            for (r, p) in mem.enumerated() {
                let pi = Int(p)
                var slot = 0
                while Int(ap[pi * m + slot]) != c0 { slot += 1 }
                let dst = (pi * m + slot) * k
                for j in 0 ..< k { sip[dst + j] = ids[r * k + j]; ssp[dst + j] = sims[r * k + j] }
            }
        }
    }

    /// The exact top-k of each member of one cell among the other members: `rows` holds the members' rows
    /// (`ids.count × d`, in the order of `ids`, which must be ascending global ids). Returns `ids.count × k` global ids
    /// and canonical similarities, padded with -1 / -inf when the cell has ≤ k members. Depends only on its inputs.
    public static func joinCell(rows bp: UnsafePointer<Float>, ids mem: [Int32], d: Int, k: Int) -> (ids: [Int32], sims: [Float]) {
        let s = mem.count
        var outIds = [Int32](repeating: -1, count: s * k), outSims = [Float](repeating: -.infinity, count: s * k)
        if s < 2 { return (outIds, outSims) }
        let kc = min(k, s - 1)
        let slack2 = 2 * CanonicalSimilarity.slack(d: d)
        // Cells up to 4096 members: one ssyrk (half the products of sgemm) mirrored to a full s × s block;
        // larger ones: sgemm row blocks of ≤ 16 MB.
        let whole = s <= ApproxKNNGraph.syrkLimit
        let rb = whole ? s : max(1, (4 << 20) / s)
        var scores = [Float](repeating: 0, count: rb * s)
        var top = [Float](repeating: 0, count: kc)
        var cand: [(Float, Int32)] = []
        scores.withUnsafeMutableBufferPointer { sb in
            let sp = sb.baseAddress!
            var r0 = 0
            while r0 < s {
                let rc = min(rb, s - r0)
                if whole {
                    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(s), Int32(d), 1, bp, Int32(d), 0, sp, Int32(s))
                    mirrorUpper(sp, s)
                } else {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rc), Int32(s), Int32(d), 1,
                                bp + r0 * d, Int32(d), bp, Int32(d), 0, sp, Int32(s))
                }
                for r in 0 ..< rc {
                    let lr = r0 + r, sc = sp + r * s
                    // The kc-th largest sgemm score of the row (self excluded) ...
                    for j in 0 ..< kc { top[j] = -.infinity }
                    var low = -Float.infinity
                    var c = 0
                    while c < s {
                        if c + 8 <= s {
                            let p = sc + c
                            let mx = TopKAccumulator.max8(p)
                            if mx <= low { c += 8; continue }
                        }
                        let v = sc[c]
                        if v > low && c != lr {
                            var q = kc - 1
                            while q > 0 && top[q - 1] < v { top[q] = top[q - 1]; q -= 1 }
                            top[q] = v; low = top[kc - 1]
                        }
                        c += 1
                    }
                    // ... then every member whose canonical similarity can reach the kc-th canonical one.
                    let cut = low - slack2
                    cand.removeAll(keepingCapacity: true)
                    let qp = bp + lr * d
                    var c2 = 0
                    while c2 < s {
                        if c2 + 8 <= s {
                            let p = sc + c2
                            let mx = TopKAccumulator.max8(p)
                            if mx < cut { c2 += 8; continue }
                        }
                        if sc[c2] >= cut && c2 != lr { cand.append((CanonicalSimilarity.dot(qp, bp + c2 * d, d), Int32(c2))) }
                        c2 += 1
                    }
                    cand.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                    for j in 0 ..< kc {   // members ascending: local order = global order
                        outIds[lr * k + j] = mem[Int(cand[j].1)]; outSims[lr * k + j] = cand[j].0
                    }
                }
                r0 += rc
            }
        }
        return (outIds, outSims)
    }

    /// Copies the upper triangle of the row-major `s × s` matrix `a` to its lower triangle (64 × 64 tiles).
    static func mirrorUpper(_ a: UnsafeMutablePointer<Float>, _ s: Int) {
        let t = 64
        var bi = 0
        while bi < s {
            var bj = 0
            while bj <= bi {
                for r in bi ..< min(bi + t, s) {
                    let row = a + r * s
                    for c in bj ..< min(bj + t, r) { row[c] = a[c * s + r] }
                }
                bj += t
            }
            bi += t
        }
    }

    /// Runs `body(lo, hi)` over fixed 4096-row blocks of `0 ..< n` in parallel (blocks independent of thread count).
    /// `body` may write only rows `lo ..< hi` of shared buffers (through pointers).
    static func parallelRows(_ n: Int, threads: Int?, _ body: (Int, Int) -> Void) {
        let block = 4096
        forEach((n + block - 1) / block, threads: threads) { b in body(b * block, min(n, (b + 1) * block)) }
    }

    /// `body(0) ... body(iterations - 1)` in parallel: on all cores (`threads == nil`) or on exactly `threads` lanes,
    /// lane t taking items t, t + threads, ... Which lane runs an item never changes what the item computes.
    static func forEach(_ iterations: Int, threads: Int?, _ body: (Int) -> Void) {
        guard let t = threads else { DispatchQueue.concurrentPerform(iterations: iterations, execute: body); return }
        if t == 1 { for i in 0 ..< iterations { body(i) }; return }
        DispatchQueue.concurrentPerform(iterations: t) { lane in
            var i = lane
            while i < iterations { body(i); i += t }
        }
    }

    /// Sorts candidates by (sim desc, id asc), drops repeated ids, writes the first k to row `row` (rest -1/-inf).
    public static func writeTop(_ cand: inout [(Float, Int32)], k: Int, row: Int, ids: UnsafeMutablePointer<Int32>, sims: UnsafeMutablePointer<Float>) {
        cand.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        var w = 0, last: Int32 = -1
        for (s, id) in cand where w < k {
            if id == last { continue }   // equal ids carry equal canonical sims, so they are adjacent
            ids[row * k + w] = id; sims[row * k + w] = s; w += 1; last = id
        }
        while w < k { ids[row * k + w] = -1; sims[row * k + w] = -.infinity; w += 1 }
    }

    /// One neighbour-of-neighbour round: row i's candidates are its neighbours' neighbours and its reverse
    /// neighbours; each is screened by `cblas_sdot` within `CanonicalSimilarity.slack` of the row's k-th similarity
    /// and ranked by `CanonicalSimilarity.dot`. Reads only `g`, so rows are independent.
    /// `rowOrder` (a permutation of the rows) only changes the order rows are visited in, for cache locality.
    public static func refine(_ g: KNNGraph, x: Embeddings, rowOrder: [Int32]? = nil, threads: Int? = nil) -> KNNGraph {
        let n = g.n, k = g.k, d = x.cols
        let slack = CanonicalSimilarity.slack(d: d)
        // Reverse neighbours (CSR, filled in row order).
        var start = [Int](repeating: 0, count: n + 1)
        for e in g.neighbors where e >= 0 { start[Int(e) + 1] += 1 }
        for i in 0 ..< n { start[i + 1] += start[i] }
        var rev = [Int32](repeating: 0, count: start[n])
        var fill = start
        for i in 0 ..< n { for j in 0 ..< k { let e = g.neighbors[i * k + j]; if e >= 0 { rev[fill[Int(e)]] = Int32(i); fill[Int(e)] += 1 } } }
        var out = g
        let saved = BLASThreads.current
        BLASThreads.set(1)
        defer { BLASThreads.set(saved) }
        x.data.withUnsafeBufferPointer { xb in
            g.neighbors.withUnsafeBufferPointer { gnb in
                rev.withUnsafeBufferPointer { rb in
                    out.neighbors.withUnsafeMutableBufferPointer { onb in
                        out.similarities.withUnsafeMutableBufferPointer { osb in
                            let xp = xb.baseAddress!, gn = gnb.baseAddress!, rp = rb.baseAddress!
                            let on = onb.baseAddress!, os = osb.baseAddress!
                            parallelRows(n, threads: threads) { lo, hi in
                                var seen = [Int32](repeating: -1, count: n)   // seen[j] == i: j already considered for row i
                                var cands = [Int32]()
                                for t in lo ..< hi {
                                    let i = rowOrder.map { Int($0[t]) } ?? t
                                    let rowIds = on + i * k, rowSims = os + i * k
                                    let q = xp + i * d
                                    seen[i] = Int32(i)
                                    for j in 0 ..< k where rowIds[j] >= 0 { seen[Int(rowIds[j])] = Int32(i) }
                                    cands.removeAll(keepingCapacity: true)
                                    func consider(_ c: Int32) {
                                        if c < 0 || seen[Int(c)] == Int32(i) { return }
                                        seen[Int(c)] = Int32(i); cands.append(c)
                                    }
                                    for j in 0 ..< k {
                                        let v = gn[i * k + j]
                                        if v < 0 { continue }
                                        for l in 0 ..< k { consider(gn[Int(v) * k + l]) }
                                    }
                                    for e in start[i] ..< start[i + 1] { consider(rp[e]) }
                                    var thr = rowSims[k - 1]
                                    for c in cands {
                                        let cp = xp + Int(c) * d
                                        let approx = cblas_sdot(Int32(d), q, 1, cp, 1)
                                        if approx < thr - slack { continue }
                                        let s = CanonicalSimilarity.dot(q, cp, d)
                                        if s < thr || (s == thr && rowIds[k - 1] >= 0 && c > rowIds[k - 1]) { continue }
                                        var p = k - 1
                                        while p > 0 {
                                            let ps = rowSims[p - 1]
                                            if ps > s || (ps == s && rowIds[p - 1] >= 0 && rowIds[p - 1] < c) { break }
                                            rowSims[p] = ps; rowIds[p] = rowIds[p - 1]; p -= 1
                                        }
                                        rowSims[p] = s; rowIds[p] = c
                                        thr = rowSims[k - 1]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Completes any row with fewer than k neighbours exactly against all rows (its approximate ones are a subset).
    public static func completeShortRows(_ g: inout KNNGraph, x: Embeddings) throws {
        let k = g.k, d = x.cols
        let short = (0 ..< g.n).filter { g.neighbors[$0 * k + k - 1] < 0 }
        if short.isEmpty { return }
        let exact = GraphRecall.exactNeighbors(rows: short, x: x, database: 0 ..< x.rows, k: k)
        for (t, i) in short.enumerated() {
            for j in 0 ..< k { g.neighbors[i * k + j] = exact.ids[t * k + j]; g.similarities[i * k + j] = exact.sims[t * k + j] }
        }
        _ = d
        if g.neighbors.contains(-1) { throw HDLError.invalidInput("a row has fewer than k=\(k) neighbours (k must be < number of points)") }
    }
}

extension KNNGraphBuilder {
    /// Builds with `method` (`auto` resolved by n): the exact builder on `GraphOptions(k:)`, or the approximate one
    /// on `approx` (its `k` is replaced by `k`).
    public static func build(_ x: Embeddings, method: GraphMethod, k: Int, approx: ApproxGraphOptions? = nil) throws -> KNNGraph {
        try graph(of: x, k: k, method: method, approx: approx)
    }

    /// The one way every single-process job gets its graph of width `k` over the L2-normalised rows `x`: `prebuilt`
    /// (read from a graph file; it must cover the same rows and at least k neighbours, and is cut to k), or built
    /// with `method` (`auto` by n): exact on the `tile` grid, or approximate with `approx` (k replaced).
    public static func graph(of x: Embeddings, k: Int, method: GraphMethod, tile: Int = GraphOptions.defaultTile,
                             approx: ApproxGraphOptions? = nil, prebuilt: KNNGraph? = nil,
                             progress: ((Int, Int) -> Void)? = nil) throws -> KNNGraph {
        if let prebuilt {
            guard prebuilt.n == x.rows else { throw HDLError.invalidInput("the kNN graph has \(prebuilt.n) rows, the embeddings \(x.rows)") }
            guard prebuilt.k >= k else {
                throw HDLError.invalidInput("the kNN graph holds \(prebuilt.k) neighbours per row, this run needs \(k); rebuild it with hdlabel graph --k \(k)")
            }
            return prebuilt.truncated(to: k)
        }
        switch method.resolved(n: x.rows) {
        case .approx:
            var o = approx ?? ApproxGraphOptions(k: k)
            o.k = k
            return try ApproxKNNGraph.build(x, options: o)
        default:
            return try build(x, options: GraphOptions(k: k, tile: tile), progress: progress)
        }
    }
}

extension BLASThreads {
    /// The OpenBLAS build and the kernel it picked at run time, e.g. "OpenBLAS 0.3.21 … / Zen".
    public static var kernel: String {
        String(cString: openblas_get_config()).trimmingCharacters(in: .whitespaces) + " / " + String(cString: openblas_get_corename())
    }
}
