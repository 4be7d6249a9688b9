import CBLAS
import HDLabelIO
import Foundation
import HDLabelCore

/// A rank's partial kNN graph saved to disk so a restarted job can skip the ring exchange.
///
/// Files per rank r in the checkpoint directory:
/// - `graph.rankR.ids.npy`: int32, shape `(rows·k,)`, global neighbour ids, row-major;
/// - `graph.rankR.sims.npy`: float32, shape `(rows, k)`, similarities;
/// - `graph.rankR.json`: the `Key` it was computed for. Written last, so its presence marks a complete checkpoint.
/// All three are written atomically. A checkpoint is valid for the current job only when its key equals the job's
/// key: the same embeddings file (path, size, modification time and a hash of its first MiB, which holds the header),
/// n, d, k, tile, rank count and this rank's rows, the same hdlabel version and the same BLAS kernel
/// (`openblas_get_corename`, `OPENBLAS_CORETYPE`); and both arrays have the expected sizes. Any other checkpoint in
/// the directory is refused with the fields that differ (`load` throws); a directory without one for this rank means
/// "compute". Loading and saving are local (no MPI); the job agrees on the outcome collectively.
public enum GraphCheckpoint {
    /// What a partial graph depends on.
    public struct Key: Codable, Equatable, Sendable {
        public var input: String
        public var inputBytes: Int
        public var inputModified: Double
        /// `fnv1a64` of the file's first MiB (the `.npy` header and the first rows).
        public var inputHeadHash: String
        public var n: Int
        public var d: Int
        public var k: Int
        public var tile: Int
        public var ranks: Int
        public var rank: Int
        public var firstRow: Int
        public var rows: Int
        /// `RunManifest.version` of the build that wrote it.
        public var version: String
        /// OpenBLAS kernel in use and the `OPENBLAS_CORETYPE` override ("" when unset).
        public var blasCore: String
        public var blasCoreType: String
        /// The graph builder and its parameters ("exact", or "approx overlap 3 cells 447 …").
        public var builder: String = "exact"

        /// The key for `rank`'s shard of `table` over the embeddings file at `input` (reads the file's attributes
        /// and first MiB).
        public init(input: String, n: Int, d: Int, k: Int, table: ShardTable, rank: Int) throws {
            // One file, or every shard of a directory / comma list: total size, latest change, each head's hash.
            let paths = (try? EmbeddingFiles.open(input).paths) ?? [input]
            var bytes = 0, modified = 0.0
            for p in paths {
                let attrs: [FileAttributeKey: Any]
                do { attrs = try FileManager.default.attributesOfItem(atPath: p) } catch {
                    throw HDLError.io(path: p, reason: "no such file or not readable")
                }
                bytes += (attrs[.size] as? NSNumber)?.intValue ?? -1
                modified = max(modified, (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
            }
            self.input = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }.joined(separator: ",")
            inputBytes = bytes
            inputModified = modified
            inputHeadHash = paths.map(RunManifest.headHash).joined(separator: ",")
            self.n = n; self.d = d; self.k = k; self.tile = table.tile; self.ranks = table.ranks; self.rank = rank
            firstRow = table.rows(of: rank).lowerBound; rows = table.rows(of: rank).count
            version = RunManifest.version
            blasCore = GraphCheckpoint.blasCoreName()
            blasCoreType = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? ""
        }

        /// "field saved → now" for every field that differs from `other` (the current job's key).
        public func differences(from now: Key) -> [String] {
            var out: [String] = []
            func cmp<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { out.append("\(name) \(a) → \(b)") } }
            cmp("input", input, now.input); cmp("input size", inputBytes, now.inputBytes)
            cmp("input modified", inputModified, now.inputModified); cmp("input head hash", inputHeadHash, now.inputHeadHash)
            cmp("n", n, now.n); cmp("d", d, now.d); cmp("k", k, now.k); cmp("tile", tile, now.tile)
            cmp("ranks", ranks, now.ranks); cmp("rank", rank, now.rank); cmp("first row", firstRow, now.firstRow)
            cmp("rows", rows, now.rows); cmp("version", version, now.version)
            cmp("BLAS kernel", blasCore, now.blasCore); cmp("OPENBLAS_CORETYPE", blasCoreType, now.blasCoreType)
            cmp("graph builder", builder, now.builder)
            return out
        }
    }

    /// The OpenBLAS kernel name ("Haswell", "SkylakeX", ...).
    public static func blasCoreName() -> String {
        guard let p = openblas_get_corename() else { return "" }
        return String(cString: p).trimmingCharacters(in: .whitespaces)
    }

    static func paths(dir: String, rank: Int) -> (ids: String, sims: String, key: String) {
        let base = dir + "/graph.rank\(rank)"
        return (base + ".ids.npy", base + ".sims.npy", base + ".json")
    }

    /// The saved partial graph for `key`; nil when this rank has none in `dir` (no key file). Throws, naming what
    /// differs, when the checkpoint was made for another job or its arrays are damaged.
    public static func load(dir: String, key: Key) throws -> KNNGraph? {
        let p = paths(dir: dir, rank: key.rank)
        guard let keyData = FileManager.default.contents(atPath: p.key) else { return nil }
        let refuse = { (why: String) in
            HDLError.invalidInput("checkpoint '\(p.key)' does not match this job (\(why)); remove '\(dir)' or use another --checkpoint directory")
        }
        guard let saved = try? JSONDecoder().decode(Key.self, from: keyData) else { throw refuse("unreadable or from an older hdlabel") }
        if saved != key { throw refuse(saved.differences(from: key).joined(separator: ", ")) }
        guard let ids = try? NPY.readInts(path: p.ids), ids.count == key.rows * key.k,
              let sims = try? NPY.readEmbeddings(path: p.sims), sims.rows == key.rows, sims.cols == key.k
        else { throw refuse("graph arrays missing or of the wrong size") }
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

/// The ring's progress saved after every step, so a job lost in the middle of the graph phase (a killed rank, a
/// lost node) resumes from the last step every rank finished instead of from the start.
///
/// Files per rank r: `ring.rankR.doneS.{ids,sims}.npy` (the running top-k of all this rank's rows after S of the ⌊P/2⌋ + 1
/// ring steps) and `ring.rankR.doneS.json` (the `GraphCheckpoint.Key`, written last). Steps are saved in lockstep
/// (every save is agreed before the next step starts), so the ranks' latest steps differ by at most one; the two
/// latest generations are kept and the job resumes at the latest step all ranks have. A saved step made for another
/// job is refused with the reason, like the graph checkpoint. The files are removed once the whole graph is
/// checkpointed. The top-k merge does not depend on merge order, so a resumed graph is bit-identical.
public struct RingCheckpoint {
    public let dir: String
    public let key: GraphCheckpoint.Key
    /// The embeddings file, to re-read the block the resumed step starts with.
    public let embeddings: String
    /// Progress messages (root only).
    public var log: (String) -> Void = { _ in }

    public init(dir: String, key: GraphCheckpoint.Key, embeddings: String) {
        // A ring state is a partial top-k that only the same step schedule may resume (each pair scored once,
        // steps 0 ... P/2): states of another schedule do not match.
        var key = key
        key.builder += " ring-pairs-once"
        self.dir = dir; self.key = key; self.embeddings = embeddings
    }

    func paths(done: Int) -> (ids: String, sims: String, key: String) {
        let base = dir + "/ring.rank\(key.rank).done\(done)"
        return (base + ".ids.npy", base + ".sims.npy", base + ".json")
    }

    /// Steps done (1 ..< P) for which this rank has a complete state for this job; throws when a state in `dir`
    /// was made for another job.
    func available() throws -> [Int] {
        var out: [Int] = []
        for done in 1 ..< max(key.ranks, 1) {
            let p = paths(done: done)
            guard let data = FileManager.default.contents(atPath: p.key) else { continue }
            guard let saved = try? JSONDecoder().decode(GraphCheckpoint.Key.self, from: data), saved == key else {
                let why = (try? JSONDecoder().decode(GraphCheckpoint.Key.self, from: data)).map { $0.differences(from: key).joined(separator: ", ") }
                throw HDLError.invalidInput("ring checkpoint '\(p.key)' does not match this job (\(why ?? "unreadable")); remove '\(dir)' or use another --checkpoint directory")
            }
            out.append(done)
        }
        return out
    }

    /// The running top-k (ids, sims of all this rank's rows) after `done` steps.
    func load(done: Int) throws -> (ids: [Int32], sims: [Float]) {
        let p = paths(done: done)
        guard let ids = try? NPY.readInts(path: p.ids), ids.count == key.rows * key.k,
              let sims = try? NPY.readEmbeddings(path: p.sims), sims.rows == key.rows, sims.cols == key.k
        else { throw HDLError.invalidInput("ring checkpoint '\(p.ids)' is damaged; remove '\(dir)'") }
        return (ids.map { Int32($0) }, sims.data)
    }

    /// Saves the state after `done` steps (key last) and removes the generation before the previous one.
    func save(done: Int, ids: [Int32], sims: [Float]) throws {
        let p = paths(done: done)
        var data = NPY.encodeHeader(dtype: .int32, shape: [ids.count])
        ids.map { $0.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        try AtomicFile.write(data, to: p.ids)
        try AtomicFile.write(NPY.encode(Embeddings(rows: key.rows, cols: key.k, data: sims)), to: p.sims)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(key), to: p.key)
        if done >= 3 { remove(done: done - 2) }
    }

    func remove(done: Int) {
        let p = paths(done: done)
        unlink(p.key); unlink(p.ids); unlink(p.sims)
    }

    /// Removes every saved step of this rank (the whole graph is checkpointed).
    public func removeAll() { for done in 1 ..< max(key.ranks, 1) { remove(done: done) } }
}
