import HDLabelIO
import HDLabelCore
import Foundation

/// What a reviewer looks at for each row: an image (path or URL) or a text.
public enum ItemKind: String, Sendable, CaseIterable, Codable {
    case image, text
}

/// The items of a data set, one per row, as read from `--items`.
///
/// Accepted files (n = the run's rows):
/// - CSV with a header `id,image` or `id,text` (an `id,item` header takes its kind from `kind`, default text):
///   every id in 0..<n exactly once, n data rows;
/// - any other file: one item per line in row order, exactly n non-final-empty lines (kind from `kind`, default text).
/// A mismatch in ids or row count is an error, never a partial export.
public struct ReviewItems: Sendable, Equatable {
    public var kind: ItemKind
    /// The item of each row as written in the file (image references are resolved by `ItemLocator`).
    public var values: [String]
    /// Directory relative image paths are resolved against (the items file's directory).
    public var baseDirectory: String

    public init(kind: ItemKind, values: [String], baseDirectory: String) {
        self.kind = kind; self.values = values; self.baseDirectory = baseDirectory
    }

    /// Reads an items file for a run of `rows` rows. Cost O(file size).
    public static func read(path: String, rows n: Int, kind forced: ItemKind? = nil) throws -> ReviewItems {
        guard let data = FileManager.default.contents(atPath: path) else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        guard let text = String(data: data, encoding: .utf8) else { throw HDLError.format(path: path, reason: "not UTF-8 text") }
        let base = (URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path)
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw HDLError.format(path: path, reason: "file is empty") }
        let header = LabelsIO.splitCSVLine(lines[0].trimmingCharacters(in: .whitespaces)).map { $0.lowercased() }
        if header.count == 2, header[0] == "id", ["image", "text", "item"].contains(header[1]) {
            let declared: ItemKind? = header[1] == "item" ? nil : ItemKind(rawValue: header[1])
            if let forced, let declared, forced != declared {
                throw HDLError.invalidInput("items '\(path)' has a '\(declared.rawValue)' column but --item-kind \(forced.rawValue) was given")
            }
            let kind = declared ?? forced ?? .text
            guard lines.count - 1 == n else {
                throw HDLError.invalidInput("items '\(path)' has \(lines.count - 1) rows but the run has \(n); give one item for every row")
            }
            var values = [String?](repeating: nil, count: n)
            for (lineNo, line) in lines.enumerated().dropFirst() {
                let f = LabelsIO.splitCSVLine(line)
                guard f.count == 2 else {
                    throw HDLError.format(path: path, reason: "line \(lineNo + 1): expected 2 fields 'id,\(kind.rawValue)', found \(f.count) (quote fields that hold commas)")
                }
                guard let id = Int(f[0].trimmingCharacters(in: .whitespaces)) else {
                    throw HDLError.format(path: path, reason: "line \(lineNo + 1): id '\(f[0])' is not a row index")
                }
                guard id >= 0 && id < n else { throw HDLError.invalidInput("items '\(path)' line \(lineNo + 1): id \(id) outside the run's rows 0..<\(n)") }
                guard values[id] == nil else { throw HDLError.invalidInput("items '\(path)' line \(lineNo + 1): id \(id) appears twice") }
                values[id] = f[1]
            }
            return ReviewItems(kind: kind, values: values.map { $0! }, baseDirectory: base)
        }
        guard lines.count == n else {
            throw HDLError.invalidInput("items '\(path)' has \(lines.count) lines but the run has \(n) rows; a plain items file holds one item per row in row order (or give a CSV 'id,image' / 'id,text')")
        }
        return ReviewItems(kind: forced ?? .text, values: lines, baseDirectory: base)
    }
}

/// Turns image references into what Label Studio (or a browser) fetches, and finds local images that do not exist.
///
/// A reference that is a URL (`http://`, `https://`, `s3://`, `gs://`, `azure-blob://`, `data:`, or a path beginning
/// with `/data/`) is used as it is. Anything else is a local file path, relative to the items file's directory.
/// Local files are served through one of:
/// - `localFilesRoot`: Label Studio's local-files storage (`LOCAL_FILES_SERVING_ENABLED=true`,
///   `LOCAL_FILES_DOCUMENT_ROOT=ROOT`): the URL is `/data/local-files/?d=<path relative to ROOT>`; a path outside ROOT
///   is an error;
/// - `urlPrefix`: a web server that serves the items file's directory: `PREFIX/<path relative to that directory>`.
/// With neither, the absolute path is written (Label Studio cannot show it; the caller warns).
public struct ItemLocator: Sendable, Equatable {
    public var localFilesRoot: String?
    public var urlPrefix: String?

    public init(localFilesRoot: String? = nil, urlPrefix: String? = nil) {
        self.localFilesRoot = localFilesRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        self.urlPrefix = urlPrefix
    }

    public static func isURL(_ s: String) -> Bool {
        ["http://", "https://", "s3://", "gs://", "azure-blob://", "data:", "/data/"].contains { s.lowercased().hasPrefix($0) }
    }

    /// The absolute local path of a reference, or nil for a URL.
    public static func localPath(_ ref: String, base: String) -> String? {
        if isURL(ref) { return nil }
        let p = ref.hasPrefix("/") ? ref : base + "/" + ref
        return URL(fileURLWithPath: p).standardizedFileURL.path
    }

    /// Percent-encodes a path for a URL (segments kept, reserved characters escaped).
    static func encodePath(_ p: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return p.addingPercentEncoding(withAllowedCharacters: allowed) ?? p
    }

    /// The URL a reviewer's browser fetches for `ref`.
    public func url(_ ref: String, base: String) throws -> String {
        guard let abs = Self.localPath(ref, base: base) else { return ref }
        if let root = localFilesRoot {
            let prefix = root.hasSuffix("/") ? root : root + "/"
            guard abs.hasPrefix(prefix) else {
                throw HDLError.invalidInput("image '\(abs)' is outside the local-files root '\(root)' (Label Studio serves only files under LOCAL_FILES_DOCUMENT_ROOT)")
            }
            return "/data/local-files/?d=" + Self.encodePath(String(abs.dropFirst(prefix.count)))
        }
        if let urlPrefix {
            let rel: String
            let b = base.hasSuffix("/") ? base : base + "/"
            rel = abs.hasPrefix(b) ? String(abs.dropFirst(b.count)) : String(abs.drop(while: { $0 == "/" }))
            return (urlPrefix.hasSuffix("/") ? urlPrefix : urlPrefix + "/") + Self.encodePath(rel)
        }
        return abs
    }

    /// Local image files among `refs` that do not exist (absolute paths, each once, in the given order).
    public static func missing(_ refs: [String], base: String) -> [String] {
        var seen = Set<String>()
        return refs.compactMap { localPath($0, base: base) }.filter { seen.insert($0).inserted && !FileManager.default.fileExists(atPath: $0) }
    }
}

/// What a reviewer sees beside a sample: the labeled samples nearest to it and its graph neighbours' current labels.
public struct ReviewContext: Sendable, Equatable, Codable {
    /// The nearest seeds (row id, class name, cosine similarity), most similar first.
    public var nearestSeeds: [Neighbour]
    /// Current labels among the sample's graph neighbours: (class name, count), most frequent first (ties by name).
    public var neighbourLabels: [LabelCount]

    public struct Neighbour: Sendable, Equatable, Codable { public var id: Int; public var label: String; public var similarity: Float }
    public struct LabelCount: Sendable, Equatable, Codable { public var label: String; public var count: Int }

    /// One line for a reviewer: "nearest labeled: Shirt 0.93, Coat 0.91 · neighbours now: Shirt 6, Coat 4".
    public var summary: String {
        var parts: [String] = []
        if !nearestSeeds.isEmpty {
            parts.append("nearest labeled: " + nearestSeeds.map { "\($0.label) \(String(format: "%.2f", $0.similarity))" }.joined(separator: ", "))
        }
        if !neighbourLabels.isEmpty {
            parts.append("neighbours now: " + neighbourLabels.map { "\($0.label) \($0.count)" }.joined(separator: ", "))
        }
        return parts.joined(separator: " · ")
    }
}

extension Review {
    /// The context of each item: its `seeds` nearest seeds by cosine similarity over `x` (rows L2-normalized by the
    /// caller) and the current labels of its first `neighbours` graph neighbours.
    /// Cost O(items · seeds · d) for the seeds (a canonical dot product, so equal on every machine) plus O(items · k).
    /// Ties in similarity go to the lower row id.
    public static func context(of items: [ReviewItem], run: RunLabels, graph: KNNGraph, x: Embeddings,
                               seeds m: Int = 3, neighbours k: Int = 10) -> [ReviewContext] {
        let seedIds = (0 ..< run.n).filter { run.isSeed[$0] && run.labels[$0] >= 0 }
        let d = x.cols
        func name(_ i: Int) -> String { run.labels[i] >= 0 ? run.classNames[Int(run.labels[i])] : "none" }
        return x.data.withUnsafeBufferPointer { xb in
            items.map { it in
                var best: [(id: Int, s: Float)] = []
                if m > 0 {
                    let q = xb.baseAddress! + it.id * d
                    for s in seedIds where s != it.id {
                        let v = CanonicalSimilarity.dot(q, xb.baseAddress! + s * d, d)
                        if best.count == m, let last = best.last, !(v > last.s || (v == last.s && s < last.id)) { continue }
                        best.append((s, v))
                        best.sort { $0.s > $1.s || ($0.s == $1.s && $0.id < $1.id) }
                        if best.count > m { best.removeLast() }
                    }
                }
                var counts: [String: Int] = [:]
                for t in 0 ..< min(k, graph.k) {
                    let j = Int(graph.neighbors[it.id * graph.k + t])
                    if j >= 0 && j != it.id { counts[name(j), default: 0] += 1 }
                }
                let labels = counts.map { ReviewContext.LabelCount(label: $0.key, count: $0.value) }
                    .sorted { $0.count > $1.count || ($0.count == $1.count && $0.label < $1.label) }
                return ReviewContext(nearestSeeds: best.map { .init(id: $0.id, label: name($0.id), similarity: $0.s) }, neighbourLabels: labels)
            }
        }
    }
}
