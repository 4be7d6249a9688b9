import Foundation
import HDLabelCore

/// The rows of a labeling job split over MPI ranks as the `ShardTable` splits them: HDL's `RowCollectives` over a
/// `Communicator`. Rank r holds rows `table.rows(of: r)`; shards start at multiples of the tile, and the tile must be
/// a multiple of `Reduction.block` so every reduction partial lies inside one shard.
public struct RankRows: RowCollectives {
    public let comm: Communicator
    public let table: ShardTable

    public init(comm: Communicator, table: ShardTable) throws {
        guard table.tile % Reduction.block == 0 else {
            throw HDLError.invalidParameter(name: "tile", value: "\(table.tile)",
                                            allowed: "a multiple of \(Reduction.block) with --distributed-labeling")
        }
        guard table.ranks == comm.size else { throw HDLError.cluster("shard table for \(table.ranks) ranks on \(comm.size)") }
        self.comm = comm; self.table = table
    }

    public var n: Int { table.n }
    public var rows: Range<Int> { table.rows(of: comm.rank) }
    // Every collective of the labeling is a fault-injection point ("labeling"), so tests can fail a rank in the
    // middle of a layer (the job runs this inside `Communicator.collective`).
    public func allgather(_ local: [Float]) throws -> [Float] { try comm.point("labeling collective"); return try comm.allgatherv(local) }
    public func allgather(_ local: [Double]) throws -> [Double] { try comm.point("labeling collective"); return try comm.allgatherv(local) }
    public func allgather(_ local: [Int32]) throws -> [Int32] { try comm.point("labeling collective"); return try comm.allgatherv(local) }
    public func sum(_ local: [Int]) throws -> [Int] { try comm.point("labeling collective"); return try comm.allreduce(local, .sum) }
    /// Every rank's values travel as (high, low) Int64 pairs (allgather, P · 16 bytes per value) and are added exactly.
    public func sumExact(_ local: [Int128]) throws -> [Int128] {
        try comm.point("labeling collective")
        var pairs = [Int64](repeating: 0, count: 2 * local.count)
        for (e, v) in local.enumerated() { pairs[2 * e] = Int64(truncatingIfNeeded: v >> 64); pairs[2 * e + 1] = Int64(truncatingIfNeeded: v) }
        let all = try comm.allgatherv(pairs)
        var out = [Int128](repeating: 0, count: local.count)
        for q in 0 ..< all.count / 2 {
            let v = (Int128(all[2 * q]) << 64) | Int128(UInt64(bitPattern: all[2 * q + 1]))
            out[q % local.count] += v
        }
        return out
    }

    /// Rank owning global row `i` (binary search over the shard bounds; empty shards are skipped).
    func owner(_ i: Int) -> Int {
        var lo = 0, hi = table.ranks - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if table.bounds[mid] <= i { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Each edge goes to the owner of its target (one `alltoallv` of 3 Int32 and one of a Float per edge). Senders
    /// keep (source, slot) order and ranks own ascending rows, so the concatenation in rank order is in (source, slot)
    /// order too.
    public func incoming(_ out: EdgeList) throws -> EdgeList {
        try comm.point("labeling collective")
        let p = table.ranks
        var dest = [Int](repeating: 0, count: out.count), counts = [Int](repeating: 0, count: p)
        for e in 0 ..< out.count { let r = owner(Int(out.target[e])); dest[e] = r; counts[r] += 1 }
        var start = [Int](repeating: 0, count: p + 1)
        for r in 0 ..< p { start[r + 1] = start[r] + counts[r] }
        var ints = [Int32](repeating: 0, count: 3 * out.count), sims = [Float](repeating: 0, count: out.count)
        var fill = start
        for e in 0 ..< out.count {
            let q = fill[dest[e]]; fill[dest[e]] += 1
            ints[3 * q] = out.target[e]; ints[3 * q + 1] = out.source[e]; ints[3 * q + 2] = out.slot[e]; sims[q] = out.sim[e]
        }
        let gotInts = try comm.alltoallv(ints, sendCounts: counts.map { 3 * $0 })
        let gotSims = try comm.alltoallv(sims, sendCounts: counts)
        var inc = EdgeList()
        let m = gotSims.count
        inc.target.reserveCapacity(m); inc.source.reserveCapacity(m); inc.slot.reserveCapacity(m)
        for e in 0 ..< m { inc.target.append(gotInts[3 * e]); inc.source.append(gotInts[3 * e + 1]); inc.slot.append(gotInts[3 * e + 2]) }
        inc.sim = gotSims
        return inc
    }
}

/// Worker-side labeling: any method with the graph left on the ranks that built it (`Labeling.run(rows:comm:…)`).
public enum DistributedLabeling {

    /// **Collective.** Labels all n rows; `local` is this rank's rows of the graph, `embeddings` the same rows
    /// L2-normalised (needed unless the evidence is `graph`). The result (all n rows) is the same on every rank and
    /// identical to `Labeling.run` on one process.
    public static func run(local: KNNGraph, embeddings: Embeddings?, comm: Communicator, table: ShardTable, seeds: [Int32],
                           numClasses: Int, config: LabelingConfig, log: ((String) -> Void)? = nil) throws -> LabelingResult {
        let rows = try RankRows(comm: comm, table: table)
        return try Labeling.run(rows: local, comm: rows, seeds: seeds, numClasses: numClasses, config: config,
                                embeddings: config.usesEmbeddings ? embeddings : nil, log: comm.isRoot ? log : nil)
    }
}
