import HDLabelReport
import HDLabelCuration
import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore

/// `hdlabel report RUN_DIR -o report.html`: one self-contained HTML page about a run directory.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page (inline CSS + SVG, no script) about the label files in RUN_DIR.",
        discussion: """
        RUN_DIR: a directory with one or more label CSVs written by 'label' or 'cluster' (id,label,confidence,layer,source), \
        e.g. hdl.csv, knn.csv, spreading.csv, with their manifests; timings JSONs ('cluster --timings') are shown too. \
        The main run is hdl.csv (or the file whose manifest says method hdl; else --main).
        --truth: ground truth (.npy ints) for accuracy, macro-F1, per-layer accuracy, calibration, recall, confusion.
        --seeds: the seed labels used (.npy); rows with a seed are not scored. Without it the CSV's 'seed' source is used.
        --budget-table: a 'bench quality' records CSV for accuracy vs seed budget and the seed labels saved.
        Headline: annotation hours saved = labels produced for unlabeled rows x --seconds-per-label / 3600.
        """
    )
    @Argument(help: "Directory with the label CSVs of a run.") var runDir: String
    @Option(name: .shortAndLong, help: "Output HTML file.") var output: String
    @Option(help: "Ground-truth labels (.npy ints).") var truth: String?
    @Option(help: "Seed labels used by the run (.npy, -1 = unlabeled).") var seeds: String?
    @Option(name: .customLong("seconds-per-label"), help: "Human annotation time per label, for the hours-saved figure.") var secondsPerLabel: Double = 30
    @Option(name: .customLong("budget-table"), help: "Quality records CSV (hdlabel bench quality) for accuracy vs seed budget.") var budgetTable: String?
    @Option(name: .customLong("budget-balance"), help: "Which 'balance' rows of the budget table to use.") var budgetBalance = "balanced"
    @Option(name: .customLong("budget-dataset"), help: "Which dataset of the budget table to use (default: its first).") var budgetDataset: String?
    @Option(name: .customLong("main"), help: "Stem of the main label file (default: hdl).") var mainRun: String?
    @Option(help: "Class names in id order (comma-separated, or a file with one per line); default: the manifest's, or RUN_DIR/classes.txt.")
    var classes: String?

    func validate() throws {
        if !output.hasSuffix(".html") && !output.hasSuffix(".htm") { throw OptionError("-o", output, "a file ending in .html") }
        try Check.real("--seconds-per-label", secondsPerLabel, "a number in [0, 86400]") { $0 >= 0 && $0 <= 86400 }
    }

    struct LoadedRun { var name: String; var file: String; var method: String; var run: RunLabels; var manifest: [String: Any]? }

    static func readJSON(_ path: String) -> [String: Any]? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
    }

    func run() throws {
        try runReportingErrors {
            let fm = FileManager.default
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: runDir, isDirectory: &isDir) else { throw HDLError.io(path: runDir, reason: "no such directory") }
            guard isDir.boolValue else { throw HDLError.invalidInput("RUN_DIR '\(runDir)' is not a directory") }
            let entries = (try? fm.contentsOfDirectory(atPath: runDir))?.sorted() ?? []

            // Label CSVs: every .csv whose header is that of a labeling run.
            var runs: [LoadedRun] = []
            for e in entries where e.hasSuffix(".csv") && !e.hasPrefix(".") {
                let path = runDir + "/" + e
                guard let fh = FileHandle(forReadingAtPath: path) else { continue }
                let head = String(decoding: (try? fh.read(upToCount: 64)) ?? Data(), as: UTF8.self)
                try? fh.close()
                guard head.hasPrefix("id,label,confidence,layer,source") else { continue }
                let r = try RunLabels.read(path: path)
                let m = Self.readJSON(path + ".manifest.json")
                runs.append(LoadedRun(name: String(e.dropLast(4)), file: e, method: m?["method"] as? String ?? "", run: r, manifest: m))
            }
            guard !runs.isEmpty else {
                throw HDLError.invalidInput("no label CSV (header id,label,confidence,layer,source) in '\(runDir)'")
            }
            let n = runs[0].run.n
            for r in runs where r.run.n != n { throw HDLError.invalidInput("'\(r.file)' has \(r.run.n) rows but '\(runs[0].file)' has \(n)") }
            let primaryIndex: Int
            if let mainRun {
                guard let i = runs.firstIndex(where: { $0.name == mainRun }) else { throw HDLError.invalidInput("--main '\(mainRun)': no \(mainRun).csv label file in '\(runDir)'") }
                primaryIndex = i
            } else {
                primaryIndex = runs.firstIndex { $0.name == "hdl" } ?? runs.firstIndex { $0.method == "hdl" } ?? 0
            }
            let primary = runs[primaryIndex]

            // Class names shared by every file (label names are mapped onto them).
            var names: [String]
            if let classes { names = try LabelsIO.parseClassList(classes) } else if let mc = primary.manifest?["classes"] as? [String], !mc.isEmpty {
                names = mc
            } else if fm.fileExists(atPath: runDir + "/classes.txt") {
                names = try LabelsIO.parseClassList(runDir + "/classes.txt")
            } else {
                let all = Set(runs.flatMap { $0.run.classNames })
                if all.allSatisfy({ Int($0) != nil }) { names = (0 ... (all.compactMap { Int($0) }.max() ?? 0)).map(String.init) } else { names = all.sorted() }
            }
            let t: [Int]? = try truth.map { try NPY.readInts(path: $0) }
            if let t {
                guard t.count == n else { throw HDLError.invalidInput("truth '\(truth!)' has \(t.count) labels but the label files have \(n) rows") }
                if let bad = t.firstIndex(where: { $0 < 0 }) { throw HDLError.invalidInput("truth '\(truth!)' row \(bad) is \(t[bad]); ground truth must be class ids >= 0") }
                if let mx = t.max(), mx >= names.count {
                    if names.allSatisfy({ Int($0) != nil }) { names += (names.count ... mx).map(String.init) } else {
                        throw HDLError.invalidInput("truth '\(truth!)' has class id \(mx) but only \(names.count) class names are known")
                    }
                }
            }
            let index = Dictionary(names.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
            // Integer labels (0..C-1) get readable names from a classes.txt in RUN_DIR or beside the truth file.
            var display = names
            if classes == nil, names.enumerated().allSatisfy({ $0.element == String($0.offset) }) {
                for p in [runDir + "/classes.txt"] + (truth.map { [($0 as NSString).deletingLastPathComponent + "/classes.txt"] } ?? [])
                where fm.fileExists(atPath: p) {
                    let txt = try LabelsIO.parseClassList(p)
                    if txt.count == names.count { display = txt; break }
                }
            }
            func mapped(_ r: LoadedRun) throws -> [Int32] {
                let ids = try r.run.classNames.map { name -> Int32 in
                    guard let id = index[name] else { throw HDLError.invalidInput("label '\(name)' in '\(r.file)' is not a known class (\(names.prefix(5).joined(separator: ", "))…); give --classes") }
                    return id
                }
                return r.run.labels.map { $0 < 0 ? -1 : ids[Int($0)] }
            }
            let labelsPer = try runs.map(mapped)
            let c = names.count

            let seedArr: [Int32]
            let seedSource: String
            if let seeds {
                let s = try NPY.readInts(path: seeds)
                guard s.count == n else { throw HDLError.invalidInput("seeds '\(seeds)' has \(s.count) labels but the label files have \(n) rows") }
                seedArr = s.map { Int32($0 < 0 ? -1 : $0) }
                seedSource = "seeds from " + (seeds as NSString).lastPathComponent
            } else {
                seedArr = (0 ..< n).map { primary.run.isSeed[$0] ? labelsPer[primaryIndex][$0] : -1 }
                seedSource = "seed rows as marked in \(primary.file)"
            }
            let evaluated = seedArr.map { $0 < 0 }
            let evalCount = evaluated.filter { $0 }.count

            var methods: [ReportData.MethodResult] = []
            var accuracies: [String: Double] = [:]
            for (i, r) in runs.enumerated() {
                let l = labelsPer[i]
                var covered = 0
                for j in 0 ..< n where evaluated[j] && l[j] >= 0 { covered += 1 }
                let q = t.map { QualityMetrics.evaluate(predicted: l, truth: $0, seeds: seedArr, numClasses: c, layer: r.run.layer, confidence: r.run.confidence) }
                if let q { accuracies[r.name] = q.accuracy }
                methods.append(.init(name: r.name, file: r.file, method: r.method, metrics: q, coverage: Double(covered) / Double(max(evalCount, 1))))
            }
            let pl = labelsPer[primaryIndex]

            // Timings: every JSON in RUN_DIR that is a 'cluster --timings' file; else the main run's manifest.
            var timings: [Report.TimingSet] = []
            for e in entries where e.hasSuffix(".json") && !e.hasSuffix(".manifest.json") {
                if let d = fm.contents(atPath: runDir + "/" + e), let ts = Report.parseTimings(d, name: e) { timings.append(ts) }
            }
            if timings.isEmpty, let secs = primary.manifest?["timingsSeconds"] as? [String: Any] {
                var s: [String: Double] = [:]
                for (k, v) in secs { if let d = (v as? NSNumber)?.doubleValue { s[k] = d } }
                if !s.isEmpty {
                    timings.append(.init(name: primary.file + ".manifest.json", ranks: (primary.manifest?["ranks"] as? NSNumber)?.intValue ?? 1,
                                         phases: Report.orderedPhases(s), totalSeconds: nil))
                }
            }

            var curves: [String: [Report.BudgetPoint]] = [:], savings: [Report.BudgetSaving] = [], dataset: String?
            if let budgetTable {
                guard let d = fm.contents(atPath: budgetTable) else { throw HDLError.io(path: budgetTable, reason: "no such file or not readable") }
                let recs = try Report.parseBudgetRecords(String(decoding: d, as: UTF8.self), path: budgetTable)
                dataset = budgetDataset ?? recs.first?.dataset
                curves = Report.budgetCurves(recs, dataset: dataset ?? "", balance: budgetBalance)
                guard !curves.isEmpty else {
                    throw HDLError.invalidInput("budget table '\(budgetTable)' has no records for dataset '\(dataset ?? "")' and balance '\(budgetBalance)'")
                }
                savings = Report.budgetSavings(curves: curves)
            }

            var data = ReportData(
                runDir: runDir, primary: primary.name,
                methods: methods, classNames: display, hasTruth: t != nil, seedSource: seedSource,
                layers: Report.layerStats(labels: pl, layer: primary.run.layer, evaluated: evaluated, truth: t),
                calibration: t.map { Report.calibration(labels: pl, confidence: primary.run.confidence, truth: $0, evaluated: evaluated) } ?? [],
                classes: Report.classStats(labels: pl, seeds: seedArr, truth: t, numClasses: c),
                confusion: t.map { Report.confusion(labels: pl, truth: $0, evaluated: evaluated, numClasses: c) } ?? [],
                timings: timings, budgetCurves: curves, budgetSavings: savings,
                budgetSource: budgetTable, budgetDataset: dataset, budgetBalance: budgetTable == nil ? nil : budgetBalance,
                headline: Report.headline(method: primary.name, labels: pl, seeds: seedArr, secondsPerLabel: secondsPerLabel, accuracies: accuracies),
                created: ISO8601DateFormatter().string(from: Date()))
            data.calibrationNote = ReportData.calibrationNote(manifest: primary.manifest)
            data.balanceNote = ReportData.balanceNote(manifest: primary.manifest)
            try AtomicFile.write(ReportHTML.render(data), to: output)
            FileHandle.standardError.write(Data("hdlabel: report on \(runs.count) label file(s) in \(runDir) -> \(output)\n".utf8))
        }
    }
}
