import CBLAS
import Foundation

/// Class geometry in embedding space: one Gaussian per class with a shared, shrunk covariance
/// (linear discriminant geometry). Fitted on the current anchors only; no classifier is trained and no logits of
/// any model are used — scores are Mahalanobis distances to the class means.
///
/// Shapes: `x` is n × d (L2-normalised rows), `anchors` length n (class id or -1). Returns n × C row-major
/// posteriors (uniform class prior), rows summing to 1; a class without anchors gets probability 0.
public enum ClassGeometry {
    /// - shrinkage: λ in [0,1]; Σ_λ = (1−λ)Σ + λ·(tr Σ/d)·I.
    public static func posteriors(x: Embeddings, anchors: [Int32], numClasses c: Int, shrinkage: Double) -> [Float] {
        let n = x.rows, d = x.cols
        var mu = [Double](repeating: 0, count: c * d)
        var cnt = [Int](repeating: 0, count: c)
        for i in 0 ..< n where anchors[i] >= 0 {
            let l = Int(anchors[i]); cnt[l] += 1
            for j in 0 ..< d { mu[l * d + j] += Double(x.data[i * d + j]) }
        }
        for l in 0 ..< c where cnt[l] > 0 { for j in 0 ..< d { mu[l * d + j] /= Double(cnt[l]) } }
        let m = cnt.reduce(0, +)
        // Within-class scatter, accumulated in blocks of residual rows with ssyrk (upper triangle, column-major view).
        var sigma = [Float](repeating: 0, count: d * d)
        let block = 4096
        var resid = [Float](repeating: 0, count: block * d)
        var filled = 0
        func flush() {
            if filled == 0 { return }
            resid.withUnsafeBufferPointer { rb in sigma.withUnsafeMutableBufferPointer { sb in
                // sigma (d×d, column-major) += Rᵀ R where R is filled × d row-major (= d × filled column-major).
                cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, Int32(d), Int32(filled), 1, rb.baseAddress!, Int32(d), 1, sb.baseAddress!, Int32(d))
            } }
            filled = 0
        }
        for i in 0 ..< n where anchors[i] >= 0 {
            let l = Int(anchors[i])
            for j in 0 ..< d { resid[filled * d + j] = x.data[i * d + j] - Float(mu[l * d + j]) }
            filled += 1
            if filled == block { flush() }
        }
        flush()
        let denom = Double(max(1, m - c))
        var trace = 0.0
        for j in 0 ..< d { trace += Double(sigma[j * d + j]) / denom }
        let lam = min(1, max(0, shrinkage))
        let ridge = lam * trace / Double(d) + 1e-6
        // Full symmetric matrix from the upper triangle (column-major: element (r, col) at col*d + r).
        var a = [Float](repeating: 0, count: d * d)
        for col in 0 ..< d {
            for r in 0 ... col {
                let v = Float((1 - lam) * Double(sigma[col * d + r]) / denom)
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
            // scores (n × C) = X (n × d) · W where W is stored C×d row-major.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(c), Int32(d), 1, xb.baseAddress!, Int32(d),
                        wb.baseAddress!, Int32(d), 0, sb.baseAddress!, Int32(c))
        } } }
        for i in 0 ..< n {
            var mx = -Float.infinity
            for l in 0 ..< c where cnt[l] > 0 { scores[i * c + l] += bias[l]; mx = max(mx, scores[i * c + l]) }
            var tot: Float = 0
            for l in 0 ..< c { let e: Float = cnt[l] > 0 ? expf(scores[i * c + l] - mx) : 0; scores[i * c + l] = e; tot += e }
            for l in 0 ..< c { scores[i * c + l] /= tot }
        }
        return scores
    }

    /// Shrinkage schedule: strong while anchors are few relative to classes, weaker as the labeled pool grows.
    public static func shrinkage(anchors: Int, numClasses c: Int) -> Double {
        max(0.1, 0.9 * min(1, Double(10 * c) / Double(max(anchors, 1))))
    }
}
