import Foundation
import XCTest
@testable import HDLabelCore
import HDLabelTestSupport

final class CalibrationTests: XCTestCase {
    /// Synthetic held-out seeds whose true probability of being right is σ(2·logit(s) − 0.5): overconfident at the
    /// top is impossible to miss — a fitted logistic map must recover slope ≈ 2 and intercept ≈ −0.5.
    func synthetic(m: Int, seed: UInt64) -> CalibrationSamples {
        var rng = TestRNG(seed)
        var s: [Float] = [], ok: [Bool] = []
        for _ in 0 ..< m {
            let x = 0.05 + 0.9 * Double(rng.uniform())
            let p = Calibration.sigmoid(2 * Calibration.logit(x) - 0.5)
            s.append(Float(x)); ok.append(Double(rng.uniform()) < p)
        }
        return CalibrationSamples(scores: s, correct: ok)
    }

    func testPlattRecoversTheGeneratingMap() {
        let map = Calibration.fit(.platt, synthetic(m: 4000, seed: 1))
        XCTAssertEqual(map.method, .platt)
        XCTAssertEqual(map.slope, 2, accuracy: 0.2)
        XCTAssertEqual(map.intercept, -0.5, accuracy: 0.15)
        // Calibrated value at s = 0.8 is the generating probability.
        XCTAssertEqual(Double(map(0.8)), Calibration.sigmoid(2 * Calibration.logit(0.8) - 0.5), accuracy: 0.03)
    }

    /// `auto` picks the family by cross-validated log-loss on the samples: data from a temperature model keep the
    /// temperature; data whose intercept is far from the temperature's tied one (σ(0.3·z + 1.5); the tied one is −0.7·log 9) get Platt; fewer
    /// than 20 samples keep the temperature and say why.
    func testAutoChoosesTheFamilyByCrossValidation() {
        var rng = TestRNG(9)
        let c = 10, l = log(9.0)
        var z: [Float] = [], okT: [Bool] = [], okP: [Bool] = []
        for _ in 0 ..< 600 {
            let zi = -4 + 12 * Double(rng.uniform())
            z.append(Float(zi))
            okT.append(Double(rng.uniform()) < Calibration.sigmoid(0.8 * (zi + l) - l))
            okP.append(Double(rng.uniform()) < Calibration.sigmoid(0.3 * zi + 1.5))
        }
        let shares = z.map { Float(Calibration.sigmoid(Double($0))) }
        let t = Calibration.fitAuto(CalibrationSamples(scores: shares, correct: okT, classes: c, logOdds: z))
        XCTAssertEqual(t.method, .temperature, t.description)
        let p = Calibration.fitAuto(CalibrationSamples(scores: shares, correct: okP, classes: c, logOdds: z))
        XCTAssertEqual(p.method, .platt, p.description)
        XCTAssertEqual(p.slope, 0.3, accuracy: 0.1); XCTAssertEqual(p.intercept, 1.5, accuracy: 0.6)
        XCTAssertTrue(p.description.contains("auto: 5-fold log-loss platt"), p.description)
        let few = Calibration.fitAuto(CalibrationSamples(scores: Array(shares.prefix(15)), correct: Array(okP.prefix(15)), classes: c,
                                                         logOdds: Array(z.prefix(15))))
        XCTAssertEqual(few.method, .temperature); XCTAssertTrue(few.choice.contains("fewer than 20"), few.choice)
        XCTAssertEqual(Calibration.fitAuto(CalibrationSamples(scores: shares, correct: okP, classes: c, logOdds: z)), p, "deterministic")
    }

    func testTemperatureFitsSlopeOnly() {
        // Truth σ(3·logit(s)): temperature finds slope ≈ 3 and never an intercept.
        var rng = TestRNG(2)
        var s: [Float] = [], ok: [Bool] = []
        for _ in 0 ..< 4000 {
            let x = 0.05 + 0.9 * Double(rng.uniform())
            s.append(Float(x)); ok.append(Double(rng.uniform()) < Calibration.sigmoid(3 * Calibration.logit(x)))
        }
        let map = Calibration.fit(.temperature, CalibrationSamples(scores: s, correct: ok))
        XCTAssertEqual(map.slope, 3, accuracy: 0.3)
        XCTAssertEqual(map.intercept, 0)
    }

    /// Multi-class temperature: shares raised to a power a and renormalised, the other C − 1 classes equal. Data drawn
    /// from that model with a = 2 and C = 10 give back a ≈ 2 and the tied intercept (a − 1)·log 9; a diffuse top share
    /// of 0.3 maps above 1/2, which σ(a·logit s) could never do.
    func testMulticlassTemperatureRecoversThePower() {
        let c = 10, l = log(9.0)
        var rng = TestRNG(6)
        var s: [Float] = [], ok: [Bool] = []
        for _ in 0 ..< 4000 {
            let x = 0.12 + 0.83 * Double(rng.uniform())
            let p = Calibration.sigmoid(2 * (Calibration.logit(x) + l) - l)
            s.append(Float(x)); ok.append(Double(rng.uniform()) < p)
        }
        let map = Calibration.fit(.temperature, CalibrationSamples(scores: s, correct: ok, classes: c))
        XCTAssertEqual(map.slope, 2, accuracy: 0.25)
        XCTAssertEqual(map.intercept, (map.slope - 1) * l, accuracy: 1e-12)
        XCTAssertGreaterThan(map(0.3), 0.5)
        // a = 1 is the identity whatever C: a fit on data that are already calibrated stays near it.
        var ok1: [Bool] = []
        for x in s { ok1.append(rng.uniform() < x) }
        let id = Calibration.fit(.temperature, CalibrationSamples(scores: s, correct: ok1, classes: c))
        XCTAssertEqual(id.slope, 1, accuracy: 0.15)
        XCTAssertEqual(Double(id(0.6)), 0.6, accuracy: 0.04)
    }

    /// The pilot's interval is the 95 % Wilson score interval: 8 of 10 → [0.490, 0.943]; no samples → [0, 1].
    func testWilsonInterval() {
        let e = AccuracyEstimate(samples: 10, correct: 8)
        XCTAssertEqual(e.accuracy, 0.8)
        XCTAssertEqual(e.interval.lower, 0.4902, accuracy: 5e-4)
        XCTAssertEqual(e.interval.upper, 0.9433, accuracy: 5e-4)
        XCTAssertEqual(AccuracyEstimate(samples: 0, correct: 0).interval.lower, 0)
        XCTAssertEqual(AccuracyEstimate(samples: 0, correct: 0).interval.upper, 1)
        XCTAssertEqual(AccuracyEstimate(samples: 50, correct: 50).interval.upper, 1)
        XCTAssertNil(AccuracyEstimates.pilot(AccuracyEstimate(samples: AccuracyEstimates.minSamples - 1, correct: 5)))
        XCTAssertNotNil(AccuracyEstimates.pilot(AccuracyEstimate(samples: AccuracyEstimates.minSamples, correct: 5)))
    }

    /// The seed floor is the mean |p̂ − p| of m Bernoulli(p) outcomes: the formula against a simulation, its 1/√m
    /// scaling, and NaN where it is undefined.
    func testSamplingErrorIsTheBinomialMeanAbsoluteError() {
        var rng = SplitMix64(seed: 7)
        for (p, m) in [(0.7, 40), (0.75, 100), (0.9, 400)] {
            var total = 0.0
            let trials = 4000
            for _ in 0 ..< trials {
                var right = 0
                for _ in 0 ..< m where Double(rng.next() >> 11) * 0x1p-53 < p { right += 1 }
                total += abs(Double(right) / Double(m) - p)
            }
            let f = Calibration.samplingError(accuracy: p, samples: m)
            // The binomial's mean absolute deviation is within 10 % of the normal one at these m (lattice effects).
            XCTAssertEqual(total / Double(trials), f, accuracy: 0.1 * f, "p \(p) m \(m)")
        }
        XCTAssertEqual(Calibration.samplingError(accuracy: 0.7, samples: 40), 0.0578, accuracy: 1e-4)
        XCTAssertEqual(Calibration.samplingError(accuracy: 0.7, samples: 160), Calibration.samplingError(accuracy: 0.7, samples: 40) / 2, accuracy: 1e-12)
        XCTAssertTrue(Calibration.samplingError(accuracy: 0.7, samples: 0).isNaN)
        XCTAssertTrue(Calibration.samplingError(accuracy: 1.5, samples: 10).isNaN)
        XCTAssertEqual(Calibration.samplingError(accuracy: 1, samples: 10), 0)
        // A map's floor: at the pilot's accuracy and the map's own sample count; none for the identity or without a pilot.
        let pilot = AccuracyEstimate(samples: 100, correct: 74)
        let map = CalibrationMap(method: .temperature, samples: 40, slope: 1.5)
        XCTAssertEqual(map.samplingError(pilot: pilot), Calibration.samplingError(accuracy: 0.74, samples: 40))
        XCTAssertNil(map.samplingError(pilot: nil))
        XCTAssertNil(CalibrationMap.none("off").samplingError(pilot: pilot))
    }

    /// After labeling: the pilot shrunk towards the non-seed rows' mean confidence by `confidenceWeight` held-out-seed
    /// units; seeds and unlabeled rows do not count; no pilot → no estimate.
    func testEstimateAfterLabelingCombinesPilotAndConfidence() {
        let conf: [Float] = [1, 0.5, 0.7, 0.9, 0.2]
        let src: [LabelSource] = [.seed, .propagated, .fallback, .propagated, .unlabeled]
        let pilot = AccuracyEstimate(samples: 20, correct: 16)
        let r = AccuracyEstimates.combine(pilot: pilot, confidence: conf, source: src)
        XCTAssertEqual(r.meanConfidence, (0.5 + 0.7 + 0.9) / 3, accuracy: 1e-6)
        let w = AccuracyEstimates.confidenceWeight
        XCTAssertEqual(r.estimated!, (20 * 0.8 + w * r.meanConfidence) / (20 + w), accuracy: 1e-12)
        XCTAssertNil(AccuracyEstimates.combine(pilot: nil, confidence: conf, source: src).estimated)
    }

    func testEveryMapIsMonotoneAndInRange() {
        let samples = synthetic(m: 200, seed: 3)
        for method in CalibrationMethod.allCases {
            let map = Calibration.fit(method, samples)
            var last: Float = -1
            for i in 0 ... 1000 {
                let v = map(Float(i) / 1000)
                XCTAssertGreaterThanOrEqual(v, last, "\(method) decreases at \(Double(i) / 1000)")
                XCTAssertTrue((0 ... 1).contains(v), "\(method) leaves [0, 1]")
                last = v
            }
        }
        // Scores that say nothing (or the opposite): the logistic slope stays positive, so the map still increases.
        let inverted = CalibrationSamples(scores: samples.scores, correct: samples.scores.map { $0 < 0.5 })
        XCTAssertGreaterThanOrEqual(Calibration.fit(.platt, inverted).slope, Calibration.minSlope)
    }

    func testIsotonicAndHistogramFollowTheData() {
        // Accuracy is a step: right above 0.5, wrong below. The binned maps rise across the step.
        let s = (0 ..< 400).map { Float($0) / 400 }
        let samples = CalibrationSamples(scores: s, correct: s.map { $0 >= 0.5 })
        for method in [CalibrationMethod.isotonic, .histogram] {
            let map = Calibration.fit(method, samples)
            XCTAssertLessThan(map(0.1), 0.1, "\(method)")
            XCTAssertGreaterThan(map(0.9), 0.9, "\(method)")
        }
    }

    func testFitIsDeterministicAndIgnoresNothingButOrderTies() {
        let a = Calibration.fit(.isotonic, synthetic(m: 300, seed: 4)), b = Calibration.fit(.isotonic, synthetic(m: 300, seed: 4))
        XCTAssertEqual(a, b)
        XCTAssertEqual(Calibration.fit(.platt, synthetic(m: 300, seed: 4)), Calibration.fit(.platt, synthetic(m: 300, seed: 4)))
    }

    func testNoneWhenTooFewSamplesOrOff() {
        let few = CalibrationSamples(scores: [0.5, 0.6, 0.7], correct: [true, false, true], excluded: 7)
        let map = Calibration.fit(.temperature, few)
        XCTAssertEqual(map.method, .none)
        XCTAssertTrue(map.reason.contains("3 held-out seeds"), map.reason)
        XCTAssertEqual(map(0.37), 0.37)
        XCTAssertEqual(Calibration.fit(.none, synthetic(m: 100, seed: 5)).method, .none)
    }

    /// One seed per class: every fold hides a class's only seed, so the pilot has nothing to fit on and HDL keeps the
    /// raw confidence, saying why.
    func testOneSeedPerClassKeepsRawConfidence() throws {
        let (x, y) = clusteredData(c: 4, perClass: 60, d: 8, spread: 0.7, seed: 21)
        let seeds = seedsFrom(y, per: 1, classes: 4)
        let r = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: LabelingConfig(), tile: 32).result
        XCTAssertEqual(r.calibration.method, .none)
        XCTAssertFalse(r.calibration.reason.isEmpty)
        XCTAssertEqual(r.confidence, r.rawConfidence)
        // Nor can accuracy be estimated: no pilot estimate, no estimate after labeling.
        XCTAssertNil(r.pilotEstimate)
        XCTAssertNil(r.estimatedAccuracy)
    }

    /// With several seeds per class every held-out seed keeps its class anchored: the pilot scores them all, and the
    /// estimate after labeling exists. `auto` fits a logistic map when HDL refines (balanced seeds) and, without the
    /// refinement (a long tail), to the final posterior's confidences; it keeps the raw acceptance shares, saying why.
    func testPilotEstimateAndAutoCalibration() throws {
        let (x, y) = clusteredData(c: 4, perClass: 120, d: 12, spread: 1.4, seed: 23)
        let seeds = seedsFrom(y, per: 8, classes: 4)
        let r = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: LabelingConfig(), tile: 32).result
        XCTAssertEqual(r.pilotEstimate?.samples, 32)
        XCTAssertNotNil(r.estimatedAccuracy)
        XCTAssertTrue([.temperature, .platt].contains(r.calibration.method), "\(r.calibration.method)")
        XCTAssertTrue(r.calibration.choice.contains("5-fold log-loss"), r.calibration.choice)
        // A long tail: 8, 4, 2, 2 seeds (unbalanced, so no refinement).
        var tail = seeds
        var kept = [Int](repeating: 0, count: 4)
        for i in 0 ..< tail.count where tail[i] >= 0 {
            let c = Int(tail[i]); kept[c] += 1
            if kept[c] > [8, 4, 2, 2][c] { tail[i] = -1 }
        }
        // Its confidences come from the final posterior (`--confidence final`, default), which `auto` calibrates from
        // the pilot's refined samples; with `--confidence acceptance` it keeps the raw acceptance shares, saying why.
        let t = try Labeling.label(embeddings: x, seeds: tail, numClasses: 4, config: LabelingConfig(), tile: 32).result
        XCTAssertTrue([.temperature, .platt].contains(t.calibration.method), "\(t.calibration.method)")
        XCTAssertEqual(t.pilotEstimate?.samples, 16)
        var acceptance = LabelingConfig(); acceptance.confidence = .acceptance
        let a = try Labeling.label(embeddings: x, seeds: tail, numClasses: 4, config: acceptance, tile: 32).result
        XCTAssertEqual(a.calibration.method, .none)
        XCTAssertTrue(a.calibration.reason.hasPrefix("auto"), a.calibration.reason)
        XCTAssertEqual(a.labels, t.labels)
    }

    /// Calibration changes confidences, never labels, layers or sources; the calibrated confidence is the map of the raw.
    func testCalibrationLeavesLabelsUnchanged() throws {
        let (x, y) = clusteredData(c: 4, perClass: 120, d: 12, spread: 1.4, seed: 22)
        let seeds = seedsFrom(y, per: 8, classes: 4)
        var off = LabelingConfig(); off.calibration = .none
        let raw = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: off, tile: 64).result
        for method in CalibrationMethod.allCases where method != .none {
            var cfg = LabelingConfig(); cfg.calibration = method
            let r = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: cfg, tile: 64).result
            XCTAssertEqual(r.labels, raw.labels, "\(method)"); XCTAssertEqual(r.layer, raw.layer); XCTAssertEqual(r.source, raw.source)
            XCTAssertEqual(r.rawConfidence, raw.confidence)
            if method == .auto { XCTAssertTrue([.temperature, .platt].contains(r.calibration.method)) }   // balanced seeds: auto refines
            else { XCTAssertEqual(r.calibration.method, method) }
            XCTAssertEqual(r.calibration.samples, 32)
            for i in 0 ..< y.count {
                XCTAssertEqual(r.confidence[i], seeds[i] >= 0 ? 1 : r.calibration(raw.confidence[i], logOdds: r.rawLogOdds[i]), "\(method) row \(i)")
                // The carried log-odds are the raw share's logit wherever the share is not within 10⁻³ of 0 or 1.
                let s = Double(raw.confidence[i])
                if seeds[i] < 0 && s > 1e-3 && s < 1 - 1e-3 { XCTAssertEqual(Double(r.rawLogOdds[i]), log(s / (1 - s)), accuracy: 1e-3) }
            }
        }
    }

    func testMinConfidenceAbstainsBelowTheThresholdOnly() throws {
        let (x, y) = clusteredData(c: 3, perClass: 100, d: 8, spread: 1.6, seed: 23)
        let seeds = seedsFrom(y, per: 6, classes: 3)
        let full = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 3, config: LabelingConfig(), tile: 32).result
        let nonSeed = full.confidence.enumerated().filter { seeds[$0.offset] < 0 }.map(\.element).sorted()
        let c = Double(nonSeed[nonSeed.count / 2])
        var cfg = LabelingConfig(); cfg.minConfidence = c
        let r = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 3, config: cfg, tile: 32).result
        var abstained = 0
        for i in 0 ..< y.count {
            if seeds[i] >= 0 { XCTAssertEqual(r.labels[i], seeds[i]); XCTAssertEqual(r.source[i], .seed); continue }
            if Double(full.confidence[i]) < c {
                XCTAssertEqual(r.labels[i], -1); XCTAssertEqual(r.source[i], .abstained); abstained += 1
            } else {
                XCTAssertEqual(r.labels[i], full.labels[i]); XCTAssertEqual(r.source[i], full.source[i])
            }
            XCTAssertEqual(r.confidence[i], full.confidence[i])
        }
        XCTAssertGreaterThan(abstained, 0)
        let kept = Calibration.kept(r)
        XCTAssertEqual(kept.rows, nonSeed.count); XCTAssertEqual(kept.kept, nonSeed.count - abstained)
        XCTAssertGreaterThanOrEqual(kept.expectedAccuracy, c)
        // Seeds are never abstained, even at threshold 1.
        cfg.minConfidence = 1
        let all = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 3, config: cfg, tile: 32).result
        for i in 0 ..< y.count where seeds[i] >= 0 { XCTAssertEqual(all.labels[i], seeds[i]) }
    }

    func testMinConfidenceValidated() {
        for bad in [-0.1, 1.5, .nan, .infinity] {
            var cfg = LabelingConfig(); cfg.minConfidence = bad
            XCTAssertThrowsError(try cfg.validate(), "\(bad)")
        }
    }

    /// Shares that round to 1 in Float keep their order through the log-odds read off the posterior row, and the
    /// logistic maps are fitted on those log-odds: a temperature fitted on saturated but often wrong held-out seeds
    /// spreads them out instead of leaving one tied value.
    func testSaturatedSharesKeepTheirOrder() throws {
        let rows: [Float] = [1, 1e-12, 2e-12,   // share 1.0 in Float, log-odds log(1/3e-12) ≈ 26.5
                             1, 1e-20, 0,       // share 1.0, log-odds 46 → clamped to the limit 40
                             0.5, 0.25, 0.25,   // log-odds 0
                             0, 0, 0]           // no mass: label -1
        let (lab, share, z) = Scores.argmaxShare(rows, n: 4, c: 3)
        XCTAssertEqual(lab, [0, 0, 0, -1]); XCTAssertEqual(share[0], 1); XCTAssertEqual(share[1], 1)
        XCTAssertEqual(Double(z[0]), log(1 / 3e-12), accuracy: 1e-3)
        XCTAssertEqual(Double(z[1]), Calibration.logOddsLimit); XCTAssertEqual(z[2], 0); XCTAssertEqual(Double(z[3]), -Calibration.logOddsLimit)
        // 40 held-out seeds, every share 1.0 in Float; log-odds 10…29.5; the lower half are wrong a third of the time.
        let zs = (0 ..< 40).map { Float(10 + $0) * 0.5 + 5 }
        let ok = (0 ..< 40).map { $0 >= 20 || $0 % 3 != 0 }
        let samples = CalibrationSamples(scores: [Float](repeating: 1, count: 40), correct: ok, classes: 10, logOdds: zs)
        let t = Calibration.fit(.temperature, samples)
        XCTAssertLessThan(t.slope, 1, "overconfident log-odds get a temperature above 1")
        let mapped = zs.map { t(1, logOdds: $0) }
        XCTAssertEqual(Set(mapped).count, 40, "no ties among distinct log-odds")
        XCTAssertEqual(mapped, mapped.sorted(), "order kept")
        XCTAssertLessThan(mapped[0], 0.99)
        // Without the log-odds every share 1.0 is one value (the old behaviour this replaces).
        XCTAssertEqual(Set(zs.map { _ in t(1) }).count, 1)
    }

    /// The quantile shift sends the final log-odds onto the pilot's distribution: a final posterior three times as
    /// sharp comes back to the pilot's scale, so any map's mean over the final rows is its mean over the pilot's
    /// values; equal distributions give (nearly) the identity; it is strictly increasing even where the pilot's values
    /// tie (saturated at the limit), and tied final values stay tied.
    func testQuantileShiftMapsTheFinalLogOddsOntoThePilots() {
        var rng = TestRNG(7)
        let pilot = (0 ..< 5000).map { _ in Float(4 * Double(rng.uniform()) - 1) }   // U(−1, 3)
        let final = (0 ..< 2000).map { _ in Float(3 * (4 * Double(rng.uniform()) - 1)) }   // U(−3, 9)
        let q = Calibration.QuantileShift(final: final, pilot: pilot)
        for z in [-2.7, 0.0, 3.3, 6.0, 8.4] { XCTAssertEqual(q(z), z / 3, accuracy: 0.12, "z \(z)") }
        let g = { (z: Double) in Calibration.sigmoid(1.3 * z - 0.2) }
        let onFinal = final.map { g(q(Double($0))) }.reduce(0, +) / Double(final.count)
        let onPilot = pilot.map { g(Double($0)) }.reduce(0, +) / Double(pilot.count)
        XCTAssertEqual(onFinal, onPilot, accuracy: 0.01)
        XCTAssertNotEqual(final.map { g(Double($0)) }.reduce(0, +) / Double(final.count), onPilot, accuracy: 0.05, "the test must have a shift to undo")
        // Equal distributions: the identity up to the tie-break and the order statistics' spacing.
        let same = Calibration.QuantileShift(final: pilot, pilot: pilot)
        for z in [-0.5, 0.7, 2.2] { XCTAssertEqual(same(z), z, accuracy: 0.02) }
        // Saturated pilot values (a third at the limit): still strictly increasing; ties in the final values stay ties.
        let sat = Calibration.QuantileShift(final: final, pilot: pilot.enumerated().map { $0.offset % 3 == 0 ? Float(Calibration.logOddsLimit) : $0.element })
        let grid = stride(from: -3.0, through: 9.0, by: 0.05).map { sat($0) }
        for (a, b) in zip(grid, grid.dropFirst()) { XCTAssertLessThan(a, b) }
        XCTAssertEqual(sat(Double(final[5])), sat(Double(final[5])))
        XCTAssertEqual(Calibration.QuantileShift(final: [], pilot: pilot)(1.5), 1.5, "nothing to match: unchanged")
    }

    /// HDL with `--calibration-shift quantile` (default) and `none`: the same labels, layers and raw confidences; the
    /// default's map carries the shift, its confidences are the map of the raw log-odds (shift included) and keep the
    /// raw log-odds' order; `none` is the map alone. The manifest parameters name the setting.
    func testCalibrationShiftChangesConfidencesOnly() throws {
        let (x, y) = clusteredData(c: 4, perClass: 120, d: 12, spread: 1.4, seed: 22)
        let seeds = seedsFrom(y, per: 8, classes: 4)
        var off = LabelingConfig(); off.calibrationShift = .none
        let a = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: off, tile: 64).result
        let b = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: LabelingConfig(), tile: 64).result
        XCTAssertEqual(a.labels, b.labels); XCTAssertEqual(a.layer, b.layer); XCTAssertEqual(a.rawLogOdds, b.rawLogOdds)
        XCTAssertNil(a.calibration.shift)
        let shift = try XCTUnwrap(b.calibration.shift)
        XCTAssertEqual(shift.final.count, seeds.filter { $0 < 0 }.count)
        XCTAssertEqual(shift.pilot.count, 5 * seeds.filter { $0 < 0 }.count, "every fold's posterior over the non-seed rows")
        XCTAssertTrue(b.calibration.description.contains("quantile-matched"), b.calibration.description)
        XCTAssertTrue(b.calibration.parameters.contains("shift=quantile"), b.calibration.parameters)
        var moved = 0
        for i in 0 ..< y.count where seeds[i] < 0 {
            XCTAssertEqual(b.confidence[i], b.calibration(b.rawConfidence[i], logOdds: b.rawLogOdds[i]))
            if b.confidence[i] != a.confidence[i] { moved += 1 }
        }
        XCTAssertGreaterThan(moved, 0)
        let rows = (0 ..< y.count).filter { seeds[$0] < 0 }.sorted { (b.rawLogOdds[$0], $0) < (b.rawLogOdds[$1], $1) }
        for (i, j) in zip(rows, rows.dropFirst()) { XCTAssertLessThanOrEqual(b.confidence[i], b.confidence[j], "rows \(i), \(j)") }
        XCTAssertEqual(LabelingConfig().manifestParameters["calibration_shift"], "quantile")
        XCTAssertEqual(off.manifestParameters["calibration_shift"], "none")
    }
}
