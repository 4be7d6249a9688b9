import HDLabelIO
import Foundation
import HDLabelCore

/// How `n` rows are split over `ranks` ranks on the global tile grid.
///
/// The rows form `ceil(n / tile)` tiles (the last may be short). Rank r gets `tiles / ranks` whole tiles, plus one
/// more when `r < tiles % ranks`, in rank order; so every shard starts at a global multiple of `tile`, which is what
/// makes the distributed graph bit-identical to the single-process one. When there are fewer tiles than ranks, the
/// last ranks own zero rows (every code path handles empty shards). Pure arithmetic: every rank computes the same
/// table without communication.
public struct ShardTable: Sendable, Equatable {
    public let n: Int
    public let tile: Int
    public let ranks: Int
    /// `ranks + 1` row boundaries: rank r owns `bounds[r] ..< bounds[r+1]`.
    public let bounds: [Int]

    public init(n: Int, tile: Int, ranks: Int) throws {
        guard n >= 0 else { throw HDLError.invalidInput("row count \(n) is negative") }
        guard tile >= 1 else { throw HDLError.invalidParameter(name: "tile", value: "\(tile)", allowed: ">= 1") }
        guard ranks >= 1 else { throw HDLError.cluster("need at least one rank, got \(ranks)") }
        self.n = n; self.tile = tile; self.ranks = ranks
        let tiles = (n + tile - 1) / tile
        let per = tiles / ranks, extra = tiles % ranks
        var b = [0], t = 0
        for r in 0 ..< ranks {
            t += per + (r < extra ? 1 : 0)
            b.append(min(t * tile, n))
        }
        bounds = b
    }

    /// Global rows of `rank` (possibly empty).
    public func rows(of rank: Int) -> Range<Int> { bounds[rank] ..< bounds[rank + 1] }
    /// Row count of every rank, in rank order.
    public var counts: [Int] { (0 ..< ranks).map { bounds[$0 + 1] - bounds[$0] } }
    /// The largest shard (rows); sizes the ring's receive buffers.
    public var maxCount: Int { counts.max() ?? 0 }
}

/// One rank's rows of the embeddings: read by offset, validated with global row numbers, L2-normalised.
public struct Shard {
    /// Global rows held.
    public let rows: Range<Int>
    /// `rows.count × d` L2-normalised, row-major.
    public let x: Embeddings
    /// Seconds spent reading and normalising (validation counts as normalising).
    public let readSeconds: Double
    public let normalizeSeconds: Double

    /// Reads `rows` of the embeddings at `path` (one 2-D float `.npy`, or a directory / comma list of `.npy` shards
    /// read as one matrix: only the shards holding these rows are touched; `d` columns, already checked against the
    /// headers), checks every value is finite and no row is zero, and normalises. Local: no MPI calls; callers
    /// `agree` on the outcome.
    public static func load(path: String, rows: Range<Int>, d: Int) throws -> Shard {
        let t0 = WallClock.now()
        let raw = rows.isEmpty ? Embeddings(rows: 0, cols: d, data: []) : try EmbeddingFiles.open(path).read(rows: rows)
        let t1 = WallClock.now()
        if !rows.isEmpty { try raw.validate(firstRow: rows.lowerBound) }
        let x = raw.l2Normalized()
        return Shard(rows: rows, x: x, readSeconds: t1 - t0, normalizeSeconds: WallClock.now() - t1)
    }

    public init(rows: Range<Int>, x: Embeddings, readSeconds: Double = 0, normalizeSeconds: Double = 0) {
        self.rows = rows; self.x = x; self.readSeconds = readSeconds; self.normalizeSeconds = normalizeSeconds
    }
}
