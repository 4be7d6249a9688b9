import Dispatch
import Foundation

/// A symmetric, non-negative sparse affinity matrix in CSR form, built from a kNN graph as W = A + Aᵀ
/// (A_ij = weight of j in i's list), then symmetrically normalised: S = D^-1/2 W D^-1/2.
/// Holds the rows `firstRow ..< firstRow + n` of S (all rows on a single process; one process's range in the
/// cluster's worker-side labeling). Shapes: `rowPtr` n+1, `cols` (global column ids) / `values` nnz.
/// Used by every propagation-style method.
public struct NormalizedAffinity: Sendable {
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

    /// y = S x for a dense `total × m` row-major block (m columns at once); y has the `n` rows held.
    public func multiply(_ x: [Float], columns m: Int) -> [Float] {
        var y = [Float](repeating: 0, count: n * m)
        let chunks = n > 4096 ? 2 : 1
        let per = (n + chunks - 1) / chunks
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                rowPtr.withUnsafeBufferPointer { rp in cols.withUnsafeBufferPointer { cp in values.withUnsafeBufferPointer { vp in
                    DispatchQueue.concurrentPerform(iterations: chunks) { ch in
                        for i in ch * per ..< min(n, (ch + 1) * per) {
                            let out = yp + i * m
                            for p in rp[i] ..< rp[i + 1] {
                                let w = vp[p], src = xp + Int(cp[p]) * m
                                for c in 0 ..< m { out[c] += w * src[c] }
                            }
                        }
                    }
                } } }
            }
        }
        return y
    }

    /// Solves (I − αS) F = Y by conjugate gradient for all m columns together (each column is its own CG,
    /// run in lock-step). `Y` and the result are `n × m` row-major. I − αS is symmetric positive definite for 0<α<1.
    ///
    /// With `clamped` (length n), rows marked true are boundary values fixed to their rows of `y`, and the system is
    /// solved for the other rows only: (I − αS_UU) F_U = α S_UL Y_L (harmonic extension of the clamped labels).
    /// `y`, `clamped` and the result cover the rows held, `firstRow ..< firstRow + n` (all rows with `LocalRows`).
    /// Each iteration allgathers the search direction (total × m floats) and the blockwise partials of two dot
    /// products (`Reduction`), so the iterates are identical for any split of the rows. **Collective** over `comm`.
    public func solve(_ y: [Float], columns m: Int, alpha: Float, iterations: Int, clamped: [Bool]? = nil,
                      comm: RowCollectives) throws -> [Float] {
        let y0 = y
        var rhs = y
        if let clamped {
            // b = α S Y_L on free rows, 0 on clamped rows.
            var yl = y
            for i in 0 ..< n where !clamped[i] { for c in 0 ..< m { yl[i * m + c] = 0 } }
            rhs = multiply(try comm.allgather(yl), columns: m)
            for i in 0 ..< n { for c in 0 ..< m { rhs[i * m + c] = clamped[i] ? 0 : alpha * rhs[i * m + c] } }
        }
        var f = rhs
        if let clamped { for i in 0 ..< n where clamped[i] { for c in 0 ..< m { f[i * m + c] = 0 } } }
        func apply(_ x: [Float]) throws -> [Float] {
            let sx = multiply(try comm.allgather(x), columns: m)
            var out = x
            for i in 0 ..< out.count { out[i] -= alpha * sx[i] }
            if let clamped { for i in 0 ..< n where clamped[i] { for c in 0 ..< m { out[i * m + c] = 0 } } }
            return out
        }
        let y = rhs
        let af = try apply(f)
        var r = y; for i in 0 ..< r.count { r[i] -= af[i] }
        var p = r
        var rr = try Reduction.columnSums(comm, rows: n, columns: m) { i, c in Double(r[i * m + c] * r[i * m + c]) }
        for _ in 0 ..< iterations {
            if rr.allSatisfy({ $0 < 1e-20 }) { break }
            let ap = try apply(p)
            let pap = try Reduction.columnSums(comm, rows: n, columns: m) { i, c in Double(p[i * m + c] * ap[i * m + c]) }
            let a = (0 ..< m).map { pap[$0] > 0 ? Float(rr[$0] / pap[$0]) : 0 }
            for i in 0 ..< n {
                for c in 0 ..< m {
                    let idx = i * m + c
                    f[idx] += a[c] * p[idx]
                    r[idx] -= a[c] * ap[idx]
                }
            }
            let rrNew = try Reduction.columnSums(comm, rows: n, columns: m) { i, c in Double(r[i * m + c] * r[i * m + c]) }
            let b = (0 ..< m).map { rr[$0] > 0 ? Float(rrNew[$0] / rr[$0]) : 0 }
            for i in 0 ..< n { for c in 0 ..< m { let idx = i * m + c; p[idx] = r[idx] + b[c] * p[idx] } }
            rr = rrNew
        }
        if let clamped { for i in 0 ..< n where clamped[i] { for c in 0 ..< m { f[i * m + c] = y0[i * m + c] } } }
        return f
    }
}

/// Helpers over `n × C` row-major score blocks.
enum Scores {
    /// Row-wise softmax in place over an `n × c` block of log-scores. Classes with `classIncluded(j) == false` get
    /// probability 0 (and do not enter the row max); rows with `rowActive(i) == false` become all 0. O(n·c).
    static func softmaxRows(_ v: inout [Float], n: Int, c: Int, classIncluded: (Int) -> Bool = { _ in true },
                            rowActive: (Int) -> Bool = { _ in true }) {
        for i in 0 ..< n {
            guard rowActive(i) else { for j in 0 ..< c { v[i * c + j] = 0 }; continue }
            var mx = -Float.infinity
            for j in 0 ..< c where classIncluded(j) { mx = max(mx, v[i * c + j]) }
            var tot: Float = 0
            for j in 0 ..< c { let e: Float = classIncluded(j) ? expf(v[i * c + j] - mx) : 0; v[i * c + j] = e; tot += e }
            for j in 0 ..< c { v[i * c + j] /= tot }
        }
    }

    /// Row argmax (ties → smaller class id) and the row's share of positive mass in [0, 1]; -1 where a row has no positive mass.
    static func argmaxShare(_ f: [Float], n: Int, c: Int) -> (labels: [Int32], share: [Float]) {
        var lab = [Int32](repeating: 0, count: n), sh = [Float](repeating: 0, count: n)
        for i in 0 ..< n {
            var best = 0; var bv = -Float.infinity; var tot: Float = 0
            for j in 0 ..< c {
                let v = f[i * c + j]
                if v > bv { bv = v; best = j }
                tot += max(v, 0)
            }
            // No positive mass: no labeled point reaches i through the graph (-1, abstain).
            if tot > 0 && bv > 0 { lab[i] = Int32(best); sh[i] = bv / tot } else { lab[i] = -1; sh[i] = 0 }
        }
        return (lab, sh)
    }
}
