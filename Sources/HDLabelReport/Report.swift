import HDLabelIO
import HDLabelCore
import Foundation

/// The numbers behind `hdlabel report`: pure functions over label arrays, ground truth and benchmark records.
/// Rendering is in `ReportHTML.swift`. Conventions as in `QualityMetrics`: a row is *evaluated* when its seed is -1;
/// labels are class ids, -1 = abstained.
public enum Report {

    // MARK: per layer

    /// One layer of a run, over the evaluated (non-seed) rows. Layer -1 = never labeled.
    public struct LayerStat: Sendable, Equatable {
        public var layer: Int
        /// Evaluated rows labeled at this layer.
        public var count: Int
        /// Correct among them (nil without ground truth).
        public var correct: Int?
        /// Share of the evaluated rows labeled at this layer.
        public var coverage: Double
        /// Share of the evaluated rows labeled at this layer or an earlier one (never-labeled rows add nothing).
        public var cumulativeCoverage: Double
        public var accuracy: Double? { correct.map { count > 0 ? Double($0) / Double(count) : .nan } }
    }

    /// Coverage (and accuracy, with `truth`) of every layer, in layer order; the never-labeled rows (layer -1, or
    /// label -1) come last as layer -1.
    public static func layerStats(labels: [Int32], layer: [Int32], evaluated: [Bool], truth: [Int]? = nil) -> [LayerStat] {
        precondition(labels.count == layer.count && labels.count == evaluated.count && (truth == nil || truth!.count == labels.count))
        var count: [Int: Int] = [:], correct: [Int: Int] = [:]
        var total = 0
        for i in 0 ..< labels.count where evaluated[i] {
            total += 1
            let l = labels[i] < 0 ? -1 : Int(layer[i])
            count[l, default: 0] += 1
            if let truth, labels[i] >= 0, Int(labels[i]) == truth[i] { correct[l, default: 0] += 1 }
        }
        let keys = count.keys.filter { $0 >= 0 }.sorted() + (count[-1] != nil ? [-1] : [])
        var cum = 0
        return keys.map { l in
            let c = count[l]!
            if l >= 0 { cum += c }
            let t = Double(max(total, 1))
            return LayerStat(layer: l, count: c, correct: truth == nil ? nil : correct[l, default: 0], coverage: Double(c) / t,
                             cumulativeCoverage: Double(cum) / t)
        }
    }

    // MARK: calibration

    /// One bin of a reliability diagram.
    public struct CalibrationBin: Sendable, Equatable {
        /// 0 = least confident decile.
        public var bin: Int
        public var count: Int
        public var correct: Int
        public var meanConfidence: Double
        public var minConfidence: Double
        public var maxConfidence: Double
        public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : .nan }
    }

    /// Reliability diagram by confidence decile: the labeled evaluated rows sorted by confidence (ties by row), cut
    /// into `bins` groups of equal size (ranks [b·m/bins, (b+1)·m/bins), the same cut as `QualityMetrics`).
    public static func calibration(labels: [Int32], confidence: [Float], truth: [Int], evaluated: [Bool], bins: Int = 10) -> [CalibrationBin] {
        precondition(labels.count == confidence.count && labels.count == truth.count && labels.count == evaluated.count && bins > 0)
        var pts: [(c: Float, i: Int, ok: Bool)] = []
        for i in 0 ..< labels.count where evaluated[i] && labels[i] >= 0 { pts.append((confidence[i], i, Int(labels[i]) == truth[i])) }
        pts.sort { ($0.c, $0.i) < ($1.c, $1.i) }
        let m = pts.count
        var out: [CalibrationBin] = []
        for b in 0 ..< bins {
            let lo = b * m / bins, hi = (b + 1) * m / bins
            if hi <= lo { continue }
            let part = pts[lo ..< hi]
            let mean = part.reduce(0.0) { $0 + Double($1.c) } / Double(part.count)
            out.append(CalibrationBin(bin: b, count: part.count, correct: part.filter(\.ok).count, meanConfidence: mean,
                                      minConfidence: Double(part.first!.c), maxConfidence: Double(part.last!.c)))
        }
        return out
    }

    /// Expected calibration error: Σ_b (n_b / N) · |accuracy_b − meanConfidence_b|.
    public static func expectedCalibrationError(_ bins: [CalibrationBin]) -> Double {
        let n = bins.reduce(0) { $0 + $1.count }
        guard n > 0 else { return .nan }
        return bins.reduce(0.0) { $0 + Double($1.count) / Double(n) * abs($1.accuracy - $1.meanConfidence) }
    }

    /// Selective accuracy: the accuracy of the most confident `coverage` share of the labeled evaluated rows (ranked by
    /// confidence descending, ties by row; ⌈coverage · m⌉ of m rows, at least one). NaN when no row is labeled. O(m log m).
    public static func selectiveAccuracy(labels: [Int32], confidence: [Float], truth: [Int], evaluated: [Bool], coverage: Double) -> Double {
        precondition(labels.count == confidence.count && labels.count == truth.count && labels.count == evaluated.count)
        var pts: [(c: Float, i: Int)] = []
        for i in 0 ..< labels.count where evaluated[i] && labels[i] >= 0 { pts.append((confidence[i], i)) }
        guard !pts.isEmpty else { return .nan }
        pts.sort { $0.c != $1.c ? $0.c > $1.c : $0.i < $1.i }
        let take = min(pts.count, max(1, Int((coverage * Double(pts.count)).rounded(.up))))
        let ok = pts.prefix(take).filter { Int(labels[$0.i]) == truth[$0.i] }.count
        return Double(ok) / Double(take)
    }

    // MARK: classes

    /// One class in the long-tail view.
    public struct ClassStat: Sendable, Equatable {
        public var classId: Int
        /// Evaluated rows whose truth is this class (0 without truth).
        public var truthCount: Int
        /// Evaluated rows the run gave this label.
        public var predictedCount: Int
        /// Seeds of this class.
        public var seedCount: Int
        /// Recall on the evaluated rows (NaN when the class is absent from the evaluated truth, nil without truth).
        public var recall: Double?
    }

    /// Per-class counts and recall, sorted by count descending (truth count when truth is given, else predicted
    /// count; ties by class id): the head of the distribution first, the tail last.
    public static func classStats(labels: [Int32], seeds: [Int32], truth: [Int]?, numClasses c: Int) -> [ClassStat] {
        precondition(labels.count == seeds.count && (truth == nil || truth!.count == labels.count))
        var tc = [Int](repeating: 0, count: c), pc = tc, sc = tc, tp = tc
        for i in 0 ..< labels.count {
            if seeds[i] >= 0 { if Int(seeds[i]) < c { sc[Int(seeds[i])] += 1 }; continue }
            let p = Int(labels[i])
            if p >= 0 && p < c { pc[p] += 1 }
            if let truth, truth[i] >= 0 && truth[i] < c { tc[truth[i]] += 1; if p == truth[i] { tp[p] += 1 } }
        }
        let stats = (0 ..< c).map { k in
            ClassStat(classId: k, truthCount: tc[k], predictedCount: pc[k], seedCount: sc[k],
                      recall: truth == nil ? nil : (tc[k] > 0 ? Double(tp[k]) / Double(tc[k]) : .nan))
        }
        let key: (ClassStat) -> Int = truth == nil ? { $0.predictedCount } : { $0.truthCount }
        return stats.sorted { key($0) != key($1) ? key($0) > key($1) : $0.classId < $1.classId }
    }

    // MARK: confusion

    /// Confusion counts over the evaluated rows: `counts[t][p]` for truth t and prediction p in 0..<C; column C
    /// holds abstentions. Rows whose truth is outside 0..<C are skipped.
    public static func confusion(labels: [Int32], truth: [Int], evaluated: [Bool], numClasses c: Int) -> [[Int]] {
        precondition(labels.count == truth.count && labels.count == evaluated.count)
        var m = [[Int]](repeating: [Int](repeating: 0, count: c + 1), count: c)
        for i in 0 ..< labels.count where evaluated[i] {
            let t = truth[i]
            guard t >= 0 && t < c else { continue }
            let p = Int(labels[i])
            m[t][p >= 0 && p < c ? p : c] += 1
        }
        return m
    }

    // MARK: accuracy vs seed budget

    /// One row of a quality-benchmark records CSV (`hdlabel bench quality`).
    public struct BudgetRecord: Sendable, Equatable {
        public var dataset: String
        public var balance: String
        public var budget: String
        public var seed: Int
        public var labeled: Int
        public var method: String
        public var accuracy: Double
        public init(dataset: String, balance: String, budget: String, seed: Int, labeled: Int, method: String, accuracy: Double) {
            self.dataset = dataset; self.balance = balance; self.budget = budget; self.seed = seed; self.labeled = labeled
            self.method = method; self.accuracy = accuracy
        }
    }

    /// Parses a records CSV (header with at least dataset, balance, budget, seed, labeled, method, accuracy; rows
    /// with an `error` or no accuracy are skipped).
    public static func parseBudgetRecords(_ text: String, path: String = "records") throws -> [BudgetRecord] {
        var lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !lines.isEmpty else { throw HDLError.format(path: path, reason: "file is empty") }
        let header = LabelsIO.splitCSVLine(lines.removeFirst())
        func col(_ name: String) throws -> Int {
            guard let i = header.firstIndex(of: name) else { throw HDLError.format(path: path, reason: "no '\(name)' column (expected a quality records CSV)") }
            return i
        }
        let cd = try col("dataset"), cb = try col("balance"), cu = try col("budget"), cs = try col("seed"), cl = try col("labeled")
        let cm = try col("method"), ca = try col("accuracy")
        let ce = header.firstIndex(of: "error")
        var out: [BudgetRecord] = []
        for (j, line) in lines.enumerated() {
            let f = LabelsIO.splitCSVLine(line)
            guard f.count == header.count else { throw HDLError.format(path: path, reason: "line \(j + 2): \(f.count) fields, header has \(header.count)") }
            if let ce, !f[ce].isEmpty { continue }
            guard let acc = Double(f[ca]), acc.isFinite, let lab = Int(f[cl]) else { continue }
            out.append(BudgetRecord(dataset: f[cd], balance: f[cb], budget: f[cu], seed: Int(f[cs]) ?? 0, labeled: lab, method: f[cm], accuracy: acc))
        }
        return out
    }

    /// Mean accuracy of one method at one seed budget (over the benchmark's seeds).
    public struct BudgetPoint: Sendable, Equatable {
        public var labeled: Double
        public var accuracy: Double
        public var runs: Int
    }

    /// Method → points sorted by seed labels, averaged over seeds, for one dataset and balance.
    public static func budgetCurves(_ records: [BudgetRecord], dataset: String, balance: String) -> [String: [BudgetPoint]] {
        var groups: [String: [String: [BudgetRecord]]] = [:]
        for r in records where r.dataset == dataset && r.balance == balance { groups[r.method, default: [:]][r.budget, default: []].append(r) }
        return groups.mapValues { byBudget in
            byBudget.values.map { rs in
                BudgetPoint(labeled: Double(rs.reduce(0) { $0 + $1.labeled }) / Double(rs.count),
                            accuracy: rs.reduce(0.0) { $0 + $1.accuracy } / Double(rs.count), runs: rs.count)
            }.sorted { $0.labeled < $1.labeled }
        }
    }

    /// Seed labels a method with `curve` needs to reach `target` accuracy: linear interpolation between the first
    /// two consecutive budgets that bracket it; the smallest budget if it already reaches it there; nil when no budget
    /// in the table reaches it (the answer is then "more than the table's largest budget").
    public static func labelsNeeded(curve: [BudgetPoint], target: Double) -> Double? {
        guard let first = curve.first else { return nil }
        if first.accuracy >= target { return first.labeled }
        for (a, b) in zip(curve, curve.dropFirst()) where b.accuracy >= target && a.accuracy < target {
            return a.labeled + (target - a.accuracy) / (b.accuracy - a.accuracy) * (b.labeled - a.labeled)
        }
        return nil
    }

    /// At one seed budget: what HDL reached and how many seed labels the most label-efficient baseline needs to match it.
    public struct BudgetSaving: Sendable, Equatable {
        public var labeled: Double
        public var accuracy: Double
        /// The baseline needing the fewest labels (nil when none reaches the accuracy within the table).
        public var baseline: String?
        public var baselineLabels: Double?
        /// baselineLabels − labeled (nil when no baseline reaches the accuracy: then more than `largestBudget − labeled`).
        public var labelsSaved: Double? { baselineLabels.map { $0 - labeled } }
        /// The table's largest budget (for the "more than" statement).
        public var largestBudget: Double
    }

    /// For each of `method`'s budgets: the fewest seed labels any other method in `curves` needs for the same accuracy.
    public static func budgetSavings(curves: [String: [BudgetPoint]], method: String = "hdl") -> [BudgetSaving] {
        guard let own = curves[method] else { return [] }
        let largest = curves.values.flatMap { $0.map(\.labeled) }.max() ?? 0
        return own.map { p in
            var best: (String, Double)?
            for (name, curve) in curves where name != method {
                if let need = labelsNeeded(curve: curve, target: p.accuracy), best == nil || need < best!.1 || (need == best!.1 && name < best!.0) {
                    best = (name, need)
                }
            }
            return BudgetSaving(labeled: p.labeled, accuracy: p.accuracy, baseline: best?.0, baselineLabels: best?.1, largestBudget: largest)
        }
    }

    // MARK: headline

    /// The figures a manager asks for, with the inputs they were computed from.
    public struct Headline: Sendable, Equatable {
        public var method: String
        /// Seed labels given to the run.
        public var seedLabels: Int
        /// Non-seed rows that received a label.
        public var producedLabels: Int
        public var rows: Int
        public var secondsPerLabel: Double
        /// producedLabels × secondsPerLabel / 3600.
        public var annotationHoursSaved: Double
        /// Accuracy of `method` minus that of the best other method (nil without truth or without another method).
        public var accuracyGain: Double?
        public var bestBaseline: String?
        public var bestBaselineAccuracy: Double?
        public var accuracy: Double?
    }

    /// `accuracies`: method → accuracy on the evaluated rows (empty without truth).
    public static func headline(method: String, labels: [Int32], seeds: [Int32], secondsPerLabel: Double,
                                accuracies: [String: Double]) -> Headline {
        precondition(labels.count == seeds.count)
        let seedCount = seeds.filter { $0 >= 0 }.count
        var produced = 0
        for i in 0 ..< labels.count where seeds[i] < 0 && labels[i] >= 0 { produced += 1 }
        let others = accuracies.filter { $0.key != method && !$0.value.isNaN }
        let best = others.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }
        let own = accuracies[method]
        return Headline(method: method, seedLabels: seedCount, producedLabels: produced, rows: labels.count, secondsPerLabel: secondsPerLabel,
                        annotationHoursSaved: Double(produced) * secondsPerLabel / 3600,
                        accuracyGain: (own != nil && best != nil) ? own! - best!.value : nil,
                        bestBaseline: best?.key, bestBaselineAccuracy: best?.value, accuracy: own)
    }

    // MARK: timings

    /// Per-phase seconds of one run (a `--timings` JSON of `hdlabel cluster`, or a manifest's `timingsSeconds`).
    public struct TimingSet: Sendable, Equatable {
        public var name: String
        public var ranks: Int
        /// Phase → seconds (max over ranks), in the order the phases ran where known.
        public var phases: [(String, Double)]
        public var totalSeconds: Double?
        public init(name: String, ranks: Int, phases: [(String, Double)], totalSeconds: Double?) {
            self.name = name; self.ranks = ranks; self.phases = phases; self.totalSeconds = totalSeconds
        }
        public static func == (a: TimingSet, b: TimingSet) -> Bool {
            a.name == b.name && a.ranks == b.ranks && a.totalSeconds == b.totalSeconds
                && a.phases.map(\.0) == b.phases.map(\.0) && a.phases.map(\.1) == b.phases.map(\.1)
        }
    }

    /// Phase order of the cluster job (then the single-process phases); unknown phases follow alphabetically.
    public static let phaseOrder = ["read", "normalize", "normalise", "compute", "graph", "commWait", "checkpoint", "gather",
                                    "hierarchy", "label", "broadcast", "write"]

    public static func orderedPhases(_ seconds: [String: Double]) -> [(String, Double)] {
        let known = phaseOrder.compactMap { p in seconds[p].map { (p, $0) } }
        let rest = seconds.keys.filter { !phaseOrder.contains($0) }.sorted().map { ($0, seconds[$0]!) }
        return known + rest
    }

    /// Parses a timings JSON (`hdlabel cluster --timings`: `ranks`, `maxSeconds`, `totalSeconds`); nil when the JSON
    /// is not one.
    public static func parseTimings(_ data: Data, name: String) -> TimingSet? {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let maxSec = obj["maxSeconds"] as? [String: Any] else { return nil }
        var secs: [String: Double] = [:]
        for (k, v) in maxSec { if let d = (v as? NSNumber)?.doubleValue { secs[k] = d } }
        return TimingSet(name: name, ranks: (obj["ranks"] as? NSNumber)?.intValue ?? 1, phases: orderedPhases(secs),
                         totalSeconds: (obj["totalSeconds"] as? NSNumber)?.doubleValue)
    }
}
