import HDLabelCore
import Foundation

/// Accuracy of a group of points (a layer, a confidence decile).
public struct GroupAccuracy: Sendable, Equatable, Codable {
    /// Layer number, or decile index 0...9 (0 = least confident).
    public var group: Int
    public var count: Int
    public var correct: Int
    /// Confidence range of the group (deciles only; 0 otherwise).
    public var minConfidence: Float
    public var maxConfidence: Float
    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : .nan }
}

/// Label quality on the unlabeled part of a split (positions whose seed is -1). Seeds are never scored.
///
/// - accuracy: correct / unlabeled points; an abstention (label -1) counts as wrong.
/// - coveredAccuracy: correct / points that received a label.
/// - coverage: labeled-by-the-method / unlabeled points.
/// - macroF1: mean over classes present in the truth or the predictions (as scikit-learn's `f1_score(average="macro")`);
///   abstentions lower recall but are not predictions.
/// - balancedAccuracy: mean per-class recall over classes present in the truth.
public struct QualityMetrics: Sendable, Equatable, Codable {
    public var evaluated: Int
    public var covered: Int
    public var correct: Int
    public var accuracy: Double
    public var coveredAccuracy: Double
    public var coverage: Double
    public var macroF1: Double
    public var balancedAccuracy: Double
    /// Per class (length C): recall, NaN for classes absent from the evaluated truth.
    public var perClassRecall: [Double]
    public var perClassF1: [Double]
    public var byLayer: [GroupAccuracy]
    public var byConfidenceDecile: [GroupAccuracy]

    /// Mean recall over `classes` (skipping classes with no evaluated point); NaN if none.
    public func meanRecall(classes: [Int]) -> Double {
        let v = classes.map { perClassRecall[$0] }.filter { !$0.isNaN }
        return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
    }

    /// - predicted: method output (class id or -1), length n.
    /// - truth: ground truth, length n. - seeds: the split's seed array (-1 = evaluated).
    /// - layer, confidence: optional per-point diagnostics (length n) for the by-layer / by-decile tables.
    public static func evaluate(predicted: [Int32], truth: [Int], seeds: [Int32], numClasses c: Int,
                                layer: [Int32]? = nil, confidence: [Float]? = nil) -> QualityMetrics {
        precondition(predicted.count == truth.count && seeds.count == truth.count, "length mismatch")
        var tp = [Int](repeating: 0, count: c), predCount = [Int](repeating: 0, count: c), trueCount = [Int](repeating: 0, count: c)
        var evaluated = 0, covered = 0, correct = 0
        var layers: [Int: (Int, Int)] = [:]
        var confList: [(conf: Float, pos: Int, ok: Bool)] = []
        for i in 0 ..< truth.count where seeds[i] < 0 {
            evaluated += 1
            let t = truth[i], p = Int(predicted[i])
            trueCount[t] += 1
            let ok = p == t
            if p >= 0 && p < c {
                covered += 1; predCount[p] += 1
                if ok { tp[t] += 1; correct += 1 }
                if let confidence { confList.append((confidence[i], i, ok)) }
            }
            if let layer { let l = Int(layer[i]); let e = layers[l] ?? (0, 0); layers[l] = (e.0 + 1, e.1 + (ok ? 1 : 0)) }
        }
        var recall = [Double](repeating: .nan, count: c), f1 = [Double](repeating: .nan, count: c)
        var f1Sum = 0.0, f1N = 0, recSum = 0.0, recN = 0
        for k in 0 ..< c {
            if trueCount[k] > 0 { recall[k] = Double(tp[k]) / Double(trueCount[k]); recSum += recall[k]; recN += 1 }
            if trueCount[k] > 0 || predCount[k] > 0 {
                let denom = trueCount[k] + predCount[k]  // F1 = 2TP / (|true| + |pred|)
                f1[k] = denom > 0 ? 2 * Double(tp[k]) / Double(denom) : 0
                f1Sum += f1[k]; f1N += 1
            }
        }
        let byLayer = layers.keys.sorted().map { l in GroupAccuracy(group: l, count: layers[l]!.0, correct: layers[l]!.1, minConfidence: 0, maxConfidence: 0) }
        // Deciles by confidence rank among covered points (ties broken by position): decile d holds ranks
        // [d·m/10, (d+1)·m/10).
        confList.sort { ($0.conf, $0.pos) < ($1.conf, $1.pos) }
        var deciles: [GroupAccuracy] = []
        let m = confList.count
        if m > 0 {
            for d in 0 ..< 10 {
                let lo = d * m / 10, hi = (d + 1) * m / 10
                if hi <= lo { continue }
                let part = confList[lo ..< hi]
                deciles.append(GroupAccuracy(group: d, count: part.count, correct: part.filter(\.ok).count,
                                             minConfidence: part.first!.conf, maxConfidence: part.last!.conf))
            }
        }
        let nan = Double.nan
        return QualityMetrics(
            evaluated: evaluated, covered: covered, correct: correct,
            accuracy: evaluated > 0 ? Double(correct) / Double(evaluated) : nan,
            coveredAccuracy: covered > 0 ? Double(correct) / Double(covered) : nan,
            coverage: evaluated > 0 ? Double(covered) / Double(evaluated) : nan,
            macroF1: f1N > 0 ? f1Sum / Double(f1N) : nan,
            balancedAccuracy: recN > 0 ? recSum / Double(recN) : nan,
            perClassRecall: recall, perClassF1: f1, byLayer: byLayer, byConfidenceDecile: deciles)
    }
}

/// Mean and sample standard deviation (n−1; 0 for a single value). NaN values propagate.
public func meanStd(_ v: [Double]) -> (mean: Double, std: Double) {
    if v.isEmpty { return (.nan, .nan) }
    let m = v.reduce(0, +) / Double(v.count)
    if v.count == 1 { return (m, 0) }
    let s = v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)
    return (m, s.squareRoot())
}
