import Foundation

/// How HDL turns a row's raw confidence (the top class's share of its posterior) into a calibrated probability that
/// the row's label is right. Every map is fitted on the pilot's held-out seeds only (never on hidden truth) and is
/// non-decreasing, so it never changes a label and keeps the order of the rows' confidences.
public enum CalibrationMethod: String, Sendable, CaseIterable, Codable {
    /// The default: where HDL refines (its confidences are then shares of the refinement posterior, the kind of
    /// posterior the pilot's refined folds give) `temperature` or `platt`, whichever has the lower 5-fold
    /// cross-validated log-loss on the held-out seeds (`Calibration.fitAuto`; temperature below 20 seeds or unless
    /// Platt is better by 10⁻³ nats per seed); `none` where it does not refine (a long-tailed run's confidences
    /// are acceptance shares of later layers, which no pilot posterior resembles; every map made them worse on the
    /// development seeds, docs/method.md "Calibration").
    case auto
    /// Raw confidence (no map).
    case none
    /// Platt scaling on the log-odds of the raw confidence: σ(a · z + b), a > 0 (z = logit(s), read from the posterior
    /// row so that shares rounding to 1 keep their order).
    case platt
    /// Multi-class temperature scaling with one parameter: the posterior's shares raised to the power a and renormalised,
    /// read on the top share with the other C − 1 classes taken as equal: σ(a · (logit(s) + L) − L), L = log(C − 1)
    /// (a = 1 is the identity; with C = 2 it is σ(a · logit(s))). Unlike a temperature on the top share's binary
    /// log-odds it can raise a diffuse top share below 1/2 above 1/2.
    case temperature
    /// Equal-count bins of the held-out seeds' raw confidences, each bin's accuracy shrunk towards the pilot's overall
    /// accuracy, made monotone (pool adjacent violators), interpolated linearly between bin centres.
    case histogram
    /// Isotonic regression (pool adjacent violators) on the held-out seeds, blocks shrunk like `histogram`'s bins,
    /// interpolated linearly between block centres.
    case isotonic
}

/// What the pilot's held-out seeds say about the raw confidences: one entry per held-out seed that the fold's posterior
/// could label (its class kept an anchor in the fold and some evidence reached it), in seed-row order.
public struct CalibrationSamples: Sendable, Equatable {
    /// Raw confidence (top share of the held-out seed's one-shot posterior), in [0, 1].
    public var scores: [Float]
    /// Whether that posterior's argmax is the seed's label.
    public var correct: [Bool]
    /// Held-out seeds left out because their class had no anchor in their fold or no evidence reached them.
    public var excluded: Int
    /// Classes of the posterior the scores are top shares of (≥ 2; `temperature` reads the other C − 1 as equal).
    public var classes: Int
    /// The scores' log-odds, log(top) − log(rest), from the posterior rows (`Scores.argmaxShare`): what the logistic
    /// maps are fitted on, so shares that round to 1 in Float keep their order. Default: the logit of each score.
    public var logOdds: [Float]
    public init(scores: [Float] = [], correct: [Bool] = [], excluded: Int = 0, classes: Int = 2, logOdds: [Float]? = nil) {
        precondition(scores.count == correct.count && (logOdds?.count ?? scores.count) == scores.count)
        self.scores = scores; self.correct = correct; self.excluded = excluded; self.classes = max(2, classes)
        self.logOdds = logOdds ?? scores.map { Float(Calibration.logit(Double($0))) }
    }
    public var count: Int { scores.count }
}

/// What held-out seeds say about an accuracy: `correct` of `samples` right, with a 95 % Wilson score interval
/// (binomial: it covers the seeds' sampling noise, not the pilot's own bias, which `docs/method.md` measures).
public struct AccuracyEstimate: Sendable, Equatable, Codable {
    public var samples: Int
    public var correct: Int
    public init(samples: Int, correct: Int) { self.samples = samples; self.correct = correct }
    /// correct / samples (NaN without samples).
    public var accuracy: Double { samples > 0 ? Double(correct) / Double(samples) : .nan }
    /// The 95 % Wilson score interval (z = 1.96); [0, 1] without samples.
    public var interval: (lower: Double, upper: Double) {
        guard samples > 0 else { return (0, 1) }
        let z = 1.96, m = Double(samples), p = accuracy
        let centre = (p + z * z / (2 * m)) / (1 + z * z / m)
        let half = z * ((p * (1 - p) / m + z * z / (4 * m * m)).squareRoot()) / (1 + z * z / m)
        return (max(0, centre - half), min(1, centre + half))
    }
    /// `0.742 (95 % interval 0.650–0.818, 100 held-out seeds)`.
    public var description: String {
        let (lo, hi) = interval
        return String(format: "%.3f (95 %% interval %.3f–%.3f, %d held-out seeds)", accuracy, lo, hi, samples)
    }
}

/// A fitted, non-decreasing map [0, 1] → [0, 1] from raw to calibrated confidence, and why it is what it is.
/// The identity (`method == .none`) carries the reason no map was fitted.
public struct CalibrationMap: Sendable, Equatable {
    /// The map applied (`.none` = identity).
    public var method: CalibrationMethod
    /// Held-out seeds it was fitted on.
    public var samples: Int
    /// `platt`, `temperature`: slope and intercept on the logit of the raw confidence.
    public var slope: Double
    public var intercept: Double
    /// `histogram`, `isotonic`: knots (raw confidence ascending, calibrated value non-decreasing); constant outside.
    public var knotX: [Double]
    public var knotY: [Double]
    /// Why the map is the identity (empty for a fitted map).
    public var reason: String
    /// How `auto` chose this map (empty otherwise): the families compared and their cross-validated log-loss.
    public var choice: String = ""
    /// Applied to the log-odds before the map (`--calibration-shift quantile`, `Calibration.QuantileShift`); nil = none.
    public var shift: Calibration.QuantileShift? = nil

    public init(method: CalibrationMethod, samples: Int, slope: Double = 1, intercept: Double = 0, knotX: [Double] = [],
                knotY: [Double] = [], reason: String = "") {
        self.method = method; self.samples = samples; self.slope = slope; self.intercept = intercept
        self.knotX = knotX; self.knotY = knotY; self.reason = reason
    }

    /// The identity, with the reason no map was fitted.
    public static func none(_ reason: String) -> CalibrationMap { CalibrationMap(method: .none, samples: 0, reason: reason) }

    /// Calibrated confidence of raw confidence `s` (clamped to [0, 1] first). The logistic maps read `logOdds` (the
    /// share's log-odds from its posterior row, see `Scores.argmaxShare`) when given, else the logit of `s` (clamped
    /// to [ε, 1 − ε]). O(1) for the logistic maps, O(log knots) for the piecewise-linear ones.
    /// With a `shift`, the log-odds are shifted first and the piecewise-linear maps read the share σ(shifted z).
    public func callAsFunction(_ s: Float, logOdds: Float? = nil) -> Float {
        var x = min(max(Double(s.isNaN ? 0 : s), 0), 1)
        var z = logOdds.map { Calibration.clampLogOdds(Double($0)) } ?? Calibration.logit(x)
        if let shift, method != .none, method != .auto { z = shift(z); x = Calibration.sigmoid(z) }
        switch method {
        case .none, .auto: return Float(x)
        case .platt, .temperature:
            return Float(Calibration.sigmoid(slope * z + intercept))
        case .histogram, .isotonic: return Float(Calibration.interpolate(x, knotX, knotY))
        }
    }

    /// The seed floor of this map's level (`Calibration.samplingError` at the pilot's accuracy and the held-out seeds the
    /// map was fitted on): nil for the identity or without a pilot estimate. What HDL logs and the manifest keeps.
    public func samplingError(pilot: AccuracyEstimate?) -> Double? {
        guard method != .none, let pilot else { return nil }
        return Calibration.samplingError(accuracy: pilot.accuracy, samples: samples)
    }

    /// One line for logs and manifests: `platt on 100 held-out seeds (slope 1.84, intercept 0.52)` or `none: why`.
    public var description: String {
        let why = choice.isEmpty ? "" : "; auto: \(choice)"
        let moved = shift.map { "; log-odds first quantile-matched to the pilot's fold posteriors (\($0.pilot.count) values, \($0.final.count) final rows)" } ?? ""
        switch method {
        case .none, .auto: return "none (\(reason))"
        case .platt: return "platt on \(samples) held-out seeds (slope \(fmt(slope)), intercept \(fmt(intercept))\(why)\(moved))"
        case .temperature: return "temperature on \(samples) held-out seeds (slope \(fmt(slope)) = 1/T\(why)\(moved))"
        case .histogram, .isotonic: return "\(method.rawValue) on \(samples) held-out seeds (\(knotX.count) knots\(moved))"
        }
    }

    /// The fitted parameters as text (manifest): `slope=…,intercept=…` or `x:y;x:y;…`; empty for the identity.
    public var parameters: String {
        switch method {
        case .none, .auto: return ""
        case .platt, .temperature: return "slope=\(fmt(slope)),intercept=\(fmt(intercept))" + shiftText
        case .histogram, .isotonic: return zip(knotX, knotY).map { "\(fmt($0)):\(fmt($1))" }.joined(separator: ";") + shiftText
        }
    }

    /// `,shift=quantile:<pilot values>/<final rows>` with a shift, else empty.
    private var shiftText: String { shift.map { ",shift=quantile:\($0.pilot.count)/\($0.final.count)" } ?? "" }

    private func fmt(_ v: Double) -> String { String(format: "%.4f", v) }
}

/// Fitting the calibration maps. Pure functions of the samples: the same samples give the same bits on every process
/// (the cluster fits on allgathered pilot outcomes), and ties are broken by sample position.
public enum Calibration {
    /// Fewest usable held-out seeds a map is fitted on; below it the raw confidence is kept (`none`).
    public static let minSamples = 10
    /// Raw confidences are clamped to [ε, 1 − ε] before the logit.
    public static let logitEpsilon = 1e-4
    /// Smallest slope of the logistic maps (keeps them increasing when the held-out scores say nothing).
    public static let minSlope = 0.05
    /// Ridge of the logistic fits towards the identity (slope 1, intercept 0), in units of samples: a weak prior that
    /// keeps a fit on 20 held-out seeds from extreme slopes.
    public static let ridge = 1.0
    /// Pseudo-counts that shrink a bin's (block's) accuracy towards the overall held-out accuracy.
    public static let shrinkCount = 2.0
    /// Held-out seeds per bin of `histogram` (between 2 and 10 bins).
    public static let samplesPerBin = 20

    /// Largest |log-odds| a raw confidence carries (a share within e⁻⁴⁰ of 1 is as sure as it gets).
    public static let logOddsLimit = 40.0

    static func clampLogOdds(_ z: Double) -> Double { z.isNaN ? -logOddsLimit : min(logOddsLimit, max(-logOddsLimit, z)) }

    /// log(top) − log(rest), clamped to ±`logOddsLimit` (the limit when rest is 0): the log-odds of a posterior row's
    /// top entry against the sum of the others, read off the entries so that a share rounding to 1 keeps its margin.
    static func logOdds(top: Double, rest: Double) -> Double { rest > 0 ? clampLogOdds(log(top) - log(rest)) : logOddsLimit }

    /// log(s / (1 − s)) with s clamped to [ε, 1 − ε] (a share without its posterior row).
    static func logit(_ s: Double) -> Double {
        let p = min(max(s, logitEpsilon), 1 - logitEpsilon)
        return log(p / (1 - p))
    }

    /// √(2/π) · √(p(1 − p)/m): the expected |p̂ − p| of the share p̂ of m held-out seeds that are right when each is
    /// right with probability p (normal approximation of the binomial). Any accuracy read off m held-out seeds — the
    /// pilot estimate, the level a calibration map fitted on them gives the mean confidence — carries this error from
    /// the seeds' sampling alone, and a map's expected calibration error is at least its level error (|mean
    /// confidence − accuracy| ≤ ECE). So it is the floor seed-only calibration can reach on average: 5.8 points for
    /// m = 40 at p = 0.7, 3.7 for 100, 1.8 for 400. NaN for m < 1 or p outside [0, 1]. O(1).
    public static func samplingError(accuracy p: Double, samples m: Int) -> Double {
        guard m >= 1, p >= 0, p <= 1 else { return .nan }
        return (2 / Double.pi * p * (1 - p) / Double(m)).squareRoot()
    }

    /// Every how many rows (by global id) the log-odds distributions of `QuantileShift` are sampled: 1 up to 2¹⁸
    /// rows, so at most 2¹⁸ values per distribution (per fold for the pilot's). Pure.
    public static func poolStride(_ n: Int) -> Int { max(1, (n + (1 << 18) - 1) >> 18) }

    /// The calibration map is fitted on the pilot's fold posteriors (80 % of the seeds as anchors, one solve) but
    /// applied to the final posterior (every seed, the layers, the refinement, perhaps a second labeling after the
    /// metric pass), whose log-odds are spread differently — on the geometry evidence far sharper. This map sends a
    /// final log-odds z to the fold posteriors' log-odds of the same quantile: u = mid-rank of z among the final
    /// non-seed rows' log-odds (ties share the middle of their run), then the pilot's value at u (linear between
    /// order statistics), plus `tieBreak` · z / `logOddsLimit` so that it is strictly increasing where the pilot's
    /// values tie (saturated posteriors): the rows' order by confidence stays the order of their raw log-odds.
    /// No seed's outcome enters; both distributions are allgathered values every process holds, so the map is the
    /// same on every rank. Memory: the two sorted samples (≤ 2¹⁸ and ≤ 5 · 2¹⁸ Floats); O(log) per call.
    public struct QuantileShift: Sendable, Equatable {
        /// Added tie-breaking slope (logit units over the whole ±`logOddsLimit` range: at most ±0.01).
        public static let tieBreak = 0.01
        /// Sorted log-odds of the final non-seed rows and of the pilot's fold posteriors.
        public let final: [Float], pilot: [Float]
        public init(final: [Float], pilot: [Float]) { self.final = final.sorted(); self.pilot = pilot.sorted() }
        public func callAsFunction(_ z: Double) -> Double {
            guard !final.isEmpty, !pilot.isEmpty, !z.isNaN else { return z }
            func bound(_ upper: Bool) -> Int {
                var lo = 0, hi = final.count
                while lo < hi {
                    let mid = (lo + hi) / 2, v = Double(final[mid])
                    if upper ? v <= z : v < z { lo = mid + 1 } else { hi = mid }
                }
                return lo
            }
            // Mid-rank in [0, 1]: below every value 0, above every value 1, a run of ties its middle.
            let u = (Double(bound(false)) + Double(bound(true))) / 2 / Double(final.count)
            let x = u * Double(pilot.count - 1)
            let j = min(Int(x), pilot.count - 1), f = x - Double(j)
            let q = j + 1 < pilot.count ? Double(pilot[j]) * (1 - f) + Double(pilot[j + 1]) * f : Double(pilot[j])
            return q + QuantileShift.tieBreak * clampLogOdds(z) / logOddsLimit
        }
    }

    static func sigmoid(_ z: Double) -> Double { z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)) }

    /// Fits `method` on `samples`; the identity (with its reason) when the method is `none` or there are fewer than
    /// `minSamples` samples. O(m log m) for m samples.
    public static func fit(_ method: CalibrationMethod, _ samples: CalibrationSamples) -> CalibrationMap {
        if method == .none { return .none("off (--calibration none)") }
        if method == .auto { return fitAuto(samples) }   // HDL resolves `auto` to `none` without the refinement (see the case)
        let m = samples.count
        if m < minSamples {
            return .none("the pilot could score only \(m) held-out seeds (\(samples.excluded) left out: their class kept no anchor in "
                + "their fold); at least \(minSamples) are needed, i.e. 2 or more seeds per class")
        }
        let s = samples.scores.map { min(max(Double($0.isNaN ? 0 : $0), 0), 1) }
        let z = samples.logOdds.map { clampLogOdds(Double($0)) }
        let y = samples.correct.map { $0 ? 1.0 : 0.0 }
        switch method {
        case .none, .auto: fatalError("handled above")
        case .platt:
            let (a, b) = logistic(z: z, y: y, fitIntercept: true)
            return CalibrationMap(method: method, samples: m, slope: a, intercept: b)
        case .temperature:
            // u = a · (z + L) − L = a · z + (a − 1) · L: a slope on the shifted log-odds, the intercept tied to it.
            let l = log(Double(samples.classes - 1))
            let (a, _) = logistic(z: z.map { $0 + l }, y: y, fitIntercept: false, offset: -l)
            return CalibrationMap(method: method, samples: m, slope: a, intercept: (a - 1) * l)
        case .histogram, .isotonic:
            let (kx, ky) = method == .histogram ? histogramKnots(s, y) : isotonicKnots(s, y)
            return CalibrationMap(method: method, samples: m, knotX: kx, knotY: ky)
        }
    }

    /// Folds of the comparison `fitAuto` makes (samples by position modulo the count).
    public static let autoFolds = 5
    /// How much lower (nats per held-out seed) Platt's cross-validated log-loss must be for `auto` to take it over the
    /// one-parameter temperature.
    public static let autoMargin = 1e-3

    /// `auto`: the logistic family (`temperature` or `platt`) with the lower cross-validated log-loss on the samples
    /// (`autoFolds` folds by position; each fold's map fitted on the others), refitted on all samples. Temperature
    /// with fewer than 2 · `minSamples` samples or unless Platt is better by `autoMargin` (it has one parameter more).
    /// O(folds · fit).
    public static func fitAuto(_ samples: CalibrationSamples) -> CalibrationMap {
        let m = samples.count
        guard m >= 2 * minSamples else {
            var t = fit(.temperature, samples)
            if t.method == .temperature { t.choice = "temperature (fewer than \(2 * minSamples) held-out seeds to compare maps on)" }
            return t
        }
        let lt = crossValidatedLogLoss(.temperature, samples), lp = crossValidatedLogLoss(.platt, samples)
        var map = fit(lp < lt - autoMargin ? .platt : .temperature, samples)
        map.choice = String(format: "%d-fold log-loss platt %.4f, temperature %.4f", autoFolds, lp, lt)
        return map
    }

    /// Mean held-out negative log-likelihood of `method` over `autoFolds` folds of the samples (probabilities clamped
    /// to [10⁻⁶, 1 − 10⁻⁶]).
    static func crossValidatedLogLoss(_ method: CalibrationMethod, _ samples: CalibrationSamples) -> Double {
        let m = samples.count
        var total = 0.0
        for f in 0 ..< autoFolds {
            let train = (0 ..< m).filter { $0 % autoFolds != f }
            let sub = CalibrationSamples(scores: train.map { samples.scores[$0] }, correct: train.map { samples.correct[$0] },
                                         classes: samples.classes, logOdds: train.map { samples.logOdds[$0] })
            let map = fit(method, sub)
            for i in stride(from: f, to: m, by: autoFolds) {
                let p = min(max(Double(map(samples.scores[i], logOdds: samples.logOdds[i])), 1e-6), 1 - 1e-6)
                total -= samples.correct[i] ? log(p) : log(1 - p)
            }
        }
        return total / Double(max(m, 1))
    }

    /// Logistic regression of `y` (0/1) on `z` with Platt's smoothed targets ((N₊ + 1)/(N₊ + 2) and 1/(N₋ + 2)) and a
    /// ridge towards (1, 0): Newton steps with step halving from the identity, at most 100. Returns (slope ≥ `minSlope`,
    /// intercept; 0 unless `fitIntercept`). `offset` is added to every u = a·z + b (fixed, not fitted). O(100 · m).
    static func logistic(z: [Double], y: [Double], fitIntercept: Bool, offset: Double = 0) -> (slope: Double, intercept: Double) {
        let pos = y.reduce(0, +), neg = Double(y.count) - pos
        let t = y.map { $0 > 0.5 ? (pos + 1) / (pos + 2) : 1 / (neg + 2) }
        func loss(_ a: Double, _ b: Double) -> Double {
            var l = 0.5 * ridge * ((a - 1) * (a - 1) + b * b)
            for (zi, ti) in zip(z, t) {
                let u = a * zi + b + offset
                // −[t log σ(u) + (1 − t) log(1 − σ(u))] = log(1 + e^u) − t·u, computed stably.
                l += (u > 0 ? u + log1p(exp(-u)) : log1p(exp(u))) - ti * u
            }
            return l
        }
        var a = 1.0, b = 0.0, cur = loss(a, b)
        for _ in 0 ..< 100 {
            var ga = ridge * (a - 1), gb = ridge * b, haa = ridge, hab = 0.0, hbb = ridge
            for (zi, ti) in zip(z, t) {
                let p = sigmoid(a * zi + b + offset), w = p * (1 - p)
                ga += (p - ti) * zi; gb += p - ti
                haa += w * zi * zi; hab += w * zi; hbb += w
            }
            var da: Double, db: Double
            if fitIntercept {
                let det = haa * hbb - hab * hab
                guard det > 0 else { break }
                da = (hbb * ga - hab * gb) / det; db = (haa * gb - hab * ga) / det
            } else { da = ga / haa; db = 0 }
            var step = 1.0, improved = false
            while step > 1e-6 {
                let na = max(minSlope, a - step * da), nb = b - step * db
                let l = loss(na, nb)
                if l < cur { a = na; b = nb; improved = cur - l > 1e-12 * max(1, abs(cur)); cur = l; break }
                step /= 2
            }
            if !improved { break }
        }
        return (a, b)
    }

    /// Samples in ascending (score, position) order: the canonical tie order of the binned maps.
    static func sortedPairs(_ s: [Double], _ y: [Double]) -> [(s: Double, y: Double)] {
        (0 ..< s.count).sorted { (s[$0], $0) < (s[$1], $1) }.map { (s[$0], y[$0]) }
    }

    /// Groups (mean score, correct count, count) in score order → knots: pooled until their accuracies are
    /// increasing (pool adjacent violators, weighted by counts; equal neighbours pooled too), then each block's accuracy shrunk towards the
    /// overall accuracy by `shrinkCount` pseudo-counts and pooled once more (shrinking blocks of unequal size can break
    /// the order). O(groups).
    static func monotoneKnots(_ groups: [(s: Double, y: Double, w: Double)], overall: Double) -> ([Double], [Double]) {
        // Pool adjacent violators over (score, mean, weight).
        func pav(_ g: [(s: Double, y: Double, w: Double)]) -> [(s: Double, y: Double, w: Double)] {
            var blocks: [(s: Double, y: Double, w: Double)] = []
            for var cur in g {
                while let last = blocks.last, last.y >= cur.y {
                    blocks.removeLast()
                    let w = last.w + cur.w
                    cur = ((last.s * last.w + cur.s * cur.w) / w, (last.y * last.w + cur.y * cur.w) / w, w)
                }
                blocks.append(cur)
            }
            return blocks
        }
        let raw = pav(groups.map { ($0.s, $0.y / $0.w, $0.w) })
        let shrunk = pav(raw.map { ($0.s, ($0.y * $0.w + shrinkCount * overall) / ($0.w + shrinkCount), $0.w + shrinkCount) })
        return (shrunk.map(\.s), shrunk.map(\.y))
    }

    /// `histogram`: ⌊m / samplesPerBin⌋ equal-count bins (2…10) in canonical order, bin b = ranks [b·m/B, (b+1)·m/B).
    static func histogramKnots(_ s: [Double], _ y: [Double]) -> ([Double], [Double]) {
        let p = sortedPairs(s, y), m = p.count
        let bins = min(10, max(2, m / samplesPerBin))
        var groups: [(s: Double, y: Double, w: Double)] = []
        for b in 0 ..< bins {
            let lo = b * m / bins, hi = (b + 1) * m / bins
            if hi <= lo { continue }
            let part = p[lo ..< hi]
            groups.append((part.reduce(0) { $0 + $1.s } / Double(part.count), part.reduce(0) { $0 + $1.y }, Double(part.count)))
        }
        return monotoneKnots(groups, overall: y.reduce(0, +) / Double(m))
    }

    /// `isotonic`: pool adjacent violators over the samples in canonical order (equal scores pooled first).
    static func isotonicKnots(_ s: [Double], _ y: [Double]) -> ([Double], [Double]) {
        let p = sortedPairs(s, y)
        var groups: [(s: Double, y: Double, w: Double)] = []
        for q in p {
            if let last = groups.last, last.s == q.s { groups[groups.count - 1] = (q.s, last.y + q.y, last.w + 1) }
            else { groups.append((q.s, q.y, 1)) }
        }
        return monotoneKnots(groups, overall: y.reduce(0, +) / Double(p.count))
    }

    /// Piecewise-linear through the knots (x ascending), constant outside them.
    static func interpolate(_ x: Double, _ kx: [Double], _ ky: [Double]) -> Double {
        guard let first = kx.first, let last = kx.last else { return x }
        if x <= first { return ky[0] }
        if x >= last { return ky[ky.count - 1] }
        var lo = 0, hi = kx.count - 1
        while hi - lo > 1 { let mid = (lo + hi) / 2; if kx[mid] <= x { lo = mid } else { hi = mid } }
        let w = (x - kx[lo]) / (kx[hi] - kx[lo])
        return ky[lo] + w * (ky[hi] - ky[lo])
    }

    // MARK: abstention and selective accuracy

    /// What abstaining below a threshold keeps, over the non-seed rows.
    public struct Kept: Sendable, Equatable {
        /// Non-seed rows, and those that keep a label.
        public var rows: Int
        public var kept: Int
        /// kept / rows (1 when there are no non-seed rows).
        public var coverage: Double
        /// Mean (calibrated) confidence of the kept rows: the accuracy they are expected to have (NaN when none is kept).
        public var expectedAccuracy: Double
    }

    /// `result` with every non-seed row whose confidence is below `threshold` set to label -1, source `abstained`
    /// (its confidence and layer kept, so the output shows why); seeds are never abstained. Rows already unlabeled
    /// stay `unlabeled`. O(n).
    public static func abstaining(_ result: LabelingResult, below threshold: Double) -> LabelingResult {
        var r = result
        for i in 0 ..< r.labels.count where r.source[i] != .seed && r.labels[i] >= 0 && Double(r.confidence[i]) < threshold {
            r.labels[i] = -1; r.source[i] = .abstained
        }
        return r
    }

    /// Coverage and expected accuracy of the labeled non-seed rows of `result`. O(n).
    public static func kept(_ result: LabelingResult) -> Kept {
        var rows = 0, kept = 0, sum = 0.0
        for i in 0 ..< result.labels.count where result.source[i] != .seed {
            rows += 1
            if result.labels[i] >= 0 { kept += 1; sum += Double(result.confidence[i]) }
        }
        return Kept(rows: rows, kept: kept, coverage: rows > 0 ? Double(kept) / Double(rows) : 1,
                    expectedAccuracy: kept > 0 ? sum / Double(kept) : .nan)
    }
}

/// The two accuracy estimates HDL prints: the pilot's (before labeling) and the estimated accuracy after labeling.
public enum AccuracyEstimates {
    /// Fewest scored held-out seeds for a pilot estimate (below it the estimate says it cannot be made).
    public static let minSamples = Calibration.minSamples
    /// Weight of the mean calibrated confidence in the estimate after labeling, in held-out-seed units: the estimate is
    /// (m · pilot + w · mean confidence) / (m + w) for m scored held-out seeds. 1000: chosen on the quality grid's seeds
    /// 0–2 among 20…1280 and the mean confidence alone (the error is flat from 640 up; docs/method.md, "Estimates of
    /// accuracy"). Since the quantile shift puts the final confidences on the pilot's scale, their mean carries the
    /// pilot's level plus what the layers added, so it dominates below ~1000 held-out seeds.
    public static let confidenceWeight = 1000.0

    /// The pilot estimate when it rests on at least `minSamples` held-out seeds, else nil.
    public static func pilot(_ e: AccuracyEstimate?) -> AccuracyEstimate? {
        guard let e, e.samples >= minSamples else { return nil }
        return e
    }

    /// Mean confidence of the non-seed rows that have a label (propagated or fallback), and the estimate after
    /// labeling: the pilot shrunk towards that mean by `confidenceWeight`. Without a pilot estimate there is none (nil):
    /// the confidences are then uncalibrated top shares, whose mean missed the accuracy by 6–17 points on the
    /// development grid at 1–2 seeds per class. O(n).
    public static func combine(pilot: AccuracyEstimate?, confidence: [Float], source: [LabelSource]) -> (meanConfidence: Double, estimated: Double?) {
        var sum = 0.0, m = 0
        for i in 0 ..< confidence.count where source[i] == .propagated || source[i] == .fallback { sum += Double(confidence[i]); m += 1 }
        guard m > 0 else { return (.nan, pilot?.accuracy) }
        let mean = sum / Double(m)
        guard let p = pilot else { return (mean, nil) }
        let w = confidenceWeight, s = Double(p.samples)
        return (mean, (s * p.accuracy + w * mean) / (s + w))
    }
}
