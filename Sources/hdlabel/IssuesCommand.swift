import HDLabelCuration
import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCluster
import HDLabelCore

/// `hdlabel issues`: samples whose given label disagrees with their embedding neighbourhood.
struct IssuesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issues",
        abstract: "Flag samples whose given label disagrees with their embedding neighbourhood (label-issue detection).",
        discussion: """
        LABELS: .npy integers (-1 = unlabeled) or CSV 'id,label'; fully or partly labeled. Each labeled sample is scored \
        by the similarity-weighted vote of its first --k labeled neighbours on the cosine kNN graph: score = 1 − vote \
        share of the given label, suggested = the vote winner. --rule prune (default) flags a sample when the vote \
        confidently names another class, per-class thresholds calibrated like confident learning, capped per (given, \
        suggested) pair by the estimated number of such errors. Writes 'id,given,suggested,score,rank' for the \
        flagged samples, most suspicious first (--all: every labeled sample, flagged first).
        Under mpirun (`mpirun -np P hdlabel issues ...`, or with --mpi) the ranks build the kNN graph together, each \
        rank scores its own rows and only the n × C vote shares travel; rank 0 writes the CSV. The output is the same \
        as the single-process run's, byte for byte, for any number of ranks.
        """
    )
    @Argument(help: "Embeddings (.npy or raw float32 with --raw-shape).") var embeddings: String
    @Argument(help: "Given labels (.npy or .csv).") var labels: String
    @Option(name: .shortAndLong, help: "Output CSV.") var output: String
    @Option(help: "Labeled neighbours that vote for each sample.") var neighbors = LabelIssueConfig().k
    @Option(help: "Graph width (default: --neighbors when fully labeled, more when partly labeled so that many labeled neighbours are found).")
    var graphK: Int?
    @Option(help: "Flag rule: \(IssueRule.allCases.map(\.rawValue).joined(separator: ", ")) (default prune).") var rule = LabelIssueConfig().rule
    @Option(help: "Cleaning rounds (flagged samples stop voting, all are re-scored), 1...100.") var rounds = LabelIssueConfig().rounds
    @Option(help: "Vote weight similarity^gamma, 0...100.") var gamma = LabelIssueConfig().gamma
    @Option(help: "Cap on the per-class thresholds, (0, 1] (0.5: a strict vote majority always counts; for very clean data).")
    var thresholdCap = LabelIssueConfig().thresholdCap
    @Flag(help: "Write every labeled sample, not only the flagged ones.") var all = false
    @Flag(name: .shortAndLong, help: "No summary on stderr.") var quiet = false
    @Flag(help: "Run as an MPI job even when no mpirun environment is detected (one rank per process).") var mpi = false
    @OptionGroup var input: EmbeddingsInput
    @OptionGroup var graph: GraphOptionGroup
    @OptionGroup var mpiOptions: MPIOptionGroup

    /// True under `mpirun` (OpenMPI sets OMPI_COMM_WORLD_SIZE in every rank's environment) or with --mpi.
    var underMPI: Bool { mpi || ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    func validate() throws {
        if !output.hasSuffix(".csv") { throw OptionError("-o", output, "a file ending in .csv") }
        try Check.int("--graph-k", graphK, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
        try Check.config { try config().validate() }
        if !underMPI && (mpiOptions.timings != nil || mpiOptions.checkpoint != nil) {
            throw OptionError(mpiOptions.timings != nil ? "--timings" : "--checkpoint", mpiOptions.timings ?? mpiOptions.checkpoint ?? "",
                              "an MPI run (start with mpirun, or pass --mpi)")
        }
        if underMPI, let r = input.rawShape { throw OptionError("--raw-shape", "\(r.rows)x\(r.cols)", "a .npy under mpirun (single-process only)") }
    }

    func config() -> LabelIssueConfig {
        var cfg = LabelIssueConfig()
        cfg.k = neighbors; cfg.rule = rule; cfg.rounds = rounds; cfg.gamma = gamma; cfg.thresholdCap = thresholdCap
        return cfg
    }

    func summary(_ r: LabelIssueResult, graphK gk: Int, voteK: Int, ranks: Int) -> String {
        let labeled = r.given.filter { $0 >= 0 }.count
        let share = String(format: "(%.1f%%)", 100 * Double(r.flaggedCount) / Double(max(labeled, 1)))
        let where_ = ranks > 1 ? ", \(ranks) ranks" : ""
        return "hdlabel: \(r.flaggedCount) of \(labeled) labeled samples flagged \(share), \(labeled - r.scored) without a labeled "
            + "neighbour in reach; graph k=\(gk), vote k=\(voteK), rule \(rule.rawValue)\(where_) -> \(output)\n"
    }

    func run() throws {
        if underMPI { try runMPI(); return }
        try runReportingErrors {
            let options = config()
            let x = try input.read(embeddings)
            try x.validate()
            let given = try LabelsIO.read(path: labels, n: x.rows, classes: try input.classList())
            // Partly labeled: the graph is widened so that about k labeled neighbours are in reach.
            let (gk, cfg) = try LabelIssues.plan(given: given, source: labels, config: options, graphK: graphK)
            let xn = x.l2Normalized()
            let g = try KNNGraphBuilder.graph(of: xn, k: gk, method: graph.graph, tile: graph.tile, approx: graph.approx,
                                              prebuilt: try graph.prebuilt(rows: x.rows))
            _ = graph.manifestParameters(graph: g, normalized: { xn }) { if !quiet { FileHandle.standardError.write(Data("hdlabel: \($0)\n".utf8)) } }
            let r = try LabelIssues.detect(graph: g, labels: given.seeds, numClasses: given.numClasses, config: cfg)
            try AtomicFile.write(LabelIssues.encodeCSV(r, classNames: given.classNames, all: all), to: output)
            if !quiet { FileHandle.standardError.write(Data(summary(r, graphK: gk, voteK: cfg.k, ranks: 1).utf8)) }
        }
    }

    /// The same detection over MPI ranks (`ClusterIssues`); every rank runs this with the same arguments.
    func runMPI() throws {
        var job = ClusterGraphInput(embeddings: embeddings, labels: labels)
        try runReportingErrors { job.classes = try input.classList() }
        job.tile = graph.tile; job.checkpointDir = mpiOptions.checkpoint
        job.graph = graph.graph; job.approx = graph.approx; job.recallRows = graph.recallRows; job.knnGraph = graph.knnGraph
        var o = ClusterIssuesOptions(input: job, output: output, config: config())
        o.graphK = graphK; o.all = all; o.timingsPath = mpiOptions.timings
        setBLASThreadsPerRank(mpiOptions.blasThreads)
        let err = FileHandle.standardError
        try runOnRanks { comm in
            let out = try ClusterIssues.run(comm: comm, options: o, log: quiet ? nil : { err.write(Data(("hdlabel: " + $0 + "\n").utf8)) })
            if comm.isRoot && !quiet {
                err.write(Data(summary(out.result, graphK: out.graphK, voteK: out.voteK, ranks: comm.size).utf8))
            }
        }
    }
}
