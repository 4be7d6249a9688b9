import Foundation
import HDLabelCore

/// The embeddings of one job as one `.npy` file or a list of `.npy` shards read as one matrix: every shard is 2-D
/// float32/float64 with the same d and dtype, and rows follow file order (shard 0's rows, then shard 1's, …).
///
/// `spec` accepted wherever an embeddings file is: a `.npy` path, a directory (its `*.npy` files in name order), or
/// a comma-separated list of `.npy` paths. Only headers are read on `open`; `read(rows:)` loads the rows asked for
/// from the shards that hold them (offset reads), so each rank of a cluster reads only its rows.
public struct EmbeddingFiles: Sendable, Equatable {
    public let paths: [String]
    /// Rows of each shard; `starts[i]` is the global id of shard i's first row.
    public let rowCounts: [Int]
    public let starts: [Int]
    public let cols: Int
    public let dtype: String
    public var rows: Int { (starts.last ?? 0) + (rowCounts.last ?? 0) }

    /// Opens `spec` (a file, a directory of `.npy` shards, or `a.npy,b.npy,…`) and checks every shard's header.
    public static func open(_ spec: String) throws -> EmbeddingFiles {
        var isDir: ObjCBool = false
        let paths: [String]
        if FileManager.default.fileExists(atPath: spec, isDirectory: &isDir), isDir.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: spec)) ?? []
            paths = names.filter { $0.hasSuffix(".npy") && !$0.hasPrefix(".") }.sorted().map { spec + "/" + $0 }
            if paths.isEmpty { throw HDLError.invalidInput("directory '\(spec)' holds no .npy shards") }
        } else if spec.contains(","), !FileManager.default.fileExists(atPath: spec) {
            paths = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        } else {
            paths = [spec]
        }
        var counts: [Int] = [], starts: [Int] = [], cols = -1, dtype = ""
        var total = 0
        for p in paths {
            let h = try NPY.readHeader(path: p)
            guard h.dtype.isFloat else { throw HDLError.format(path: p, reason: "embeddings must be float32 or float64, found \(h.dtype.rawValue)") }
            guard h.shape.count == 2 else { throw HDLError.format(path: p, reason: "embeddings must be 2-D (n, d), found shape \(h.shape)") }
            if cols < 0 { cols = h.shape[1]; dtype = h.dtype.rawValue }
            if h.shape[1] != cols { throw HDLError.format(path: p, reason: "shard has d = \(h.shape[1]), '\(paths[0])' has d = \(cols)") }
            if h.dtype.rawValue != dtype { throw HDLError.format(path: p, reason: "shard dtype \(h.dtype.rawValue) differs from '\(paths[0])' (\(dtype))") }
            starts.append(total); counts.append(h.shape[0]); total += h.shape[0]
        }
        try KNNGraph.checkRowCount(total)
        return EmbeddingFiles(paths: paths, rowCounts: counts, starts: starts, cols: cols, dtype: dtype)
    }

    /// Global rows `range` (all rows when nil), read only from the shards that hold them.
    public func read(rows range: Range<Int>? = nil) throws -> Embeddings {
        let r = range ?? 0 ..< rows
        guard r.lowerBound >= 0, r.upperBound <= rows else { throw HDLError.invalidInput("row range \(r) outside 0..<\(rows)") }
        var data = [Float](); data.reserveCapacity(r.count * cols)
        for (i, p) in paths.enumerated() {
            let lo = max(r.lowerBound, starts[i]), hi = min(r.upperBound, starts[i] + rowCounts[i])
            if lo >= hi { continue }
            data.append(contentsOf: try NPY.readEmbeddings(path: p, rows: (lo - starts[i]) ..< (hi - starts[i])).data)
        }
        return Embeddings(rows: r.count, cols: cols, data: data)
    }

    /// One provenance string for manifests: each shard's hash, in order.
    public var fileHash: String { paths.map(RunManifest.fileHash).joined(separator: ",") }
}
