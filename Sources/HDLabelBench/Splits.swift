import HDLabelCore
import Foundation

/// How many seed labels a split gets.
public enum LabelBudget: Sendable, Equatable, Codable, CustomStringConvertible {
    /// This many labels for each class (the head class under a long tail; see `SplitSpec`).
    case perClass(Int)
    /// This many labels in total, shared over classes in proportion to the labeled class profile (≥ 1 each).
    case total(Int)

    /// "10" or "10/class" → perClass(10); "total=100" or "100total" → total(100).
    public init?(_ text: String) {
        let t = text.lowercased()
        if t.hasPrefix("total=") || t.hasPrefix("total:"), let v = Int(t.dropFirst(6)), v > 0 { self = .total(v); return }
        if t.hasSuffix("total"), let v = Int(t.dropLast(5)), v > 0 { self = .total(v); return }
        let s = t.hasSuffix("/class") ? String(t.dropLast(6)) : t
        if let v = Int(s), v > 0 { self = .perClass(v); return }
        return nil
    }
    public var description: String {
        switch self { case let .perClass(v): return "\(v)/class"; case let .total(v): return "total=\(v)" }
    }
}

/// Class profile of the unlabeled part relative to the labeled one.
public enum UnlabeledProfile: String, Sendable, Codable, CaseIterable {
    /// Same long tail as the labeled part (the usual long-tailed SSL setting).
    case same
    /// Unlabeled part balanced whatever the labeled part is.
    case balanced
    /// Unlabeled part follows the reversed tail (head classes become rare).
    case reversed
    /// Unlabeled part keeps the data set's own class distribution (all remaining rows, scaled down to the point cap).
    case natural
}

/// Everything that determines a split. Class c's share under imbalance ρ is ρ^(−c/(C−1)) (class 0 is the head).
public struct SplitSpec: Sendable, Equatable, Codable {
    public var budget: LabelBudget
    /// Imbalance ratio ρ = n_max / n_min (1 = balanced).
    public var imbalance: Double
    public var unlabeled: UnlabeledProfile
    public var seed: UInt64
    /// Cap on labeled + unlabeled points (nil: as many as the class sizes allow).
    public var maxPoints: Int?

    public init(budget: LabelBudget, imbalance: Double = 1, unlabeled: UnlabeledProfile = .same, seed: UInt64, maxPoints: Int? = nil) {
        self.budget = budget; self.imbalance = imbalance; self.unlabeled = unlabeled; self.seed = seed; self.maxPoints = maxPoints
    }

    /// Short human name: "10/class ρ=10 seed 0".
    public var label: String {
        var s = "\(budget)"
        if imbalance != 1 { s += " rho=\(fmtRho(imbalance))" + (unlabeled == .same ? "" : " unlabeled=\(unlabeled.rawValue)") }
        return s + " seed \(seed)"
    }
}

func fmtRho(_ r: Double) -> String { r == r.rounded() ? String(Int(r)) : String(r) }

/// A concrete split of a data set: the working subset of rows and which of them carry seed labels.
///
/// `indices` are data-set row ids (ascending); `labeled` are positions into `indices`. Per class the rows are
/// shuffled once by the seed; the first L_c become labeled and the next U_c unlabeled, so for a fixed seed
/// the labeled sets of growing budgets are nested. Ground truth enters `seeds(truth:)` only at labeled positions.
public struct Split: Sendable, Equatable, Codable {
    public var spec: SplitSpec
    public var numClasses: Int
    public var indices: [Int]
    public var labeled: [Int]
    /// Per class: labeled and unlabeled counts actually drawn.
    public var labeledPerClass: [Int]
    public var unlabeledPerClass: [Int]

    /// Builds a split from ground truth `truth` (class id per data-set row, 0..<numClasses).
    public static func make(truth: [Int], numClasses c: Int, spec: SplitSpec) throws -> Split {
        guard c >= 2 else { throw HDLError.invalidInput("a split needs at least 2 classes, found \(c)") }
        guard spec.imbalance >= 1, spec.imbalance.isFinite else {
            throw HDLError.invalidParameter(name: "imbalance", value: "\(spec.imbalance)", allowed: "a finite ratio >= 1")
        }
        var byClass = [[Int]](repeating: [], count: c)
        for (i, y) in truth.enumerated() {
            guard y >= 0 && y < c else { throw HDLError.invalidInput("ground-truth label \(y) at row \(i) outside 0..<\(c)") }
            byClass[y].append(i)
        }
        if let empty = byClass.firstIndex(where: { $0.isEmpty }) { throw HDLError.invalidInput("class \(empty) has no rows") }
        let rho = spec.imbalance
        let tail = (0 ..< c).map { pow(rho, -Double($0) / Double(c - 1)) }  // head (class 0) = 1
        let lw = tail
        let uw: [Double]
        switch spec.unlabeled {
        case .same: uw = tail
        case .balanced: uw = [Double](repeating: 1, count: c)
        case .reversed: uw = Array(tail.reversed())
        case .natural: uw = (0 ..< c).map { Double(byClass[$0].count) }
        }
        // Labeled counts.
        var lc: [Int]
        switch spec.budget {
        case let .perClass(b):
            lc = lw.map { max(1, Int(($0 * Double(b)).rounded())) }
        case let .total(t):
            guard t >= c else { throw HDLError.invalidParameter(name: "budget", value: "total=\(t)", allowed: "at least one label per class (>= \(c))") }
            lc = largestRemainder(total: t, weights: lw, minimum: 1)
        }
        for y in 0 ..< c where lc[y] + 1 > byClass[y].count {
            throw HDLError.invalidInput("class \(y) has \(byClass[y].count) rows, cannot take \(lc[y]) labels and keep an unlabeled row")
        }
        // Unlabeled counts: the largest head size n_max every class can supply, then the point cap.
        var nmax = Double.infinity
        for y in 0 ..< c { nmax = min(nmax, Double(byClass[y].count - lc[y]) / uw[y]) }
        if spec.unlabeled == .natural { nmax = 1 }  // weights are the class sizes: take every remaining row
        if let cap = spec.maxPoints {
            let room = cap - lc.reduce(0, +)
            guard room >= c else { throw HDLError.invalidParameter(name: "max-points", value: "\(cap)", allowed: "more than the labels plus one unlabeled row per class") }
            nmax = min(nmax, Double(room) / uw.reduce(0, +))
        }
        let uc = (0 ..< c).map { y in min(byClass[y].count - lc[y], max(1, Int((nmax * uw[y]).rounded(.down)))) }
        var rng = SplitMix64(seed: spec.seed ^ 0x5EED_0F_5E1EC7)
        var chosen: [(row: Int, isLabeled: Bool)] = []
        for y in 0 ..< c {
            var rows = byClass[y]
            rng.shuffle(&rows)
            for r in rows[0 ..< lc[y]] { chosen.append((r, true)) }
            for r in rows[lc[y] ..< lc[y] + uc[y]] { chosen.append((r, false)) }
        }
        chosen.sort { $0.row < $1.row }
        let idx = chosen.map(\.row)
        let lab = chosen.indices.filter { chosen[$0].isLabeled }
        return Split(spec: spec, numClasses: c, indices: idx, labeled: lab, labeledPerClass: lc, unlabeledPerClass: uc)
    }

    /// Seed array for the working set: the class id at labeled positions, -1 everywhere else.
    /// `truth` is indexed by data-set row (the same array the split was made from).
    public func seeds(truth: [Int]) -> [Int32] {
        var s = [Int32](repeating: -1, count: indices.count)
        for p in labeled { s[p] = Int32(truth[indices[p]]) }
        return s
    }

    /// Ground truth of the working set (for scoring only; never passed to a labeler).
    public func groundTruth(_ truth: [Int]) -> [Int] { indices.map { truth[$0] } }

    /// The working set's embeddings.
    public func embeddings(_ x: Embeddings) -> Embeddings { x.gather(indices) }

    /// FNV-1a 64 of the spec, class count, indices and labeled positions: identifies a split in manifests.
    public var hash: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) { var x = v; for _ in 0 ..< 8 { h ^= x & 0xff; h = h &* 0x100_0000_01b3; x >>= 8 } }
        mix(UInt64(numClasses)); mix(spec.seed); mix(spec.imbalance.bitPattern)
        for b in "\(spec.budget)|\(spec.unlabeled.rawValue)|\(spec.maxPoints ?? -1)".utf8 { mix(UInt64(b)) }
        mix(UInt64(indices.count)); for i in indices { mix(UInt64(i)) }
        mix(UInt64(labeled.count)); for p in labeled { mix(UInt64(p)) }
        return String(format: "%016llx", h)
    }

    public func jsonData() throws -> Data {
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        return try enc.encode(self)
    }

    public static func fromJSON(_ data: Data) throws -> Split { try JSONDecoder().decode(Split.self, from: data) }
}

/// Integer counts summing to `total`, proportional to `weights`, each at least `minimum` (largest remainder).
func largestRemainder(total: Int, weights: [Double], minimum: Int) -> [Int] {
    let c = weights.count
    var out = [Int](repeating: minimum, count: c)
    let rest = total - minimum * c
    if rest <= 0 { return out }
    let sw = weights.reduce(0, +)
    let exact = weights.map { Double(rest) * $0 / sw }
    var given = 0
    for i in 0 ..< c { let f = Int(exact[i].rounded(.down)); out[i] += f; given += f }
    let order = (0 ..< c).sorted { (exact[$0] - exact[$0].rounded(.down), -$0) > (exact[$1] - exact[$1].rounded(.down), -$1) }
    for i in order.prefix(rest - given) { out[i] += 1 }
    return out
}
