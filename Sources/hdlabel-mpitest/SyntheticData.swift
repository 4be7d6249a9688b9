import HDLabelBench
import HDLabelIO
import Foundation
import HDLabelCore

/// Draws for the synthetic data, on the core's SplitMix64, so every rank (and every run) builds the same data.
extension SplitMix64 {
    /// Uniform in (0, 1).
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / Double(1 << 53) }
    /// Standard normal (Box–Muller).
    mutating func normal() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()) }
}

/// Clustered random embeddings: `classes` unit centres in `d` dimensions plus Gaussian noise of scale `noise`;
/// sample i belongs to class `truth[i]` (classes drawn uniformly). Seeds: the first `seedsPerClass` samples of
/// each class keep their class, all others are -1.
struct SyntheticData {
    let x: Embeddings
    let truth: [Int32]
    let seeds: [Int32]

    /// - sortedByClass: the same samples with the rows ordered by class (stable), as a file written one class after
    ///   another would be: consecutive row ranges (ranks' shards) then hold whole classes, so kNN neighbours are mostly
    ///   in the same shard.
    init(n: Int, d: Int, classes: Int, seedsPerClass: Int, noise: Double = 0.6, seed: UInt64 = 42, sortedByClass: Bool = false) {
        var rng = SplitMix64(seed: seed)
        var centres = [Double](repeating: 0, count: classes * d)
        for c in 0 ..< classes {
            var norm = 0.0
            for j in 0 ..< d { let v = rng.normal(); centres[c * d + j] = v; norm += v * v }
            for j in 0 ..< d { centres[c * d + j] /= norm.squareRoot() }
        }
        var data = [Float](repeating: 0, count: n * d)
        var truth = [Int32](repeating: 0, count: n)
        let scale = noise / Double(d).squareRoot()
        for i in 0 ..< n {
            let c = Int(rng.next() % UInt64(classes))
            truth[i] = Int32(c)
            for j in 0 ..< d { data[i * d + j] = Float(centres[c * d + j] + scale * rng.normal()) }
        }
        if sortedByClass {
            let order = (0 ..< n).sorted { (truth[$0], $0) < (truth[$1], $1) }
            var sorted = [Float](repeating: 0, count: n * d)
            for (r, i) in order.enumerated() { for j in 0 ..< d { sorted[r * d + j] = data[i * d + j] } }
            data = sorted
            truth = order.map { truth[$0] }
        }
        var seeds = [Int32](repeating: -1, count: n)
        var given = [Int](repeating: 0, count: classes)
        for i in 0 ..< n where given[Int(truth[i])] < seedsPerClass {
            seeds[i] = truth[i]; given[Int(truth[i])] += 1
        }
        self.x = Embeddings(rows: n, cols: d, data: data)
        self.truth = truth
        self.seeds = seeds
    }

    /// Writes the embeddings (float32 `.npy`) and the seed labels (int64 `.npy`).
    func write(embeddings: String, labels: String) throws {
        try NPY.write(x, to: embeddings)
        try NPY.write(ints: seeds.map(Int.init), to: labels)
    }

    /// Given labels for label-issue detection: the truth with `noise` applied at `rate` (exactly round(rate · n)
    /// flips), then every row with probability `1 − labeledFraction` made unlabeled (-1). Deterministic for `seed`.
    func noisyLabels(noise: LabelNoise, rate: Double, labeledFraction: Double, classes: Int, seed: UInt64 = 7) -> [Int32] {
        var (labels, _) = noise.apply(truth.map(Int.init), numClasses: classes, rate: rate, seed: seed)
        var rng = SplitMix64(seed: seed &+ 1)
        for i in labels.indices where Double(rng.next() >> 11) * 0x1p-53 >= labeledFraction { labels[i] = -1 }
        return labels
    }
}
