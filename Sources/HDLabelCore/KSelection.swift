import Foundation

/// Adaptive choice of the neighbourhood size k from (k, δk) label clusterability
/// (Zhu et al., ICML 2022; used by HDL's adaptive k).
///
/// For a labeling ℓ over all points (anchors keep their labels; other points carry the current provisional
/// labels), δ̂_k is the fraction of points whose k nearest neighbours do not all share their label. If each
/// neighbour's label is independently wrong with rate ê, a strict majority of k votes is right with probability
/// B_k = P(Bin(k, ê) ≤ ⌈k/2⌉ − 1). The bound (1 − δ̂_k)·B_k trades neighbourhood purity (falls with k) against
/// vote robustness (rises with k); k* is its argmax (ties → smaller k).
public enum KSelection {
    /// δ̂_k for every k in 1...graph.k, computed in one pass (first disagreeing neighbour per point).
    /// - labels: length n, class id or -1; points labeled -1 are skipped, as are -1 neighbours (treated as unknown).
    public static func deltaHat(graph: KNNGraph, labels: [Int32]) -> [Double] {
        deltaHat(histogram: firstDisagreement(graph: graph, firstRow: 0, labels: labels), k: graph.k)
    }

    /// Histogram (k + 3 entries) of the 1-based position of the first disagreeing neighbour over rows
    /// `firstRow ..< firstRow + graph.n` (`graph` holds those rows; `labels` covers all rows); entry k + 1 counts rows
    /// without one, entry k + 2 the rows counted. Integer counts: histograms of row ranges add up exactly.
    public static func firstDisagreement(graph: KNNGraph, firstRow: Int, labels: [Int32]) -> [Int] {
        let k = graph.k
        var firstBad = [Int](repeating: 0, count: k + 3)
        for r in 0 ..< graph.n where labels[firstRow + r] >= 0 {
            let own = labels[firstRow + r]
            firstBad[k + 2] += 1
            var pos = k + 1
            for t in 0 ..< k {
                let l = labels[Int(graph.neighbors[r * k + t])]
                if l >= 0 && l != own { pos = t + 1; break }
            }
            firstBad[pos] += 1
        }
        return firstBad
    }

    /// δ̂_k for k in 1...k from a (summed) `firstDisagreement` histogram; index 0 unused.
    public static func deltaHat(histogram firstBad: [Int], k: Int) -> [Double] {
        let counted = firstBad[k + 2]
        var out = [Double](repeating: 0, count: k + 1) // out[kk] = δ̂ at k = kk (index 0 unused)
        var cum = 0
        for kk in 1 ... k { cum += firstBad[kk]; out[kk] = counted > 0 ? Double(cum) / Double(counted) : 1 }
        return out
    }

    /// P(Bin(k, e) ≤ ⌈k/2⌉ − 1): a strict majority of k independent votes with error rate e is right.
    public static func majorityBound(k: Int, error e: Double) -> Double {
        let m = (k + 1) / 2 - 1 // ⌈k/2⌉ − 1
        var p = 0.0
        var logC = 0.0 // log C(k, i)
        for i in 0 ... max(m, 0) {
            if i > 0 { logC += log(Double(k - i + 1)) - log(Double(i)) }
            let term = logC + Double(i) * log(max(e, 1e-300)) + Double(k - i) * log(max(1 - e, 1e-300))
            p += exp(term)
        }
        return min(1, p)
    }

    /// The k among `candidates` that maximises (1 − δ̂_k) · majority bound, from δ̂ as returned by `deltaHat` (valid for k ≤ kMax).
    public static func choose(deltaHat d: [Double], kMax: Int, errorRate: Double, candidates: [Int]) -> (k: Int, scores: [(k: Int, score: Double)]) {
        var best = candidates[0], bestScore = -1.0
        var scores: [(Int, Double)] = []
        for k in candidates where k >= 1 && k <= kMax {
            let s = (1 - d[k]) * majorityBound(k: k, error: errorRate)
            scores.append((k, s))
            if s > bestScore + 1e-12 { bestScore = s; best = k }
        }
        return (best, scores.map { (k: $0.0, score: $0.1) })
    }

    /// Default candidate grid up to `kMax`.
    public static func candidates(kMax: Int) -> [Int] {
        let grid = [3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 64, 80, 100]
        let c = grid.filter { $0 <= kMax }
        return c.isEmpty ? [kMax] : c
    }
}
