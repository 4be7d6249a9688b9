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

/// Which rows of other processes a process's sparse rows read, and which of its own rows the others read: the plan
/// of a halo (ghost) exchange, as PETSc's VecScatter keeps it. Worked out once per graph (`RowCollectives.halo`),
/// then every product with that graph exchanges only these rows (`RowCollectives.exchange`) instead of allgathering
/// the whole `n × C` vector. Empty on one process (`LocalRows`: no row is remote).
public struct HaloPlan: Sendable, Equatable {
    /// Global ids of the remote rows read (the ghosts), ascending, hence grouped by owning process in process order.
    public var ghosts: [Int32] = []
    /// Ghost rows arriving from each process (process order; length = number of processes, or empty).
    public var receiveCounts: [Int] = []
    /// This process's rows (local indices `0 ..< rows.count`) that other processes read, concatenated by destination
    /// process in process order, each group ascending.
    public var sendRows: [Int32] = []
    /// Rows of `sendRows` going to each process (process order).
    public var sendCounts: [Int] = []
    public init() {}
    public init(ghosts: [Int32], receiveCounts: [Int], sendRows: [Int32], sendCounts: [Int]) {
        self.ghosts = ghosts; self.receiveCounts = receiveCounts; self.sendRows = sendRows; self.sendCounts = sendCounts
    }

    /// The sorted, distinct global ids in `columns` outside `own` (what a process holding rows `own` must receive to
    /// multiply with sparse rows whose column ids are `columns`). O(r log r) for r remote entries; no communication.
    public static func ghosts(of columns: [Int32], own: Range<Int>) -> [Int32] {
        let lo = Int32(own.lowerBound), hi = Int32(own.upperBound)
        var remote = columns.filter { $0 < lo || $0 >= hi }
        remote.sort()
        var out: [Int32] = []
        out.reserveCapacity(remote.count)
        for j in remote where out.last != j { out.append(j) }
        return out
    }

    /// Index of global row `j` in `ghosts` (binary search; `j` must be a ghost).
    @inline(__always) public func ghostIndex(_ j: Int32) -> Int {
        var lo = 0, hi = ghosts.count
        while lo < hi { let mid = (lo + hi) / 2; if ghosts[mid] < j { lo = mid + 1 } else { hi = mid } }
        return lo
    }

    /// The rows `sendRows` of `local` (`rows × width` row-major), packed in `sendRows` order: what `exchange` sends.
    public func pack<T>(_ local: [T], width: Int) -> [T] {
        var out: [T] = []
        out.reserveCapacity(sendRows.count * width)
        local.withUnsafeBufferPointer { lb in
            for r in sendRows { let o = Int(r) * width; out.append(contentsOf: lb[o ..< o + width]) }
        }
        return out
    }
}

/// What HDL needs from the processes that share the rows of one labeling job.
///
/// The rows `0 ..< n` are split into consecutive ranges, one per process, each starting at a multiple of
/// `Reduction.block` (the last may end anywhere). A process holds the kNN rows and evidence of its own range only;
/// everything that crosses ranges goes through these calls. Every process calls them in the same order.
/// `LocalRows` is the single-process case (all rows, every call a no-op); the MPI implementation lives in
/// HDLabelCluster. What travels per sparse product is the halo (the remote rows the local graph rows reference,
/// `C` values each); reductions travel as `O(C)` exact integers; n-long vectors (labels, argmax, share) are
/// allgathered once per layer. The graph itself never travels (only its reverse edges, once per graph).
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
    /// Element-wise integer maximum over processes (the common scale of exact reductions, `Reduction.dots`).
    func max(_ local: [Int]) throws -> [Int]
    /// The same for 128-bit fixed-point sums (class sums and scatter of the geometry evidence, CG dot products).
    func sumExact(_ local: [Int128]) throws -> [Int128]
    /// Every edge of every process whose `target` is one of this process's rows, in (source, slot) order.
    /// `outgoing` is this process's edges in (source, slot) order.
    func incoming(_ outgoing: EdgeList) throws -> EdgeList
    /// **Collective**, once per graph. The halo plan for this process's `ghosts` (sorted distinct remote global ids,
    /// `HaloPlan.ghosts(of:own:)`): who sends which of its rows to whom. Empty on one process.
    func halo(ghosts: [Int32]) throws -> HaloPlan
    /// **Collective.** The ghost rows of a row-distributed vector: `local` is this process's rows (`rows.count ×
    /// width`); returns `plan.ghosts.count × width` values, the rows `plan.ghosts` in that order. Each process sends
    /// only the rows others read (`plan.sendRows`), so the traffic is the halo, not `n × width`.
    func exchange(_ local: [Float], width: Int, plan: HaloPlan) throws -> [Float]
    func exchange(_ local: [Double], width: Int, plan: HaloPlan) throws -> [Double]
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
    public func max(_ local: [Int]) -> [Int] { local }
    public func sumExact(_ local: [Int128]) -> [Int128] { local }
    public func incoming(_ outgoing: EdgeList) -> EdgeList { outgoing }
    public func halo(ghosts: [Int32]) -> HaloPlan { precondition(ghosts.isEmpty); return HaloPlan() }
    public func exchange(_ local: [Float], width: Int, plan: HaloPlan) -> [Float] { [] }
    public func exchange(_ local: [Double], width: Int, plan: HaloPlan) -> [Double] { [] }
}

/// Reductions whose floating-point result does not depend on how rows are split over processes or threads: each fixed
/// global block of `block` rows yields one Double partial (summed row by row in order, by one worker), every partial
/// is rounded on its own to a fixed-point grid common to all processes, and the integers (`Int128`) are added exactly,
/// so the total is the same in any order; only `O(C)` integers travel. The single process uses the same code.
public enum Reduction {
    /// Rows per partial (and per block of the row-parallel loops, `Parallel`, and of the geometry scatter). Process
    /// ranges start at multiples of this (the cluster checks `tile % block == 0`), so every block lies in one process.
    public static let block = 32

    /// Exponent sentinels of `dots` for a column without non-zero partials and one with a non-finite partial.
    static let zeroExponent = -100_000, nonFiniteExponent = 100_000

    /// `t · 2^shift` truncated towards zero, exactly from `t`'s bits (53-bit significand times a power of two).
    /// The caller guarantees |t| · 2^shift < 2¹²⁷.
    @inline(__always) static func fixed(_ t: Double, shift: Int) -> Int128 {
        let bits = t.bitPattern
        let e = Int((bits >> 52) & 0x7ff), frac = bits & 0xf_ffff_ffff_ffff
        if e == 0 && frac == 0 { return 0 }
        let m = e == 0 ? frac : frac | 0x10_0000_0000_0000
        let q = (e == 0 ? -1074 : e - 1075) + shift   // t = ±m · 2^(q − shift)
        let v: Int128 = q >= 0 ? Int128(m) << q : Int128(m >> UInt64(Swift.min(-q, 63)))
        return bits >> 63 == 0 ? v : -v
    }

    /// Per-column sums Σ_i Double(a[i,c] · b[i,c]) over the rows of every process, for `rows × m` row-major blocks
    /// `a` and `b` of this process's rows (each product rounded to Float, as a Float dot product would).
    ///
    /// One pass over the local rows (`threads` workers, 0 = every core) gives one Double partial per fixed 32-row block
    /// and column (`rows/32 × m` Doubles of scratch); the largest |partial| of each column sets, after one integer max
    /// over processes (`comm.max`, m values), a common scale 2^s at which n partials cannot overflow 128 bits; every
    /// partial is truncated to that grid and the integers are added (`comm.sumExact`, m values). The result — the
    /// block sums exact to about 2⁻⁹⁵ of the largest for n ≤ 10⁸ — is the same bits for any split of the rows over
    /// processes and threads. A column with a NaN or infinite partial gives NaN. **Collective** over `comm`: two `O(m)`
    /// reductions. O(rows · m) work.
    public static func dots(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, columns m: Int, threads: Int,
                            comm: RowCollectives) throws -> [Double] {
        let blocks = (rows + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks * m)
        partial.withUnsafeMutableBufferPointer { pb in
            guard let pp = pb.baseAddress else { return }
            Parallel.forBlocks(rows: rows, threads: threads) { lo, hi in
                for blk in lo / block ..< (hi + block - 1) / block {
                    let part = pp + blk * m
                    for i in blk * block ..< Swift.min(hi, (blk + 1) * block) {
                        let ai = a + i * m, bi = b + i * m
                        for c in 0 ..< m { part[c] += Double(ai[c] * bi[c]) }
                    }
                }
            }
        }
        var top = [Double](repeating: 0, count: m)
        for blk in 0 ..< blocks {
            for c in 0 ..< m { let t = abs(partial[blk * m + c]); if !(t <= top[c]) { top[c] = t.isNaN ? .infinity : t } }
        }
        let exps = try comm.max(top.map { $0 == 0 ? zeroExponent : $0.isFinite ? Int($0.exponent) : nonFiniteExponent })
        let width = Int.bitWidth - comm.n.leadingZeroBitCount   // n < 2^width, so fewer than 2^width partials
        let shift = exps.map { e in e == zeroExponent || e == nonFiniteExponent ? 0 : 126 - width - e }
        // The partials' integers, summed per chunk of blocks on the workers, then the chunks' totals: integer sums,
        // so the same for any chunking.
        let t = Parallel.resolve(threads)
        let chunks = max(1, min(t, blocks / 256))
        let per = (blocks + chunks - 1) / chunks
        var chunkTotals = [Int128](repeating: 0, count: chunks * m)
        partial.withUnsafeBufferPointer { pb in chunkTotals.withUnsafeMutableBufferPointer { tb in
            guard let pp = pb.baseAddress, let tp = tb.baseAddress else { return }
            DispatchQueue.concurrentPerform(iterations: chunks) { ch in
                let out = tp + ch * m
                for blk in ch * per ..< Swift.min(blocks, (ch + 1) * per) {
                    for c in 0 ..< m { out[c] &+= fixed(pp[blk * m + c], shift: shift[c]) }
                }
            }
        } }
        var total = [Int128](repeating: 0, count: m)
        for ch in 0 ..< chunks { for c in 0 ..< m { total[c] &+= chunkTotals[ch * m + c] } }
        let sums = try comm.sumExact(total)
        return (0 ..< m).map { c in
            exps[c] == nonFiniteExponent ? .nan : exps[c] == zeroExponent ? 0
                : Double(sums[c]) * Double(sign: .plus, exponent: -shift[c], significand: 1)
        }
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
