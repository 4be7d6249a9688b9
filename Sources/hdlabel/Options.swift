import ArgumentParser
import Foundation
import HDLabelCore
import HDLabelCuration
import HDLabelIO

/// A bad option value: printed by the argument parser as one line (`Error: --gamma: nan is not allowed: expected …`),
/// before any work starts and without the usage text.
struct OptionError: Error, CustomStringConvertible {
    let description: String
    init(_ option: String, _ value: String, _ allowed: String) {
        description = "\(option): '\(value)' is not allowed: expected \(allowed)"
    }
}

/// The range checks every command's `validate()` uses, so one option name has one rule everywhere.
enum Check {
    /// An integer option in `range` (e.g. `1...`, `8...65536`).
    static func int(_ option: String, _ v: Int, _ range: some RangeExpression<Int>, _ allowed: String) throws {
        if !range.contains(v) { throw OptionError(option, "\(v)", allowed) }
    }

    static func int(_ option: String, _ v: Int?, _ range: some RangeExpression<Int>, _ allowed: String) throws {
        if let v { try int(option, v, range, allowed) }
    }

    /// A real option: NaN and ±inf are always rejected, then `ok` decides.
    static func real(_ option: String, _ v: Double, _ allowed: String, _ ok: (Double) -> Bool) throws {
        if !v.isFinite || !ok(v) { throw OptionError(option, "\(v)", allowed) }
    }

    /// Runs a configuration's own `validate()` (the one validation the CLI, the cluster and the benchmarks share)
    /// and reports a bad parameter under its option name.
    static func config(_ body: () throws -> Void) throws {
        do { try body() } catch let HDLError.invalidParameter(name, value, allowed) {
            throw OptionError("--" + name, value, allowed)
        }
    }
}

/// Options of the kNN graph, shared by `label`, `cluster` and `issues`.
struct GraphOptionGroup: ParsableArguments {
    @Option(help: "kNN graph builder: exact (all pairs), approx (k-means cells with overlap, docs/graph.md) or auto (exact below \(GraphMethod.crossover) rows, approx from there).")
    var graph: GraphMethod = .auto

    @Option(help: "Approximate graph: cells each point joins, 1...16 (the speed/recall knob: recall rises, cost grows about as its square).")
    var overlap: Int = ApproxGraphOptions(k: 1).overlap

    @Option(name: .customLong("recall-rows"), help: "Approximate graph: sample rows whose exact neighbours estimate its recall@10 (printed with a 95 % interval and kept in the manifest); 0 = no estimate.")
    var recallRows: Int = 1000

    @Option(name: .customLong("knn-graph"), help: "Reuse the graph that 'hdlabel graph -o PREFIX' wrote (PREFIX.neighbors.npy, PREFIX.similarities.npy) instead of building one.")
    var knnGraph: String?

    @Option(help: "Row tile of the exact graph's blocked sgemm (8...65536; under mpirun every rank's rows are whole tiles).")
    var tile: Int = GraphOptions.defaultTile

    func validate() throws {
        try Check.int("--tile", tile, GraphOptions.tileRange, "an integer in \(GraphOptions.tileRange)")
        try Check.int("--overlap", overlap, 1 ... 16, "an integer in 1...16")
        try Check.int("--recall-rows", recallRows, 0 ... 1_000_000, "an integer in 0...1000000")
    }

    /// The approximate builder's options (k is set by the pipeline).
    var approx: ApproxGraphOptions { ApproxGraphOptions(k: 1, overlap: overlap) }

    /// The graph `--knn-graph` names, checked against the embeddings' row count; nil without the option.
    func prebuilt(rows: Int) throws -> KNNGraph? {
        try knnGraph.map { try KNNGraphFile.read(prefix: $0, expectedRows: rows) }
    }

    /// Manifest parameters of the graph this run used, with the recall estimate when it is approximate.
    /// `normalized` gives the L2-normalised rows the graph was built from; it is called only for that estimate.
    func manifestParameters(graph g: KNNGraph, normalized: () -> Embeddings, log: (String) -> Void) -> [String: String] {
        let n = g.n
        var p = ["tile": "\(tile)", "graph_k": "\(g.k)"]
        if let knnGraph { p["graph"] = "file"; p["knn_graph"] = knnGraph; return p }
        let method = graph.resolved(n: n)
        p["graph"] = method.rawValue
        if method == .approx {
            p["graph_overlap"] = "\(overlap)"; p["graph_cells"] = "\(approx.cellCount(n: n))"
            if recallRows > 0 {
                let e = GraphRecall.estimate(g, x: normalized(), sampleSize: recallRows)
                log("approximate kNN graph: \(e.description)")
                p.merge(e.manifestParameters) { $1 }
            }
        }
        return p
    }
}



/// Options of commands run under `mpirun` (`cluster`, `issues` under MPI).
struct MPIOptionGroup: ParsableArguments {
    @Option(help: "MPI: OpenBLAS threads per rank (default: cores on this node / ranks on this node, at least 1).")
    var blasThreads: Int?

    @Option(help: "MPI: write per-phase times (max over ranks) and bytes sent as JSON to this file.")
    var timings: String?

    @Option(help: "MPI: directory for per-rank partial-graph checkpoints, reused when a restarted job matches.")
    var checkpoint: String?

    func validate() throws {
        try Check.int("--blas-threads", blasThreads, 1 ... 1024, "an integer in 1...1024")
    }

    var isUsed: Bool { blasThreads != nil || timings != nil || checkpoint != nil }
}

/// The embeddings' input options, shared by every command that reads embeddings.
struct EmbeddingsInput: ParsableArguments {
    @Option(name: .customLong("raw-shape"), help: "Shape ROWSxCOLS when EMBEDDINGS is raw little-endian float32.")
    var rawShape: RawShape?

    @Option(help: "Class names in id order: comma-separated, or a file with one name per line; every listed class must have a seed.")
    var classes: String?

    /// The class list, read once (file or comma-separated list); nil when `--classes` is not given.
    func classList() throws -> [String]? { try classes.map { try LabelsIO.parseClassList($0) } }

    /// Reads the embeddings: a `.npy` (float32/float64), a directory or comma-separated list of `.npy` shards
    /// (`EmbeddingFiles`), or raw float32 when `--raw-shape` is given.
    func read(_ path: String) throws -> Embeddings {
        if let rawShape { return try RawF32.read(path: path, rows: rawShape.rows, cols: rawShape.cols) }
        return try EmbeddingFiles.open(path).read()
    }
}

/// `ROWSxCOLS`, e.g. `60000x50`.
struct RawShape: ExpressibleByArgument {
    let rows: Int, cols: Int
    init?(argument: String) {
        let p = argument.lowercased().split(separator: "x").compactMap { Int($0) }
        guard p.count == 2, p[0] >= 1, p[1] >= 1 else { return nil }
        rows = p[0]; cols = p[1]
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

extension KSetting: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension IssueRule: ExpressibleByArgument {}
extension ReviewRanking: ExpressibleByArgument {}
extension ItemKind: ExpressibleByArgument {}
