import HDLabelBench
import HDLabelCuration
import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore

/// `hdlabel bench noise`: label-issue detection on real data with synthetic label noise at known rates,
/// hdlabel's kNN consensus vs cleanlab's feature-based label-issue check (Scripts/noise_baseline.py).
struct BenchNoise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noise",
        abstract: "Precision/recall/F1 of detected label flips: hdlabel issues vs cleanlab (feature kNN path).",
        discussion: """
        For each data set, flips a known fraction of the ground-truth labels (symmetric: to a uniformly random other \
        class; pair: class c -> c+1, class-dependent), runs `LabelIssues.detect` on the cosine kNN graph and, when a \
        Python with cleanlab is available, Scripts/noise_baseline.py (cleanlab Datalab's feature-based label check). \
        Scores flagged points against the flipped ones. --sweep instead scores a grid of detector settings (Swift only) \
        to choose the defaults. Writes table.md and records.json to --out and prints the table.
        """
    )

    @Option(name: .customLong("dataset"), help: "Extra dataset NAME=EMB.npy,LABELS.npy (repeatable).")
    var extraDatasets: [String] = []
    @Flag(help: "Leave Fashion-MNIST out.") var noFashion = false
    @Option(help: "Fashion-MNIST rows (first N of train+test).") var fashionN = 70000
    @Option(help: "PCA components for Fashion-MNIST.") var pca = 50
    @Option(help: "Comma-separated noise rates.") var rates = "0.1,0.2,0.3,0.4"
    @Option(help: "Comma-separated noise kinds: symmetric, pair.") var kinds = "symmetric,pair"
    @Option(help: "Noise seed.") var seed: UInt64 = 0
    @Option(help: "Detector: labeled neighbours that vote.") var neighbors = LabelIssueConfig().k
    @Option(help: "Detector: vote weight similarity^gamma.") var gamma = LabelIssueConfig().gamma
    @Option(help: "Detector: flag rule (majority, confident, prune).") var rule = LabelIssueConfig().rule
    @Option(help: "Detector: cleaning rounds.") var rounds = LabelIssueConfig().rounds
    @Option(help: "Detector: cap on per-class thresholds.") var thresholdCap = LabelIssueConfig().thresholdCap
    @Flag(help: "Score a grid of detector settings instead (k, rule, rounds, gamma); no Python.") var sweep = false
    @Option(help: "cleanlab's k (Datalab default 10).") var cleanlabK = 10
    @Option(help: "Python with cleanlab (default .venv-noise/bin/python, then .venv/bin/python).") var python: String?
    @Flag(help: "Do not run cleanlab.") var noPython = false
    @Option(help: "Path of noise_baseline.py.") var script = "Scripts/noise_baseline.py"
    @Option(help: "Output directory (default runs/bench-noise-TIMESTAMP).") var out: String?

    func config() -> LabelIssueConfig {
        var base = LabelIssueConfig(); base.k = neighbors; base.gamma = gamma; base.rule = rule; base.rounds = rounds; base.thresholdCap = thresholdCap
        return base
    }

    /// Comma-separated rates, each in (0, 1).
    func rateList() throws -> [Double] {
        try rates.split(separator: ",", omittingEmptySubsequences: false).map { s in
            guard let v = Double(s.trimmingCharacters(in: .whitespaces)), v.isFinite, v > 0, v < 1 else { throw OptionError("--rates", rates, "comma-separated rates in (0, 1)") }
            return v
        }
    }

    func kindList() throws -> [LabelNoise] { try parseList(kinds, "--kinds") { LabelNoise(rawValue: $0) } }

    func validate() throws {
        _ = try rateList(); _ = try kindList()
        try Check.config { try config().validate() }
        try Check.int("--fashion-n", fashionN, 100 ... 70000, "an integer in 100...70000")
        try Check.int("--pca", pca, 1 ... 784, "an integer in 1...784")
        try Check.int("--cleanlab-k", cleanlabK, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
    }

    func run() throws {
        let started = Date()
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        let rateList = try rateList()
        let kindList = try kindList()
        let base = config()

        var datasets: [LabeledDataset] = []
        if !noFashion {
            if let reason = FashionMNIST.unavailableReason() { log("skipping Fashion-MNIST: \(reason)") } else {
                log("loading Fashion-MNIST (\(fashionN) rows), PCA-\(pca) …")
                datasets.append(try fashionPCA(components: pca, n: fashionN))
            }
        }
        for spec in extraDatasets { datasets.append(try LabeledDataset.load(spec: spec)) }
        if datasets.isEmpty { throw ValidationError("no data set") }

        var py: String?
        if !sweep && !noPython {
            py = python ?? [".venv-noise/bin/python", ".venv/bin/python"].first { FileManager.default.isExecutableFile(atPath: $0) }
            if py == nil { log("note: cleanlab skipped (no --python, no .venv-noise/bin/python or .venv/bin/python)") }
        }
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "")
        let outDir = out ?? "runs/bench-noise-\(stamp)"
        let work = outDir + "/.work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

        var configs: [LabelIssueConfig] = [base]
        if sweep {
            configs = []
            for r in IssueRule.allCases { for kk in [5, 10, 20, 30, 50] { for rd in [1, 2, 3] {
                var c = base; c.rule = r; c.k = kk; c.rounds = rd; configs.append(c)
            } } }
            for g in [0.0, 3.0] { var c = base; c.gamma = g; configs.append(c) }
            for r in [IssueRule.confident, .prune] { for kk in [20, 30, 50] { var c = base; c.rule = r; c.k = kk; c.rounds = 1; c.thresholdCap = 0.5; configs.append(c) } }
        }
        let graphK = max(50, configs.map(\.k).max()!)

        var records: [NoiseRecord] = []
        for ds in datasets {
            let t0 = Date()
            let x = ds.embeddings.l2Normalized()
            let graph = try KNNGraphBuilder.build(x, options: GraphOptions(k: min(graphK, x.rows - 1)))
            let graphSeconds = Date().timeIntervalSince(t0)
            log(String(format: "%@: %d x %d, graph k=%d in %.1fs", ds.name, x.rows, x.cols, graph.k, graphSeconds))
            var settings: [(kind: LabelNoise, rate: Double, labels: [Int32], flipped: [Bool], path: String)] = []
            for kind in kindList { for rate in rateList {
                let (noisy, flipped) = kind.apply(ds.labels, numClasses: ds.numClasses, rate: rate, seed: seed)
                let p = work + "/\(ds.name)-\(kind.rawValue)-\(rate).npy"
                try NPY.write(ints: noisy.map(Int.init), to: p)
                settings.append((kind, rate, noisy, flipped, p))
            } }
            var pyResults: [String: [String: (flagged: [Int], seconds: Double)]] = [:]
            if let py {
                let embPath = work + "/\(ds.name)-emb.npy"
                try NPY.write(ds.embeddings, to: embPath)
                pyResults = try runCleanlab(python: py, embeddings: embPath, labels: settings.map(\.path), out: work + "/\(ds.name)-cleanlab.json", log: log)
            }
            for s in settings {
                for c in configs {
                    let t1 = Date()
                    let r = try LabelIssues.detect(graph: graph, labels: s.labels, numClasses: ds.numClasses, config: c)
                    let sc = DetectionScore(flagged: r.flagged, flipped: s.flipped)
                    records.append(NoiseRecord(dataset: ds.name, n: x.rows, noise: s.kind.rawValue, rate: s.rate,
                                               method: "hdlabel " + describe(c), score: sc, seconds: Date().timeIntervalSince(t1) + graphSeconds))
                }
                for (variant, v) in (pyResults[s.path] ?? [:]).sorted(by: { $0.key > $1.key }) {
                    var mask = [Bool](repeating: false, count: x.rows)
                    for i in v.flagged { mask[i] = true }
                    records.append(NoiseRecord(dataset: ds.name, n: x.rows, noise: s.kind.rawValue, rate: s.rate,
                                               method: "cleanlab \(variant) k=\(cleanlabK)", score: DetectionScore(flagged: mask, flipped: s.flipped), seconds: v.seconds))
                }
                log("  \(s.kind.rawValue) \(s.rate): " + records.suffix(configs.count + (pyResults[s.path]?.count ?? 0))
                    .map { "\($0.method) F1 \(String(format: "%.3f", $0.score.f1))" }.prefix(sweep ? 0 : 10).joined(separator: "; "))
            }
        }
        let table = sweep ? sweepTable(records) : mainTable(records)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(enc.encode(records), to: outDir + "/records.json")
        let header = "<!-- \(CommandLine.arguments.joined(separator: " ")) (\(String(format: "%.0f", Date().timeIntervalSince(started))) s) -->\n"
        try AtomicFile.write(Data((header + table).utf8), to: outDir + "/table.md")
        try? FileManager.default.removeItem(atPath: work)
        print(table)
        log("results in \(outDir)")
    }

    func describe(_ c: LabelIssueConfig) -> String {
        "\(c.rule.rawValue) k=\(c.k) rounds=\(c.rounds)" + (c.gamma == 1 ? "" : " gamma=\(fmt(c.gamma))")
            + (c.thresholdCap == 1 ? "" : " cap=\(fmt(c.thresholdCap))")
    }

    func runCleanlab(python: String, embeddings: String, labels: [String], out: String, log: (String) -> Void) throws -> [String: [String: (flagged: [Int], seconds: Double)]] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, "--embeddings", embeddings, "--k", "\(cleanlabK)", "--check", "--out", out, "--labels"] + labels
        var env = ProcessInfo.processInfo.environment; env["OMP_WAIT_POLICY"] = "PASSIVE"; p.environment = env
        let errPipe = Pipe(); p.standardError = errPipe; p.standardOutput = FileHandle.nullDevice
        try p.run()
        let err = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: out),
              let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let results = obj["results"] as? [String: [String: [String: Any]]] else {
            throw HDLError.io(path: script, reason: "cleanlab baseline failed (exit \(p.terminationStatus)): \(String(decoding: err.suffix(2000), as: UTF8.self))")
        }
        log("  cleanlab \(obj["cleanlab"] ?? "?") done")
        return results.mapValues { $0.mapValues { (($0["flagged"] as? [Int]) ?? [], ($0["seconds"] as? Double) ?? .nan) } }
    }

    func mainTable(_ recs: [NoiseRecord]) -> String {
        let methods = orderedUnique(recs.map(\.method))
        var s = "| data set | noise | rate | " + methods.map { "\($0): P / R / **F1**" }.joined(separator: " | ") + " |\n"
        s += "|---|---|---:|" + methods.map { _ in "---|" }.joined() + "\n"
        for key in orderedUnique(recs.map { "\($0.dataset)|\($0.noise)|\($0.rate)" }) {
            let rs = recs.filter { "\($0.dataset)|\($0.noise)|\($0.rate)" == key }
            let r0 = rs[0]
            let best = rs.map(\.score.f1).max() ?? 0
            s += "| \(r0.dataset) | \(r0.noise) | \(fmt(r0.rate)) | " + methods.map { m in
                guard let r = rs.first(where: { $0.method == m }) else { return "–" }
                let f = String(format: "%.3f", r.score.f1)
                return String(format: "%.3f / %.3f / ", r.score.precision, r.score.recall) + (r.score.f1 == best ? "**\(f)**" : f)
            }.joined(separator: " | ") + " |\n"
        }
        s += "\nMean F1 over rows: " + methods.map { m in
            let v = recs.filter { $0.method == m }.map(\.score.f1)
            return "\(m) \(String(format: "%.3f", v.reduce(0, +) / Double(max(v.count, 1))))"
        }.joined(separator: "; ") + "\n"
        return s
    }

    func sweepTable(_ recs: [NoiseRecord]) -> String {
        let methods = orderedUnique(recs.map(\.method))
        let sets = orderedUnique(recs.map { "\($0.dataset) \($0.noise)" })
        var s = "| detector | " + sets.map { "\($0) mean F1" }.joined(separator: " | ") + " | overall |\n|---|" + sets.map { _ in "---:|" }.joined() + "---:|\n"
        var rows: [(String, Double)] = []
        for m in methods {
            var cells: [String] = [], all: [Double] = []
            for set in sets {
                let v = recs.filter { $0.method == m && "\($0.dataset) \($0.noise)" == set }.map(\.score.f1)
                all += v
                cells.append(String(format: "%.3f", v.reduce(0, +) / Double(max(v.count, 1))))
            }
            let mean = all.reduce(0, +) / Double(max(all.count, 1))
            rows.append(("| \(m) | " + cells.joined(separator: " | ") + String(format: " | %.3f |\n", mean), mean))
        }
        for r in rows.sorted(by: { $0.1 > $1.1 }) { s += r.0 }
        return s
    }
}

struct NoiseRecord: Codable {
    var dataset: String
    var n: Int
    var noise: String
    var rate: Double
    var method: String
    var score: DetectionScore
    var seconds: Double
}

func orderedUnique(_ a: [String]) -> [String] {
    var seen = Set<String>(); return a.filter { seen.insert($0).inserted }
}

func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
