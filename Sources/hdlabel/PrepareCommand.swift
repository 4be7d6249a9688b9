import HDLabelBench
import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCore

/// `hdlabel prepare fashion-mnist -o DIR`: turns a packaged data set into the files `label`, `cluster` and
/// `evaluate` read: embeddings, seed labels, hidden ground truth, class names and the split that chose the seeds.
struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Prepare a labeling job from a packaged data set (embeddings, seeds, hidden truth).",
        discussion: """
        DATASET: fashion-mnist (Debian package dataset-fashion-mnist, train followed by test = 70,000 rows; \
        $HDLABEL_FASHION_MNIST overrides the directory). Pixels are scaled to [0,1] and reduced with PCA fitted in \
        Swift (OpenBLAS ssyrk + LAPACK ssyevd) on the rows used. A seeded split then picks --per-class seed labels \
        per class (with --imbalance RHO > 1: a long tail where class c keeps a share RHO^(-c/9) of the rows and labels).

        Writes to DIR, each file atomically, split.json last:
          embeddings.npy  float32 (n, pca)
          seeds.npy       int64 (n,), class id for seeded rows, -1 elsewhere
          truth.npy       int64 (n,), ground truth, for scoring only (hdlabel evaluate)
          classes.txt     class names, one per line in id order
          split.json      parameters, provenance and the split (dataset rows used, seeded positions)
        """
    )

    @Argument(help: "Data set to prepare: fashion-mnist.")
    var dataset: String

    @Option(name: [.short, .customLong("output")], help: "Output directory.")
    var output: String

    @Option(help: "PCA components (1...784).")
    var pca = 50

    @Option(help: "Use the first N rows of train+test (100...70000).")
    var n = 70000

    @Option(name: .customLong("per-class"), help: "Seed labels per class (the head class under --imbalance).")
    var perClass = 10

    @Option(help: "Split seed (which rows get seed labels).")
    var seed: UInt64 = 0

    @Option(help: "Imbalance ratio RHO >= 1 (largest / smallest class); 1 keeps every row.")
    var imbalance: Double = 1

    static let datasets = ["fashion-mnist"]

    func validate() throws {
        guard Self.datasets.contains(dataset.lowercased()) else {
            throw OptionError("DATASET", dataset, "one of \(Self.datasets.joined(separator: ", "))")
        }
        try Check.int("--pca", pca, 1 ... 784, "an integer in 1...784 (Fashion-MNIST has 784 pixels)")
        try Check.int("--n", n, 100 ... 70000, "an integer in 100...70000")
        try Check.int("--per-class", perClass, 1..., "an integer >= 1")
        try Check.real("--imbalance", imbalance, "a ratio in [1, 10000]") { $0 >= 1 && $0 <= 10000 }
    }

    func run() throws {
        try runReportingErrors {
            let started = Date()
            func log(_ s: String) { FileHandle.standardError.write(Data(("hdlabel: " + s + "\n").utf8)) }
            func elapsed(_ t: Date) -> String { String(format: "%.1fs", Date().timeIntervalSince(t)) }

            if let reason = FashionMNIST.unavailableReason() { throw HDLError.io(path: FashionMNIST.directory, reason: reason) }

            log("loading Fashion-MNIST from \(FashionMNIST.directory) (first \(n) rows of train+test), PCA to \(pca) dimensions …")
            var t = Date()
            let data = try fashionPCA(components: pca, n: n)
            log("  \(data.embeddings.rows) × \(data.embeddings.cols), explained variance \(data.provenance["explained_variance_ratio"] ?? "?") in \(elapsed(t))")

            t = Date()
            // Balanced: keep every row (the data set's own class profile). Long tail: subsample to rho^(-c/(C-1)).
            let spec = SplitSpec(budget: .perClass(perClass), imbalance: imbalance, unlabeled: imbalance == 1 ? .natural : .same, seed: seed)
            let split = try Split.make(truth: data.labels, numClasses: data.numClasses, spec: spec)
            let x = split.indices.count == data.embeddings.rows ? data.embeddings : split.embeddings(data.embeddings)
            let truth = split.groundTruth(data.labels)
            let seeds = split.seeds(truth: data.labels).map(Int.init)
            log("  split \(split.spec.label): \(split.indices.count) rows, \(split.labeled.count) seeded "
                + "(per class \(split.labeledPerClass.map(String.init).joined(separator: ","))), hash \(split.hash), \(elapsed(t))")

            t = Date()
            let dir = output.hasSuffix("/") && output.count > 1 ? String(output.dropLast()) : output
            try NPY.write(x, to: dir + "/embeddings.npy")
            try NPY.write(ints: seeds, to: dir + "/seeds.npy")
            try NPY.write(ints: truth, to: dir + "/truth.npy")
            try AtomicFile.write(FashionMNIST.classNames.joined(separator: "\n") + "\n", to: dir + "/classes.txt")
            let record = PreparedSplit(
                dataset: "fashion-mnist", rows: split.indices.count, dimensions: x.cols, classes: FashionMNIST.classNames,
                parameters: .init(n: n, pca: pca, perClass: perClass, seed: seed, imbalance: imbalance),
                provenance: data.provenance, seeded: split.labeled.count, hash: split.hash,
                files: ["embeddings.npy", "seeds.npy", "truth.npy", "classes.txt"], version: RunManifest.version, split: split)
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // one line: the split lists every row
            try AtomicFile.write(enc.encode(record), to: dir + "/split.json")
            log("  wrote \(dir)/{embeddings.npy,seeds.npy,truth.npy,classes.txt,split.json} in \(elapsed(t)); total \(elapsed(started))")
        }
    }
}

/// `split.json` written by `hdlabel prepare`: how the files were made, plus the split itself
/// (`split.indices` are data-set rows, `split.labeled` positions into them).
struct PreparedSplit: Codable {
    struct Parameters: Codable { var n: Int; var pca: Int; var perClass: Int; var seed: UInt64; var imbalance: Double }
    var dataset: String
    var rows: Int
    var dimensions: Int
    var classes: [String]
    var parameters: Parameters
    var provenance: [String: String]
    var seeded: Int
    var hash: String
    var files: [String]
    var version: String
    var split: Split
}

/// `hdlabel items DATA_DIR -o DIR`: what reviewers look at for a prepared data set — one PNG per row and an items
/// CSV (`id,image`) for `review export --items`.
struct ItemsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "items",
        abstract: "Write reviewable items for a prepared data set: one PNG per row and DIR/items.csv (id,image).",
        discussion: """
        DATA_DIR: a directory written by 'hdlabel prepare' (its split.json says which data-set row each row is). \
        Fashion-MNIST images are read from the Debian package's IDX files (as 'prepare' reads them) and written as \
        grayscale PNGs, each pixel --scale × --scale. DIR/items.csv lists every row (images/ID.png, relative to DIR); \
        with --ids FILE (a review CSV or any CSV/list whose first column is a row id) only those rows' PNGs and the \
        seeded rows' (the context a review export shows) are written — 'review export' reports listed images that are missing. Every file is written atomically.
        """
    )
    @Argument(help: "Directory written by 'hdlabel prepare'.") var dataDir: String
    @Option(name: [.short, .customLong("output")], help: "Output directory (images/ and items.csv).") var output: String
    @Option(help: "Pixel repetition: each image is 28·scale pixels wide (1...16).") var scale = 4
    @Option(help: "Write PNGs only for the row ids in this file (first column; a header line is skipped) and the seeded rows.") var ids: String?

    func validate() throws { try Check.int("--scale", scale, 1 ... 16, "an integer in 1...16") }

    func run() throws {
        try runReportingErrors {
            func log(_ s: String) { FileHandle.standardError.write(Data(("hdlabel: " + s + "\n").utf8)) }
            let started = Date()
            let splitPath = dataDir + "/split.json"
            guard let data = FileManager.default.contents(atPath: splitPath) else {
                throw HDLError.io(path: splitPath, reason: "no such file: DATA_DIR must be a directory written by 'hdlabel prepare'")
            }
            let record: PreparedSplit
            do { record = try JSONDecoder().decode(PreparedSplit.self, from: data) } catch {
                throw HDLError.format(path: splitPath, reason: "not a split written by 'hdlabel prepare' (\(error))")
            }
            guard record.dataset == "fashion-mnist" else {
                throw HDLError.invalidInput("'\(splitPath)' is data set '\(record.dataset)'; items can be written for fashion-mnist only")
            }
            let rows = record.split.indices
            guard rows.count == record.rows else { throw HDLError.format(path: splitPath, reason: "split lists \(rows.count) rows, header says \(record.rows)") }
            var wanted = Array(0 ..< rows.count)
            if let ids {
                // Through a file handle, so a pipe (`--ids <(cut -d, -f1 review.csv)`) works as well as a file.
                guard let body = FileHandle(forReadingAtPath: ids).flatMap({ try? $0.readToEnd() }).flatMap({ String(data: $0, encoding: .utf8) }) else {
                    throw HDLError.io(path: ids, reason: "no such file or not UTF-8 text")
                }
                var set = Set<Int>()
                for (no, line) in body.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
                    let f = LabelsIO.splitCSVLine(line.trimmingCharacters(in: .whitespaces))
                    guard let first = f.first, !first.isEmpty else { continue }
                    guard let id = Int(first) else {
                        if no == 0 { continue }  // header
                        throw HDLError.format(path: ids, reason: "line \(no + 1): '\(first)' is not a row id")
                    }
                    guard id >= 0 && id < rows.count else { throw HDLError.invalidInput("'\(ids)' line \(no + 1): id \(id) outside 0..<\(rows.count)") }
                    set.insert(id)
                }
                // The seeds' images too: an export shows each sample's nearest labeled sample beside it.
                for p in record.split.labeled { set.insert(p) }
                wanted = set.sorted()
            }
            let img = try FashionMNIST.rawImages()
            if let bad = rows.first(where: { $0 < 0 || $0 >= img.count }) {
                throw HDLError.format(path: splitPath, reason: "data-set row \(bad) outside the \(img.count) images")
            }
            let dir = output.hasSuffix("/") && output.count > 1 ? String(output.dropLast()) : output
            try FileManager.default.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
            let d = img.rows * img.cols
            var last = Date()
            for (p, id) in wanted.enumerated() {
                let src = rows[id] * d
                let png = try PNG.encodeGray(width: img.cols, height: img.rows, pixels: Array(img.pixels[src ..< src + d]), scale: scale)
                try AtomicFile.write(Data(png), to: "\(dir)/images/\(id).png")
                if Date().timeIntervalSince(last) > 5 { log("  \(p + 1) / \(wanted.count) images"); last = Date() }
            }
            var csv = "id,image\n"
            csv.reserveCapacity(rows.count * 20)
            for id in 0 ..< rows.count { csv += "\(id),images/\(id).png\n" }
            try AtomicFile.write(Data(csv.utf8), to: dir + "/items.csv")
            log("wrote \(wanted.count) PNGs (\(img.cols * scale) × \(img.rows * scale)) to \(dir)/images and \(dir)/items.csv (\(rows.count) rows) in "
                + String(format: "%.1fs", Date().timeIntervalSince(started)))
        }
    }
}
