import HDLabelBench
import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore

/// `hdlabel bench …`: benchmarks. Registered as a subcommand by the main command.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks hdlabel against baselines.",
        subcommands: [BenchQuality.self, GraphBenchCommand.self, BenchNoise.self, BenchReview.self]
    )
}

/// `hdlabel bench quality`: label quality over dataset × budget × balance × seed.
struct BenchQuality: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quality",
        abstract: "Label quality of every method on seeded splits (accuracy, macro-F1, tail recall).",
        discussion: """
        Builds splits from ground truth (seed labels per class, optional long tail with imbalance rho), runs every \
        Swift method on one kNN graph per split and, when a Python is available, the scikit-learn baselines \
        (Scripts/baselines.py). Writes records.csv, records.json, splits.json, table.md and manifest.json \
        (written last) to --out, and prints the markdown table. Exits non-zero if any method scores NaN or below \
        chance (1/C) on any split.

        Datasets: Fashion-MNIST (Debian dataset-fashion-mnist; pixels/255 then PCA in Swift) unless --no-fashion, \
        plus any --dataset NAME=EMB.npy,LABELS.npy.
        """
    )

    @Flag(help: "Smoke run (< 3 min on 2 cores): 5,000 Fashion-MNIST rows, 10 labels/class, balanced and rho=10, one seed.")
    var quick = false

    @Option(name: .customLong("dataset"), help: "Extra dataset NAME=EMB.npy,LABELS.npy (repeatable).")
    var extraDatasets: [String] = []

    @Flag(help: "Leave Fashion-MNIST out.")
    var noFashion = false

    @Option(help: "Fashion-MNIST rows to use (first N of train+test; default 70000, quick 5000).")
    var fashionN: Int?

    @Option(help: "PCA components for Fashion-MNIST.")
    var pca = 50

    @Option(help: "Comma-separated budgets: labels per class (1,4,10,40) or total=N.")
    var budgets: String?

    @Option(help: "Comma-separated balance settings: balanced, natural, rhoR, rhoR-ubalanced, rhoR-ureversed.")
    var balances: String?

    @Option(help: "Number of split seeds (first-seed ..< first-seed+N).")
    var seeds: Int?

    @Option(name: .customLong("first-seed"), help: "First split seed (defaults were chosen on seeds 0-2; report 3-5 as held-out seeds).")
    var firstSeed: Int = 0

    @Option(help: "Cap on labeled+unlabeled points per split (0 = no cap; default 20000).")
    var maxPoints: Int?

    @Option(help: "Comma-separated Swift methods (default: all).")
    var methods: String?

    @Option(help: "Python interpreter for the scikit-learn baselines (default .venv/bin/python if it exists).")
    var python: String?

    @Flag(help: "Do not run the Python baselines.")
    var noPython = false

    @Option(help: "Path of baselines.py.")
    var script = "Scripts/baselines.py"

    @Option(help: "Output directory (default runs/bench-quality-TIMESTAMP).")
    var out: String?

    @Option(help: "kNN graph builder of every split: exact (default), approx or auto (exact below \(GraphMethod.crossover) rows).")
    var graph: GraphMethod = .exact

    /// Labeling options (HDL's --evidence, --class-prior, --k ...) for every Swift method the bench runs; --method
    /// is ignored here (see --methods). Ablations in docs/method.md are runs of this command with such options.
    @OptionGroup(title: "Labeling options (applied to every Swift method; --method is ignored, use --methods)")
    var labeling: LabelingOptions

    func validate() throws {
        try Check.int("--pca", pca, 1 ... 784, "an integer in 1...784")
        try Check.int("--seeds", seeds, 1 ... 1000, "an integer in 1...1000")
        try Check.int("--fashion-n", fashionN, 100 ... 70000, "an integer in 100...70000")
        try Check.int("--first-seed", firstSeed, 0 ... 1_000_000, "an integer in 0...1000000")
        try Check.int("--max-points", maxPoints, 0..., "an integer >= 0 (0 = no cap)")
        _ = try budgetList; _ = try balanceList; _ = try methodList
    }

    var budgetList: [LabelBudget] { get throws { try parseList(budgets ?? (quick ? "10" : "1,4,10,40"), "--budgets") { LabelBudget($0) } } }
    var balanceList: [BalanceSetting] {
        get throws { try parseList(balances ?? (quick ? "balanced,rho10" : "balanced,rho10,rho100"), "--balances") { BalanceSetting($0) } }
    }
    var methodList: [LabelMethod] {
        get throws { try parseList(methods ?? LabelMethod.allCases.map(\.rawValue).joined(separator: ","), "--methods") { LabelMethod(rawValue: $0) } }
    }

    func run() throws {
        let started = Date()
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        func fail(_ s: String) -> ExitCode { log("error: " + s); return ExitCode(2) }

        let budgetList = try budgetList, balanceList = try balanceList, methodList = try methodList
        let seedCount = seeds ?? (quick ? 1 : 3)
        let cap = maxPoints ?? 20000

        // Datasets.
        var datasets: [LabeledDataset] = []
        var notes: [String] = []
        if !noFashion {
            if let reason = FashionMNIST.unavailableReason() {
                notes.append("fashion skipped: \(reason)")
                log("skipping Fashion-MNIST: \(reason)")
            } else {
                let n = fashionN ?? (quick ? 5000 : 70000)
                log("loading Fashion-MNIST (\(n) rows) and fitting PCA-\(pca) …")
                let t0 = Date()
                datasets.append(try fashionPCA(components: pca, n: n))
                log(String(format: "  done in %.1fs", Date().timeIntervalSince(t0)))
            }
        }
        for spec in extraDatasets {
            do { datasets.append(try LabeledDataset.load(spec: spec)) } catch { throw fail("--dataset \(spec): \(error)") }
        }
        if datasets.isEmpty { throw fail("no dataset to run (\(notes.joined(separator: "; ")))") }

        // Python baselines.
        var py: PythonBaselines?
        if !noPython {
            let exe = python ?? (FileManager.default.isExecutableFile(atPath: ".venv/bin/python") ? ".venv/bin/python" : nil)
            if let exe {
                guard FileManager.default.fileExists(atPath: script) else { throw fail("baselines script '\(script)' not found (run from the repository root or pass --script)") }
                py = PythonBaselines(python: exe, script: script)
            } else {
                notes.append("python baselines skipped: no --python and no .venv/bin/python (create it with Scripts/venv.sh)")
                log("note: Python baselines skipped (no --python, no .venv/bin/python; run Scripts/venv.sh)")
            }
        }

        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "")
        let outDir = out ?? "runs/bench-quality-\(stamp)"
        var bench = QualityBench(datasets: datasets, budgets: budgetList, balances: balanceList, seeds: (firstSeed ..< firstSeed + seedCount).map(UInt64.init),
                                 maxPoints: cap > 0 ? cap : nil, methods: methodList, config: labeling.config(), python: py, workDir: outDir + "/.work", log: log)
        bench.graph = graph
        let (records, splits) = try bench.run()
        try? FileManager.default.removeItem(atPath: outDir + "/.work")

        let table = QualityBench.markdown(records)
        let failures = QualityBench.failures(records)
        let enc = QualityBench.jsonEncoder()
        try AtomicFile.write(QualityBench.csv(records), to: outDir + "/records.csv")
        try AtomicFile.write(enc.encode(records), to: outDir + "/records.json")
        try AtomicFile.write(enc.encode(splits), to: outDir + "/splits.json")
        try AtomicFile.write(table, to: outDir + "/table.md")
        let manifest = BenchManifest(
            command: CommandLine.arguments.joined(separator: " "), started: ISO8601DateFormatter().string(from: started),
            seconds: Date().timeIntervalSince(started), quick: quick,
            datasets: datasets.map { .init(name: $0.name, rows: $0.embeddings.rows, dims: $0.embeddings.cols, classes: $0.numClasses, provenance: $0.provenance) },
            budgets: budgetList.map(\.description), balances: balanceList.map(\.description), seeds: (firstSeed ..< firstSeed + seedCount).map(UInt64.init),
            maxPoints: cap, methods: QualityBench.methodOrder(records), python: py.map { "\($0.python) \($0.script)" },
            splits: splits.map { .init(hash: $0.hash, spec: $0.spec.label, n: $0.indices.count, labeled: $0.labeled.count) },
            notes: notes, failures: failures.map { "\($0.dataset) \($0.balance) \($0.budget) seed \($0.seed) \($0.method): accuracy \($0.accuracy) (chance \($0.chance))\($0.error.map { " — \($0)" } ?? "")" })
        try AtomicFile.write(enc.encode(manifest), to: outDir + "/manifest.json")

        print(table)
        log("results in \(outDir)")
        if !failures.isEmpty {
            log("FAILED: \(failures.count) result(s) are NaN or below chance:")
            for f in manifest.failures { log("  " + f) }
            throw ExitCode(1)
        }
    }

}

/// A comma-separated option value, every item parsed by `parse`; an empty list or an unknown item names the option.
func parseList<T>(_ text: String, _ option: String, _ parse: (String) -> T?) throws -> [T] {
    let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    if items.isEmpty { throw OptionError(option, text, "a comma-separated list") }
    return try items.map { s in
        guard let v = parse(s) else { throw OptionError(option, text, "a comma-separated list of known values ('\(s)' is not one)") }
        return v
    }
}

struct BenchManifest: Codable {
    struct DatasetInfo: Codable { var name: String; var rows: Int; var dims: Int; var classes: Int; var provenance: [String: String] }
    struct SplitInfo: Codable { var hash: String; var spec: String; var n: Int; var labeled: Int }
    var command: String
    var started: String
    var seconds: Double
    var quick: Bool
    var datasets: [DatasetInfo]
    var budgets: [String]
    var balances: [String]
    var seeds: [UInt64]
    var maxPoints: Int
    var methods: [String]
    var python: String?
    var splits: [SplitInfo]
    var notes: [String]
    var failures: [String]
}
