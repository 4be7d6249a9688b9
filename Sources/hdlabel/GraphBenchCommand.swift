import HDLabelBench
import ArgumentParser
import Foundation
import HDLabelCore

struct GraphBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "kNN graph speed vs a plain cblas_sgemm of the same products, measured in the same run."
    )
    @Option(help: "Comma-separated point counts.") var n: String = "20000"
    @Option(help: "Comma-separated dimensions.") var d: String = "50,384"
    @Option(help: "Neighbours per point.") var k: Int = 30
    @Option(help: "Comma-separated tile sizes.") var tile: String = "\(GraphOptions.defaultTile)"
    @Option(help: "Repeats (best is reported).") var repeats: Int = 3

    func validate() throws {
        _ = try parseList(n, "--n") { Int($0).flatMap { $0 >= 2 ? $0 : nil } }
        _ = try parseList(d, "--d") { Int($0).flatMap { $0 >= 1 ? $0 : nil } }
        _ = try parseList(tile, "--tile") { Int($0).flatMap { GraphOptions.tileRange.contains($0) ? $0 : nil } }
        try Check.int("--k", k, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
        try Check.int("--repeats", repeats, 1 ... 100, "an integer in 1...100")
    }

    func run() throws {
        func ints(_ s: String) -> [Int] { s.split(separator: ",").compactMap { Int($0) } }
        print("| n | d | k | tile | graph s | sgemm s | graph GFLOP/s | sgemm GFLOP/s | ratio sgemm/graph |")
        print("|---|---|---|---|---|---|---|---|---|")
        for nn in ints(n) { for dd in ints(d) { for tt in ints(tile) {
            let r = try GraphBenchmark.run(n: nn, d: dd, k: k, tile: tt, repeats: repeats)
            print(String(format: "| %d | %d | %d | %d | %.3f | %.3f | %.0f | %.0f | %.2f |", r.n, r.d, r.k, r.tile, r.graphSeconds, r.sgemmSeconds, r.graphGFLOPs, r.sgemmGFLOPs, r.ratio))
        } } }
        print("threads: OpenBLAS \(BLASThreads.current); OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "(unset)")")
    }
}
