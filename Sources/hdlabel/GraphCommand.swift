import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore

/// `hdlabel graph EMB.npy -o PREFIX`: builds the kNN graph once and writes it for later runs.
struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Build the kNN graph of EMBEDDINGS and write PREFIX.neighbors.npy, PREFIX.similarities.npy, PREFIX.manifest.json.",
        discussion: """
        neighbors: n × k int32 ids, similarities: n × k float32 cosine similarities, each row by similarity desc, \
        ties by smaller id, never the row itself. The manifest holds the builder, its parameters and the recall@10 \
        estimate (with 95 % CI) on --recall-rows sample rows against exact neighbours. Every file is written \
        atomically, the manifest last.
        """
    )
    @Argument(help: "Embeddings (.npy float32/float64).") var embeddings: String
    @Option(name: .shortAndLong, help: "Output prefix.") var output: String
    @Option(help: "Builder: exact, approx or auto (exact below \(GraphMethod.crossover) points).") var graph: GraphMethod = .auto
    @Option(help: "Neighbours per point.") var k: Int = 30
    @Option(help: "Approximate builder: cells each point joins (the speed/recall knob; cost grows about as its square).")
    var overlap: Int = ApproxGraphOptions(k: 1).overlap
    @Option(name: .customLong("recall-rows"), help: "Sample rows for the recall estimate (0 = none).") var recallRows: Int = 1000

    func validate() throws {
        try Check.int("--k", k, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
        try Check.int("--overlap", overlap, 1 ... 16, "an integer in 1...16")
        try Check.int("--recall-rows", recallRows, 0 ... 1_000_000, "an integer in 0...1000000")
    }

    func run() throws {
        try runReportingErrors {
            var timer = PhaseTimer<String>()
            var x = try timer.time("read") { try NPY.readFloat32Matrix(path: embeddings) }
            try x.validate()
            timer.time("normalise") { x.normalizeInPlace() }
            let method = graph.resolved(n: x.rows)
            let opts = ApproxGraphOptions(k: k, overlap: overlap)
            let g = try timer.time("graph") { try KNNGraphBuilder.build(x, method: method, k: k, approx: opts) }
            let rec = recallRows > 0 ? timer.time("recall") { GraphRecall.estimate(g, x: x, sampleSize: recallRows) } : nil
            var params = ["k": "\(k)", "method": graph.rawValue]
            if method == .approx {
                params.merge(["overlap": "\(opts.overlap)", "cells": "\(opts.cellCount(n: x.rows))", "refineRounds": "\(opts.refineRounds)",
                              "kmeansIterations": "\(opts.kmeansIterations)", "samplePerCell": "\(opts.samplePerCell)", "seed": "\(opts.seed)"]) { $1 }
            } else {
                params["tile"] = "\(GraphOptions.defaultTile)"
            }
            let manifest = KNNGraphFile.Manifest(command: CommandLine.arguments.joined(separator: " "), builder: method.rawValue, parameters: params,
                                                 input: RunManifest.fileHash(embeddings), n: x.rows, k: k, dimensions: x.cols, recall: rec,
                                                 seconds: timer.seconds)
            try KNNGraphFile.write(g, prefix: output, manifest: manifest)
            FileHandle.standardError.write(Data("graph: \(x.rows) × \(k) (\(method.rawValue)) in \(String(format: "%.1f", timer.seconds["graph"] ?? 0)) s\(rec.map { ", " + $0.description } ?? "") → \(output).*\n".utf8))
        }
    }
}
