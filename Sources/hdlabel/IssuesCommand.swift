import ArgumentParser
import Foundation
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
        Single process: the detection needs the whole graph in one place; for very large sets build the graph with \
        the cluster and run detection on one node (see docs/review.md).
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

    func validate() throws {
        if !output.hasSuffix(".csv") { throw ValidationError("-o must end in .csv, got '\(output)'") }
        if IssueRule(rawValue: rule) == nil { throw ValidationError("--rule must be one of \(IssueRule.allCases.map(\.rawValue).joined(separator: ", "))") }
        if k < 1 { throw ValidationError("--k must be >= 1") }
    }

    func run() throws {
        try runReportingErrors {
            var cfg = LabelIssueConfig()
            cfg.k = k; cfg.rule = IssueRule(rawValue: rule)!; cfg.rounds = rounds; cfg.gamma = gamma; cfg.thresholdCap = thresholdCap
            try cfg.validate()
            let x = try readEmbeddings(embeddings, rawShape: rawShape)
            try x.validate()
            let classList = classes.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            let given = try LabelsIO.read(path: labels, n: x.rows, classes: classList)
            if given.numClasses < 2 { throw HDLError.invalidInput("need at least two classes, found \(given.numClasses)") }
            let labeled = given.seeds.filter { $0 >= 0 }.count
            if labeled == 0 { throw HDLError.invalidInput("'\(labels)' has no labeled row") }
            // Partly labeled: widen the graph so that about k labeled neighbours are in reach.
            let wanted = graphK ?? min(cfg.k * max(1, Int((Double(x.rows) / Double(labeled)).rounded(.up))), max(cfg.k, 512))
            let gk = min(max(wanted, cfg.k), x.rows - 1)
            cfg.k = min(cfg.k, gk)
            let graph = try KNNGraphBuilder.build(x.l2Normalized(), options: GraphOptions(k: gk, tile: tile))
            let r = try LabelIssues.detect(graph: graph, labels: given.seeds, numClasses: given.numClasses, config: cfg)
            try AtomicFile.write(LabelIssues.encodeCSV(r, classNames: given.classNames, all: all), to: output)
            if !quiet {
                FileHandle.standardError.write(Data(("hdlabel: \(r.flaggedCount) of \(labeled) labeled samples flagged "
                    + String(format: "(%.1f%%)", 100 * Double(r.flaggedCount) / Double(labeled))
                    + ", \(labeled - r.scored) without a labeled neighbour in reach; graph k=\(gk), vote k=\(cfg.k), rule \(cfg.rule.rawValue) -> \(output)\n").utf8))
            }
        }
    }
}
