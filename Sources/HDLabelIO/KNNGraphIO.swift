import HDLabelCore
import Foundation

/// A kNN graph on disk: `PREFIX.neighbors.npy` (n × k int32), `PREFIX.similarities.npy` (n × k float32) and
/// `PREFIX.manifest.json` (builder, parameters, recall estimate). Each file is written atomically; the manifest last.
public enum KNNGraphFile {
    public struct Manifest: Codable, Sendable, Equatable {
        public var tool = "hdlabel"
        public var version = RunManifest.version
        public var command: String
        public var builder: String
        public var parameters: [String: String]
        public var input: String?
        public var n: Int
        public var k: Int
        public var dimensions: Int
        public var recall: GraphRecall.Estimate?
        public var seconds: [String: Double]
        public var created: String

        public init(command: String, builder: String, parameters: [String: String], input: String?, n: Int, k: Int, dimensions: Int,
                    recall: GraphRecall.Estimate?, seconds: [String: Double]) {
            self.command = command; self.builder = builder; self.parameters = parameters; self.input = input
            self.n = n; self.k = k; self.dimensions = dimensions; self.recall = recall; self.seconds = seconds
            created = ISO8601DateFormatter().string(from: Date())
        }

        /// Pretty-printed JSON with sorted keys (what `PREFIX.manifest.json` holds).
        public func json() throws -> Data {
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            return try enc.encode(self)
        }
    }

    public static func neighborsPath(_ prefix: String) -> String { prefix + ".neighbors.npy" }
    public static func similaritiesPath(_ prefix: String) -> String { prefix + ".similarities.npy" }
    public static func manifestPath(_ prefix: String) -> String { prefix + ".manifest.json" }

    /// Writes the two arrays, then the manifest (if given), each atomically.
    public static func write(_ g: KNNGraph, prefix: String, manifest: Manifest?) throws {
        var nb = NPY.encodeHeader(dtype: .int32, shape: [g.n, g.k])
        g.neighbors.withUnsafeBytes { nb.append(contentsOf: $0) }
        try AtomicFile.write(nb, to: neighborsPath(prefix))
        var sm = NPY.encodeHeader(dtype: .float32, shape: [g.n, g.k])
        g.similarities.withUnsafeBytes { sm.append(contentsOf: $0) }
        try AtomicFile.write(sm, to: similaritiesPath(prefix))
        if let manifest { try AtomicFile.write(try manifest.json(), to: manifestPath(prefix)) }
    }

    /// Reads and checks a graph: both arrays 2-D with the same shape, int32 / float32, `expectedRows` rows if given,
    /// ids in `0 ..< n`, no row listing itself, no NaN similarity. Each failure is one `HDLError.format` naming the file.
    public static func read(prefix: String, expectedRows: Int? = nil) throws -> KNNGraph {
        try read(prefix: prefix, expectedRows: expectedRows, rows: nil)
    }

    /// The same for rows `rows` of the graph only (an offset read: a rank loads its own rows, `rows.count × k`;
    /// neighbour ids stay global). Both files must still hold all n rows (a truncated file is refused).
    public static func read(prefix: String, expectedRows: Int?, rows range: Range<Int>?) throws -> KNNGraph {
        let np = neighborsPath(prefix), sp = similaritiesPath(prefix)
        let nh = try NPY.readHeader(path: np), sh = try NPY.readHeader(path: sp)
        guard nh.dtype == .int32 else { throw HDLError.format(path: np, reason: "neighbours must be int32, found \(nh.dtype.rawValue)") }
        guard sh.dtype == .float32 else { throw HDLError.format(path: sp, reason: "similarities must be float32, found \(sh.dtype.rawValue)") }
        guard nh.shape.count == 2, nh.shape[1] >= 1 else { throw HDLError.format(path: np, reason: "neighbours must be 2-D (n, k) with k >= 1, found shape \(nh.shape)") }
        guard sh.shape == nh.shape else {
            throw HDLError.format(path: sp, reason: "shape \(sh.shape) differs from the neighbours' \(nh.shape)")
        }
        let n = nh.shape[0], k = nh.shape[1]
        if let e = expectedRows, e != n { throw HDLError.format(path: np, reason: "graph has \(n) rows, the embeddings have \(e)") }
        for (path, offset) in [(np, nh.dataOffset), (sp, sh.dataOffset)] {
            let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
            if size < offset + n * k * 4 {
                throw HDLError.format(path: path, reason: "truncated: \(size - offset) data bytes for \(n) × \(k) values (\(n * k * 4) bytes)")
            }
        }
        let r = range ?? 0 ..< n
        guard r.lowerBound >= 0 && r.upperBound <= n else { throw HDLError.format(path: np, reason: "rows \(r) outside the graph's 0..<\(n)") }
        let nbBytes = try NPY.readBytes(path: np, offset: nh.dataOffset + r.lowerBound * k * 4, count: r.count * k * 4)
        let smBytes = try NPY.readBytes(path: sp, offset: sh.dataOffset + r.lowerBound * k * 4, count: r.count * k * 4)
        var ids = [Int32](repeating: 0, count: r.count * k), sims = [Float](repeating: 0, count: r.count * k)
        ids.withUnsafeMutableBytes { dst in nbBytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
        sims.withUnsafeMutableBytes { dst in smBytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
        for t in 0 ..< r.count {
            let i = r.lowerBound + t
            for j in 0 ..< k {
                let v = ids[t * k + j]
                if v < 0 || Int(v) >= n { throw HDLError.format(path: np, reason: "row \(i) neighbour \(j) is \(v), outside 0..<\(n)") }
                if Int(v) == i { throw HDLError.format(path: np, reason: "row \(i) lists itself as a neighbour") }
                if sims[t * k + j].isNaN { throw HDLError.format(path: sp, reason: "row \(i) similarity \(j) is NaN") }
            }
        }
        return KNNGraph(n: r.count, k: k, neighbors: ids, similarities: sims)
    }
}

extension NPY {
    /// Reads a whole 2-D float32 `.npy` straight into the matrix (no intermediate copy: peak memory = the matrix),
    /// for 10⁶-row graph builds; other dtypes go through `readEmbeddings`.
    public static func readFloat32Matrix(path: String) throws -> Embeddings {
        let h = try readHeader(path: path)
        guard h.dtype == .float32 else { return try readEmbeddings(path: path) }
        guard h.shape.count == 2 else { throw HDLError.format(path: path, reason: "embeddings must be 2-D (n, d), found shape \(h.shape)") }
        let (n, d) = (h.shape[0], h.shape[1])
        guard let fh = FileHandle(forReadingAtPath: path) else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        defer { try? fh.close() }
        try fh.seek(toOffset: UInt64(h.dataOffset))
        var data = [Float](repeating: 0, count: n * d)
        let total = n * d * 4
        try data.withUnsafeMutableBytes { dst in
            var off = 0
            while off < total {
                let chunk = try fh.read(upToCount: min(64 << 20, total - off)) ?? Data()
                if chunk.isEmpty { throw HDLError.format(path: path, reason: "truncated at byte \(off) of \(total)") }
                chunk.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: dst[off ..< off + chunk.count]).copyMemory(from: $0) }
                off += chunk.count
            }
        }
        return Embeddings(rows: n, cols: d, data: data)
    }
}

extension Embeddings {
    /// Scales every row to unit L2 norm in place (norms in Double, as `l2Normalized`), without a second copy.
    public mutating func normalizeInPlace() {
        let d = cols
        data.withUnsafeMutableBufferPointer { buf in
            for i in 0 ..< rows {
                var s: Double = 0
                for j in 0 ..< d { let v = Double(buf[i * d + j]); s += v * v }
                if s > 0 { let inv = Float(1.0 / s.squareRoot()); for j in 0 ..< d { buf[i * d + j] *= inv } }
            }
        }
    }
}
