import HDLabelCore
import CBLAS
import Foundation

/// Speed of the kNN graph against the physical floor of its work: a plain `cblas_sgemm` computing the same
/// n×n similarity products (in row blocks, no selection), measured in the same process.
public enum GraphBenchmark {
    public struct Row: Sendable {
        public var n: Int, d: Int, k: Int, tile: Int
        public var graphSeconds: Double
        /// One `cblas_sgemm` of every n × n × d product (what a builder scoring every ordered pair multiplies).
        public var sgemmSeconds: Double
        /// The upper triangle's products only (about n²/2: what our builder multiplies, each unordered pair once).
        public var halfSgemmSeconds: Double
        /// sgemm time / graph time: 1.0 means the graph costs no more than the bare products.
        public var ratio: Double { sgemmSeconds / graphSeconds }
        public var graphGFLOPs: Double { 2 * Double(n) * Double(n) * Double(d) / graphSeconds / 1e9 }
        public var sgemmGFLOPs: Double { 2 * Double(n) * Double(n) * Double(d) / sgemmSeconds / 1e9 }
        public var halfRatio: Double { halfSgemmSeconds / graphSeconds }
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

    /// Times the bare products: X·Xᵀ in `block`-row slabs (output block × n), best of `repeats`. `half`: only the
    /// upper triangle's slabs (slab rows × the columns from the slab on: about n²/2 products, what a builder that
    /// scores each unordered pair once multiplies).
    public static func sgemmSeconds(_ x: Embeddings, block: Int = 2048, repeats: Int, half: Bool = false) -> Double {
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
                        let c0 = half ? r0 : 0
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rc), Int32(n - c0), Int32(d), 1,
                                    xb.baseAddress! + r0 * d, Int32(d), xb.baseAddress! + c0 * d, Int32(d), 0, ob.baseAddress!, Int32(n - c0))
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
        return Row(n: n, d: d, k: k, tile: tile, graphSeconds: best, sgemmSeconds: sgemmSeconds(x, repeats: repeats),
                   halfSgemmSeconds: sgemmSeconds(x, repeats: repeats, half: true))
    }
}

extension KNNGraphBuilder {
    /// Seconds the exact builder takes for its first rounds of tile pairs (about `rows / n` of the rounds, at least
    /// the diagonal round and one more) and the share of all tile pairs those rounds scored: the full build takes
    /// about `seconds / pairShare`.
    public static func timeExactRows(_ x: Embeddings, k: Int, rows: Int) -> (seconds: Double, pairShare: Double) {
        let n = x.rows, d = x.cols, tile = GraphOptions.defaultTile
        let tiles = (n + tile - 1) / tile
        let limit = 1 + max(1, Int((Double(min(rows, n)) / Double(n) * Double(tiles)).rounded(.up)))
        var acc = TopKAccumulator(rows: n, k: k, firstRow: 0)
        var last = (0, 1)
        let t0 = DispatchTime.now().uptimeNanoseconds
        x.data.withUnsafeBufferPointer { xb in
            accumulateSelf(x: xb.baseAddress!, rows: 0 ..< n, d: d, tile: tile, into: &acc, pairsDone: { last = ($0, $1) }, roundLimit: limit)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return (seconds, Double(last.0) / Double(last.1))
    }
}

/// Peak resident memory of this process so far (bytes; Linux `ru_maxrss`).
public func peakRSSBytes() -> Int {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Int(u.ru_maxrss) * 1024
}
