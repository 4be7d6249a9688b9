import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCluster
import HDLabelCore

/// `hdlabel cluster`: the labeling job over MPI ranks. Start it with `mpirun -np P hdlabel cluster ...`; every rank
/// runs this command with the same arguments. Rank 0 prints progress and the (agreed) error, if any; every rank
/// exits non-zero on failure.
struct ClusterLabelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Label a dataset across MPI ranks (run under mpirun).",
        discussion: """
        Each rank reads only its rows of EMBEDDINGS, the ranks build the exact kNN graph together (ring exchange), \
        rank 0 runs the labeling hierarchy and the results are scattered back. Labels and graph are identical to \
        the single-process command for any number of ranks.
        """
    )

    @Argument(help: "Embeddings: 2-D float32/float64 .npy (n × d).")
    var embeddings: String

    @Argument(help: "Seed labels: .npy integers (-1 = unlabeled) or CSV 'id,label' (empty label = unlabeled).")
    var labels: String

    @Option(name: [.short, .customLong("output")], help: "Labels CSV to write (id,label,confidence,layer,source).")
    var output: String

    @Flag(help: "Each rank writes its own rows to OUTPUT.rankR instead of rank 0 writing one file.")
    var shardedOutput = false

    @Flag(help: "Keep the kNN graph on the ranks that built it and label there (only per-row vectors travel). --tile must be a multiple of 32.")
    var distributedLabeling = false

    @OptionGroup var input: EmbeddingsInput
    @OptionGroup var graph: GraphOptionGroup
    @OptionGroup var mpi: MPIOptionGroup
    @OptionGroup var opts: LabelingOptions

    func validate() throws {
        if input.rawShape != nil { throw OptionError("--raw-shape", "\(input.rawShape!.rows)x\(input.rawShape!.cols)", "a .npy under mpirun (each rank reads its rows by offset)") }
        if distributedLabeling && graph.tile % Reduction.block != 0 {
            throw OptionError("--tile", "\(graph.tile)", "a multiple of \(Reduction.block) with --distributed-labeling")
        }
    }

    func run() throws {
        let config = opts.config()
        var options = ClusterJobOptions(embeddings: embeddings, labels: labels, output: output, config: config)
        options.tile = graph.tile
        options.graph = graph.graph; options.approx = graph.approx; options.recallRows = graph.recallRows
        options.knnGraph = graph.knnGraph
        options.shardedOutput = shardedOutput
        options.checkpointDir = mpi.checkpoint
        options.timingsPath = mpi.timings
        options.classes = try input.classList()
        options.distributedLabeling = distributedLabeling

        setBLASThreadsPerRank(mpi.blasThreads)

        // The manifest travels with the labels (completed and written by ClusterJob as one unit with them).
        options.manifest = RunManifest(
            command: "cluster", method: config.method.rawValue,
            parameters: config.manifestParameters.merging(["tile": "\(graph.tile)", "sharded_output": "\(shardedOutput)",
                                                           "distributed_labeling": "\(distributedLabeling)"]) { $1 },
            inputs: ["embeddings": embeddings, "embeddings_hash": ((try? EmbeddingFiles.open(embeddings).paths) ?? [embeddings]).map(RunManifest.headHash).joined(separator: ","), "labels": labels,
                     "labels_hash": RunManifest.fileHash(labels)],
            n: 0, dimensions: 0, classes: [], chosenK: 0, layers: [], timingsSeconds: [:], ranks: 0)

        let err = FileHandle.standardError
        try runOnRanks { comm in
            let out = try ClusterJob.run(comm: comm, options: options, log: { err.write(Data(("hdlabel: " + $0 + "\n").utf8)) })
            if comm.isRoot {
                let files = options.shardedOutput ? "\(output).rank0..\(comm.size - 1)" : output
                err.write(Data("hdlabel: labeled \(out.timings.info["n"] ?? "?") rows on \(comm.size) rank(s), k=\(out.chosenK), \(String(format: "%.2f", out.timings.totalSeconds)) s -> \(files)\n".utf8))
            }
        }
    }
}
