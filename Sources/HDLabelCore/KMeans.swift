import CBLAS
import Dispatch
import Foundation

/// Deterministic spherical k-means on L2-normalised rows, and canonical nearest-centroid assignment.
///
/// Every step is independent of thread count and BLAS kernel: `sgemm` scores only propose centroids, near-ties
/// (within `2 · CanonicalSimilarity.slack`) are re-scored with `CanonicalSimilarity.dot` and broken by the smaller
/// centroid id; centroid sums run in Double over rows in ascending order; the initial centroids and the sample come
/// from a fixed-seed `SplitMix64` stream.
public enum KMeans {
    /// `count` distinct row ids of `0 ..< n` drawn with `seed`, ascending (all rows if `count >= n`).
    public static func sample(n: Int, count: Int, seed: UInt64) -> [Int] {
        if count >= n { return Array(0 ..< n) }
        // Partial Fisher–Yates over a lazily materialised permutation (dictionary of displaced entries).
        var rng = SplitMix64(seed: seed)
        var moved: [Int: Int] = [:]
        var out = [Int](); out.reserveCapacity(count)
        for i in 0 ..< count {
            let j = i + Int(rng.next() % UInt64(n - i))   // modulo (not `below`): simple to reproduce in the Python peers
            let vj = moved[j] ?? j, vi = moved[i] ?? i
            out.append(vj); moved[j] = vi
        }
        return out.sorted()
    }

    /// Fits `cells` unit centroids (`cells × d`, row-major) to the rows `sample` of `x` (ascending ids) with
    /// `iterations` Lloyd steps. Initial centroids: `cells` distinct sample rows chosen with `seed`. A cell left
    /// empty keeps its previous centroid.
    public static func fit(_ x: Embeddings, sample: [Int], cells: Int, iterations: Int, seed: UInt64, threads: Int? = nil) -> [Float] {
        fit(sample: x.gather(sample), cells: cells, iterations: iterations, seed: seed, threads: threads)
    }

    /// The same fit on the sample rows themselves (`sub` = the sample rows in ascending id order), e.g. after ranks
    /// gathered them.
    public static func fit(sample sub: Embeddings, cells: Int, iterations: Int, seed: UInt64, threads: Int? = nil) -> [Float] {
        let d = sub.cols
        precondition(cells >= 1 && cells <= sub.rows)
        var centroids = [Float](); centroids.reserveCapacity(cells * d)
        for s in KMeans.sample(n: sub.rows, count: cells, seed: seed ^ 0x6b6d65616e73) {
            centroids.append(contentsOf: sub.data[s * d ..< (s + 1) * d])
        }
        var assign = [Int32](repeating: 0, count: sub.rows)
        for _ in 0 ..< iterations {
            nearest(sub.data, rows: sub.rows, d: d, centroids: centroids, cells: cells, m: 1, into: &assign, threads: threads)
            var sums = [Double](repeating: 0, count: cells * d)
            var counts = [Int](repeating: 0, count: cells)
            sub.data.withUnsafeBufferPointer { xb in
                sums.withUnsafeMutableBufferPointer { sb in
                    for r in 0 ..< sub.rows {   // ascending row order: the sums do not depend on threads
                        let c = Int(assign[r]); counts[c] += 1
                        let row = xb.baseAddress! + r * d, acc = sb.baseAddress! + c * d
                        for t in 0 ..< d { acc[t] += Double(row[t]) }
                    }
                }
            }
            for c in 0 ..< cells where counts[c] > 0 {
                var norm = 0.0
                for t in 0 ..< d { norm += sums[c * d + t] * sums[c * d + t] }
                if norm == 0 { continue }
                let inv = 1 / norm.squareRoot()
                for t in 0 ..< d { centroids[c * d + t] = Float(sums[c * d + t] * inv) }
            }
        }
        return centroids
    }

    /// Writes the `m` nearest centroids of each of `rows` rows (`x`, row-major `rows × d`, unit rows) to
    /// `out[r*m ..< (r+1)*m]`, nearest first: ranked by `CanonicalSimilarity.dot`, ties by the smaller centroid id.
    /// Row blocks of 256 run in parallel with one BLAS thread each; the result does not depend on either.
    public static func nearest(_ x: [Float], rows: Int, d: Int, centroids: [Float], cells: Int, m: Int, into out: inout [Int32], threads: Int? = nil) {
        precondition(m >= 1 && m <= cells && out.count >= rows * m)
        let block = 256
        let blocks = (rows + block - 1) / block
        let slack2 = 2 * CanonicalSimilarity.slack(d: d)
        let saved = BLASThreads.current
        BLASThreads.set(1)
        defer { BLASThreads.set(saved) }
        x.withUnsafeBufferPointer { xb in
            centroids.withUnsafeBufferPointer { cb in
                out.withUnsafeMutableBufferPointer { ob in
                    let xp = xb.baseAddress!, cp = cb.baseAddress!, op = ob.baseAddress!
                    ApproxKNNGraph.forEach(blocks, threads: threads) { b in
                        let r0 = b * block, rc = min(block, rows - r0)
                        var scores = [Float](repeating: 0, count: rc * cells)
                        scores.withUnsafeMutableBufferPointer { sb in
                            let sp = sb.baseAddress!
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rc), Int32(cells), Int32(d),
                                        1, xp + r0 * d, Int32(d), cp, Int32(d), 0, sp, Int32(cells))
                            var top = [Float](repeating: 0, count: m)
                            var cand: [(Float, Int32)] = []
                            for r in 0 ..< rc {
                                let sc = sp + r * cells
                                // m-th largest sgemm score.
                                for j in 0 ..< m { top[j] = -.infinity }
                                for c in 0 ..< cells {
                                    let v = sc[c]
                                    if v <= top[m - 1] { continue }
                                    var p = m - 1
                                    while p > 0 && top[p - 1] < v { top[p] = top[p - 1]; p -= 1 }
                                    top[p] = v
                                }
                                // Every centroid whose canonical similarity can reach the m-th canonical one.
                                let cut = top[m - 1] - slack2
                                cand.removeAll(keepingCapacity: true)
                                let row = xp + (r0 + r) * d
                                for c in 0 ..< cells where sc[c] >= cut {
                                    cand.append((CanonicalSimilarity.dot(row, cp + c * d, d), Int32(c)))
                                }
                                cand.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                                for j in 0 ..< m { op[(r0 + r) * m + j] = cand[j].1 }
                            }
                        }
                    }
                }
            }
        }
    }
}
