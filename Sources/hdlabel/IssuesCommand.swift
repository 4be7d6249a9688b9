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
    @Option(name: .customLong("raw-shape"), help: "Shape ROWSxCOLS when EMBEDDINGS is raw float32.") var rawShape: String?
    @Option(help: "Labeled neighbours that vote.") var k = LabelIssueConfig().k
    @Option(help: "Graph width (default: k when fully labeled, more when partly labeled so k labeled neighbours are found).")
    var graphK: Int?
    @Option(help: "Flag rule: prune (default), confident, majority.") var rule = LabelIssueConfig().rule.rawValue
    @Option(help: "Cleaning rounds (flagged samples stop voting, all are re-scored).") var rounds = LabelIssueConfig().rounds
    @Option(help: "Vote weight similarity^gamma.") var gamma = LabelIssueConfig().gamma
    @Option(help: "Cap on the per-class thresholds (0.5: a strict vote majority always counts; for very clean data).")
    var thresholdCap = LabelIssueConfig().thresholdCap
    @Flag(help: "Write every labeled sample, not only the flagged ones.") var all = false
    @Option(help: "Comma-separated class names in id order.") var classes: String?
    @Option(help: "Row tile of the kNN graph's blocked sgemm.") var tile = GraphOptions.defaultTile
    @Flag(name: .shortAndLong, help: "No summary on stderr.") var quiet = false
    @Flag(help: "Run as an MPI job even when no mpirun environment is detected (one rank per process).") var mpi = false
    @Option(help: "MPI only: OpenBLAS threads per rank (default: cores on this node / ranks on this node).") var blasThreads: Int?
    @Option(help: "MPI only: write per-phase times (max over ranks) as JSON to this file.") var timings: String?
    @Option(help: "MPI only: directory for per-rank partial-graph checkpoints, reused when a restarted job matches.")
    var checkpoint: String?

    /// True under `mpirun` (OpenMPI sets OMPI_COMM_WORLD_SIZE in every rank's environment) or with --mpi.
    var underMPI: Bool { mpi || ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    func validate() throws {
        if !output.hasSuffix(".csv") { throw ValidationError("-o must end in .csv, got '\(output)'") }
        if IssueRule(rawValue: rule) == nil { throw ValidationError("--rule must be one of \(IssueRule.allCases.map(\.rawValue).joined(separator: ", "))") }
        if k < 1 { throw ValidationError("--k must be >= 1") }
        if let g = graphK, g < 1 { throw ValidationError("--graph-k must be >= 1") }
        if let b = blasThreads, b < 1 { throw ValidationError("--blas-threads must be >= 1, got \(b)") }
        if !underMPI && (timings != nil || checkpoint != nil) {
            throw ValidationError("--timings and --checkpoint apply to MPI runs (start with mpirun, or pass --mpi)")
        }
        if underMPI, rawShape != nil { throw ValidationError("--raw-shape is single-process only; under mpirun give a .npy") }
    }

    func config() throws -> LabelIssueConfig {
        var cfg = LabelIssueConfig()
        cfg.k = k; cfg.rule = IssueRule(rawValue: rule)!; cfg.rounds = rounds; cfg.gamma = gamma; cfg.thresholdCap = thresholdCap
        try cfg.validate()
        return cfg
    }

    var classList: [String]? { classes.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } }

    func summary(_ r: LabelIssueResult, graphK gk: Int, voteK: Int, ranks: Int) -> String {
        let labeled = r.given.filter { $0 >= 0 }.count
        return "hdlabel: \(r.flaggedCount) of \(labeled) labeled samples flagged "
            + String(format: "(%.1f%%)", 100 * Double(r.flaggedCount) / Double(max(labeled, 1)))
            + ", \(labeled - r.scored) without a labeled neighbour in reach; graph k=\(gk), vote k=\(voteK), rule \(rule)"
            + (ranks > 1 ? ", \(ranks) ranks" : "") + " -> \(output)\n"
    }

    func run() throws {
        if underMPI { try runMPI(); return }
        try runReportingErrors {
            let options = try config()
            let x = try readEmbeddings(embeddings, rawShape: rawShape)
            try x.validate()
            let given = try LabelsIO.read(path: labels, n: x.rows, classes: classList)
            // Partly labeled: the graph is widened so that about k labeled neighbours are in reach.
            let (gk, cfg) = try LabelIssues.plan(given: given, source: labels, config: options, graphK: graphK)
            let graph = try KNNGraphBuilder.build(x.l2Normalized(), options: GraphOptions(k: gk, tile: tile))
            let r = try LabelIssues.detect(graph: graph, labels: given.seeds, numClasses: given.numClasses, config: cfg)
            try AtomicFile.write(LabelIssues.encodeCSV(r, classNames: given.classNames, all: all), to: output)
            if !quiet { FileHandle.standardError.write(Data(summary(r, graphK: gk, voteK: cfg.k, ranks: 1).utf8)) }
        }
    }

    /// The same detection over MPI ranks (`ClusterIssues`); every rank runs this with the same arguments.
    func runMPI() throws {
        var cfg = LabelIssueConfig()
        try runReportingErrors { cfg = try config() }
        var input = ClusterGraphInput(embeddings: embeddings, labels: labels)
        input.classes = classList; input.tile = tile; input.checkpointDir = checkpoint
        var o = ClusterIssuesOptions(input: input, output: output, config: cfg)
        o.graphK = graphK; o.all = all; o.timingsPath = timings
        setBLASThreadsPerRank(blasThreads)
        let err = FileHandle.standardError
        try runOnRanks { comm in
            let out = try ClusterIssues.run(comm: comm, options: o, log: quiet ? nil : { err.write(Data(("hdlabel: " + $0 + "\n").utf8)) })
            if comm.isRoot && !quiet {
                err.write(Data(summary(out.result, graphK: out.graphK, voteK: out.voteK, ranks: comm.size).utf8))
            }
        }
    }
}
