import Dispatch
import Foundation

/// A symmetric, non-negative sparse affinity matrix in CSR form, built from a kNN graph as W = A + Aᵀ
/// (A_ij = weight of j in i's list), then symmetrically normalised: S = D^-1/2 W D^-1/2.
/// Holds the rows `firstRow ..< firstRow + n` of S (all rows on a single process; one process's range in the
/// cluster's worker-side labeling). Shapes: `rowPtr` n+1, `cols` (global column ids) / `values` nnz.
/// Used by every propagation-style method.
public struct NormalizedAffinity: Sendable {
    /// ‖r‖² below which a column counts as solved whatever the tolerance (a column with no seed mass has r = 0).
    public static let zeroResidual = 1e-20
    /// Rows held.
    public let n: Int
    /// Global id of the first row held; `total` is the number of rows (and columns) of S.
    public let firstRow: Int
    public let total: Int
    public let rowPtr: [Int]
    public let cols: [Int32]
    public let values: [Float]

    /// Rows `comm.rows` of S from those rows' kNN lists (`rows.n == comm.rows.count`, global neighbour ids). The
    /// reverse edges (A_ji for j elsewhere) come from `comm.incoming`, the column degrees from one allgather of n
    /// doubles. Every row's entries are in the same order as on a single process (reverse edges from rows before it,
    /// its own list with any self edge right after its slot, reverse edges from rows after it), so the values and
    /// every later product are identical for any split of the rows. **Collective** over `comm` (`LocalRows` on one
    /// process). `weight` maps a similarity to an edge weight (e.g. `max(s,0)^3`, or 1 for a binary graph).
    public init(rows graph: KNNGraph, comm: RowCollectives, weight: (Float) -> Float) throws {
        let n = graph.n, k = graph.k, first = comm.rows.lowerBound
        precondition(n == comm.rows.count)
        var out = EdgeList()
        out.target.reserveCapacity(n * k); out.source.reserveCapacity(n * k); out.slot.reserveCapacity(n * k); out.sim.reserveCapacity(n * k)
        for i in 0 ..< n {
            for t in 0 ..< k {
                out.target.append(graph.neighbors[i * k + t]); out.source.append(Int32(first + i))
                out.slot.append(Int32(t)); out.sim.append(graph.similarities[i * k + t])
            }
        }
        let inc = try comm.incoming(out)
        out = EdgeList()
        // Incoming edges grouped by local target row, keeping their (source, slot) order (counting sort).
        var start = [Int](repeating: 0, count: n + 1)
        for e in 0 ..< inc.count { start[Int(inc.target[e]) - first + 1] += 1 }
        for i in 0 ..< n { start[i + 1] += start[i] }
        var order = [Int](repeating: 0, count: inc.count)
        var pos = start
        for e in 0 ..< inc.count { let r = Int(inc.target[e]) - first; order[pos[r]] = e; pos[r] += 1 }
        var deg = [Int](repeating: 0, count: n + 1)
        for i in 0 ..< n { deg[i + 1] = deg[i] + k + (start[i + 1] - start[i]) }
        var c = [Int32](repeating: 0, count: deg[n]), v = [Float](repeating: 0, count: deg[n])
        for i in 0 ..< n {
            let gi = Int32(first + i)
            var q = deg[i], p = start[i]
            func emitIncoming(while cond: (Int) -> Bool) {
                while p < start[i + 1], cond(order[p]) {
                    let e = order[p]
                    c[q] = inc.source[e]; v[q] = weight(inc.sim[e]); q += 1; p += 1
                }
            }
            emitIncoming { inc.source[$0] < gi }
            for t in 0 ..< k {
                c[q] = graph.neighbors[i * k + t]; v[q] = weight(graph.similarities[i * k + t]); q += 1
                emitIncoming { inc.source[$0] == gi && inc.slot[$0] == Int32(t) }
            }
            emitIncoming { _ in true }
        }
        var d = [Double](repeating: 0, count: n)
        for i in 0 ..< n { for p in deg[i] ..< deg[i + 1] { d[i] += Double(v[p]) } }
        let inv = try comm.allgather(d.map { $0 > 0 ? 1 / $0.squareRoot() : 0 })
        for i in 0 ..< n { for p in deg[i] ..< deg[i + 1] { v[p] = Float(Double(v[p]) * inv[first + i] * inv[Int(c[p])]) } }
        self.n = n; firstRow = first; total = comm.n; rowPtr = deg; cols = c; values = v
    }

    /// y = S x for a dense `total × m` row-major block (m columns at once); y has the `n` rows held. Rows are split
    /// over `threads` workers (0 = every core); each row is summed in CSR order, so y is the same for any split.
    ///
    /// - nonzeroRows: when given (length `total`), rows of x marked false are all zero and are skipped. Adding a zero
    ///   product never changes a sum that starts at +0, so the result is the same bits as without the mask.
    public func multiply(_ x: [Float], columns m: Int, threads: Int = 0, nonzeroRows: [Bool]? = nil) -> [Float] {
        var y = [Float](repeating: 0, count: n * m)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                if let nonzeroRows {
                    nonzeroRows.withUnsafeBufferPointer { nb in
                        let np = nb.baseAddress!
                        Parallel.forBlocks(rows: n, threads: n > 4096 ? threads : 1) { lo, hi in
                            multiplyRows(lo ..< hi, xp, yp, columns: m, nonzero: np)
                        }
                    }
                } else {
                    Parallel.forBlocks(rows: n, threads: n > 4096 ? threads : 1) { lo, hi in
                        multiplyRows(lo ..< hi, xp, yp, columns: m)
                    }
                }
            }
        }
        return y
    }

    /// out[i] = Σ_p values[p] · x[cols[p]] for rows `r` (out rows start zeroed), in CSR order; with `nonzero`, source
    /// rows marked false are skipped (they are zero).
    @inline(__always)
    func multiplyRows(_ r: Range<Int>, _ xp: UnsafePointer<Float>, _ yp: UnsafeMutablePointer<Float>, columns m: Int,
                      nonzero: UnsafePointer<Bool>? = nil) {
        rowPtr.withUnsafeBufferPointer { rp in cols.withUnsafeBufferPointer { cp in values.withUnsafeBufferPointer { vp in
            for i in r {
                let out = yp + i * m
                for p in rp[i] ..< rp[i + 1] {
                    let j = Int(cp[p])
                    if let nonzero, !nonzero[j] { continue }
                    let w = vp[p], src = xp + j * m
                    for c in 0 ..< m { out[c] += w * src[c] }
                }
            }
        } } }
    }

    /// What one `solve` did: conjugate-gradient iterations run (each one product with S) and whether every column
    /// met the relative-residual tolerance before the iteration cap.
    public struct SolveStats: Sendable, Equatable {
        public var iterations: Int
        public var converged: Bool
    }

    /// Solves (I − αS) F = Y by conjugate gradient for all m columns together (each column is its own CG,
    /// run in lock-step). `Y` and the result are `n × m` row-major. I − αS is symmetric positive definite for 0<α<1.
    ///
    /// With `clamped` (length n), rows marked true are boundary values fixed to their rows of `y`, and the system is
    /// solved for the other rows only: (I − αS_UU) F_U = α S_UL Y_L (harmonic extension of the clamped labels).
    /// `y`, `clamped` and the result cover the rows held, `firstRow ..< firstRow + n` (all rows with `LocalRows`).
    ///
    /// - iterations: the cap on iterations.
    /// - tolerance: stop once every column's residual satisfies ‖r_c‖ ≤ tolerance · ‖b_c‖ (b the right-hand side);
    ///   0 runs all `iterations` (a column whose residual is exactly 0 stops either way).
    /// - initial: starting iterate (`n × m`, the rows held; clamped rows are ignored); default the right-hand side.
    /// - threads: workers for the product and the vector updates (0 = every core).
    ///
    /// Each iteration allgathers the search direction (total × m floats) and the blockwise partials of two dot
    /// products (`Reduction`: one partial per fixed 32-row block, added in block order), so the iterates and the
    /// stopping test are identical for any split of the rows over processes and threads. **Collective** over `comm`.
    public func solve(_ y: [Float], columns m: Int, alpha: Float, iterations: Int, tolerance: Double = 0, initial: [Float]? = nil,
                      clamped: [Bool]? = nil, threads: Int = 0, comm: RowCollectives) throws -> [Float] {
        try solveCounting(y, columns: m, alpha: alpha, iterations: iterations, tolerance: tolerance, initial: initial,
                          clamped: clamped, threads: threads, comm: comm).solution
    }

    /// `solve`, also returning what it did.
    public func solveCounting(_ y: [Float], columns m: Int, alpha: Float, iterations: Int, tolerance: Double = 0, initial: [Float]? = nil,
                              clamped: [Bool]? = nil, threads: Int = 0, comm: RowCollectives) throws -> (solution: [Float], stats: SolveStats) {
        precondition(y.count == n * m && (initial == nil || initial!.count == n * m) && (clamped == nil || clamped!.count == n))
        let count = n * m
        let isClamped = clamped ?? [Bool](repeating: false, count: n)
        let anyClamped = clamped != nil
        var rhs = y
        // Row-parallel map over the rows held: body(i) for every row i (rows are independent).
        func eachRow(_ body: (Int) -> Void) { Parallel.forBlocks(rows: n, threads: threads) { lo, hi in for i in lo ..< hi { body(i) } } }
        if anyClamped {
            // b = α S Y_L on free rows, 0 on clamped rows; only the clamped rows' (non-zero) values enter the product.
            var yl = y
            yl.withUnsafeMutableBufferPointer { yb in let yp = yb.baseAddress!; eachRow { i in if !isClamped[i] { for c in 0 ..< m { yp[i * m + c] = 0 } } } }
            let ylAll = try comm.allgather(yl)
            var nonzero = [Bool](repeating: false, count: ylAll.count / max(m, 1))
            for j in 0 ..< nonzero.count { for c in 0 ..< m where ylAll[j * m + c] != 0 { nonzero[j] = true; break } }
            rhs = multiply(ylAll, columns: m, threads: threads, nonzeroRows: nonzero)
            rhs.withUnsafeMutableBufferPointer { rb in
                let rp = rb.baseAddress!
                eachRow { i in for c in 0 ..< m { rp[i * m + c] = isClamped[i] ? 0 : alpha * rp[i * m + c] } }
            }
        }
        var f = initial ?? rhs
        if anyClamped { f.withUnsafeMutableBufferPointer { fb in let fp = fb.baseAddress!; eachRow { i in if isClamped[i] { for c in 0 ..< m { fp[i * m + c] = 0 } } } } }
        let blocks = (n + Reduction.block - 1) / Reduction.block
        var partial = [Double](repeating: 0, count: blocks * m)
        var r = [Float](repeating: 0, count: count), ap = [Float](repeating: 0, count: count)
        var p = [Float]()
        var rr = [Double](), bb = [Double]()
        let blk = Reduction.block
        // out = x − α S x on free rows, 0 on clamped rows, and per block the partials of Σ Double(x·out) (`dot`).
        func apply(_ x: [Float], into out: inout [Float], dot: Bool) throws {
            let xg = try comm.allgather(x)
            xg.withUnsafeBufferPointer { gb in x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
                partial.withUnsafeMutableBufferPointer { pb in isClamped.withUnsafeBufferPointer { cb in
                    let gp = gb.baseAddress!, xp = xb.baseAddress!, op = ob.baseAddress!, pp = pb.baseAddress!, cl = cb.baseAddress!
                    Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                        for i in lo ..< hi { for c in 0 ..< m { op[i * m + c] = 0 } }
                        multiplyRows(lo ..< hi, gp, op, columns: m)
                        for i in lo ..< hi {
                            let o = op + i * m, xi = xp + i * m
                            if cl[i] { for c in 0 ..< m { o[c] = 0 } } else { for c in 0 ..< m { o[c] = xi[c] - alpha * o[c] } }
                        }
                        if dot {
                            for b in lo / blk ..< (hi + blk - 1) / blk {
                                let part = pp + b * m
                                for c in 0 ..< m { part[c] = 0 }
                                for i in b * blk ..< min(hi, (b + 1) * blk) {
                                    let o = op + i * m, xi = xp + i * m
                                    for c in 0 ..< m { part[c] += Double(xi[c] * o[c]) }
                                }
                            }
                        }
                    }
                } }
            } } }
        }
        // Partials of Σ Double(v·v) per block.
        func squarePartials(_ v: [Float]) {
            v.withUnsafeBufferPointer { vb in partial.withUnsafeMutableBufferPointer { pb in
                let vp = vb.baseAddress!, pp = pb.baseAddress!
                Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                    for b in lo / blk ..< (hi + blk - 1) / blk {
                        let part = pp + b * m
                        for c in 0 ..< m { part[c] = 0 }
                        for i in b * blk ..< min(hi, (b + 1) * blk) {
                            let x = vp + i * m
                            for c in 0 ..< m { part[c] += Double(x[c] * x[c]) }
                        }
                    }
                }
            } }
        }
        try apply(f, into: &ap, dot: false)
        r.withUnsafeMutableBufferPointer { rb in rhs.withUnsafeBufferPointer { bb in ap.withUnsafeBufferPointer { ab in
            let rp = rb.baseAddress!, bp = bb.baseAddress!, app = ab.baseAddress!
            eachRow { i in for c in 0 ..< m { rp[i * m + c] = bp[i * m + c] - app[i * m + c] } }
        } } }
        p = r
        squarePartials(r)
        rr = try Reduction.sumPartials(comm, partial, columns: m)
        if tolerance > 0 { squarePartials(rhs); bb = try Reduction.sumPartials(comm, partial, columns: m) }
        let tol2 = tolerance * tolerance
        var done = 0, converged = false
        while true {
            converged = (0 ..< m).allSatisfy { rr[$0] < NormalizedAffinity.zeroResidual || (tolerance > 0 && rr[$0] <= tol2 * bb[$0]) }
            if converged || done == iterations { break }
            try apply(p, into: &ap, dot: true)
            done += 1
            let pap = try Reduction.sumPartials(comm, partial, columns: m)
            let a = (0 ..< m).map { pap[$0] > 0 ? Float(rr[$0] / pap[$0]) : 0 }
            f.withUnsafeMutableBufferPointer { fb in r.withUnsafeMutableBufferPointer { rb in p.withUnsafeBufferPointer { pb in
                ap.withUnsafeBufferPointer { ab in a.withUnsafeBufferPointer { aa in partial.withUnsafeMutableBufferPointer { qb in
                    let fp = fb.baseAddress!, rp = rb.baseAddress!, pp = pb.baseAddress!, app = ab.baseAddress!, av = aa.baseAddress!
                    let qp = qb.baseAddress!
                    Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                        for b in lo / blk ..< (hi + blk - 1) / blk {
                            let part = qp + b * m
                            for c in 0 ..< m { part[c] = 0 }
                            for i in b * blk ..< min(hi, (b + 1) * blk) {
                                let o = i * m
                                for c in 0 ..< m {
                                    fp[o + c] += av[c] * pp[o + c]
                                    rp[o + c] -= av[c] * app[o + c]
                                    part[c] += Double(rp[o + c] * rp[o + c])
                                }
                            }
                        }
                    }
                } } }
            } } }
            let rrNew = try Reduction.sumPartials(comm, partial, columns: m)
            let beta = (0 ..< m).map { rr[$0] > 0 ? Float(rrNew[$0] / rr[$0]) : 0 }
            p.withUnsafeMutableBufferPointer { pb in r.withUnsafeBufferPointer { rb in beta.withUnsafeBufferPointer { bv in
                let pp = pb.baseAddress!, rp = rb.baseAddress!, bp = bv.baseAddress!
                Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                    for i in lo ..< hi { let o = i * m; for c in 0 ..< m { pp[o + c] = rp[o + c] + bp[c] * pp[o + c] } }
                }
            } } }
            rr = rrNew
        }
        if anyClamped {
            f.withUnsafeMutableBufferPointer { fb in let fp = fb.baseAddress!; eachRow { i in if isClamped[i] { for c in 0 ..< m { fp[i * m + c] = y[i * m + c] } } } }
        }
        return (f, SolveStats(iterations: done, converged: converged))
    }
}

/// Helpers over `n × C` row-major score blocks.
enum Scores {
    /// Row-wise softmax in place over an `n × c` block of log-scores. Classes with `classIncluded(j) == false` get
    /// probability 0 (and do not enter the row max); rows with `rowActive(i) == false` become all 0. O(n·c).
    /// Rows are independent, so `threads` (0 = every core) does not change the result.
    static func softmaxRows(_ v: inout [Float], n: Int, c: Int, threads: Int = 1, classIncluded: (Int) -> Bool = { _ in true },
                            rowActive: (Int) -> Bool = { _ in true }) {
        v.withUnsafeMutableBufferPointer { vb in
            let v = vb.baseAddress!
            Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                for i in lo ..< hi {
                    guard rowActive(i) else { for j in 0 ..< c { v[i * c + j] = 0 }; continue }
                    var mx = -Float.infinity
                    for j in 0 ..< c where classIncluded(j) { mx = max(mx, v[i * c + j]) }
                    var tot: Float = 0
                    for j in 0 ..< c { let e: Float = classIncluded(j) ? expf(v[i * c + j] - mx) : 0; v[i * c + j] = e; tot += e }
                    for j in 0 ..< c { v[i * c + j] /= tot }
                }
            }
        }
    }

    /// Row argmax (ties → smaller class id) and the row's share of positive mass in [0, 1]; -1 where a row has no positive mass.
    static func argmaxShare(_ f: [Float], n: Int, c: Int, threads: Int = 1) -> (labels: [Int32], share: [Float]) {
        var lab = [Int32](repeating: 0, count: n), sh = [Float](repeating: 0, count: n)
        lab.withUnsafeMutableBufferPointer { lb in sh.withUnsafeMutableBufferPointer { sb in f.withUnsafeBufferPointer { fb in
        let lab = lb.baseAddress!, sh = sb.baseAddress!, f = fb.baseAddress!
        Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
        for i in lo ..< hi {
            var best = 0; var bv = -Float.infinity; var tot: Float = 0
            for j in 0 ..< c {
                let v = f[i * c + j]
                if v > bv { bv = v; best = j }
                tot += max(v, 0)
            }
            // No positive mass: no labeled point reaches i through the graph (-1, abstain).
            if tot > 0 && bv > 0 { lab[i] = Int32(best); sh[i] = bv / tot } else { lab[i] = -1; sh[i] = 0 }
        }
        }
        } } }
        return (lab, sh)
    }
}
