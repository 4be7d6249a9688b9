import HDLabelReport
import HDLabelIO
import HDLabelCore
import Foundation

/// Class-balance setting of a benchmark row: imbalance ρ of the labeled part and the unlabeled profile.
public struct BalanceSetting: Sendable, Equatable, Codable, CustomStringConvertible {
    public var imbalance: Double
    public var unlabeled: UnlabeledProfile
    public init(imbalance: Double, unlabeled: UnlabeledProfile = .same) { self.imbalance = imbalance; self.unlabeled = unlabeled }

    /// "balanced", "rho10", "rho100", "rho10-ubalanced", "rho10-ureversed".
    public init?(_ text: String) {
        let t = text.lowercased()
        if t == "balanced" { self.init(imbalance: 1); return }
        if t == "natural" { self.init(imbalance: 1, unlabeled: .natural); return }
        guard t.hasPrefix("rho") else { return nil }
        let parts = t.dropFirst(3).split(separator: "-", maxSplits: 1).map(String.init)
        guard let r = Double(parts.first ?? ""), r >= 1, r.isFinite else { return nil }
        var u = UnlabeledProfile.same
        if parts.count == 2 {
            guard parts[1].hasPrefix("u"), let p = UnlabeledProfile(rawValue: String(parts[1].dropFirst())) else { return nil }
            u = p
        }
        self.init(imbalance: r, unlabeled: u)
    }

    public var description: String {
        if imbalance == 1 && unlabeled == .same { return "balanced" }
        if imbalance == 1 && unlabeled == .natural { return "natural" }
        return "rho" + fmtRho(imbalance) + (unlabeled == .same ? "" : "-u\(unlabeled.rawValue)")
    }
    /// Rows whose table cell reports tail recall (a long tail, or the data set's own imbalance).
    public var isLongTailed: Bool { imbalance > 1 || unlabeled == .natural }
}

/// One method on one split.
public struct QualityRecord: Sendable, Codable {
    public var dataset: String
    public var balance: String
    public var budget: String
    public var seed: UInt64
    public var splitHash: String
    public var n: Int
    public var labeled: Int
    public var method: String
    public var accuracy: Double
    public var macroF1: Double
    public var balancedAccuracy: Double
    public var coverage: Double
    /// Mean recall over the tail classes (long-tailed rows; NaN otherwise).
    public var tailRecall: Double
    public var seconds: Double
    public var chance: Double
    public var error: String?
    /// HDL only: the pilot estimate printed before labeling (nil when it cannot be estimated), its 95 % interval, the
    /// estimated accuracy after labeling, and the evidence used.
    public var pilot: Double?
    public var pilotLower: Double?
    public var pilotUpper: Double?
    public var estimated: Double?
    public var evidence: String?
    /// Expected calibration error of the `confidence` column on the labeled unlabeled-rows (ten equal-count bins,
    /// `Report.calibration`); nil for methods without confidences.
    public var ece: Double?
    /// HDL: ECE of the raw confidence (before the calibration map), and of every calibration method refitted on the
    /// same pilot samples and applied to the raw confidence (the calibration ablation; keyed by method name).
    public var eceRaw: Double?
    public var eceByCalibration: [String: Double]?
    /// HDL: the calibration map's summary (`CalibrationMap.description`).
    public var calibration: String?
    /// Accuracy of the most confident 50 % and 70 % of the labeled unlabeled-rows (`Report.selectiveAccuracy`).
    public var selective50: Double?
    public var selective70: Double?
    /// HDL: held-out seeds the calibration map was fitted on (0 when none was fitted), and those the pilot estimate
    /// scored (nil without a pilot estimate).
    public var calibrationSamples: Int?
    public var pilotSamples: Int?
}

/// The scikit-learn baselines, run through `Scripts/baselines.py`.
public struct PythonBaselines: Sendable {
    public var python: String
    public var script: String
    public var methods: [String]
    public init(python: String, script: String, methods: [String] = ["spreading-sk", "logreg", "selftrain"]) {
        self.python = python; self.script = script; self.methods = methods
    }

    /// Runs the script on one split; returns per-method predicted labels and wall time.
    public func run(embeddings: Embeddings, seeds: [Int32], workDir: String, seed: UInt64) throws -> [String: (labels: [Int32], seconds: Double)] {
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let emb = workDir + "/embeddings.npy", sd = workDir + "/seeds.npy", out = workDir + "/baselines.json"
        try NPY.write(embeddings, to: emb)
        try NPY.write(ints: seeds.map(Int.init), to: sd)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, "--embeddings", emb, "--seeds", sd, "--out", out, "--seed", "\(seed)", "--methods", methods.joined(separator: ",")]
        var env = ProcessInfo.processInfo.environment
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        p.environment = env
        let errPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { throw HDLError.io(path: python, reason: "cannot start Python baselines: \(error.localizedDescription)") }
        let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let msg = String(decoding: errData, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: " | ")
            throw HDLError.invalidInput("Python baselines exited with status \(p.terminationStatus): \(msg)")
        }
        guard let d = FileManager.default.contents(atPath: out),
              let obj = try JSONSerialization.jsonObject(with: d) as? [String: Any],
              let ms = obj["methods"] as? [String: Any] else { throw HDLError.format(path: out, reason: "unexpected baselines output") }
        var res: [String: (labels: [Int32], seconds: Double)] = [:]
        for (name, v) in ms {
            guard let e = v as? [String: Any], let labs = e["labels"] as? [Int] else { throw HDLError.format(path: out, reason: "method \(name) has no labels") }
            guard labs.count == seeds.count else { throw HDLError.format(path: out, reason: "method \(name): \(labs.count) labels for \(seeds.count) rows") }
            res[name] = (labs.map { Int32($0) }, e["seconds"] as? Double ?? .nan)
        }
        return res
    }
}

/// The grid dataset × balance × budget × seed, every method on every split (one kNN graph per split).
public struct QualityBench {
    public var datasets: [LabeledDataset]
    public var budgets: [LabelBudget]
    public var balances: [BalanceSetting]
    public var seeds: [UInt64]
    public var maxPoints: Int?
    public var methods: [LabelMethod]
    public var config: LabelingConfig
    /// kNN graph builder of every split (exact by default; `approx` compares labels on the approximate graph).
    public var graph: GraphMethod = .exact
    public var python: PythonBaselines?
    public var workDir: String
    public var log: (String) -> Void

    public init(datasets: [LabeledDataset], budgets: [LabelBudget], balances: [BalanceSetting], seeds: [UInt64], maxPoints: Int?,
                methods: [LabelMethod] = LabelMethod.allCases, config: LabelingConfig = LabelingConfig(), python: PythonBaselines? = nil,
                workDir: String, log: @escaping (String) -> Void = { _ in }) {
        self.datasets = datasets; self.budgets = budgets; self.balances = balances; self.seeds = seeds; self.maxPoints = maxPoints
        self.methods = methods; self.config = config; self.python = python; self.workDir = workDir; self.log = log
    }

    /// The ⌈C/3⌉ classes with the fewest labeled (then unlabeled) points: the "tail" of a long-tailed split.
    public static func tailClasses(_ s: Split) -> [Int] {
        let c = s.numClasses
        let order = (0 ..< c).sorted { (s.labeledPerClass[$0], s.unlabeledPerClass[$0], -$0) < (s.labeledPerClass[$1], s.unlabeledPerClass[$1], -$1) }
        return Array(order.prefix((c + 2) / 3)).sorted()
    }

    /// Runs everything; a method that throws is recorded with its error (accuracy NaN) rather than aborting the grid.
    public func run() throws -> (records: [QualityRecord], splits: [Split]) {
        var records: [QualityRecord] = [], splits: [Split] = []
        for ds in datasets {
            for bal in balances {
                for budget in budgets {
                    for seed in seeds {
                        let spec = SplitSpec(budget: budget, imbalance: bal.imbalance, unlabeled: bal.unlabeled, seed: seed, maxPoints: maxPoints)
                        let split = try Split.make(truth: ds.labels, numClasses: ds.numClasses, spec: spec)
                        splits.append(split)
                        let x = split.embeddings(ds.embeddings), sd = split.seeds(truth: ds.labels), truth = split.groundTruth(ds.labels)
                        let tail = bal.isLongTailed ? QualityBench.tailClasses(split) : []
                        log("\(ds.name) \(bal) \(budget) seed \(seed): n=\(x.rows) labeled=\(split.labeled.count) split \(split.hash)")
                        func record(_ method: String, _ labels: [Int32]?, layer: [Int32]?, conf: [Float]?, seconds: Double, error: String?,
                                    pilot: Double? = nil, evidence: String? = nil, result: LabelingResult? = nil) {
                            var r = QualityRecord(dataset: ds.name, balance: "\(bal)", budget: "\(budget)", seed: seed, splitHash: split.hash,
                                                  n: x.rows, labeled: split.labeled.count, method: method, accuracy: .nan, macroF1: .nan,
                                                  balancedAccuracy: .nan, coverage: .nan, tailRecall: .nan, seconds: seconds,
                                                  chance: 1 / Double(ds.numClasses), error: error, pilot: pilot, evidence: evidence)
                            if let labels {
                                let m = QualityMetrics.evaluate(predicted: labels, truth: truth, seeds: sd, numClasses: ds.numClasses, layer: layer, confidence: conf)
                                r.accuracy = m.accuracy; r.macroF1 = m.macroF1; r.balancedAccuracy = m.balancedAccuracy; r.coverage = m.coverage
                                if !tail.isEmpty { r.tailRecall = m.meanRecall(classes: tail) }
                                let evaluated = sd.map { $0 < 0 }
                                func ece(_ c: [Float]) -> Double {
                                    Report.expectedCalibrationError(Report.calibration(labels: labels, confidence: c, truth: truth, evaluated: evaluated))
                                }
                                if let conf {
                                    r.ece = ece(conf)
                                    r.selective50 = Report.selectiveAccuracy(labels: labels, confidence: conf, truth: truth, evaluated: evaluated, coverage: 0.5)
                                    r.selective70 = Report.selectiveAccuracy(labels: labels, confidence: conf, truth: truth, evaluated: evaluated, coverage: 0.7)
                                }
                                if let res = result, method == "hdl" {
                                    r.pilotLower = res.pilotEstimate?.interval.lower; r.pilotUpper = res.pilotEstimate?.interval.upper
                                    r.estimated = res.estimatedAccuracy
                                    r.eceRaw = ece(res.rawConfidence)
                                    r.calibration = res.calibration.description
                                    r.calibrationSamples = res.calibration.samples
                                    r.pilotSamples = res.pilotEstimate?.samples
                                    var by: [String: Double] = [:]
                                    for cm in CalibrationMethod.allCases where cm != .auto {
                                        var map = Calibration.fit(cm, res.calibrationSamples)
                                        map.shift = res.calibration.shift   // the run's own shift, so the columns compare maps only
                                        by[cm.rawValue] = ece(res.rawConfidence.indices.map { map(res.rawConfidence[$0], logOdds: res.rawLogOdds.isEmpty ? nil : res.rawLogOdds[$0]) })
                                    }
                                    r.eceByCalibration = by
                                }
                            }
                            let pad = method.padding(toLength: max(14, method.count), withPad: " ", startingAt: 0)
                            log("  \(pad) " + String(format: "acc %.4f  F1 %.4f  %.2fs", r.accuracy, r.macroF1, seconds) + (error.map { "  ERROR \($0)" } ?? ""))
                            records.append(r)
                        }
                        var graph: KNNGraph?
                        for method in methods {
                            var cfg = config; cfg.method = method
                            let t0 = Date()
                            do {
                                let res: LabelingResult
                                if let g = graph {
                                    res = try Labeling.run(graph: g, seeds: sd, numClasses: ds.numClasses, config: cfg, embeddings: x.l2Normalized())
                                } else {
                                    var none = NoTiming()
                                    let out = try Labeling.label(embeddings: x, seeds: sd, numClasses: ds.numClasses, config: cfg, graph: self.graph, timing: &none)
                                    graph = out.graph; res = out.result
                                }
                                record(method.rawValue, res.labels, layer: res.layer, conf: res.confidence, seconds: Date().timeIntervalSince(t0), error: nil,
                                       pilot: res.pilotAccuracy, evidence: res.evidence.isEmpty ? nil : res.evidence, result: res)
                            } catch {
                                record(method.rawValue, nil, layer: nil, conf: nil, seconds: Date().timeIntervalSince(t0), error: "\(error)")
                            }
                        }
                        if let py = python {
                            let t0 = Date()
                            do {
                                let out = try py.run(embeddings: x, seeds: sd, workDir: workDir + "/py-\(split.hash)", seed: seed)
                                for name in py.methods {
                                    if let o = out[name] { record(name, o.labels, layer: nil, conf: nil, seconds: o.seconds, error: nil) }
                                    else { record(name, nil, layer: nil, conf: nil, seconds: 0, error: "missing from baselines output") }
                                }
                            } catch {
                                for name in py.methods { record(name, nil, layer: nil, conf: nil, seconds: Date().timeIntervalSince(t0), error: "\(error)") }
                            }
                            try? FileManager.default.removeItem(atPath: workDir + "/py-\(split.hash)")
                        }
                    }
                }
            }
        }
        return (records, splits)
    }

    /// Methods in first-seen order.
    public static func methodOrder(_ records: [QualityRecord]) -> [String] {
        var seen: [String] = []
        for r in records where !seen.contains(r.method) { seen.append(r.method) }
        return seen
    }

    /// Records that fail the sanity check: accuracy NaN (any method), or below chance (1/C) for hdlabel's own methods.
    /// A scikit-learn reference below chance is a result, not a failure (self-training at ρ = 100 with one seed per
    /// class labels nearly everything as the head class): it stays in the table.
    public static func failures(_ records: [QualityRecord]) -> [QualityRecord] {
        records.filter { $0.accuracy.isNaN || (LabelMethod(rawValue: $0.method) != nil && $0.accuracy < $0.chance) }
    }

    /// One markdown table: a row per dataset × balance × budget, a column per method with
    /// `acc ± sd / F1 ± sd` (percent, over seeds), the best mean accuracy in bold, and tail-class recall on long-tailed rows.
    public static func markdown(_ records: [QualityRecord]) -> String {
        let methods = methodOrder(records)
        var keys: [String] = []
        var groups: [String: [QualityRecord]] = [:]
        for r in records {
            let key = "\(r.dataset) | \(r.balance) | \(r.budget)"
            if groups[key] == nil { keys.append(key) }
            groups[key, default: []].append(r)
        }
        func pct(_ v: (mean: Double, std: Double)) -> String {
            v.mean.isNaN ? "NaN" : String(format: "%.1f ± %.1f", 100 * v.mean, 100 * v.std)
        }
        var lines = ["| dataset | balance | budget | seeds | " + methods.joined(separator: " | ") + " |",
                     "|---|---|---|---|" + methods.map { _ in "---|" }.joined()]
        for key in keys {
            let g = groups[key]!
            let stats = methods.map { m -> (acc: (mean: Double, std: Double), f1: (mean: Double, std: Double), tail: Double, n: Int) in
                let rs = g.filter { $0.method == m }
                let tails = rs.map(\.tailRecall).filter { !$0.isNaN }
                return (meanStd(rs.map(\.accuracy)), meanStd(rs.map(\.macroF1)), tails.isEmpty ? .nan : tails.reduce(0, +) / Double(tails.count), rs.count)
            }
            let best = stats.map { $0.acc.mean.isNaN ? -1 : $0.acc.mean }.max() ?? -1
            let seedsN = Set(g.map(\.seed)).count
            let cells = stats.map { s -> String in
                if s.n == 0 { return "–" }
                var acc = pct(s.acc)
                if !s.acc.mean.isNaN && s.acc.mean == best { acc = "**\(acc)**" }
                var cell = "\(acc) / \(pct(s.f1))"
                if !s.tail.isNaN { cell += String(format: " · tail %.1f", 100 * s.tail) }
                return cell
            }
            lines.append("| \(key) | \(seedsN) | " + cells.joined(separator: " | ") + " |")
        }
        // HDL's confidences and pilot: expected calibration error and |pilot estimate − accuracy| per row.
        let calMethods = CalibrationMethod.allCases.filter { $0 != .auto }.map(\.rawValue)
        var cal = ["", "| dataset | balance | budget | HDL accuracy | HDL ECE (%) | ECE raw (%) | seed floor (%) | pilot estimate | pilot error | in 95 % interval | "
                    + "estimate after labeling | estimate error | sel. acc. 50 % | sel. acc. 70 % | " + calMethods.map { "ECE \($0) (%)" }.joined(separator: " | ") + " |",
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + calMethods.map { _ in "---|" }.joined()]
        var allEce: [Double] = [], allPilotErr: [Double] = [], allEstErr: [Double] = [], inside = 0, withPilot = 0
        // Runs within the targets (ECE ≤ 3 %, pilot error ≤ 4 points), and within the larger of the target and the seed
        // floor (`Calibration.samplingError` at the run's accuracy and its held-out seed count).
        var eceOK = 0, eceFloorOK = 0, pilotOK = 0, pilotFloorOK = 0
        func seedFloor(_ r: QualityRecord, _ m: Int?) -> Double? {
            guard let m, m >= Calibration.minSamples else { return nil }
            return Calibration.samplingError(accuracy: r.accuracy, samples: m)
        }
        for key in keys {
            let h = groups[key]!.filter { $0.method == "hdl" && $0.error == nil }
            if h.isEmpty { continue }
            let ece = meanStd(h.compactMap(\.ece)), raw = meanStd(h.compactMap(\.eceRaw)), pilot = meanStd(h.compactMap(\.pilot)), acc = meanStd(h.map(\.accuracy))
            let pErr = h.compactMap { r in r.pilot.map { abs($0 - r.accuracy) } }, eErr = h.compactMap { r in r.estimated.map { abs($0 - r.accuracy) } }
            let covered = h.filter { r in r.pilotLower.map { $0 <= r.accuracy } == true && r.pilotUpper.map { r.accuracy <= $0 } == true }.count
            let nPilot = h.filter { $0.pilot != nil }.count
            allEce += h.compactMap(\.ece); allPilotErr += pErr; allEstErr += eErr; inside += covered; withPilot += nPilot
            for r in h {
                if let e = r.ece { if e <= 0.03 { eceOK += 1 }; if e <= max(0.03, seedFloor(r, r.calibrationSamples) ?? 0) { eceFloorOK += 1 } }
                if let p = r.pilot {
                    let err = abs(p - r.accuracy)
                    if err <= 0.04 { pilotOK += 1 }; if err <= max(0.04, seedFloor(r, r.pilotSamples) ?? 0) { pilotFloorOK += 1 }
                }
            }
            let fl = meanStd(h.compactMap { seedFloor($0, $0.calibrationSamples) })
            let s50 = meanStd(h.compactMap(\.selective50)), s70 = meanStd(h.compactMap(\.selective70))
            let by = calMethods.map { m in meanStd(h.compactMap { $0.eceByCalibration?[m] }) }
            func p(_ v: (mean: Double, std: Double)) -> String { v.mean.isNaN ? "–" : String(format: "%.1f", 100 * v.mean) }
            let pilotCells = nPilot == 0 ? ["cannot (too few seeds)", "–", "–"]
                : [p(pilot) + (nPilot < h.count ? " (\(nPilot) of \(h.count) seeds)" : ""), p(meanStd(pErr)), "\(covered)/\(nPilot)"]
            cal.append("| \(key) | " + ([p(acc), p(ece), p(raw), p(fl)] + pilotCells + [p(meanStd(h.compactMap(\.estimated))), p(meanStd(eErr)), p(s50), p(s70)]
                                         + by.map(p)).joined(separator: " | ") + " |")
        }
        if cal.count > 2 {
            func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }
            cal.append("")
            cal.append(String(format: "Over all %d HDL runs: ECE mean %.1f %% (worst run %.1f %%); pilot error mean %.1f points over the %d runs with a pilot estimate "
                              + "(final accuracy inside its 95 %% interval in %d of them); estimate after labeling: error mean %.1f points over %d runs. "
                              + "ECE ≤ 3 %% in %d of %d runs, ≤ the larger of 3 %% and the seed floor in %d; pilot error ≤ 4 points in %d of %d runs, "
                              + "≤ the larger of 4 points and the seed floor in %d.",
                              allEce.count, 100 * mean(allEce), 100 * (allEce.max() ?? .nan), 100 * mean(allPilotErr), withPilot, inside,
                              100 * mean(allEstErr), allEstErr.count, eceOK, allEce.count, eceFloorOK, pilotOK, withPilot, pilotFloorOK))
        }
        return lines.joined(separator: "\n") + "\n\nCells: accuracy ± std / macro-F1 ± std (%, unlabeled points, over seeds); **bold** = best mean accuracy in the row; "
            + "tail = mean recall of the ⌈C/3⌉ classes with the fewest labels (long-tailed rows).\n"
            + (cal.count > 2 ? cal.joined(separator: "\n") + "\n\nECE: expected calibration error of HDL's confidence column (ten equal-count bins, mean over seeds); "
               + "ECE raw: before the calibration map; seed floor: `Calibration.samplingError`, √(2/π · p(1 − p)/m) at the run's accuracy p "
               + "and the m held-out seeds its calibration map was fitted on (mean over the runs with a map), the error the seeds' sampling alone "
               + "leaves in any accuracy read off them, so the least ECE a seed-only calibration reaches on average; "
               + "ECE <method>: that map refitted on the same pilot samples; "
               + "sel. acc.: accuracy of the most confident 50 % / 70 % of the labeled rows; "
               + "pilot estimate: printed before labeling (held-out seeds whose class kept an anchor in their fold; none with fewer than "
               + "\(AccuracyEstimates.minSamples)); pilot error: mean |pilot estimate − final accuracy| (points); in 95 % interval: runs whose final "
               + "accuracy is inside the pilot's Wilson interval; estimate after labeling: `AccuracyEstimates.combine`, (m · pilot + "
               + "w · mean calibrated confidence)/(m + w) for m held-out seeds, w = \(Int(AccuracyEstimates.confidenceWeight))).\n" : "")
    }

    public static func csv(_ records: [QualityRecord]) -> String {
        var out = "dataset,balance,budget,seed,split_hash,n,labeled,method,accuracy,macro_f1,balanced_accuracy,coverage,tail_recall,seconds,ece,pilot,"
            + "ece_raw,selective50,selective70,pilot_lower,pilot_upper,estimated,calibration_samples,pilot_samples,error\n"
        func f(_ v: Double) -> String { v.isNaN ? "" : String(format: "%.6f", v) }
        for r in records {
            let err = (r.error ?? "").replacingOccurrences(of: "\"", with: "\"\"")
            out += "\(r.dataset),\(r.balance),\(r.budget),\(r.seed),\(r.splitHash),\(r.n),\(r.labeled),\(r.method),"
                + "\(f(r.accuracy)),\(f(r.macroF1)),\(f(r.balancedAccuracy)),\(f(r.coverage)),\(f(r.tailRecall)),\(String(format: "%.3f", r.seconds)),"
                + "\(f(r.ece ?? .nan)),\(f(r.pilot ?? .nan)),\(f(r.eceRaw ?? .nan)),\(f(r.selective50 ?? .nan)),\(f(r.selective70 ?? .nan)),"
                + "\(f(r.pilotLower ?? .nan)),\(f(r.pilotUpper ?? .nan)),\(f(r.estimated ?? .nan)),\(r.calibrationSamples.map(String.init) ?? ""),"
                + "\(r.pilotSamples.map(String.init) ?? ""),\"\(err)\"\n"
        }
        return out
    }

    /// JSON encoder that writes NaN as the string "NaN" (JSON has no NaN).
    public static func jsonEncoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }
}
