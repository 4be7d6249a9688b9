import HDLabelCore

/// Synthetic label noise at a known rate, for benchmarks and tests.
public enum LabelNoise: String, Sendable, CaseIterable, Codable {
    /// Each flipped label moves to one of the other classes uniformly at random.
    case symmetric
    /// Class-dependent: each flipped label of class c moves to class (c + 1) mod C (pair flipping).
    case pair

    /// Flips exactly round(rate · n) labels chosen at random. Returns the noisy labels and the flipped mask.
    public func apply(_ truth: [Int], numClasses c: Int, rate: Double, seed: UInt64) -> (labels: [Int32], flipped: [Bool]) {
        var rng = SplitMix64(seed: seed ^ 0x0015_E0F1_1B5)
        var order = Array(0 ..< truth.count)
        rng.shuffle(&order)
        var labels = truth.map { Int32($0) }, flipped = [Bool](repeating: false, count: truth.count)
        for i in order.prefix(Int((rate * Double(truth.count)).rounded())) {
            let y = truth[i]
            let z: Int
            switch self {
            case .symmetric: let r = rng.below(c - 1); z = r >= y ? r + 1 : r
            case .pair: z = (y + 1) % c
            }
            labels[i] = Int32(z); flipped[i] = true
        }
        return (labels, flipped)
    }
}

/// Precision / recall / F1 of flagged points against the truly flipped ones.
public struct DetectionScore: Sendable, Codable, Equatable {
    public var flagged: Int
    public var flipped: Int
    public var truePositives: Int
    public var precision: Double { flagged > 0 ? Double(truePositives) / Double(flagged) : 0 }
    public var recall: Double { flipped > 0 ? Double(truePositives) / Double(flipped) : 0 }
    public var f1: Double { precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0 }

    public init(flagged: [Bool], flipped: [Bool]) {
        precondition(flagged.count == flipped.count)
        self.flagged = flagged.filter { $0 }.count
        self.flipped = flipped.filter { $0 }.count
        truePositives = zip(flagged, flipped).filter { $0 && $1 }.count
    }
}
