import HDLabelIO
import HDLabelCore
import Foundation

/// How a point's neighbourhood vote turns into an "issue" flag.
public enum IssueRule: String, Sendable, CaseIterable, Codable {
    /// Flag when the similarity-weighted neighbour vote's winner is not the given label.
    case majority
    /// Per-class calibrated thresholds (confident learning): class c is a confident alternative for point i when its
    /// vote share p_i(c) reaches t_c, the mean share of c among the points labeled c. Flag when the strongest
    /// confident class is not the given label.
    case confident
    /// `confident`, then per (given, suggested) pair keep only as many flags as the calibrated confident joint
    /// estimates, those with the largest margin p(suggested) − p(given) (cleanlab's `prune_by_noise_rate`), and never
    /// a point whose given label wins the vote.
    case prune
}

/// Parameters of label-issue detection. Defaults are the measured best (`benchmarks/results/noise.md`).
public struct LabelIssueConfig: Sendable, Equatable, Codable {
    /// Labeled neighbours that vote for each point (the graph must hold at least this many neighbours; with partial
    /// labels the first `k` labeled neighbours among the graph's row vote).
    public var k: Int = 50
    /// Vote weight = max(similarity, 0)^gamma.
    public var gamma: Double = 1
    public var rule: IssueRule = .prune
    /// Rounds of cleaning: after each round the flagged points stop voting and every labeled point is re-scored.
    public var rounds: Int = 1
    /// Rules `confident` / `prune`: upper bound on the per-class thresholds t_c (1 = none). With 0.5 a class holding a
    /// strict majority of the weighted vote is always a confident alternative, even when the class is so clean that
    /// its mean share is near 1.
    public var thresholdCap: Double = 1
    public init() {}

    public func validate() throws {
        if !(1 ... LabelingConfig.maxK).contains(k) { throw HDLError.invalidParameter(name: "neighbors", value: "\(k)", allowed: "an integer in 1...\(LabelingConfig.maxK)") }
        if !(gamma >= 0 && gamma <= 100) { throw HDLError.invalidParameter(name: "gamma", value: "\(gamma)", allowed: "a number in [0, 100]") }
        if !(1 ... 100).contains(rounds) { throw HDLError.invalidParameter(name: "rounds", value: "\(rounds)", allowed: "an integer in 1...100") }
        if !(thresholdCap > 0 && thresholdCap <= 1) { throw HDLError.invalidParameter(name: "threshold-cap", value: "\(thresholdCap)", allowed: "0 < cap <= 1") }
    }
}

/// Per-point outcome of label-issue detection (arrays of length n).
public struct LabelIssueResult: Sendable, Equatable {
    /// The given labels (class id or -1 = unlabeled; unlabeled points are never flagged).
    public var given: [Int32]
    /// The neighbourhood's choice: the vote winner (the given label when no labeled neighbour voted).
    public var suggested: [Int32]
    /// 1 − (weighted vote share of the given label): 0 = every neighbour agrees, 1 = none does. 0 for unlabeled
    /// points and for points with no voting neighbour.
    public var score: [Float]
    /// Weighted vote share of the suggested label.
    public var suggestedShare: [Float]
    public var flagged: [Bool]
    /// Per-class thresholds t_c of the last round (rule `confident` / `prune`; empty for `majority`).
    public var thresholds: [Double]
    /// Flagged points, most suspicious first (score descending, then id).
    public var ranking: [Int]
    /// Labeled points that had at least one voting neighbour.
    public var scored: Int

    public var flaggedCount: Int { ranking.count }
}

/// Finds samples whose given label disagrees with their embedding neighbourhood: similarity-weighted kNN consensus on
/// the cosine kNN graph, in the spirit of (k, δk) label clusterability (a point's k nearest neighbours should mostly
/// share its true label, so a label the neighbourhood does not support is suspicious).
public enum LabelIssues {
    /// Detects label issues. - labels: length `graph.n`, class id in `0..<numClasses` or -1.
    public static func detect(graph: KNNGraph, labels: [Int32], numClasses c: Int, config: LabelIssueConfig) throws -> LabelIssueResult {
        guard labels.count == graph.n else { throw HDLError.invalidInput("label count \(labels.count) does not match row count \(graph.n)") }
        return try detect(labels: labels, numClasses: c, graphWidth: graph.k, config: config) { voter in
            voteShares(graph: graph, labels: labels, voter: voter, numClasses: c, k: config.k, gamma: config.gamma)
        }
    }

    /// Detection with the vote shares supplied by `votes` (n × c, row-major, for a voter mask of length n); the cluster
    /// computes them on the ranks that hold the graph rows and gathers them. `votes` is called once per round, with
    /// the same mask on every caller, so a collective `votes` keeps every rank in step. - graphWidth: neighbours per
    /// graph row (at least `min(config.k, n − 1)`).
    public static func detect(labels: [Int32], numClasses c: Int, graphWidth: Int, config: LabelIssueConfig,
                              votes computeVotes: ([Bool]) throws -> [Float]) throws -> LabelIssueResult {
        try config.validate()
        let n = labels.count
        guard c >= 2 else { throw HDLError.invalidInput("need at least two classes, found \(c)") }
        if let bad = labels.firstIndex(where: { $0 < -1 || Int($0) >= c }) {
            throw HDLError.invalidInput("label \(labels[bad]) of row \(bad) is not a known class (0..<\(c) or -1)")
        }
        guard graphWidth >= min(config.k, n - 1) else {
            throw HDLError.invalidParameter(name: "k", value: "\(config.k)", allowed: "<= graph width \(graphWidth)")
        }
        var flagged = [Bool](repeating: false, count: n)
        var votes = [Float](), thresholds = [Double]()
        for _ in 0 ..< config.rounds {
            let voter = (0 ..< n).map { labels[$0] >= 0 && !flagged[$0] }
            votes = try computeVotes(voter)
            guard votes.count == n * c else {
                throw HDLError.invalidInput("vote shares have \(votes.count) entries, expected \(n) x \(c)")
            }
            let (f, t) = flag(votes: votes, labels: labels, numClasses: c, rule: config.rule, cap: config.thresholdCap)
            thresholds = t
            if f == flagged { break }
            flagged = f
        }
        var suggested = labels, score = [Float](repeating: 0, count: n), share = [Float](repeating: 0, count: n)
        var scored = 0
        for i in 0 ..< n where labels[i] >= 0 {
            let row = votes[i * c ..< (i + 1) * c]
            guard row.contains(where: { $0 > 0 }) else { continue }
            scored += 1
            var best = Int(labels[i])
            for j in 0 ..< c where row[row.startIndex + j] > row[row.startIndex + best] { best = j }
            suggested[i] = Int32(best)
            share[i] = row[row.startIndex + best]
            score[i] = 1 - row[row.startIndex + Int(labels[i])]
        }
        let ranking = (0 ..< n).filter { flagged[$0] }.sorted { score[$0] > score[$1] || (score[$0] == score[$1] && $0 < $1) }
        return LabelIssueResult(given: labels, suggested: suggested, score: score, suggestedShare: share, flagged: flagged,
                                thresholds: thresholds, ranking: ranking, scored: scored)
    }

    /// The checks and sizes of a detection run, the same for one process and for the cluster (every rank): `given`
    /// needs two classes and a labeled row, `graphK` (when given) must be in 1 ..< n. Returns the graph width
    /// (`graphWidth`) and `config` validated, its vote k capped at that width. - source: names the labels in errors.
    public static func plan(given: SeedLabels, source: String, config: LabelIssueConfig,
                            graphK: Int?) throws -> (graphWidth: Int, config: LabelIssueConfig) {
        try config.validate()
        let n = given.seeds.count
        if given.numClasses < 2 { throw HDLError.invalidInput("need at least two classes, found \(given.numClasses)") }
        let labeled = given.seeds.filter { $0 >= 0 }.count
        if labeled == 0 { throw HDLError.invalidInput("'\(source)' has no labeled row") }
        if let g = graphK, g < 1 || g >= n {
            throw HDLError.invalidParameter(name: "graph-k", value: "\(g)", allowed: "1 ... \(n - 1) (n = \(n))")
        }
        let width = graphWidth(n: n, labeled: labeled, k: config.k, override: graphK)
        var cfg = config
        cfg.k = min(cfg.k, width)
        return (width, cfg)
    }

    /// Graph width for detection on `n` rows of which `labeled` carry a label: `override` when given, else `k` when
    /// fully labeled and wider when partly labeled, so that about `k` labeled neighbours are in reach (at most
    /// max(k, 512)); never below `k` nor above n − 1.
    public static func graphWidth(n: Int, labeled: Int, k: Int, override: Int? = nil) -> Int {
        let wanted = override ?? min(k * max(1, Int((Double(n) / Double(max(labeled, 1))).rounded(.up))), max(k, 512))
        return max(1, min(max(wanted, k), n - 1))
    }

    /// Row-normalised weighted vote shares (graph.n × c, row-major) from the first `k` voting neighbours of every
    /// graph row. Rows with no voting neighbour are all zero. `labels` and `voter` are indexed by neighbour id, so a
    /// rank's partial graph (its rows, global neighbour ids) works with the global arrays.
    public static func voteShares(graph: KNNGraph, labels: [Int32], voter: [Bool], numClasses c: Int, k: Int, gamma: Double) -> [Float] {
        let n = graph.n, gk = graph.k
        var out = [Float](repeating: 0, count: n * c)
        let g = Float(gamma)
        out.withUnsafeMutableBufferPointer { ob in
            let op = ob.baseAddress!
            DispatchQueue.concurrentPerform(iterations: 8) { part in
                let lo = part * n / 8, hi = (part + 1) * n / 8
                for i in lo ..< hi {
                    var used = 0
                    var total: Float = 0
                    let row = op + i * c
                    for t in 0 ..< gk {
                        if used == k { break }
                        let j = Int(graph.neighbors[i * gk + t])
                        guard voter[j] else { continue }
                        used += 1
                        let s = max(graph.similarities[i * gk + t], 0)
                        let w: Float = g == 0 ? 1 : (g == 1 ? s : pow(s, g))
                        row[Int(labels[j])] += w
                        total += w
                    }
                    if total > 0 { for j in 0 ..< c { row[j] /= total } }
                }
            }
        }
        return out
    }

    /// Applies `rule` to vote shares. Returns the flags and the per-class thresholds used.
    static func flag(votes: [Float], labels: [Int32], numClasses c: Int, rule: IssueRule, cap: Double = 1) -> ([Bool], [Double]) {
        let n = labels.count
        var flagged = [Bool](repeating: false, count: n)
        func hasVotes(_ i: Int) -> Bool { (0 ..< c).contains { votes[i * c + $0] > 0 } }
        switch rule {
        case .majority:
            for i in 0 ..< n where labels[i] >= 0 && hasVotes(i) {
                let g = Int(labels[i])
                var best = g
                for j in 0 ..< c where votes[i * c + j] > votes[i * c + best] { best = j }
                flagged[i] = best != g
            }
            return (flagged, [])
        case .confident, .prune:
            // t_c = mean share of class c among points labeled c (with votes).
            var sum = [Double](repeating: 0, count: c), cnt = [Int](repeating: 0, count: c)
            for i in 0 ..< n where labels[i] >= 0 && hasVotes(i) {
                let g = Int(labels[i]); sum[g] += Double(votes[i * c + g]); cnt[g] += 1
            }
            let t = (0 ..< c).map { cnt[$0] > 0 ? min(max(sum[$0] / Double(cnt[$0]), 1e-6), cap) : min(1.0, cap) }
            var confidentClass = [Int](repeating: -1, count: n)
            var joint = [Int](repeating: 0, count: c * c)
            for i in 0 ..< n where labels[i] >= 0 && hasVotes(i) {
                var best = -1
                for j in 0 ..< c where Double(votes[i * c + j]) >= t[j] {
                    if best < 0 || votes[i * c + j] > votes[i * c + best] { best = j }
                }
                confidentClass[i] = best
                if best >= 0 { joint[Int(labels[i]) * c + best] += 1 }
            }
            if rule == .confident {
                for i in 0 ..< n where confidentClass[i] >= 0 && confidentClass[i] != Int(labels[i]) { flagged[i] = true }
                return (flagged, t)
            }
            // Calibrate the joint so that row s sums to the number of points given s, then keep per off-diagonal
            // cell (s, j) the round(C̃[s][j]) points given s with the largest margin p(j) − p(s).
            var givenCount = [Int](repeating: 0, count: c)
            for i in 0 ..< n where labels[i] >= 0 && hasVotes(i) { givenCount[Int(labels[i])] += 1 }
            var cells = [[(margin: Float, id: Int)]](repeating: [], count: c * c)
            for i in 0 ..< n where labels[i] >= 0 && hasVotes(i) {
                let s = Int(labels[i])
                // Candidate alternative: the strongest other class by vote share.
                var j = -1
                for q in 0 ..< c where q != s { if j < 0 || votes[i * c + q] > votes[i * c + j] { j = q } }
                cells[s * c + j].append((votes[i * c + j] - votes[i * c + s], i))
            }
            for s in 0 ..< c {
                let rowSum = (0 ..< c).reduce(0) { $0 + joint[s * c + $1] }
                guard rowSum > 0 else { continue }
                for j in 0 ..< c where j != s {
                    let quota = Int((Double(joint[s * c + j]) / Double(rowSum) * Double(givenCount[s])).rounded())
                    if quota == 0 { continue }
                    let cand = cells[s * c + j].sorted { $0.margin > $1.margin || ($0.margin == $1.margin && $0.id < $1.id) }
                    // As cleanlab does: a point whose given label still wins the vote is not flagged.
                    for e in cand.prefix(quota) where e.margin > 0 { flagged[e.id] = true }
                }
            }
            return (flagged, t)
        }
    }

    /// CSV `id,given,suggested,score,rank` (class names) of the flagged points in rank order, or of every labeled
    /// point (`all`: flagged first in rank order, then the rest by score; rank is empty for unflagged points).
    public static func encodeCSV(_ r: LabelIssueResult, classNames: [String], all: Bool = false) -> Data {
        var s = "id,given,suggested,score,rank\n"
        let names = classNames.map(LabelsIO.csvField)
        for (pos, i) in r.ranking.enumerated() {
            s += "\(i),\(names[Int(r.given[i])]),\(names[Int(r.suggested[i])]),\(String(format: "%.4f", r.score[i])),\(pos + 1)\n"
        }
        if all {
            let rest = (0 ..< r.given.count).filter { r.given[$0] >= 0 && !r.flagged[$0] }
                .sorted { r.score[$0] > r.score[$1] || (r.score[$0] == r.score[$1] && $0 < $1) }
            for i in rest {
                s += "\(i),\(names[Int(r.given[i])]),\(names[Int(r.suggested[i])]),\(String(format: "%.4f", r.score[i])),\n"
            }
        }
        return Data(s.utf8)
    }
}

