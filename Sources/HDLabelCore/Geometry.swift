import CBLAS
import Foundation

/// Where HDL's geometry evidence comes from: the class posteriors of the rows a labeling holds, given the anchors.
/// `RowGeometry` computes them from the rows' own embeddings (one process, or every rank of `--distributed-labeling`);
/// the cluster's root-labeled mode has them computed by the ranks that hold the embeddings (`ServedGeometry` in
/// HDLabelCluster), so the embeddings never travel.
public protocol GeometrySource {
    /// `rows × C` posteriors (`ClassGeometry.posteriors`) of the rows the labeling holds; `anchors` covers all n rows.
    /// Called in the same order on every process of the labeling (it may be collective).
    func posteriors(anchors: [Int32], numClasses: Int, shrinkage: Double) throws -> [Float]
}

/// The geometry of the rows `comm.rows`, from their L2-normalised embeddings (`x.rows == comm.rows.count`): class
/// statistics as exact sums over `comm`, scores here. **Collective** over `comm`.
public struct RowGeometry: GeometrySource {
    public let x: Embeddings
    public let comm: RowCollectives
    public init(x: Embeddings, comm: RowCollectives) { self.x = x; self.comm = comm }
    public func posteriors(anchors: [Int32], numClasses: Int, shrinkage: Double) throws -> [Float] {
        try ClassGeometry.posteriors(rows: x, comm: comm, anchors: anchors, numClasses: numClasses, shrinkage: shrinkage)
    }
}

/// Class geometry in embedding space: one Gaussian per class with a shared, shrunk covariance
/// (linear discriminant geometry). Fitted on the current anchors only; no classifier is trained and no logits of
/// any model are used — scores are Mahalanobis distances to the class means.
///
/// Shapes: `x` is n × d (L2-normalised rows), `anchors` length n (class id or -1). Returns n × C row-major
/// posteriors (uniform class prior), rows summing to 1; a class without anchors gets probability 0.
public enum ClassGeometry {
    /// Fixed-point scale of the exact sums (2⁶⁴): every term is rounded to this grid on its own and the integers add
    /// exactly, so the sums do not depend on the order or on how rows are split over processes.
    static let scale = 0x1p64

    /// `v · 2⁶⁴` truncated towards zero (the same as `Int128(v * scale)`, through Int64 when it fits: much faster).
    @inline(__always) static func fixed(_ v: Double) -> Int128 {
        let y = v * scale
        return abs(y) < 0x1p63 ? Int128(Int64(y)) : Int128(y)
    }

    /// The same for the rows `comm.rows` held in `x` (`x.rows == comm.rows.count`; `anchors` covers all n rows).
    /// The class sums and the within-class scatter are exact fixed-point sums (`Int128`): per anchor row for the class
    /// sums, per fixed 32-row block (`Reduction.block`, one `ssyrk` each) for the scatter; one allgather of the
    /// per-process totals (C·d + d² values of 16 bytes) makes them global. Scores come from one `sgemm` per block.
    /// So the result is identical for any split of the rows. **Collective** over `comm`.
    public static func posteriors(rows x: Embeddings, comm: RowCollectives, anchors: [Int32], numClasses c: Int,
                                  shrinkage: Double) throws -> [Float] {
        precondition(anchors.count == comm.n)
        return try posteriors(rows: x, comm: comm, localAnchors: Array(anchors[comm.rows]), numClasses: c, shrinkage: shrinkage)
    }

    /// The same with the anchors of the rows held only (`localAnchors.count == comm.rows.count`): what a rank that
    /// holds rows but not the labeling needs (the cluster's root-labeled mode scatters them).
    public static func posteriors(rows x: Embeddings, comm: RowCollectives, localAnchors anchors: [Int32], numClasses c: Int,
                                  shrinkage: Double) throws -> [Float] {
        let n = x.rows, d = x.cols
        let st = try statistics(rows: x, comm: comm, localAnchors: anchors, numClasses: c)
        let (cnt, mu, scatter, m) = (st.counts, st.means, st.scatter, st.anchors)
        let lanes = Parallel.resolve(0)
        let block = Reduction.block
        let (lam, denom, ridge) = shrinkageTerms(scatter: scatter, d: d, anchors: m, numClasses: c, shrinkage: shrinkage)
        // Full symmetric matrix from the upper triangle (column-major: element (r, col) at col*d + r).
        var a = [Float](repeating: 0, count: d * d)
        for col in 0 ..< d {
            for r in 0 ... col {
                let v = Float((1 - lam) * (Double(scatter[col * d + r]) / scale) / denom)
                a[col * d + r] = v; a[r * d + col] = v
            }
            a[col * d + col] += Float(ridge)
        }
        // W (d × C, column-major) = Σ⁻¹ μᵀ; μ row-major C×d is μᵀ column-major.
        var w = mu.map { Float($0) }
        var info: Int32 = 0
        var dd = Int32(d), cc = Int32(c), uplo: CChar = 85 // "U"
        sposv_(&uplo, &dd, &cc, &a, &dd, &w, &dd, &info)
        if info != 0 {
            // Not positive definite (degenerate anchors): fall back to nearest class mean by cosine.
            w = mu.map { Float($0) }
        }
        // Bias: −½ μ_c · W_c.
        var bias = [Float](repeating: 0, count: c)
        for l in 0 ..< c { var s = 0.0; for j in 0 ..< d { s += mu[l * d + j] * Double(w[l * d + j]) }; bias[l] = Float(-0.5 * s) }
        var scores = [Float](repeating: 0, count: n * c)
        x.data.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in scores.withUnsafeMutableBufferPointer { sb in
            let xp = xb.baseAddress!, wp = wb.baseAddress!, sp = sb.baseAddress!
            // scores (rows × C) = X (rows × d) · W where W is stored C×d row-major; one call per 32-row block (the same
            // shapes for any split of the rows over processes or workers), blocks in parallel.
            Parallel.forBlocks(rows: n, threads: lanes) { lo, hi in
                for b in stride(from: lo, to: hi, by: block) {
                    let rows = min(block, n - b)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(c), Int32(d), 1, xp + b * d, Int32(d),
                                wp, Int32(d), 0, sp + b * c, Int32(c))
                    for i in b ..< b + rows { for l in 0 ..< c where cnt[l] > 0 { sp[i * c + l] += bias[l] } }
                }
            }
        } } }
        Scores.softmaxRows(&scores, n: n, c: c, threads: lanes, classIncluded: { cnt[$0] > 0 })
        return scores
    }

    /// Exact class statistics of the anchors among the rows `comm.rows` held in `x` (`localAnchors.count == x.rows`):
    /// per-class counts, class means (C × d row-major, Double) and the within-class scatter Σ w_y (x − μ_y)(x − μ_y)ᵀ as
    /// fixed-point sums (d × d column-major, upper triangle filled, `scale` units). Class sums per anchor row, the scatter
    /// per fixed 32-row block (`Reduction.block`, one `ssyrk` each), integer partials added exactly and allgathered once
    /// (C·d + d² values of 16 bytes): identical for any split of the rows whose shards start on a block boundary.
    /// O(rows · d²). **Collective** over `comm`.
    /// - classBalance: β in [0, 1], the class weights w_c = (m / (P · n_c))^β of the scatter (m labeled rows, P classes
    ///   with labels, n_c in class c): 0 pools the rows (w = 1, every row counts once: large classes dominate), 1 weights
    ///   every class's covariance equally (total weight m either way). Each residual is scaled by √w_c, a Float
    ///   computed from the global counts, so the sums stay exact and split-independent.
    public static func statistics(rows x: Embeddings, comm: RowCollectives, localAnchors anchors: [Int32], numClasses c: Int,
                                  classBalance: Double = 0) throws -> (counts: [Int], means: [Double], scatter: [Int128], anchors: Int) {
        let n = x.rows, d = x.cols, first = 0
        precondition(n == comm.rows.count && anchors.count == n)
        var cntLocal = [Int](repeating: 0, count: c)
        var sums = [Int128](repeating: 0, count: c * d)
        // Class sums over row chunks on every core: integer (fixed-point) partials, so their sum is exact and the same
        // for any number of workers.
        let lanes = Parallel.resolve(0)
        let sumLock = NSLock()
        x.data.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            Parallel.forBlocks(rows: n, threads: lanes) { lo, hi in
                var cl = [Int](repeating: 0, count: c), sl = [Int128](repeating: 0, count: c * d)
                for i in lo ..< hi where anchors[first + i] >= 0 {
                    let l = Int(anchors[first + i]); cl[l] += 1
                    for j in 0 ..< d { sl[l * d + j] += fixed(Double(xp[i * d + j])) }
                }
                sumLock.lock()
                for l in 0 ..< c { cntLocal[l] += cl[l] }
                for e in 0 ..< c * d { sums[e] += sl[e] }
                sumLock.unlock()
            }
        }
        let cnt = try comm.sum(cntLocal)
        sums = try comm.sumExact(sums)
        var mu = [Double](repeating: 0, count: c * d)
        for l in 0 ..< c where cnt[l] > 0 { for j in 0 ..< d { mu[l * d + j] = Double(sums[l * d + j]) / scale / Double(cnt[l]) } }
        let m = cnt.reduce(0, +)
        let rootWeight = scatterRootWeights(counts: cnt, classBalance: classBalance)
        // Within-class scatter: per block, ssyrk of the block's anchor residuals (upper triangle, column-major view).
        var scatter = [Int128](repeating: 0, count: d * d)
        let block = Reduction.block
        // Blocks in parallel (each block's ssyrk has the same shape whatever the split; the fixed-point partials of
        // the chunks add exactly, so the sum does not depend on the number of workers).
        let savedBLAS = BLASThreads.current
        if lanes > 1 { BLASThreads.set(1) }
        defer { if lanes > 1 { BLASThreads.set(savedBLAS) } }
        let lock = NSLock()
        x.data.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            Parallel.forBlocks(rows: n, threads: lanes) { lo, hi in
                var local = [Int128](repeating: 0, count: d * d)
                var resid = [Float](repeating: 0, count: block * d)
                var part = [Float](repeating: 0, count: d * d)
                var any = false
                for b in stride(from: lo, to: hi, by: block) {
                    var filled = 0
                    for i in b ..< min(n, b + block) where anchors[first + i] >= 0 {
                        let l = Int(anchors[first + i])
                        let w = rootWeight[l]
                        for j in 0 ..< d { resid[filled * d + j] = (xp[i * d + j] - Float(mu[l * d + j])) * w }
                        filled += 1
                    }
                    if filled == 0 { continue }
                    any = true
                    resid.withUnsafeBufferPointer { rb in part.withUnsafeMutableBufferPointer { sb in
                        // part (d×d, column-major) = Rᵀ R where R is filled × d row-major (= d × filled column-major).
                        cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, Int32(d), Int32(filled), 1, rb.baseAddress!, Int32(d), 0, sb.baseAddress!, Int32(d))
                    } }
                    for col in 0 ..< d { for r in 0 ... col { local[col * d + r] += fixed(Double(part[col * d + r])) } }
                }
                if any {
                    lock.lock()
                    for e in 0 ..< d * d { scatter[e] += local[e] }
                    lock.unlock()
                }
            }
        }
        scatter = try comm.sumExact(scatter)
        return (cnt, mu, scatter, m)
    }

    /// √w_c of `statistics`' class weights w_c = (m / (P · n_c))^β (all exactly 1 for β = 0, and for classes without
    /// labels). Pure; O(C).
    static func scatterRootWeights(counts: [Int], classBalance beta: Double) -> [Float] {
        let present = counts.filter { $0 > 0 }.count, m = counts.reduce(0, +)
        guard beta > 0, present > 0 else { return [Float](repeating: 1, count: counts.count) }
        return counts.map { $0 > 0 ? Float(pow(Double(m) / Double(present) / Double($0), beta).squareRoot()) : 1 }
    }

    /// The terms of the shrunk within-class covariance Σ = (1 − λ) S/(m − C) + ridge · I built from the exact scatter
    /// `S` (`statistics`, `scale` units): λ clamped to [0, 1], the denominator m − C (at least 1) and the ridge
    /// λ · tr(S/(m − C))/d + 10⁻⁶. Shared by the geometry evidence and the metric pass. Pure; O(d).
    static func shrinkageTerms(scatter: [Int128], d: Int, anchors m: Int, numClasses c: Int,
                               shrinkage: Double) -> (lam: Double, denom: Double, ridge: Double) {
        let denom = Double(max(1, m - c))
        var trace = 0.0
        for j in 0 ..< d { trace += Double(scatter[j * d + j]) / scale / denom }
        let lam = min(1, max(0, shrinkage))
        return (lam, denom, lam * trace / Double(d) + 1e-6)
    }

    /// Shrinkage schedule: strong while anchors are few relative to classes, weaker as the labeled pool grows.
    /// - floor: the least shrinkage, reached as the pool grows (`LabelingConfig.shrinkageFloor`).
    public static func shrinkage(anchors: Int, numClasses c: Int, floor: Double = 0.1) -> Double {
        max(floor, 0.9 * min(1, Double(10 * c) / Double(max(anchors, 1))))
    }
}
