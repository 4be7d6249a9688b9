import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore
import HDLabelCluster

/// `hdlabel graph EMB.npy -o PREFIX`: builds the kNN graph once and writes it for later runs.
struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Build the kNN graph of EMBEDDINGS and write PREFIX.neighbors.npy, PREFIX.similarities.npy, PREFIX.manifest.json.",
        discussion: """
        neighbors: n × k int32 ids, similarities: n × k float32 cosine similarities, each row by similarity desc, \
        ties by smaller id, never the row itself. The manifest holds the builder, its parameters and the recall@10 \
        estimate (with 95 % CI) on --recall-rows sample rows against exact neighbours. Every file is written \
        atomically, the manifest last. Under mpirun (or with --mpi) every rank reads and builds only its rows (the \
        ring for exact, cells owned by ranks for approx: the same graph as one process) and writes them at their \
        offsets into the staged files; root renames them once every rank has succeeded.
        """
    )
    @Argument(help: "Embeddings (.npy float32/float64).") var embeddings: String
    @Option(name: .shortAndLong, help: "Output prefix.") var output: String
    @Option(help: "Builder: exact, approx or auto (exact below \(GraphMethod.crossover) points).") var graph: GraphMethod = .auto
    @Option(help: "Neighbours per point.") var k: Int = 30
    @Option(help: "Approximate builder: cells each point joins (the speed/recall knob; cost grows about as its square).")
    var overlap: Int = ApproxGraphOptions(k: 1).overlap
    @Option(name: .customLong("recall-rows"), help: "Sample rows for the recall estimate (0 = none).") var recallRows: Int = 1000
    @Option(help: "Row tile of the exact graph's blocked sgemm (8...65536; under mpirun every rank's rows are whole tiles).")
    var tile: Int = GraphOptions.defaultTile
    @Flag(help: "Run as an MPI job (implied under mpirun).") var mpi = false
    @OptionGroup var mpiOptions: MPIOptionGroup

    var underMPI: Bool { mpi || ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    func validate() throws {
        try Check.int("--k", k, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
        try Check.int("--overlap", overlap, 1 ... 16, "an integer in 1...16")
        try Check.int("--recall-rows", recallRows, 0 ... 1_000_000, "an integer in 0...1000000")
        try Check.int("--tile", tile, GraphOptions.tileRange, "an integer in \(GraphOptions.tileRange)")
        if !underMPI, let c = mpiOptions.checkpoint { throw OptionError("--checkpoint", c, "an MPI run (mpirun ... hdlabel graph)") }
        if !underMPI, let t = mpiOptions.timings { throw OptionError("--timings", t, "an MPI run (mpirun ... hdlabel graph)") }
    }

    func parameters(method: GraphMethod, n: Int, opts: ApproxGraphOptions) -> [String: String] {
        var params = ["k": "\(k)", "method": graph.rawValue]
        if method == .approx {
            params.merge(["overlap": "\(opts.overlap)", "cells": "\(opts.cellCount(n: n))", "refineRounds": "\(opts.refineRounds)",
                          "kmeansIterations": "\(opts.kmeansIterations)", "samplePerCell": "\(opts.samplePerCell)", "seed": "\(opts.seed)"]) { $1 }
        } else {
            params["tile"] = "\(tile)"
        }
        return params
    }

    /// Every rank builds its rows (`ClusterGraph`, no labels) and writes them into the shared files.
    func runMPI() throws {
        var input = ClusterGraphInput(embeddings: embeddings, labels: "")
        input.graph = graph; input.approx = ApproxGraphOptions(k: k, overlap: overlap); input.recallRows = recallRows
        input.tile = tile; input.checkpointDir = mpiOptions.checkpoint
        setBLASThreadsPerRank(mpiOptions.blasThreads)
        let err = FileHandle.standardError
        try runOnRanks { comm in
            let start = WallClock.now()
            var t = PhaseTimings()
            let say: (String) -> Void = { msg in if comm.isRoot { err.write(Data(("hdlabel: " + msg + "\n").utf8)) } }
            let g = try ClusterGraph.build(comm: comm, input: input, needRows: false, timings: &t, log: say,
                                           readLabels: { _, _ in SeedLabels(seeds: [], classNames: []) },
                                           plan: { n, _, _ in
                                               guard k < n else { throw HDLError.invalidParameter(name: "k", value: "\(k)", allowed: "k < number of points (\(n))") }
                                               return k
                                           })
            let built = try comm.allreduce(WallClock.now() - start, .max)
            t.mark("graph", comm)
            let timings = try t.finish(over: comm, start: start, writeTo: mpiOptions.timings,
                                       info: ["n": "\(g.n)", "d": "\(g.d)", "k": "\(k)", "method": g.method.rawValue])
            var params = parameters(method: g.method, n: g.n, opts: input.approx)
            params["ranks"] = "\(comm.size)"
            let manifest = comm.isRoot
                ? KNNGraphFile.Manifest(command: CommandLine.arguments.joined(separator: " "), builder: g.method.rawValue, parameters: params,
                                        input: RunManifest.fileHash(embeddings), n: g.n, k: k, dimensions: g.d, recall: g.recall,
                                        seconds: timings.maxSeconds.filter { $0.value > 0 }.merging(["graph": built]) { $1 })
                : nil
            try comm.collective("writing the graph files") {
                try DistributedGraphFile.write(local: g.local, rows: g.rows, n: g.n, prefix: output, manifest: manifest, comm: comm)
            }
            say("graph: \(g.n) × \(k) (\(g.method.rawValue)) on \(comm.size) rank(s) in \(String(format: "%.1f", built)) s\(g.recall.map { ", " + $0.description } ?? "") → \(output).*")
        }
    }

    func run() throws {
        if underMPI { try runMPI(); return }
        try runReportingErrors {
            var timer = PhaseTimer<String>()
            var x = try timer.time("read") { try NPY.readFloat32Matrix(path: embeddings) }
            try x.validate()
            timer.time("normalise") { x.normalizeInPlace() }
            let method = graph.resolved(n: x.rows)
            let opts = ApproxGraphOptions(k: k, overlap: overlap)
            let g = try timer.time("graph") { try KNNGraphBuilder.graph(of: x, k: k, method: method, tile: tile, approx: opts) }
            let rec = recallRows > 0 && method == .approx ? timer.time("recall") { GraphRecall.estimate(g, x: x, sampleSize: recallRows) } : nil
            let params = parameters(method: method, n: x.rows, opts: opts)
            let manifest = KNNGraphFile.Manifest(command: CommandLine.arguments.joined(separator: " "), builder: method.rawValue, parameters: params,
                                                 input: RunManifest.fileHash(embeddings), n: x.rows, k: k, dimensions: x.cols, recall: rec,
                                                 seconds: timer.seconds)
            try KNNGraphFile.write(g, prefix: output, manifest: manifest)
            FileHandle.standardError.write(Data("graph: \(x.rows) × \(k) (\(method.rawValue)) in \(String(format: "%.1f", timer.seconds["graph"] ?? 0)) s\(rec.map { ", " + $0.description } ?? "") → \(output).*\n".utf8))
        }
    }
}
