import Dispatch
import Foundation

/// Incoming or outgoing kNN edges as parallel arrays: edge e goes from global row `source[e]` (its `slot[e]`-th
/// neighbour) to global row `target[e]` with similarity `sim[e]`.
public struct EdgeList: Sendable, Equatable {
    public var target: [Int32] = []
    public var source: [Int32] = []
    public var slot: [Int32] = []
    public var sim: [Float] = []
    public init() {}
    public init(target: [Int32], source: [Int32], slot: [Int32], sim: [Float]) {
        self.target = target; self.source = source; self.slot = slot; self.sim = sim
    }
    public var count: Int { target.count }
}

/// What HDL needs from the processes that share the rows of one labeling job.
///
/// The rows `0 ..< n` are split into consecutive ranges, one per process, each starting at a multiple of
/// `Reduction.block` (the last may end anywhere). A process holds the kNN rows and evidence of its own range only;
/// everything that crosses ranges goes through these calls. Every process calls them in the same order.
/// `LocalRows` is the single-process case (all rows, every call a no-op); the MPI implementation lives in
/// HDLabelCluster. Vectors that travel are `n × C` at most (C classes), never the graph.
public protocol RowCollectives {
    /// Total number of rows.
    var n: Int { get }
    /// This process's global rows.
    var rows: Range<Int> { get }
    /// Concatenation of every process's `local` in row order (`local` has `rows.count × width` elements).
    func allgather(_ local: [Float]) throws -> [Float]
    func allgather(_ local: [Double]) throws -> [Double]
    func allgather(_ local: [Int32]) throws -> [Int32]
    /// Element-wise integer sum over processes (exact, so order does not matter).
    func sum(_ local: [Int]) throws -> [Int]
    /// The same for 128-bit fixed-point sums (class sums and scatter of the geometry evidence).
    func sumExact(_ local: [Int128]) throws -> [Int128]
    /// Every edge of every process whose `target` is one of this process's rows, in (source, slot) order.
    /// `outgoing` is this process's edges in (source, slot) order.
    func incoming(_ outgoing: EdgeList) throws -> EdgeList
}

/// The single process: every row is local.
public struct LocalRows: RowCollectives {
    public let n: Int
    public init(n: Int) { self.n = n }
    public var rows: Range<Int> { 0 ..< n }
    public func allgather(_ local: [Float]) -> [Float] { local }
    public func allgather(_ local: [Double]) -> [Double] { local }
    public func allgather(_ local: [Int32]) -> [Int32] { local }
    public func sum(_ local: [Int]) -> [Int] { local }
    public func sumExact(_ local: [Int128]) -> [Int128] { local }
    public func incoming(_ outgoing: EdgeList) -> EdgeList { outgoing }
}

/// Reductions whose floating-point result does not depend on how rows are split over processes: each fixed global
/// block of `block` rows yields one partial (summed row by row in order), the partials travel, and they are added in
/// block order. The single process uses the same grid, so both agree bit for bit.
public enum Reduction {
    /// Rows per partial. Process ranges must start at multiples of this (the cluster checks `tile % block == 0`).
    public static let block = 32

    /// Column sums over rows of an `rows.count × m` row-major block, of `term(i, c)` for local row i and column c.
    /// Returns m totals, the same for any split of the rows.
    public static func columnSums(_ comm: RowCollectives, rows: Int, columns m: Int,
                                  _ term: (Int, Int) -> Double) throws -> [Double] {
        let blocks = (rows + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks * m)
        for b in 0 ..< blocks {
            for i in b * block ..< min(rows, (b + 1) * block) {
                for c in 0 ..< m { partial[b * m + c] += term(i, c) }
            }
        }
        return try sumPartials(comm, partial, columns: m)
    }

    /// Totals of per-block partials (`blocks × m`, one row of m per local block of `block` rows, each summed row by
    /// row in order): the partials of every process travel and are added in global block order.
    public static func sumPartials(_ comm: RowCollectives, _ partial: [Double], columns m: Int) throws -> [Double] {
        let all = try comm.allgather(partial)
        var out = [Double](repeating: 0, count: m)
        for b in 0 ..< all.count / max(m, 1) { for c in 0 ..< m { out[c] += all[b * m + c] } }
        return out
    }
}

/// Row-parallel loops whose results do not depend on the number of threads: work is split into contiguous row
/// ranges that start and end on `Reduction.block` boundaries, every row (and every block's partial sum) is computed
/// by one worker in the same order as on one thread, and whatever is summed across blocks is added afterwards in
/// block order.
public enum Parallel {
    /// Workers when a caller asks for 0: every core of this process (`ProcessInfo.activeProcessorCount`).
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// `threads` resolved (0 = every core), at least 1.
    public static func resolve(_ threads: Int) -> Int { threads > 0 ? threads : max(1, cores) }

    /// Calls `body(lo, hi)` for consecutive row ranges covering `0 ..< rows`, each a whole number of blocks (the last
    /// may end at `rows`). One range runs inline for `threads == 1`; otherwise the ranges (4 per thread, for balance on
    /// a shared machine) run concurrently.
    public static func forBlocks(rows: Int, threads: Int, _ body: (Int, Int) -> Void) {
        let blocks = (rows + Reduction.block - 1) / Reduction.block
        let t = resolve(threads)
        let chunks = min(blocks, t == 1 ? 1 : 4 * t)
        if chunks <= 1 { if rows > 0 { body(0, rows) }; return }
        let per = (blocks + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { ch in
            let lo = ch * per * Reduction.block, hi = min(rows, (ch + 1) * per * Reduction.block)
            if lo < hi { body(lo, hi) }
        }
    }
}
