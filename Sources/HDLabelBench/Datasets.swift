import HDLabelIO
import HDLabelCore
import Foundation

/// A data set for benchmarking: embeddings plus ground-truth class ids `0..<numClasses` (one per row).
public struct LabeledDataset: Sendable {
    public var name: String
    public var embeddings: Embeddings
    public var labels: [Int]
    public var numClasses: Int
    /// Where the data came from (paths, preprocessing) for run manifests.
    public var provenance: [String: String]

    public init(name: String, embeddings: Embeddings, labels: [Int], numClasses: Int? = nil, provenance: [String: String] = [:]) throws {
        guard labels.count == embeddings.rows else {
            throw HDLError.invalidInput("data set '\(name)': \(labels.count) labels for \(embeddings.rows) rows")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 }) {
            throw HDLError.invalidInput("data set '\(name)': ground-truth label \(labels[bad]) at row \(bad) (must be >= 0)")
        }
        let c = numClasses ?? ((labels.max() ?? -1) + 1)
        if let bad = labels.firstIndex(where: { $0 >= c }) {
            throw HDLError.invalidInput("data set '\(name)': label \(labels[bad]) at row \(bad) outside 0..<\(c)")
        }
        self.name = name; self.embeddings = embeddings; self.labels = labels; self.numClasses = c; self.provenance = provenance
    }

    /// Loads `EMB.npy` (2-D float) and `LABELS.npy` (1-D int, every entry >= 0).
    public static func load(name: String, embeddings embPath: String, labels labelPath: String) throws -> LabeledDataset {
        let e = try NPY.readEmbeddings(path: embPath)
        let l = try NPY.readInts(path: labelPath)
        return try LabeledDataset(name: name, embeddings: e, labels: l, provenance: ["embeddings": embPath, "labels": labelPath])
    }

    /// Parses `NAME=EMB.npy,LABELS.npy` (the `--dataset` option) and loads it.
    public static func load(spec: String) throws -> LabeledDataset {
        let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
        let files = parts.count == 2 ? parts[1].split(separator: ",").map(String.init) : []
        guard parts.count == 2, !parts[0].isEmpty, files.count == 2 else {
            throw HDLError.invalidParameter(name: "dataset", value: spec, allowed: "NAME=EMBEDDINGS.npy,LABELS.npy")
        }
        return try load(name: parts[0], embeddings: files[0], labels: files[1])
    }

    /// Class sizes (length numClasses).
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: numClasses)
        for l in labels { c[l] += 1 }
        return c
    }
}

/// Fashion-MNIST from the Debian `dataset-fashion-mnist` package (gzipped IDX files).
public enum FashionMNIST {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// Environment variable that overrides the directory.
    public static let environmentVariable = "HDLABEL_FASHION_MNIST"
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public enum Split: String, Sendable, CaseIterable {
        case train, test
        var prefix: String { self == .train ? "train" : "t10k" }
    }

    /// `$HDLABEL_FASHION_MNIST` if set, else the Debian location.
    public static var directory: String {
        if let v = ProcessInfo.processInfo.environment[environmentVariable], !v.isEmpty { return v }
        return defaultDirectory
    }

    public static func files(split: Split, directory: String) -> (images: String, labels: String) {
        ("\(directory)/\(split.prefix)-images-idx3-ubyte.gz", "\(directory)/\(split.prefix)-labels-idx1-ubyte.gz")
    }

    /// nil when all four files exist, otherwise a sentence saying what is missing and how to get it
    /// (for skipping tests and benchmark rows with a clear reason).
    public static func unavailableReason(directory: String? = nil) -> String? {
        let dir = directory ?? self.directory
        let missing = Split.allCases.flatMap { s -> [String] in let f = files(split: s, directory: dir); return [f.images, f.labels] }
            .filter { !FileManager.default.fileExists(atPath: $0) }
        if missing.isEmpty { return nil }
        return "Fashion-MNIST not found (missing \(missing.joined(separator: ", "))); install the Debian package "
            + "`dataset-fashion-mnist` (apt-get install dataset-fashion-mnist) or set \(environmentVariable) to a directory with the four .gz IDX files"
    }

    /// Loads one split as `n × 784` pixels scaled to [0, 1] and labels 0...9.
    public static func load(split: Split, directory: String? = nil) throws -> (embeddings: Embeddings, labels: [Int]) {
        let dir = directory ?? self.directory
        if let reason = unavailableReason(directory: dir) { throw HDLError.io(path: dir, reason: reason) }
        let f = files(split: split, directory: dir)
        let img = try IDX.readImages(path: f.images)
        let lab = try IDX.readLabels(path: f.labels)
        guard img.count == lab.count else {
            throw HDLError.format(path: f.labels, reason: "\(lab.count) labels for \(img.count) images in '\(f.images)'")
        }
        if let bad = lab.firstIndex(where: { $0 > 9 }) {
            throw HDLError.format(path: f.labels, reason: "label \(lab[bad]) at item \(bad) (Fashion-MNIST has classes 0...9)")
        }
        let d = img.rows * img.cols
        var px = [Float](repeating: 0, count: img.pixels.count)
        img.pixels.withUnsafeBufferPointer { src in
            px.withUnsafeMutableBufferPointer { dst in for i in 0 ..< src.count { dst[i] = Float(src[i]) / 255 } }
        }
        return (Embeddings(rows: img.count, cols: d, data: px), lab.map(Int.init))
    }

    /// Train followed by test (70,000 rows), optionally only the first `n` rows.
    public static func loadAll(n: Int? = nil, directory: String? = nil) throws -> (embeddings: Embeddings, labels: [Int]) {
        let tr = try load(split: .train, directory: directory)
        var x = tr.embeddings, y = tr.labels
        if n == nil || n! > x.rows {
            let te = try load(split: .test, directory: directory)
            x = Embeddings(rows: x.rows + te.embeddings.rows, cols: x.cols, data: x.data + te.embeddings.data)
            y += te.labels
        }
        if let n, n < x.rows {
            guard n >= 2 else { throw HDLError.invalidParameter(name: "n", value: "\(n)", allowed: ">= 2") }
            x = x.slice(rows: 0 ..< n); y = Array(y[0 ..< n])
        }
        return (x, y)
    }
}

/// Fashion-MNIST pixels reduced with PCA (fitted in Swift on the same rows, unsupervised).
/// - n: use the first `n` rows of train+test (nil: all 70,000).
public func fashionPCA(components: Int = 50, n: Int? = nil, directory: String? = nil) throws -> LabeledDataset {
    let (x, y) = try FashionMNIST.loadAll(n: n, directory: directory)
    let (pca, z) = try PCA.fitTransform(x, components: components)
    let ratio = pca.explainedVarianceRatio.reduce(0, +)
    return try LabeledDataset(name: "fashion-pca\(components)", embeddings: z, labels: y, numClasses: 10, provenance: [
        "source": directory ?? FashionMNIST.directory, "rows": "\(x.rows)", "preprocessing": "pixels/255, PCA-\(components) fitted on these rows",
        "explained_variance_ratio": String(format: "%.4f", ratio),
    ])
}
