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
    public func max(_ local: [Int]) throws -> [Int] { try comm.point("labeling collective"); return try comm.allreduce(local, .max) }
    /// One `MPI_Allreduce` (sum of Int64) of every value split into four 32-bit limbs (three unsigned, the top one
    /// signed): 32 bytes per value whatever the rank count, and integer sums, so exact and order-independent. The limb
    /// sums (each below P · 2³²) are recombined modulo 2¹²⁸, which is the exact total whenever that fits 128 bits.
    public func sumExact(_ local: [Int128]) throws -> [Int128] {
        try comm.point("labeling collective")
        var limbs = [Int64](repeating: 0, count: 4 * local.count)
        for (e, v) in local.enumerated() {
            let u = UInt128(bitPattern: v)
            limbs[4 * e] = Int64(UInt32(truncatingIfNeeded: u)); limbs[4 * e + 1] = Int64(UInt32(truncatingIfNeeded: u >> 32))
            limbs[4 * e + 2] = Int64(UInt32(truncatingIfNeeded: u >> 64)); limbs[4 * e + 3] = Int64(Int32(truncatingIfNeeded: v >> 96))
        }
        let s = try comm.allreduce(limbs, .sum)
        var out = [Int128](repeating: 0, count: local.count)
        for e in 0 ..< local.count {
            let top: Int128 = Int128(s[4 * e + 3]) << 96, high: Int128 = Int128(s[4 * e + 2]) << 64
            let mid: Int128 = Int128(s[4 * e + 1]) << 32, low = Int128(s[4 * e])
            out[e] = top &+ high &+ mid &+ low
        }
        return out
    }

    /// The owner of every ghost is found from the shard bounds; one `alltoallv` of the per-owner counts and one of the
    /// ghost ids tell every rank which of its rows each other rank reads. 4 bytes per ghost sent, once per graph.
    public func halo(ghosts: [Int32]) throws -> HaloPlan {
        try comm.point("labeling collective")
        let p = table.ranks
        var receive = [Int](repeating: 0, count: p)
        for j in ghosts { receive[owner(Int(j))] += 1 }
        let wanted = try comm.alltoallv(receive.map { Int32($0) }, sendCounts: [Int](repeating: 1, count: p))
        let requested = try comm.alltoallv(ghosts, sendCounts: receive)
        let first = Int32(rows.lowerBound)
        return HaloPlan(ghosts: ghosts, receiveCounts: receive, sendRows: requested.map { $0 - first }, sendCounts: wanted.map { Int($0) })
    }

    /// One `alltoallv` with the plan's counts: each rank sends the rows others read, `width` values each.
    public func exchange(_ local: [Float], width: Int, plan: HaloPlan) throws -> [Float] {
        try comm.point("labeling collective")
        return try comm.alltoallv(plan.pack(local, width: width), sendCounts: plan.sendCounts.map { $0 * width },
                                  receiveCounts: plan.receiveCounts.map { $0 * width })
    }
    public func exchange(_ local: [Double], width: Int, plan: HaloPlan) throws -> [Double] {
        try comm.point("labeling collective")
        return try comm.alltoallv(plan.pack(local, width: width), sendCounts: plan.sendCounts.map { $0 * width },
                                  receiveCounts: plan.receiveCounts.map { $0 * width })
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
