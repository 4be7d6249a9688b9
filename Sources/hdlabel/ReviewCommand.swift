import HDLabelCuration
import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore

/// `hdlabel review export|import`: the human review loop.
struct ReviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Human review loop: export the samples worth reviewing, import the answers as new seeds.",
        subcommands: [ReviewExport.self, ReviewImportCommand.self]
    )
}

struct ReviewExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the K samples whose review would most improve the labels (CSV or Label Studio JSON).",
        discussion: """
        RUN: the CSV written by 'hdlabel label' (id,label,confidence,layer,source). Seeds are never proposed. \
        Default ranking 'central' (uncertainty × graph centrality: uncertain points whose label reaches many others) \
        with one sample per neighbourhood, chosen by measurement (benchmarks/results/review.md).
        -o review.csv: id,label,confidence,score,rank,corrected — fill 'corrected' and import it.
        -o review.json: Label Studio tasks (data.sample_id, data.text, the current label as a prediction); the matching \
        labeling configuration is written to review.json.config.xml.
        """
    )
    @Argument(help: "Labels CSV of a run.") var runFile: String
    @Argument(help: "Embeddings of the run (.npy).") var embeddings: String
    @Option(help: "How many samples to export.") var count = 100
    @Option(name: .shortAndLong, help: "Output .csv or .json (Label Studio).") var output: String
    @Option(help: "Ranking: \(ReviewRanking.allCases.map(\.rawValue).joined(separator: ", ")).") var ranking = ReviewRanking.central
    @Flag(inversion: .prefixedNo, help: "At most one sample per neighbourhood in a batch.") var diverse = true
    @Option(help: "Neighbours that vote in the disagreement score.") var neighbors = 10
    @Option(help: "Random seed (ranking 'random').") var seed: UInt64 = 0
    @Option(help: "Label Studio: name of the Choices tag.") var fromName = "label"
    @Option(help: "Label Studio: name of the object tag.") var toName = "text"

    func validate() throws {
        if !(output.hasSuffix(".csv") || output.hasSuffix(".json")) { throw OptionError("-o", output, "a file ending in .csv or .json") }
        try Check.int("--count", count, 1..., "an integer >= 1")
        try Check.int("--neighbors", neighbors, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
    }

    func run() throws {
        try runReportingErrors {
            let r = try RunLabels.read(path: runFile)
            let x = try EmbeddingFiles.open(embeddings).read()
            guard x.rows == r.n else { throw HDLError.invalidInput("run '\(runFile)' has \(r.n) rows but '\(embeddings)' has \(x.rows)") }
            try x.validate()
            let graph = try KNNGraphBuilder.build(x.l2Normalized(), options: GraphOptions(k: min(max(neighbors, 5), x.rows - 1)))
            let items = Review.select(run: r, graph: graph, count: count, ranking: ranking, k: neighbors,
                                      diverse: diverse, seed: seed)
            if output.hasSuffix(".json") {
                try AtomicFile.write(try Review.encodeLabelStudio(items, fromName: fromName, toName: toName), to: output)
                try AtomicFile.write(Data(Review.labelStudioConfig(classNames: r.classNames, fromName: fromName, toName: toName).utf8), to: output + ".config.xml")
            } else {
                try AtomicFile.write(Review.encodeCSV(items), to: output)
            }
            FileHandle.standardError.write(Data("hdlabel: \(items.count) samples to review -> \(output)\n".utf8))
        }
    }
}

struct ReviewImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Add reviewed labels (CSV or Label Studio JSON export) to a seed file; then relabel with the new seeds.",
        discussion: """
        CORRECTIONS: CSV 'id,label' (or the exported review CSV with its 'corrected' column filled; empty = skipped), or \
        a Label Studio JSON export (tasks with data.sample_id and annotations[].result[].value.choices; the last \
        non-cancelled annotation counts). Answers for unknown ids or classes, and contradictory answers for one sample, \
        are reported and not applied. An answer that differs from an existing seed is a conflict: all conflicts are \
        listed and nothing is written unless --force is given (then the answers win).
        NEW_SEEDS: .csv (id,label with class names) or .npy (class ids, -1 = unlabeled).
        """
    )
    @Argument(help: "Corrections (.csv or Label Studio .json export).") var corrections: String
    @Argument(help: "Current seed labels (.npy or .csv).") var seeds: String
    @Option(name: .shortAndLong, help: "New seed file (.csv or .npy).") var output: String
    @Option(help: "Number of rows (needed when SEEDS is a CSV and --embeddings is not given).") var rows: Int?
    @Option(help: "Embeddings file, to take the number of rows from (when SEEDS is a CSV).") var embeddings: String?
    @Option(help: "Comma-separated class names in id order (as given to 'label').") var classes: String?
    @Flag(help: "Let answers overwrite existing seed labels that they contradict.") var force = false

    func validate() throws {
        if !(output.hasSuffix(".csv") || output.hasSuffix(".npy")) { throw OptionError("-o", output, "a file ending in .csv or .npy") }
        try Check.int("--rows", rows, 1 ..< Int(Int32.max), "an integer in 1..<2^31")
    }

    func run() throws {
        try runReportingErrors {
            let n: Int
            if seeds.hasSuffix(".npy") { n = try NPY.readInts(path: seeds).count } else if let rows { n = rows } else if let embeddings {
                n = try EmbeddingFiles.open(embeddings).rows
            } else {
                throw HDLError.invalidInput("SEEDS '\(seeds)' is a CSV: give --rows N or --embeddings EMB.npy so the number of rows is known")
            }
            let classList = try classes.map { try LabelsIO.parseClassList($0) }
            let current = try LabelsIO.read(path: seeds, n: n, classes: classList)
            let (cs, problems) = try Review.readCorrections(path: corrections)
            let r = Review.apply(cs, to: current, force: force)
            let err = FileHandle.standardError
            func say(_ s: String) { err.write(Data(("hdlabel: " + s + "\n").utf8)) }
            for p in problems + r.rejected { say("not applied: \(p.origin): \(p.reason)") }
            for c in r.conflicts {
                say("conflict: sample \(c.id) is a seed '\(c.existing)', the answer says '\(c.proposed)'" + (force ? " (overwritten, --force)" : ""))
            }
            if !r.conflicts.isEmpty && !force {
                throw HDLError.invalidInput("\(r.conflicts.count) answer(s) contradict existing seeds (listed above); nothing written. Check them, or use --force to let the answers win")
            }
            if output.hasSuffix(".npy") {
                guard r.seeds.classNames.enumerated().allSatisfy({ $0.element == String($0.offset) }) else {
                    throw HDLError.invalidInput("class names \(r.seeds.classNames.prefix(5)) are not the ids 0..<C; write a .csv instead")
                }
                try NPY.write(ints: r.seeds.seeds.map(Int.init), to: output)
            } else {
                try AtomicFile.write(Review.encodeSeedsCSV(r.seeds), to: output)
            }
            say("\(r.added.count) new seeds, \(r.confirmed.count) confirmed, \(r.overwritten.count) overwritten, "
                + "\(problems.count + r.rejected.count) not applied; \(r.seeds.seeds.filter { $0 >= 0 }.count) seeds -> \(output)")
        }
    }
}
