import HDLabelCore
import CBLAS
import Foundation

/// Speed of the kNN graph against the physical floor of its work: a plain `cblas_sgemm` computing the same
/// n×n similarity products (in row blocks, no selection), measured in the same process.
public enum GraphBenchmark {
    public struct Row: Sendable {
        public var n: Int, d: Int, k: Int, tile: Int
        public var graphSeconds: Double
        public var sgemmSeconds: Double
        /// sgemm time / graph time: 1.0 means the graph costs no more than the bare products.
        public var ratio: Double { sgemmSeconds / graphSeconds }
        public var graphGFLOPs: Double { 2 * Double(n) * Double(n) * Double(d) / graphSeconds / 1e9 }
        public var sgemmGFLOPs: Double { 2 * Double(n) * Double(n) * Double(d) / sgemmSeconds / 1e9 }
    }

    /// Random unit vectors (deterministic for `seed`).
    public static func randomUnit(n: Int, d: Int, seed: UInt64) -> Embeddings {
        var s = seed
        var data = [Float](repeating: 0, count: n * d)
        for i in 0 ..< n * d {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            data[i] = Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1e6
        }
        return Embeddings(rows: n, cols: d, data: data).l2Normalized()
    }

    /// Times the bare products: X·Xᵀ in `block`-row slabs (output block × n), best of `repeats`.
    public static func sgemmSeconds(_ x: Embeddings, block: Int = 2048, repeats: Int) -> Double {
        let n = x.rows, d = x.cols
        var out = [Float](repeating: 0, count: min(block, n) * n)
        var best = Double.infinity
        for _ in 0 ..< repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            x.data.withUnsafeBufferPointer { xb in
                out.withUnsafeMutableBufferPointer { ob in
                    var r0 = 0
                    while r0 < n {
                        let rc = min(block, n - r0)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rc), Int32(n), Int32(d), 1,
                                    xb.baseAddress! + r0 * d, Int32(d), xb.baseAddress!, Int32(d), 0, ob.baseAddress!, Int32(n))
                        r0 += rc
                    }
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return best
    }

    /// Times `KNNGraphBuilder.build` (best of `repeats`) and the sgemm floor on the same data.
    public static func run(n: Int, d: Int, k: Int, tile: Int, repeats: Int = 3) throws -> Row {
        let x = randomUnit(n: n, d: d, seed: 7)
        var best = Double.infinity
        for _ in 0 ..< repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try KNNGraphBuilder.build(x, options: GraphOptions(k: k, tile: tile))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return Row(n: n, d: d, k: k, tile: tile, graphSeconds: best, sgemmSeconds: sgemmSeconds(x, repeats: repeats))
    }
}

extension KNNGraphBuilder {
    /// Seconds the exact builder takes for the first `rows` query rows against all rows (to extrapolate its full
    /// time as `seconds · n / rows` when the full build is too long to run).
    public static func timeExactRows(_ x: Embeddings, k: Int, rows: Int) -> Double {
        let r = min(rows, x.rows), d = x.cols
        let t0 = DispatchTime.now().uptimeNanoseconds
        var acc = TopKAccumulator(rows: r, k: k, firstRow: 0)
        var scratch = [Float]()
        x.data.withUnsafeBufferPointer { xb in
            accumulate(queries: Array(xb[0 ..< r * d]), database: xb.baseAddress!, dbStart: 0, dbCount: x.rows, d: d,
                       tile: GraphOptions.defaultTile, into: &acc, scratch: &scratch)
        }
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }
}

/// Peak resident memory of this process so far (bytes; Linux `ru_maxrss`).
public func peakRSSBytes() -> Int {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Int(u.ru_maxrss) * 1024
}
