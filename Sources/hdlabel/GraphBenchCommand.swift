import HDLabelIO
import HDLabelBench
import ArgumentParser
import Foundation
import HDLabelCore

extension GraphMethod: ExpressibleByArgument {}

struct GraphBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "kNN graph speed: vs a plain cblas_sgemm of the same products, or (--graph) exact vs approximate builders with recall.",
        discussion: """
        Without --graph: the exact builder against the sgemm floor on random unit vectors (--n, --d, --tile). \
        With --graph exact|approx|auto: builds the graph of --input EMB.npy (or random unit vectors) and prints n, d, \
        build seconds, recall@10 estimated on --recall-rows sample rows (95 % CI), the true recall when --true-recall, \
        and peak RSS. --exact-rows R times the exact builder on R query rows only and extrapolates to n.
        """
    )
    @Option(help: "Comma-separated point counts.") var n: String = "20000"
    @Option(help: "Comma-separated dimensions.") var d: String = "50,384"
    @Option(help: "Neighbours per point.") var k: Int = 30
    @Option(help: "Comma-separated tile sizes.") var tile: String = "\(GraphOptions.defaultTile)"
    @Option(help: "Repeats (best is reported).") var repeats: Int = 3
    @Option(help: "Builder: exact, approx or auto (exact below \(GraphMethod.crossover) points).") var graph: GraphMethod?
    @Option(help: "Approximate builder: cells each point joins (the speed/recall knob).") var overlap: Int = ApproxGraphOptions(k: 1).overlap
    @Option(help: "Approximate builder: k-means cells (default overlap·√n).") var cells: Int?
    @Option(help: "Approximate builder: refinement rounds.") var refine: Int = ApproxGraphOptions(k: 1).refineRounds
    @Option(help: "Embeddings (.npy) to build on (L2-normalised here).") var input: String?
    @Option(name: .customLong("recall-rows"), help: "Sample rows for the recall estimate.") var recallRows: Int = 1000
    @Flag(name: .customLong("true-recall"), help: "Also build the exact graph and report the true recall@10.") var trueRecall = false
    @Option(name: .customLong("exact-rows"), help: "With --graph exact: time only this many query rows and extrapolate to n.") var exactRows: Int?
    @Option(help: "Also write the result row as JSON here.") var json: String?

    func validate() throws {
        _ = try parseList(n, "--n") { Int($0).flatMap { $0 >= 2 ? $0 : nil } }
        _ = try parseList(d, "--d") { Int($0).flatMap { $0 >= 1 ? $0 : nil } }
        _ = try parseList(tile, "--tile") { Int($0).flatMap { GraphOptions.tileRange.contains($0) ? $0 : nil } }
        try Check.int("--k", k, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
        try Check.int("--repeats", repeats, 1 ... 100, "an integer in 1...100")
        try Check.int("--overlap", overlap, 1 ... 16, "an integer in 1...16")
        try Check.int("--cells", cells, 1 ... 10_000_000, "an integer in 1...10000000")
        try Check.int("--refine", refine, 0 ... 10, "an integer in 0...10")
        try Check.int("--recall-rows", recallRows, 0 ... 1_000_000, "an integer in 0...1000000")
        try Check.int("--exact-rows", exactRows, 1 ... 100_000_000, "an integer >= 1")
    }

    func run() throws {
        if let method = graph { try runBuilders(method); return }
        func ints(_ s: String) -> [Int] { s.split(separator: ",").compactMap { Int($0) } }
        // graph GFLOP/s counts all n²·d products (the builder multiplies about half: each unordered pair once).
        print("| n | d | k | tile | graph s | sgemm s | graph GFLOP/s | sgemm GFLOP/s | ratio sgemm/graph | sgemm n²/2 s | ratio sgemm n²/2 / graph |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for nn in ints(n) { for dd in ints(d) { for tt in ints(tile) {
            let r = try GraphBenchmark.run(n: nn, d: dd, k: k, tile: tt, repeats: repeats)
            print(String(format: "| %d | %d | %d | %d | %.3f | %.3f | %.0f | %.0f | %.2f | %.3f | %.2f |", r.n, r.d, r.k, r.tile, r.graphSeconds,
                         r.sgemmSeconds, r.graphGFLOPs, r.sgemmGFLOPs, r.ratio, r.halfSgemmSeconds, r.halfRatio))
        } } }
        print(GraphBenchCommand.kernelNote)
    }

    static var kernelNote: String {
        "threads: OpenBLAS \(BLASThreads.current); kernel: \(BLASThreads.kernel); OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "(unset)")"
    }

    struct Result: Codable {
        var engine: String, n: Int, d: Int, k: Int, seconds: Double, extrapolated: Bool
        var recall: GraphRecall.Estimate?, trueRecall: Double?, peakRSSBytes: Int, phases: [String: Double], parameters: [String: String]
        var kernel = BLASThreads.kernel
    }

    func runBuilders(_ method: GraphMethod) throws {
        var x: Embeddings
        if let input {
            x = try NPY.readFloat32Matrix(path: input)
            try x.validate()
            x.normalizeInPlace()
        } else {
            guard let nn = Int(n), let dd = Int(d) else { throw ValidationError("--graph without --input needs one --n and one --d") }
            x = GraphBenchmark.randomUnit(n: nn, d: dd, seed: 7)
        }
        let resolved = method.resolved(n: x.rows)
        var opts = ApproxGraphOptions(k: k, overlap: overlap, cells: cells, refineRounds: refine)
        var res = Result(engine: resolved == .exact ? "hdlabel exact" : "hdlabel approx", n: x.rows, d: x.cols, k: k, seconds: 0, extrapolated: false,
                         recall: nil, trueRecall: nil, peakRSSBytes: 0, phases: [:], parameters: ["method": method.rawValue])
        var g: KNNGraph?
        if resolved == .exact, let r = exactRows, r < x.rows {
            let (s, share) = KNNGraphBuilder.timeExactRows(x, k: k, rows: r)
            res.seconds = s / share; res.extrapolated = true
            res.parameters["exactRows"] = "\(r)"
        } else if resolved == .exact {
            let t0 = DispatchTime.now().uptimeNanoseconds
            g = try KNNGraphBuilder.build(x, options: GraphOptions(k: k))
            res.seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        } else {
            opts.k = k
            var stats = ApproxKNNGraph.Stats(), phases = PhaseTimer<String>()
            let t0 = DispatchTime.now().uptimeNanoseconds
            g = try ApproxKNNGraph.build(x, options: opts, stats: &stats, timing: &phases)
            res.seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            res.phases = phases.seconds
            res.parameters.merge(["overlap": "\(opts.overlap)", "cells": "\(stats.cells)", "largestCell": "\(stats.largestCell)", "imbalance": String(format: "%.2f", stats.imbalance),
                                  "refineRounds": "\(opts.refineRounds)", "seed": "\(opts.seed)"]) { $1 }
        }
        res.peakRSSBytes = peakRSSBytes()
        if let g {
            if recallRows > 0 { res.recall = GraphRecall.estimate(g, x: x, sampleSize: recallRows) }
            if trueRecall {
                let exact = resolved == .exact ? g : try KNNGraphBuilder.build(x, options: GraphOptions(k: min(k, 10)))
                res.trueRecall = GraphRecall.trueRecall(g, exact: exact)
            }
        }
        print("| engine | n | d | k | build s | recall@10 (95% CI) | true recall@10 | peak RSS MiB |")
        print("|---|---|---|---|---|---|---|---|")
        let rec = res.recall.map { String(format: "%.4f (%.4f–%.4f)", $0.recall, $0.lower, $0.upper) } ?? "-"
        print(String(format: "| %@ | %d | %d | %d | %.2f%@ | %@ | %@ | %.0f |", res.engine, res.n, res.d, res.k, res.seconds, res.extrapolated ? " (extrapolated)" : "",
                     rec, res.trueRecall.map { String(format: "%.4f", $0) } ?? "-", Double(res.peakRSSBytes) / 1048576))
        if !res.phases.isEmpty { print("phases: " + res.phases.sorted { $0.key < $1.key }.map { String(format: "%@ %.2fs", $0.key, $0.value) }.joined(separator: ", ")) }
        print(GraphBenchCommand.kernelNote)
        if let json {
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try enc.encode(res), to: json)
        }
    }
}
