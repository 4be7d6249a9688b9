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
        --items ITEMS: what a reviewer looks at, one per row: a CSV 'id,image' (paths or URLs) or 'id,text', or a \
        plain text file with one item per line in row order. Relative image paths are relative to ITEMS' directory; \
        --local-files-root or --image-url-prefix turns them into URLs Label Studio serves (docs/review.md). Missing \
        image files are reported (count and first few) without stopping the export.
        --classes: class names in id order (comma list, a file with one name per line, or a CSV 'id,name'); the \
        choices and current labels then show names. Give the same --classes to 'review import'.
        -o review.csv: id,label,confidence,score,rank,item,context,corrected — fill 'corrected' and import it.
        -o review.json: Label Studio tasks (data.sample_id, data.image or data.text, data.summary, data.context, the \
        current label as a prediction); the matching labeling configuration is written to review.json.config.xml.
        """
    )
    @Argument(help: "Labels CSV of a run.") var runFile: String
    @Argument(help: "Embeddings of the run (.npy).") var embeddings: String
    @Option(help: "How many samples to export.") var count = 100
    @Option(name: .shortAndLong, help: "Output .csv or .json (Label Studio).") var output: String
    @Option(help: "Ranking: \(ReviewRanking.allCases.map(\.rawValue).joined(separator: ", ")).") var ranking = ReviewRanking.central
    @Flag(inversion: .prefixedNo, help: "At most one sample per neighbourhood in a batch.") var diverse = true
    @Option(help: "Neighbours that vote in the disagreement score and show in the context.") var neighbors = 10
    @Option(help: "Random seed (ranking 'random').") var seed: UInt64 = 0
    @Option(help: "Items file: CSV 'id,image' / 'id,text', or one item per line in row order.") var items: String?
    @Option(help: "Kind of item in a plain items file or an 'id,item' CSV: \(ItemKind.allCases.map(\.rawValue).joined(separator: ", ")).") var itemKind: ItemKind?
    @Option(help: "Class names in id order: comma list, one-per-line file, or CSV 'id,name'.") var classes: String?
    @Option(help: "Label Studio's LOCAL_FILES_DOCUMENT_ROOT: local images become /data/local-files/?d=PATH under it.") var localFilesRoot: String?
    @Option(help: "URL prefix that serves the items file's directory (local images become PREFIX/relative/path).") var imageUrlPrefix: String?
    @Option(help: "Nearest labeled samples shown as context.") var contextSeeds = 3
    @Option(help: "Label Studio: name of the Choices tag.") var fromName = "label"
    @Option(help: "Label Studio: name of the object tag (default: image or text).") var toName: String?

    func validate() throws {
        if !(output.hasSuffix(".csv") || output.hasSuffix(".json")) { throw OptionError("-o", output, "a file ending in .csv or .json") }
        try Check.int("--count", count, 1..., "an integer >= 1")
        try Check.int("--neighbors", neighbors, 1 ... LabelingConfig.maxK, "an integer in 1...\(LabelingConfig.maxK)")
        try Check.int("--context-seeds", contextSeeds, 0 ... 50, "an integer in 0...50")
        if localFilesRoot != nil && imageUrlPrefix != nil {
            throw OptionError("--image-url-prefix", imageUrlPrefix!, "not both --local-files-root and --image-url-prefix")
        }
        if (localFilesRoot != nil || imageUrlPrefix != nil || itemKind != nil) && items == nil {
            throw OptionError("--items", "(none)", "an items file when --local-files-root, --image-url-prefix or --item-kind is given")
        }
        if let root = localFilesRoot {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
                throw OptionError("--local-files-root", root, "an existing directory")
            }
        }
    }

    func run() throws {
        try runReportingErrors {
            func say(_ s: String) { FileHandle.standardError.write(Data(("hdlabel: " + s + "\n").utf8)) }
            var r = try RunLabels.read(path: runFile)
            if let classes { r = try r.named(LabelsIO.parseClassList(classes)) }
            let x = try EmbeddingFiles.open(embeddings).read()
            guard x.rows == r.n else { throw HDLError.invalidInput("run '\(runFile)' has \(r.n) rows but '\(embeddings)' has \(x.rows)") }
            try x.validate()
            let itemFile = try items.map { try ReviewItems.read(path: $0, rows: r.n, kind: itemKind) }
            let xn = x.l2Normalized()
            let graph = try KNNGraphBuilder.build(xn, options: GraphOptions(k: min(max(neighbors, 5), x.rows - 1)))
            let chosen = Review.select(run: r, graph: graph, count: count, ranking: ranking, k: neighbors,
                                       diverse: diverse, seed: seed)
            let context = Review.context(of: chosen, run: r, graph: graph, x: xn, seeds: contextSeeds, neighbours: neighbors)
            var shown = context.map { ReviewShown(context: $0) }
            if let f = itemFile {
                let locator = ItemLocator(localFilesRoot: localFilesRoot, urlPrefix: imageUrlPrefix)
                var refs: [String] = []
                for (p, it) in chosen.enumerated() {
                    let v = f.values[it.id]
                    if f.kind == .image {
                        refs.append(v)
                        shown[p].item = try locator.url(v, base: f.baseDirectory)
                        if let s = context[p].nearestSeeds.first {
                            refs.append(f.values[s.id])
                            shown[p].seedImage = try locator.url(f.values[s.id], base: f.baseDirectory)
                        }
                    } else {
                        shown[p].item = v
                    }
                }
                if f.kind == .image {
                    let missing = ItemLocator.missing(refs, base: f.baseDirectory)
                    if !missing.isEmpty {
                        say("warning: \(missing.count) of \(Set(refs).count) image files of this batch do not exist (exported anyway): "
                            + missing.prefix(5).joined(separator: ", ") + (missing.count > 5 ? ", …" : ""))
                    }
                    if localFilesRoot == nil && imageUrlPrefix == nil && refs.contains(where: { !ItemLocator.isURL($0) }) {
                        say("note: images are local paths; Label Studio shows them only through --local-files-root (its local-files storage) or --image-url-prefix (docs/review.md)")
                    }
                }
            }
            if output.hasSuffix(".json") {
                let kind = itemFile?.kind
                try AtomicFile.write(try Review.encodeLabelStudio(chosen, shown: shown, kind: kind, fromName: fromName, toName: toName), to: output)
                try AtomicFile.write(Data(Review.labelStudioConfig(classNames: r.classNames, kind: kind, fromName: fromName, toName: toName).utf8),
                                     to: output + ".config.xml")
            } else {
                try AtomicFile.write(Review.encodeCSV(chosen, shown: shown), to: output)
            }
            say("\(chosen.count) samples to review -> \(output)" + (output.hasSuffix(".json") ? " (+ \(output).config.xml)" : ""))
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
    @Option(help: "Class names in id order (as given to 'label' or 'review export'): comma list, one-per-line file, or CSV 'id,name'.") var classes: String?
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
                guard classList != nil || r.seeds.classNames.enumerated().allSatisfy({ $0.element == String($0.offset) }) else {
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
