import HDLabelBench
import HDLabelReport
import HDLabelCuration
import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore

/// `hdlabel bench review`: the review loop with simulated reviewers (ground truth as answers).
struct BenchReview: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Accuracy after rounds of K reviews chosen by each ranking vs K random reviews (simulated reviewers).",
        discussion: """
        Per seed: draw --per-class seed labels per class, label with HDL (default configuration), then for each round \
        choose K non-seed samples with a ranking, answer them with the ground truth, add them as seeds and relabel. \
        Reports accuracy on all rows (reviewed rows count as correct, as they would for a user) and on the rows never \
        reviewed and never seeded (what the extra seeds did for the rest).
        """
    )
    @Option(name: .customLong("dataset"), help: "Use NAME=EMB.npy,LABELS.npy instead of Fashion-MNIST.") var dataset: String?
    @Option(help: "Fashion-MNIST rows (first N of train+test).") var fashionN = 20000
    @Option(help: "PCA components for Fashion-MNIST.") var pca = 50
    @Option(help: "Initial seed labels per class.") var perClass = 10
    @Option(help: "Reviews per round.") var count = 100
    @Option(help: "Review rounds.") var rounds = 3
    @Option(help: "Number of seeds (0..<N).") var seeds = 3
    @Option(help: "Comma-separated rankings (\(ReviewRanking.allCases.map(\.rawValue).joined(separator: ", "))); add ':nodiv' to turn diversity off.")
    var rankings = "random,confidence,disagreement,uncertainty,central,uncertainty:nodiv"
    @Option(help: "Output directory (default runs/bench-review-TIMESTAMP).") var out: String?

    /// `--rankings`: NAME or NAME:nodiv items → (ranking, diversity, label).
    func strategies() throws -> [(ReviewRanking, Bool, String)] {
        try parseList(rankings, "--rankings") { s -> (ReviewRanking, Bool, String)? in
            let parts = s.split(separator: ":")
            guard let r = ReviewRanking(rawValue: String(parts[0])), parts.count == 1 || (parts.count == 2 && parts[1] == "nodiv") else { return nil }
            return (r, parts.count == 1, s)
        }
    }

    func validate() throws {
        _ = try strategies()
        try Check.int("--fashion-n", fashionN, 100 ... 70000, "an integer in 100...70000")
        try Check.int("--pca", pca, 1 ... 784, "an integer in 1...784")
        try Check.int("--per-class", perClass, 1..., "an integer >= 1")
        try Check.int("--count", count, 1..., "an integer >= 1")
        try Check.int("--rounds", rounds, 1 ... 100, "an integer in 1...100")
        try Check.int("--seeds", seeds, 1 ... 1000, "an integer in 1...1000")
    }

    func run() throws {
        let started = Date()
        func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        let ds: LabeledDataset
        if let dataset { ds = try LabeledDataset.load(spec: dataset) } else {
            if let reason = FashionMNIST.unavailableReason() { throw ValidationError(reason) }
            ds = try fashionPCA(components: pca, n: fashionN)
        }
        let strategies = try strategies()
        let c = ds.numClasses, n = ds.embeddings.rows
        let config = LabelingConfig()
        let t0 = Date()
        let graph = try KNNGraphBuilder.build(ds.embeddings.l2Normalized(), options: GraphOptions(k: config.graphK(n: n)))
        log(String(format: "%@: %d rows, graph in %.1fs", ds.name, n, Date().timeIntervalSince(t0)))
        let names = (0 ..< c).map(String.init)

        // acc[strategy][round] over seeds: (all rows, never-reviewed rows)
        var acc: [String: [[(Double, Double)]]] = [:]
        for s in 0 ..< seeds {
            var rng = SplitMix64(seed: UInt64(s) ^ 0xA11CE)
            var byClass = [[Int]](repeating: [], count: c)
            for i in 0 ..< n { byClass[ds.labels[i]].append(i) }
            var initial = [Int32](repeating: -1, count: n)
            for y in 0 ..< c { var rows = byClass[y]; rng.shuffle(&rows); for i in rows.prefix(perClass) { initial[i] = Int32(y) } }
            let first = try Labeling.run(graph: graph, seeds: initial, numClasses: c, config: config)
            for (ranking, diverse, name) in strategies {
                var seedsNow = initial, result = first
                var reviewed = [Bool](repeating: false, count: n)
                var row: [(Double, Double)] = [score(result.labels, ds.labels, seedsNow, reviewed, initial)]
                for round in 0 ..< rounds {
                    let run = RunLabels(result, classNames: names)
                    let items = Review.select(run: run, graph: graph, count: count, ranking: ranking, diverse: diverse,
                                              seed: UInt64(s * 1000 + round))
                    for it in items { seedsNow[it.id] = Int32(ds.labels[it.id]); reviewed[it.id] = true }
                    result = try Labeling.run(graph: graph, seeds: seedsNow, numClasses: c, config: config)
                    row.append(score(result.labels, ds.labels, seedsNow, reviewed, initial))
                }
                acc[name, default: []].append(row)
                log("seed \(s) \(name): " + row.map { String(format: "%.4f", $0.0) }.joined(separator: " → "))
            }
        }
        var table = "| ranking | " + (0 ... rounds).map { $0 == 0 ? "start (\(perClass)/class)" : "after round \($0) (+\($0 * count))" }.joined(separator: " | ")
            + " | never-reviewed rows after round \(rounds) |\n|---|" + (0 ... rounds).map { _ in "---:|" }.joined() + "---:|\n"
        for (_, _, name) in strategies {
            let runs = acc[name] ?? []
            table += "| \(name) | " + (0 ... rounds).map { r -> String in
                let ms = meanStd(runs.map { $0[r].0 })
                return String(format: "%.4f ± %.4f", ms.mean, ms.std)
            }.joined(separator: " | ")
            let rest = meanStd(runs.map { $0[rounds].1 })
            table += String(format: " | %.4f ± %.4f |\n", rest.mean, rest.std)
        }
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "")
        let outDir = out ?? "runs/bench-review-\(stamp)"
        let header = "<!-- \(CommandLine.arguments.joined(separator: " ")) on \(ds.name) n=\(n), \(seeds) seeds, \(String(format: "%.0f", Date().timeIntervalSince(started))) s -->\n"
        try AtomicFile.write(Data((header + table).utf8), to: outDir + "/table.md")
        print(table)
        log("results in \(outDir)")
    }

    /// (accuracy on all rows, accuracy on rows that were neither initial seeds nor reviewed).
    func score(_ pred: [Int32], _ truth: [Int], _ seeds: [Int32], _ reviewed: [Bool], _ initial: [Int32]) -> (Double, Double) {
        var all = 0, rest = 0, restN = 0
        for i in 0 ..< truth.count {
            let ok = Int(pred[i]) == truth[i]
            if ok { all += 1 }
            if initial[i] < 0 && !reviewed[i] { restN += 1; if ok { rest += 1 } }
        }
        return (Double(all) / Double(truth.count), Double(rest) / Double(max(restN, 1)))
    }
}
