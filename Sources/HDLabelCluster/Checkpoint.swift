import HDLabelIO
import Foundation
import HDLabelCore

/// A rank's partial kNN graph saved to disk so a restarted job can skip the ring exchange.
///
/// Files per rank r in the checkpoint directory:
/// - `graph.rankR.ids.npy`: int32, shape `(rows·k,)`, global neighbour ids, row-major;
/// - `graph.rankR.sims.npy`: float32, shape `(rows, k)`, similarities;
/// - `graph.rankR.json`: the `Key` it was computed for. Written last, so its presence marks a complete checkpoint.
/// All three are written atomically. A checkpoint is reused only when its key equals the current job's key
/// (same input file size and modification time, n, d, k, tile, rank count and rows) and both arrays have the
/// expected sizes. Loading and saving are local (no MPI); the job agrees on reuse collectively.
public enum GraphCheckpoint {
    /// What a partial graph depends on.
    public struct Key: Codable, Equatable, Sendable {
        public var input: String
        public var inputBytes: Int
        public var inputModified: Double
        public var n: Int
        public var d: Int
        public var k: Int
        public var tile: Int
        public var ranks: Int
        public var rank: Int
        public var firstRow: Int
        public var rows: Int

        /// The key for `rank`'s shard of `table` over the embeddings file at `input` (reads the file's attributes).
        public init(input: String, n: Int, d: Int, k: Int, table: ShardTable, rank: Int) throws {
            let attrs: [FileAttributeKey: Any]
            do { attrs = try FileManager.default.attributesOfItem(atPath: input) } catch {
                throw HDLError.io(path: input, reason: "no such file or not readable")
            }
            self.input = URL(fileURLWithPath: input).standardizedFileURL.path
            inputBytes = (attrs[.size] as? NSNumber)?.intValue ?? -1
            inputModified = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            self.n = n; self.d = d; self.k = k; self.tile = table.tile; self.ranks = table.ranks; self.rank = rank
            firstRow = table.rows(of: rank).lowerBound; rows = table.rows(of: rank).count
        }
    }

    static func paths(dir: String, rank: Int) -> (ids: String, sims: String, key: String) {
        let base = dir + "/graph.rank\(rank)"
        return (base + ".ids.npy", base + ".sims.npy", base + ".json")
    }

    /// The saved partial graph for `key`, or nil when there is none, it was made for another job, or it is damaged.
    public static func load(dir: String, key: Key) -> KNNGraph? {
        let p = paths(dir: dir, rank: key.rank)
        guard let keyData = FileManager.default.contents(atPath: p.key),
              let saved = try? JSONDecoder().decode(Key.self, from: keyData), saved == key,
              let ids = try? NPY.readInts(path: p.ids), ids.count == key.rows * key.k,
              let sims = try? NPY.readEmbeddings(path: p.sims), sims.rows == key.rows, sims.cols == key.k
        else { return nil }
        return KNNGraph(n: key.rows, k: key.k, neighbors: ids.map { Int32($0) }, similarities: sims.data)
    }

    /// Saves `graph` (this rank's rows) for `key`; the key file goes last.
    public static func save(_ graph: KNNGraph, dir: String, key: Key) throws {
        let p = paths(dir: dir, rank: key.rank)
        var ids = NPY.encodeHeader(dtype: .int32, shape: [graph.neighbors.count])
        graph.neighbors.map { $0.littleEndian }.withUnsafeBytes { ids.append(contentsOf: $0) }
        try AtomicFile.write(ids, to: p.ids)
        try AtomicFile.write(NPY.encode(Embeddings(rows: graph.n, cols: graph.k, data: graph.similarities)), to: p.sims)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(key), to: p.key)
    }
}
