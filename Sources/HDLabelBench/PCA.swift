import HDLabelCore
import CBLAS
import Foundation

/// Principal component analysis fitted in single precision with OpenBLAS/LAPACK.
///
/// Fit: centre the rows (mean accumulated in Double), covariance `XcᵀXc/(n−1)` with `cblas_ssyrk`,
/// eigen-decomposition with LAPACK `ssyevd_`, keep the `m` largest. Sign convention: each component's
/// entry of largest magnitude (first one on ties) is positive, so results do not depend on LAPACK's sign.
/// Transform: `(X − mean) Wᵀ` with `cblas_sgemm`.
public struct PCA: Sendable, Equatable, Codable {
    /// Input dimension d.
    public let inputDim: Int
    /// Number of components m.
    public let components: Int
    /// Column means of the fitted matrix (length d).
    public let mean: [Float]
    /// Components, `m × d` row-major, by decreasing variance; each row has unit norm.
    public let basis: [Float]
    /// Variance along each component (eigenvalues of the covariance, decreasing; length m).
    public let explainedVariance: [Float]
    /// Total variance (trace of the covariance), for the explained-variance ratio.
    public let totalVariance: Float

    public var explainedVarianceRatio: [Float] { explainedVariance.map { totalVariance > 0 ? $0 / totalVariance : 0 } }

    /// Component `j` as an array (length d).
    public func component(_ j: Int) -> [Float] { Swift.Array(basis[j * inputDim ..< (j + 1) * inputDim]) }

    /// Fits `components` principal components to the rows of `x` (needs at least 2 rows, 1 ≤ m ≤ d).
    public static func fit(_ x: Embeddings, components m: Int) throws -> PCA {
        let n = x.rows, d = x.cols
        guard n >= 2 else { throw HDLError.invalidInput("PCA needs at least 2 rows, found \(n)") }
        guard m >= 1 && m <= d else { throw HDLError.invalidParameter(name: "components", value: "\(m)", allowed: "1...\(d) (input dimension)") }
        // Mean in Double, centred copy in Float.
        var meanD = [Double](repeating: 0, count: d)
        x.data.withUnsafeBufferPointer { xb in
            for i in 0 ..< n { let base = i * d; for j in 0 ..< d { meanD[j] += Double(xb[base + j]) } }
        }
        let mean = meanD.map { Float($0 / Double(n)) }
        var xc = x.data
        xc.withUnsafeMutableBufferPointer { b in
            for i in 0 ..< n { let base = i * d; for j in 0 ..< d { b[base + j] -= mean[j] } }
        }
        // Covariance (upper triangle, row-major): C = XcᵀXc / (n−1).
        var cov = [Float](repeating: 0, count: d * d)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(n), 1 / Float(n - 1), xc, Int32(d), 0, &cov, Int32(d))
        xc = []
        for i in 0 ..< d { for j in 0 ..< i { cov[i * d + j] = cov[j * d + i] } }  // mirror: full symmetric
        var total: Double = 0
        for i in 0 ..< d { total += Double(cov[i * d + i]) }

        // Eigen-decomposition (symmetric, so row/column-major is the same matrix). Workspace query first.
        var jobz = Int8(UInt8(ascii: "V")), uplo = Int8(UInt8(ascii: "U"))
        var nn = Int32(d), lda = Int32(d), info: Int32 = 0
        var w = [Float](repeating: 0, count: d)
        var lworkQ: Float = 0, liworkQ: Int32 = 0, minus1: Int32 = -1
        ssyevd_(&jobz, &uplo, &nn, &cov, &lda, &w, &lworkQ, &minus1, &liworkQ, &minus1, &info)
        guard info == 0 else { throw HDLError.invalidInput("LAPACK ssyevd workspace query failed (info \(info))") }
        var lwork = Int32(lworkQ.rounded(.up)), liwork = liworkQ
        var work = [Float](repeating: 0, count: Int(max(lwork, 1)))
        var iwork = [Int32](repeating: 0, count: Int(max(liwork, 1)))
        ssyevd_(&jobz, &uplo, &nn, &cov, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
        guard info == 0 else { throw HDLError.invalidInput("LAPACK ssyevd failed to converge (info \(info))") }

        // Eigenvalues ascend; eigenvector j is column j of the column-major result = cov[j*d ..< (j+1)*d].
        var basis = [Float](repeating: 0, count: m * d)
        var variances = [Float](repeating: 0, count: m)
        for r in 0 ..< m {
            let j = d - 1 - r
            variances[r] = max(w[j], 0)
            var v = Swift.Array(cov[j * d ..< (j + 1) * d])
            var best = 0
            for t in 1 ..< d where abs(v[t]) > abs(v[best]) { best = t }
            if v[best] < 0 { for t in 0 ..< d { v[t] = -v[t] } }
            basis.replaceSubrange(r * d ..< (r + 1) * d, with: v)
        }
        return PCA(inputDim: d, components: m, mean: mean, basis: basis, explainedVariance: variances, totalVariance: Float(total))
    }

    init(inputDim: Int, components: Int, mean: [Float], basis: [Float], explainedVariance: [Float], totalVariance: Float) {
        self.inputDim = inputDim; self.components = components; self.mean = mean; self.basis = basis
        self.explainedVariance = explainedVariance; self.totalVariance = totalVariance
    }

    /// Projects rows of `x` (same dimension as the fitted data) onto the components: `n × m`.
    public func transform(_ x: Embeddings) throws -> Embeddings {
        guard x.cols == inputDim else {
            throw HDLError.invalidInput("PCA was fitted on dimension \(inputDim), input has \(x.cols) columns")
        }
        let n = x.rows, d = inputDim, m = components
        if n == 0 { return Embeddings(rows: 0, cols: m, data: []) }
        var y = [Float](repeating: 0, count: n * m)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(m), Int32(d), 1, x.data, Int32(d), basis, Int32(d), 0, &y, Int32(m))
        // Subtract the projected mean: (X − 1μᵀ)Wᵀ = XWᵀ − 1(Wμ)ᵀ.
        var offset = [Float](repeating: 0, count: m)
        for r in 0 ..< m {
            var s: Double = 0
            for t in 0 ..< d { s += Double(basis[r * d + t]) * Double(mean[t]) }
            offset[r] = Float(s)
        }
        y.withUnsafeMutableBufferPointer { b in
            for i in 0 ..< n { for r in 0 ..< m { b[i * m + r] -= offset[r] } }
        }
        return Embeddings(rows: n, cols: m, data: y)
    }

    /// Fits on `x` and returns its projection.
    public static func fitTransform(_ x: Embeddings, components m: Int) throws -> (pca: PCA, projected: Embeddings) {
        let p = try fit(x, components: m)
        return (p, try p.transform(x))
    }
}
