import Dispatch
import Foundation

/// A symmetric, non-negative sparse affinity matrix in CSR form, built from a kNN graph as W = A + Aᵀ
/// (A_ij = weight of j in i's list), then symmetrically normalised: S = D^-1/2 W D^-1/2.
/// Holds the rows `firstRow ..< firstRow + n` of S (all rows on a single process; one process's range in the
/// cluster's worker-side labeling). Shapes: `rowPtr` n+1, `localCols` / `values` nnz. Column ids are local: `0 ..< n`
/// are the rows held, `n + g` is the g-th ghost (`halo.ghosts[g]`, a row held by another process). A product reads the
/// rows held plus the ghosts, `(n + ghosts) × m` values, never the whole `total × m` vector.
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
    /// Column of every entry as an index into the rows held followed by the ghosts (see the type's doc).
    public let localCols: [Int32]
    public let values: [Float]
    /// The remote rows these rows read and who reads which of them (empty on one process).
    public let halo: HaloPlan

    /// Global column id of every entry (nnz; computed: for checks, not for products).
    public var cols: [Int32] {
        localCols.map { Int($0) < n ? Int32(firstRow) + $0 : halo.ghosts[Int($0) - n] }
    }

    /// Rows `comm.rows` of S from those rows' kNN lists (`rows.n == comm.rows.count`, global neighbour ids). The
    /// reverse edges (A_ji for j elsewhere) come from `comm.incoming`; then the halo plan (`comm.halo`) and the
    /// ghosts' inverse degrees (one `comm.exchange` of Doubles). Every row's entries are in the same order as on a
    /// single process (reverse edges from rows before it, its own list with any self edge right after its slot,
    /// reverse edges from rows after it), so the values and every later product are identical for any split of the
    /// rows. **Collective** over `comm` (`LocalRows` on one process). `weight` maps a similarity to an edge weight
    /// (e.g. `max(s,0)^3`, or 1 for a binary graph). Memory O(nnz + ghosts); traffic 16 bytes per edge crossing
    /// processes (reverse edges) plus the halo plan (4 bytes per ghost each way) and 8 bytes per ghost.
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
        // Halo: the remote rows read, and global column ids → local indices (rows held, then ghosts).
        let plan = try comm.halo(ghosts: HaloPlan.ghosts(of: c, own: comm.rows))
        let lo = Int32(first), hi = Int32(first + n)
        for p in 0 ..< c.count { let j = c[p]; c[p] = j >= lo && j < hi ? j - lo : Int32(n + plan.ghostIndex(j)) }
        var d = [Double](repeating: 0, count: n)
        for i in 0 ..< n { for p in deg[i] ..< deg[i + 1] { d[i] += Double(v[p]) } }
        let inv = d.map { $0 > 0 ? 1 / $0.squareRoot() : 0 }
        let invExt = inv + (try comm.exchange(inv, width: 1, plan: plan))
        for i in 0 ..< n { for p in deg[i] ..< deg[i + 1] { v[p] = Float(Double(v[p]) * inv[i] * invExt[Int(c[p])]) } }
        self.n = n; firstRow = first; total = comm.n; rowPtr = deg; localCols = c; values = v; halo = plan
    }

    /// Rows held plus ghosts (`halo.ghosts.count`): the rows of x a product reads.
    public var extendedRows: Int { n + halo.ghosts.count }

    /// `x` (the rows held, `n × m`) followed by its ghost rows from the other processes (one `comm.exchange`):
    /// the `extendedRows × m` block `multiply` reads. **Collective** over `comm`.
    public func extended(_ x: [Float], columns m: Int, comm: RowCollectives) throws -> [Float] {
        precondition(x.count == n * m)
        return halo.ghosts.isEmpty ? x : x + (try comm.exchange(x, width: m, plan: halo))
    }

    /// y = S x for an `extendedRows × m` row-major block (m columns at once; the rows held, then the ghosts, as
    /// `extended` makes it; on one process simply all `total` rows); y has the `n` rows held. Rows are split over
    /// `threads` workers (0 = every core); each row is summed in CSR order, so y is the same for any split.
    ///
    /// - nonzeroRows: when given (length `extendedRows`), rows of x marked false are all zero and are skipped. Adding a
    ///   zero product never changes a sum that starts at +0, so the result is the same bits as without the mask.
    public func multiply(_ x: [Float], columns m: Int, threads: Int = 0, nonzeroRows: [Bool]? = nil) -> [Float] {
        precondition(x.count == extendedRows * m && (nonzeroRows == nil || nonzeroRows!.count == extendedRows))
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

    /// out[i] = Σ_p values[p] · x[localCols[p]] for rows `r` (out rows start zeroed), in CSR order; x is the extended
    /// block (rows held, then ghosts); with `nonzero`, source rows marked false are skipped (they are zero).
    @inline(__always)
    func multiplyRows(_ r: Range<Int>, _ xp: UnsafePointer<Float>, _ yp: UnsafeMutablePointer<Float>, columns m: Int,
                      nonzero: UnsafePointer<Bool>? = nil) {
        rowPtr.withUnsafeBufferPointer { rp in localCols.withUnsafeBufferPointer { cp in values.withUnsafeBufferPointer { vp in
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
    /// solved for the other rows only: (I − αS_UU) F_U = α S_UL Y_L (harmonic extension of the clamped labels);
    /// the free rows' values of `y` are ignored unless `freeSources`, which adds them to the right-hand side as
    /// sources: (I − αS_UU) F_U = α S_UL Y_L + Y_U (clamped seeds plus soft labels injected at the free rows).
    /// `y`, `clamped` and the result cover the rows held, `firstRow ..< firstRow + n` (all rows with `LocalRows`).
    ///
    /// - iterations: the cap on iterations.
    /// - tolerance: stop once every column's residual satisfies ‖r_c‖ ≤ tolerance · ‖b_c‖ (b the right-hand side);
    ///   0 runs all `iterations` (a column whose residual is exactly 0 stops either way).
    /// - initial: starting iterate (`n × m`, the rows held; clamped rows are ignored); default the right-hand side.
    /// - threads: workers for the product and the vector updates (0 = every core).
    ///
    /// Each iteration exchanges the search direction's halo (`comm.exchange`: the ghost rows, `ghosts × m` floats in,
    /// the rows others read out) and reduces two dot products exactly (`Reduction.dots`: fixed-point `Int128` sums,
    /// `O(m)` integers per reduction), so the iterates and the stopping test are identical for any split of the rows
    /// over processes and threads. Memory O((n + ghosts) · m). **Collective** over `comm`.
    public func solve(_ y: [Float], columns m: Int, alpha: Float, iterations: Int, tolerance: Double = 0, initial: [Float]? = nil,
                      clamped: [Bool]? = nil, threads: Int = 0, comm: RowCollectives) throws -> [Float] {
        try solveCounting(y, columns: m, alpha: alpha, iterations: iterations, tolerance: tolerance, initial: initial,
                          clamped: clamped, threads: threads, comm: comm).solution
    }

    /// `solve`, also returning what it did.
    public func solveCounting(_ y: [Float], columns m: Int, alpha: Float, iterations: Int, tolerance: Double = 0, initial: [Float]? = nil,
                              clamped: [Bool]? = nil, freeSources: Bool = false, threads: Int = 0,
                              comm: RowCollectives) throws -> (solution: [Float], stats: SolveStats) {
        precondition(y.count == n * m && (initial == nil || initial!.count == n * m) && (clamped == nil || clamped!.count == n))
        let count = n * m
        let isClamped = clamped ?? [Bool](repeating: false, count: n)
        let anyClamped = clamped != nil
        var rhs = y
        // Row-parallel map over the rows held: body(i) for every row i (rows are independent).
        func eachRow(_ body: (Int) -> Void) { Parallel.forBlocks(rows: n, threads: threads) { lo, hi in for i in lo ..< hi { body(i) } } }
        // The extended block a product reads: the rows held, then the ghosts (reused across iterations). Without
        // ghosts (one process, or no remote neighbours) the product reads the vector itself and nothing is copied.
        let direct = halo.ghosts.isEmpty
        var ext = [Float](repeating: 0, count: direct ? 0 : extendedRows * m)
        func fill(_ x: [Float]) throws {
            let ghost = try comm.exchange(x, width: m, plan: halo)
            if direct { return }
            ext.withUnsafeMutableBufferPointer { eb in
                x.withUnsafeBufferPointer { xb in if count > 0 { eb.baseAddress!.update(from: xb.baseAddress!, count: count) } }
                ghost.withUnsafeBufferPointer { gb in if !gb.isEmpty { (eb.baseAddress! + count).update(from: gb.baseAddress!, count: gb.count) } }
            }
        }
        if anyClamped {
            // b = α S Y_L on free rows (+ Y_U with `freeSources`), 0 on clamped rows; only the clamped rows' (non-zero)
            // values enter the product.
            var yl = y
            yl.withUnsafeMutableBufferPointer { yb in let yp = yb.baseAddress!; eachRow { i in if !isClamped[i] { for c in 0 ..< m { yp[i * m + c] = 0 } } } }
            try fill(yl)
            let src = direct ? yl : ext
            var nonzero = [Bool](repeating: false, count: extendedRows)
            for j in 0 ..< extendedRows { for c in 0 ..< m where src[j * m + c] != 0 { nonzero[j] = true; break } }
            rhs = multiply(src, columns: m, threads: threads, nonzeroRows: nonzero)
            rhs.withUnsafeMutableBufferPointer { rb in
                let rp = rb.baseAddress!
                y.withUnsafeBufferPointer { yb in
                    let yp = yb.baseAddress   // nil only when this process holds no rows (then no row runs)
                    eachRow { i in for c in 0 ..< m { rp[i * m + c] = isClamped[i] ? 0 : alpha * rp[i * m + c] + (freeSources ? yp![i * m + c] : 0) } }
                }
            }
        }
        var f = initial ?? rhs
        if anyClamped { f.withUnsafeMutableBufferPointer { fb in let fp = fb.baseAddress!; eachRow { i in if isClamped[i] { for c in 0 ..< m { fp[i * m + c] = 0 } } } } }
        var r = [Float](repeating: 0, count: count), ap = [Float](repeating: 0, count: count)
        var p = [Float]()
        var rr = [Double](), bb = [Double]()
        // out = x − α S x on free rows, 0 on clamped rows.
        func apply(_ x: [Float], into out: inout [Float]) throws {
            try fill(x)
            (direct ? x : ext).withUnsafeBufferPointer { gb in x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
                isClamped.withUnsafeBufferPointer { cb in
                    let gp = gb.baseAddress!, xp = xb.baseAddress!, op = ob.baseAddress!, cl = cb.baseAddress!
                    Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                        for i in lo ..< hi { for c in 0 ..< m { op[i * m + c] = 0 } }
                        multiplyRows(lo ..< hi, gp, op, columns: m)
                        for i in lo ..< hi {
                            let o = op + i * m, xi = xp + i * m
                            if cl[i] { for c in 0 ..< m { o[c] = 0 } } else { for c in 0 ..< m { o[c] = xi[c] - alpha * o[c] } }
                        }
                    }
                }
            } } }
        }
        // Per column Σ Double(a·b) over every process's rows, exactly (`Reduction.dots`).
        func dot(_ a: [Float], _ b: [Float]) throws -> [Double] {
            if count == 0 { return try Reduction.dots(ap, ap, rows: 0, columns: m, threads: threads, comm: comm) }
            return try a.withUnsafeBufferPointer { ab in try b.withUnsafeBufferPointer { bb in
                try Reduction.dots(ab.baseAddress!, bb.baseAddress!, rows: n, columns: m, threads: threads, comm: comm)
            } }
        }
        try apply(f, into: &ap)
        r.withUnsafeMutableBufferPointer { rb in rhs.withUnsafeBufferPointer { bb in ap.withUnsafeBufferPointer { ab in
            let rp = rb.baseAddress!, bp = bb.baseAddress!, app = ab.baseAddress!
            eachRow { i in for c in 0 ..< m { rp[i * m + c] = bp[i * m + c] - app[i * m + c] } }
        } } }
        p = r
        rr = try dot(r, r)
        if tolerance > 0 { bb = try dot(rhs, rhs) }
        let tol2 = tolerance * tolerance
        var done = 0, converged = false
        while true {
            converged = (0 ..< m).allSatisfy { rr[$0] < NormalizedAffinity.zeroResidual || (tolerance > 0 && rr[$0] <= tol2 * bb[$0]) }
            if converged || done == iterations { break }
            try apply(p, into: &ap)
            done += 1
            let pap = try dot(p, ap)
            let a = (0 ..< m).map { pap[$0] > 0 ? Float(rr[$0] / pap[$0]) : 0 }
            f.withUnsafeMutableBufferPointer { fb in r.withUnsafeMutableBufferPointer { rb in p.withUnsafeBufferPointer { pb in
                ap.withUnsafeBufferPointer { ab in a.withUnsafeBufferPointer { aa in
                    let fp = fb.baseAddress!, rp = rb.baseAddress!, pp = pb.baseAddress!, app = ab.baseAddress!, av = aa.baseAddress!
                    Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                        for i in lo ..< hi {
                            let o = i * m
                            for c in 0 ..< m {
                                fp[o + c] += av[c] * pp[o + c]
                                rp[o + c] -= av[c] * app[o + c]
                            }
                        }
                    }
                } }
            } } }
            let rrNew = try dot(r, r)
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
    /// Sinkhorn-style balancing of a posterior block towards class shares `target` (sums to 1): `iterations` times,
    /// every class column of the active rows is scaled by (target share / column share)^power, then each active row is
    /// renormalised. Column sums are exact over every process's rows (`Reduction.dots`), so the result is the same for
    /// any split over processes and threads. Inactive rows (seeds) and all-zero rows are left as they are. O(iterations · n · c).
    static func balanceColumns(_ p: inout [Float], n: Int, c: Int, target: [Double], rowActive: [Bool], iterations: Int, power: Double,
                               threads: Int, comm: RowCollectives) throws {
        var mask = [Float](repeating: 0, count: n * c)
        for i in 0 ..< n where rowActive[i] { var t: Float = 0; for j in 0 ..< c { t += max(p[i * c + j], 0) }; if t > 0 { for j in 0 ..< c { mask[i * c + j] = 1 } } }
        for _ in 0 ..< iterations {
            let col = try p.withUnsafeBufferPointer { pb in try mask.withUnsafeBufferPointer { mb in
                try Reduction.dots(pb.baseAddress!, mb.baseAddress!, rows: n, columns: c, threads: threads, comm: comm)
            } }
            let total = col.reduce(0, +)
            guard total > 0 else { return }
            let scale = (0 ..< c).map { j -> Float in col[j] > 0 && target[j] > 0 ? Float(pow(target[j] * total / col[j], power)) : 1 }
            p.withUnsafeMutableBufferPointer { pb in
                let pp = pb.baseAddress!
                Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
                    for i in lo ..< hi where mask[i * c] != 0 {
                        var t: Float = 0
                        for j in 0 ..< c { pp[i * c + j] = max(pp[i * c + j], 0) * scale[j]; t += pp[i * c + j] }
                        if t > 0 { for j in 0 ..< c { pp[i * c + j] /= t } }
                    }
                }
            }
        }
    }

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

    /// Row argmax (ties → smaller class id), the row's share of positive mass in [0, 1], and the share's log-odds
    /// log(top) − log(Σ of the other positive entries), computed from the entries themselves (so a share that rounds
    /// to 1 in Float keeps its margin), clamped to ±`Calibration.logOddsLimit`; label -1, share 0 and log-odds
    /// −limit where a row has no positive mass. O(n · C).
    static func argmaxShare(_ f: [Float], n: Int, c: Int, threads: Int = 1) -> (labels: [Int32], share: [Float], logOdds: [Float]) {
        var lab = [Int32](repeating: 0, count: n), sh = [Float](repeating: 0, count: n), z = [Float](repeating: 0, count: n)
        let limit = Calibration.logOddsLimit
        lab.withUnsafeMutableBufferPointer { lb in sh.withUnsafeMutableBufferPointer { sb in z.withUnsafeMutableBufferPointer { ob in f.withUnsafeBufferPointer { fb in
        let lab = lb.baseAddress!, sh = sb.baseAddress!, odds = ob.baseAddress!, f = fb.baseAddress!
        Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
        for i in lo ..< hi {
            var best = 0; var bv = -Float.infinity; var tot: Float = 0
            for j in 0 ..< c {
                let v = f[i * c + j]
                if v > bv { bv = v; best = j }
                tot += max(v, 0)
            }
            // No positive mass: no labeled point reaches i through the graph (-1, abstain).
            if tot > 0 && bv > 0 {
                lab[i] = Int32(best); sh[i] = bv / tot
                var rest = 0.0
                for j in 0 ..< c where j != best { rest += Double(max(f[i * c + j], 0)) }
                odds[i] = Float(Calibration.logOdds(top: Double(bv), rest: rest))
            } else { lab[i] = -1; sh[i] = 0; odds[i] = Float(-limit) }
        }
        }
        } } } }
        return (lab, sh, z)
    }

    /// The share of each row's given label (`n × C` scores, negatives as 0) and its log-odds log(top) − log(rest)
    /// (clamped at ±`Calibration.logOddsLimit`), written into `share` / `logOdds` (n each); rows whose label is < 0 or
    /// that have no positive mass keep the values they had. Row blocks on `threads` workers (no bit depends on the
    /// count). O(n · C).
    static func labelShare(_ f: [Float], n: Int, c: Int, labels: [Int32], share: inout [Float], logOdds: inout [Float], threads: Int = 1) {
        precondition(labels.count == n && f.count == n * c && share.count == n && logOdds.count == n)
        share.withUnsafeMutableBufferPointer { sb in logOdds.withUnsafeMutableBufferPointer { ob in f.withUnsafeBufferPointer { fb in labels.withUnsafeBufferPointer { lb in
        let sh = sb.baseAddress!, odds = ob.baseAddress!, f = fb.baseAddress!, lab = lb.baseAddress!
        Parallel.forBlocks(rows: n, threads: threads) { lo, hi in
            for i in lo ..< hi where lab[i] >= 0 {
                var tot = 0.0
                for j in 0 ..< c { tot += Double(max(f[i * c + j], 0)) }
                guard tot > 0 else { continue }
                let top = Double(max(f[i * c + Int(lab[i])], 0))
                sh[i] = Float(top / tot); odds[i] = Float(Calibration.logOdds(top: top, rest: tot - top))
            }
        }
        } } } }
    }
}
