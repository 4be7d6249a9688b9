/// Similarities whose bits do not depend on the BLAS kernel, the CPU, the tile, the thread count or the rank count.
///
/// `sgemm` scores differ in their last bits between kernels and call shapes, so a graph ranked by them can order
/// near-ties differently on another machine. Builders therefore use `sgemm` only to *find* candidates and rank the
/// survivors by `dot`, a fixed-order dot product: every product of two floats is exact in Double, the sums run in a
/// fixed order, and the result is rounded once to Float, so the value is the same on any IEEE-754 CPU.
///
/// A candidate is dropped on its `sgemm` score only when that score is below the current k-th canonical similarity
/// by more than `slack(d:)`, a bound on the `sgemm` error for unit rows (γ_d · Σ|aᵢbᵢ| ≤ d·2⁻²⁴·‖a‖‖b‖, doubled).
/// Hence the final top-k equals the top-k by canonical similarity over every pair the builder scored: for the exact
/// builder the graph (ids and similarities) is identical bit for bit for any kernel, tile, thread and rank count.
public enum CanonicalSimilarity {
    /// The fixed-order dot product of two rows of length `d` (four Double partial sums over strided lanes, added
    /// as `(s0 + s1) + (s2 + s3)`, rounded once to Float). O(d).
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: Int) -> Float {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var t = 0
        while t + 4 <= d {
            s0 += Double(a[t]) * Double(b[t]); s1 += Double(a[t + 1]) * Double(b[t + 1])
            s2 += Double(a[t + 2]) * Double(b[t + 2]); s3 += Double(a[t + 3]) * Double(b[t + 3])
            t += 4
        }
        while t < d { s0 += Double(a[t]) * Double(b[t]); t += 1 }
        return Float((s0 + s1) + (s2 + s3))
    }

    /// How far an `sgemm` score of two (almost) unit rows of length `d` may lie from their canonical similarity:
    /// 2 · (d + 2) · 2⁻²⁴ (twice the worst-case float32 accumulation error, plus the rows' norm rounding).
    @inlinable
    public static func slack(d: Int) -> Float { Float(2 * (d + 2)) * 0x1p-24 }
}
