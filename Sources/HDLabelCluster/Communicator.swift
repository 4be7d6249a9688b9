import CMPI
import Foundation
import HDLabelCore

/// Element types that can travel through MPI calls: Swift type ↔ MPI datatype handle.
public protocol MPIScalar {
    static var mpiType: MPI_Datatype { get }
}

extension Float: MPIScalar { public static var mpiType: MPI_Datatype { hdl_mpi_float() } }
extension Double: MPIScalar { public static var mpiType: MPI_Datatype { hdl_mpi_double() } }
extension Int32: MPIScalar { public static var mpiType: MPI_Datatype { hdl_mpi_int32() } }
extension Int64: MPIScalar { public static var mpiType: MPI_Datatype { hdl_mpi_int64() } }
extension UInt8: MPIScalar { public static var mpiType: MPI_Datatype { hdl_mpi_uint8() } }

/// Reduction operators for `allreduce`.
public enum ReduceOp: Sendable {
    case sum, max, min
    var handle: MPI_Op {
        switch self {
        case .sum: return hdl_mpi_op_sum()
        case .max: return hdl_mpi_op_max()
        case .min: return hdl_mpi_op_min()
        }
    }
}

/// A pending non-blocking send or receive (one MPI request per chunk of at most `Communicator.maxCount` elements).
/// Its buffer must stay alive and untouched (for a receive) until `wait`.
public struct MPIRequest {
    var handles: [MPI_Request?]
    /// A request that is already complete (waiting on it returns at once).
    public static var null: MPIRequest { MPIRequest(handles: []) }
}

/// A test's hook at the named points of a cluster job; `nil` in production, where every point is a no-op.
/// Called with the point's name and this rank; it may throw (this rank fails there), kill the process or pause.
/// It is part of the job's options, so every rank has the same one (it decides by rank what to do).
public typealias FaultInjector = @Sendable (_ point: String, _ rank: Int) throws -> Void

/// Bytes one rank has addressed to other ranks: the payload of its point-to-point sends plus, for collectives,
/// what its data must reach (`allgatherv`: its piece × (P − 1) receivers; `bcast`/`scatterv` on root: the data for
/// the others; `gatherv`: its piece; `alltoallv`: its pieces for other ranks; `allreduce`: its values × (P − 1)).
/// A logical volume, independent of the algorithm MPI picks (trees or rings move about as much). Main thread only.
public final class TrafficMeter: @unchecked Sendable {
    public private(set) var bytesSent = 0
    public init() {}
    func add(_ bytes: Int) { bytesSent += bytes }
}

/// The world communicator of an OpenMPI job, as a value: this process's `rank` in `0..<size`.
///
/// Conventions:
/// - Every method whose doc says **collective** must be called by every rank, in the same order, with
///   matching arguments (same `root`, same element type). A rank that skips one deadlocks the others, so code
///   that can fail on one rank first catches its error and passes it to `agree(_:phase:)`; the rank-local checks
///   of the collectives themselves are agreed (or computed from data every rank has) before any data moves.
/// - A phase that calls collectives and can still fail on one rank only (an MPI error, a bug, a fault injected by
///   a test) runs inside `collective(_:_:)`: agreed errors pass through, any other error stops the whole job
///   (`failStop`: one message from the failing rank, then `MPI_Abort`), never a hang.
/// - **Point-to-point** methods (`isend`, `irecv`, `wait`, `test`) are called by the two ranks involved.
/// - The world communicator uses `MPI_ERRORS_RETURN`: a failing MPI call becomes `HDLError.cluster` with the MPI
///   error string instead of aborting the job.
/// - MPI counts are `Int32`: no single MPI call moves more than `maxCount` elements (default `Int32.max`). Larger
///   transfers are split into chunks (bcast, allreduce, point-to-point) or go as chunked point-to-point messages
///   (the v-collectives, when a total or displacement would pass the limit), so any size works.
public struct Communicator {
    public let rank: Int
    public let size: Int
    let comm: MPI_Comm?
    /// Largest element count one MPI call is given (tests set it small to exercise the chunking).
    public var maxCount: Int = Int(Int32.max)
    /// Test hook at the job's named points (`boundary`, `point`); nil in production.
    public var faultInjector: FaultInjector?
    /// Payload bytes this rank has addressed to other ranks so far (shared by copies of this communicator).
    public let traffic = TrafficMeter()

    public var isRoot: Bool { rank == 0 }

    // MARK: Setup

    /// Initialises MPI (once per process; `MPI_THREAD_FUNNELED`: only the main thread calls MPI, OpenBLAS and
    /// Dispatch may use other threads for compute) and returns the world communicator. Called by every process
    /// at start. A second call in the same process returns the world communicator without re-initialising.
    public static func initialize() throws -> Communicator {
        var already: Int32 = 0
        MPI_Initialized(&already)
        if already == 0 {
            var provided: Int32 = 0
            let rc = MPI_Init_thread(nil, nil, hdl_mpi_thread_funneled(), &provided)
            if rc != hdl_mpi_success() { throw HDLError.cluster("MPI_Init_thread failed: \(errorString(rc))") }
        }
        return try world()
    }

    /// The world communicator of an already initialised MPI, with `MPI_ERRORS_RETURN` set.
    public static func world() throws -> Communicator {
        let w = hdl_mpi_comm_world()
        try check(MPI_Comm_set_errhandler(w, hdl_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(w, &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(w, &s), "MPI_Comm_size")
        return Communicator(rank: Int(r), size: Int(s), comm: w)
    }

    /// Finalises MPI (collective; call once at the very end, on every rank, after the last MPI call).
    public static func finalize() {
        var done: Int32 = 0
        MPI_Finalized(&done)
        if done == 0 { MPI_Finalize() }
    }

    // MARK: Errors

    /// The text MPI gives for an error code.
    public static func errorString(_ rc: Int32) -> String {
        var buf = [CChar](repeating: 0, count: Int(hdl_mpi_max_error_string()) + 1)
        var len: Int32 = 0
        MPI_Error_string(rc, &buf, &len)
        return String(decoding: buf.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func check(_ rc: Int32, _ call: String) throws {
        if rc != hdl_mpi_success() { throw HDLError.cluster("\(call) failed: \(errorString(rc))") }
    }

    static func count(_ n: Int, _ call: String) throws -> Int32 {
        guard n >= 0, n <= Int(Int32.max) else {
            throw HDLError.cluster("\(call): \(n) elements exceed MPI's Int32 count limit")
        }
        return Int32(n)
    }

    /// `n` elements as consecutive chunks (offset, count) of at most `maxCount` elements (none for n = 0).
    func chunks(_ n: Int) -> [(offset: Int, count: Int32)] {
        let step = max(1, min(maxCount, Int(Int32.max)))
        return stride(from: 0, to: n, by: step).map { ($0, Int32(min(step, n - $0))) }
    }

    /// One line for an error: `HDLError`s by their description, others by `String(describing:)`.
    public static func describe(_ error: Error) -> String {
        if let e = error as? HDLError { return e.description }
        return String(describing: error)
    }

    /// Messages of errors `agree` threw on this process: they were thrown on every rank alike.
    nonisolated(unsafe) static var agreedMessages: Set<String> = []

    /// True when `error` was thrown by `agree` (hence on every rank, at the same point).
    public static func isAgreed(_ error: Error) -> Bool {
        if case let HDLError.cluster(m) = error { return agreedMessages.contains(m) }
        return false
    }

    /// **Collective.** Every rank passes its own outcome of the phase just run (`nil` = success). Returns when
    /// every rank succeeded; otherwise every rank throws the same `HDLError.cluster` naming the lowest failing
    /// rank, its message (broadcast from that rank) and how many ranks failed. Nothing in the phase being checked
    /// may itself call a collective (a failed rank would have skipped it): such phases run in `collective`.
    public func agree(_ localError: Error?, phase: String = "") throws {
        let failedRank = try allreduce(localError == nil ? Int.max : rank, .min)
        if failedRank == Int.max { return }
        let failures = try allreduce(localError == nil ? 0 : 1, .sum)
        let text = rank == failedRank ? Communicator.describe(localError!) : ""
        let msg = String(decoding: try bcast(Data(text.utf8), root: failedRank), as: UTF8.self)
        let others = failures > 1 ? " (and \(failures - 1) other rank\(failures > 2 ? "s" : ""))" : ""
        let where_ = phase.isEmpty ? "" : " during \(phase)"
        let message = "rank \(failedRank)\(others) failed\(where_): \(msg)"
        Communicator.agreedMessages.insert(message)
        throw HDLError.cluster(message)
    }

    /// **Collective.** Runs `body` on every rank, then `agree`s on the outcome: returns `body`'s value when every
    /// rank succeeded, throws the agreed error on every rank otherwise. `body` must not call collectives.
    public func together<T>(_ phase: String, _ body: () throws -> T) throws -> T {
        var value: T?
        var failure: Error?
        do { value = try body() } catch { failure = error }
        try agree(failure, phase: phase)
        guard let v = value else { throw HDLError.cluster("\(phase): no result on rank \(rank)") }
        return v
    }

    /// **Collective.** Runs `body`, a phase that itself calls collectives. An error agreed inside it (thrown on
    /// every rank alike) is rethrown; any other error may have happened on this rank only, with the others
    /// waiting in a collective this rank will never join, so the job is stopped: `failStop`.
    public func collective<T>(_ phase: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            if Communicator.isAgreed(error) { throw error }
            failStop(error, phase: phase)
        }
    }

    /// The last resort when ranks can no longer agree: prints one line naming this rank, the phase and the error
    /// to stderr, then `MPI_Abort`s the job (mpirun kills every other rank at once; the job exits non-zero).
    /// Outputs are only renamed into place after every rank agreed, so none is left behind.
    public func failStop(_ error: Error, phase: String) -> Never {
        let line = "hdlabel: error: rank \(rank) failed during \(phase): \(Communicator.describe(error)) (stopping all \(size) ranks)\n"
        FileHandle.standardError.write(Data(line.utf8))
        MPI_Abort(comm, 1)
        exit(1)
    }

    // MARK: Fault-injection points (inert without a `faultInjector`)

    /// A point inside a phase (no communication): runs the injector, whose error propagates like any error of the
    /// phase (inside `collective`, a one-rank error stops the job).
    public func point(_ name: String) throws {
        if let f = faultInjector { try f(name, rank) }
    }

    /// **Collective** when an injector is set (it is then set on every rank): runs it at the start of phase `name`
    /// and agrees on the outcome, so a failure injected there stops every rank with one agreed error.
    /// Without an injector it does nothing.
    public func boundary(_ name: String) throws {
        guard let f = faultInjector else { return }
        var failure: Error?
        do { try f(name, rank) } catch { failure = error }
        try agree(failure, phase: name)
    }

    // MARK: Collectives

    /// **Collective.** Waits until every rank has arrived.
    public func barrier() throws { try Communicator.check(MPI_Barrier(comm), "MPI_Barrier") }

    /// **Collective.** A barrier that sleeps while it waits (`MPI_Ibarrier` polled every `pollMicroseconds`)
    /// instead of spinning like `MPI_Barrier`. For ranks that idle while another rank works alone (the hierarchy on
    /// root), so their cores stay free for the working rank's threads.
    public func sleepingBarrier(pollMicroseconds: UInt32 = 500) throws {
        var h: MPI_Request? = hdl_mpi_request_null()
        try Communicator.check(MPI_Ibarrier(comm, &h), "MPI_Ibarrier")
        var req = MPIRequest(handles: [h])
        while try !test(&req) { usleep(pollMicroseconds) }
    }

    /// **Collective.** `root`'s array on every rank (other ranks' `value` is ignored). The length travels first;
    /// the data in chunks of at most `maxCount` elements.
    public func bcast<T: MPIScalar>(_ value: [T], root: Int = 0) throws -> [T] {
        let n = try bcast(value.count, root: root)
        var buf = rank == root ? value : [T](unsafeUninitializedCapacity: n) { _, c in c = n }
        if n == 0 { return buf }
        if rank == root { sent(T.self, n * (size - 1)) }
        let stride = MemoryLayout<T>.stride
        try buf.withUnsafeMutableBytes { b in
            for (off, c) in chunks(n) {
                try Communicator.check(MPI_Bcast(b.baseAddress! + off * stride, c, T.mpiType, Int32(root), comm), "MPI_Bcast")
            }
        }
        return buf
    }

    /// **Collective.** `root`'s integer on every rank (sent as Int64).
    public func bcast(_ value: Int, root: Int = 0) throws -> Int {
        var v = Int64(value)
        if rank == root { sent(Int64.self, size - 1) }
        try Communicator.check(MPI_Bcast(&v, 1, hdl_mpi_int64(), Int32(root), comm), "MPI_Bcast")
        return Int(v)
    }

    /// **Collective.** `bcast` of one integer that sleeps while it waits (`MPI_Ibcast` polled every `pollMicroseconds`)
    /// instead of spinning: for ranks that idle until another rank asks them for work (the geometry requests of the
    /// root-labeled job), so the working rank's threads keep the node's cores.
    public func sleepingBcast(_ value: Int, root: Int = 0, pollMicroseconds: UInt32 = 500) throws -> Int {
        var v = Int64(value)
        try withUnsafeMutablePointer(to: &v) { ptr in
            var h: MPI_Request? = hdl_mpi_request_null()
            try Communicator.check(MPI_Ibcast(ptr, 1, hdl_mpi_int64(), Int32(root), comm, &h), "MPI_Ibcast")
            var req = MPIRequest(handles: [h])
            while try !test(&req) { usleep(pollMicroseconds) }
        }
        return Int(v)
    }

    /// **Collective.** `root`'s integers on every rank (sent as Int64).
    public func bcast(_ value: [Int], root: Int = 0) throws -> [Int] {
        try bcast(value.map { Int64($0) }, root: root).map { Int($0) }
    }

    /// **Collective.** `root`'s bytes on every rank.
    public func bcast(_ value: Data, root: Int = 0) throws -> Data {
        Data(try bcast([UInt8](value), root: root))
    }

    /// **Collective.** Every rank's `value` (rank order) on every rank.
    public func allgather(_ value: Int) throws -> [Int] {
        var mine = Int64(value)
        sent(Int64.self, size - 1)
        var out = [Int64](repeating: 0, count: size)
        try out.withUnsafeMutableBytes { o in
            try Communicator.check(MPI_Allgather(&mine, 1, hdl_mpi_int64(), o.baseAddress, 1, hdl_mpi_int64(), comm), "MPI_Allgather")
        }
        return out.map { Int($0) }
    }

    /// **Collective.** Every rank's host name (`gethostname`, no DNS lookup), in rank order.
    public func hostNames() throws -> [String] {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        let mine = Array(String(cString: buf).utf8) + [0]
        return try allgatherv(mine).split(separator: 0, omittingEmptySubsequences: false).dropLast()
            .map { String(decoding: $0, as: UTF8.self) }
    }

    /// "host ranks, host ranks, …" in order of first rank, ranks as ranges ("node1 0-15, node2 16-31").
    public static func placement(_ hosts: [String]) -> String {
        var order: [String] = [], ranks: [String: [Int]] = [:]
        for (r, h) in hosts.enumerated() {
            if ranks[h] == nil { order.append(h) }
            ranks[h, default: []].append(r)
        }
        func ranges(_ rs: [Int]) -> String {
            var parts: [String] = [], i = 0
            while i < rs.count {
                var j = i
                while j + 1 < rs.count, rs[j + 1] == rs[j] + 1 { j += 1 }
                parts.append(i == j ? "\(rs[i])" : "\(rs[i])-\(rs[j])"); i = j + 1
            }
            return parts.joined(separator: ",")
        }
        return order.map { "\($0) \(ranges(ranks[$0]!))" }.joined(separator: ", ")
    }

    /// Exclusive prefix sums of `counts` (as Int: they may pass Int32).
    /// Adds `elements` of `T` to the bytes this rank sent.
    func sent<T>(_ type: T.Type, _ elements: Int) { traffic.add(elements * MemoryLayout<T>.stride) }

    static func offsets(_ counts: [Int]) -> [Int] {
        var d: [Int] = [], off = 0
        for c in counts { d.append(off); off += c }
        return d
    }

    /// True when one MPI v-collective call can take these counts: every count, displacement and the total fit in
    /// `maxCount`. Computed from counts every rank knows, so all ranks choose the same path.
    func fitsOneCall(_ counts: [Int]) -> Bool { counts.reduce(0, +) <= min(maxCount, Int(Int32.max)) }

    /// Point-to-point exchange used by the v-collectives when their counts do not fit one MPI call: `sends[r]` =
    /// (element offset in `send`, count) goes to rank r, `recvs[r]` arrives from rank r; every piece travels in
    /// chunks of at most `maxCount` elements under one tag (MPI keeps their order). Both sides chunk the same
    /// counts alike. This rank's own piece is copied. Collective in effect: every rank calls it at the same point.
    func exchange<T: MPIScalar>(_ type: T.Type, send: UnsafeRawPointer?, sends: [(offset: Int, count: Int)],
                                recv: UnsafeMutableRawPointer?, recvs: [(offset: Int, count: Int)]) throws {
        let stride = MemoryLayout<T>.stride, tag: Int32 = 30_001
        var reqs: [MPI_Request?] = []
        for r in 0 ..< size where r != rank {
            for (off, c) in chunks(recvs[r].count) {
                var h: MPI_Request? = hdl_mpi_request_null()
                try Communicator.check(MPI_Irecv(recv! + (recvs[r].offset + off) * stride, c, T.mpiType, Int32(r), tag, comm, &h), "MPI_Irecv")
                reqs.append(h)
            }
        }
        for r in 0 ..< size where r != rank {
            sent(T.self, sends[r].count)
            for (off, c) in chunks(sends[r].count) {
                var h: MPI_Request? = hdl_mpi_request_null()
                try Communicator.check(MPI_Isend(send! + (sends[r].offset + off) * stride, c, T.mpiType, Int32(r), tag, comm, &h), "MPI_Isend")
                reqs.append(h)
            }
        }
        if recvs[rank].count > 0 {
            guard sends[rank].count == recvs[rank].count else {
                throw HDLError.cluster("exchange: rank \(rank) sends itself \(sends[rank].count) elements, expects \(recvs[rank].count)")
            }
            memcpy(recv! + recvs[rank].offset * stride, send! + sends[rank].offset * stride, recvs[rank].count * stride)
        }
        var req = MPIRequest(handles: reqs)
        try wait(&req)
    }

    /// **Collective.** Concatenation (rank order) of every rank's `local` on `root`; `[]` on other ranks.
    /// Lengths may differ per rank (and be zero); they are gathered first. With `rowWidth > 1` the data travels as
    /// rows of `rowWidth` elements (an `MPI_Type_contiguous`), so the count limit applies to rows, not elements
    /// (a 10⁸ × 30 graph fits one call); every rank's length must then be a multiple of `rowWidth`. Beyond
    /// `maxCount` rows it goes as chunked point-to-point messages (`exchange`).
    public func gatherv<T: MPIScalar>(_ local: [T], root: Int = 0, rowWidth: Int = 1) throws -> [T] {
        let bad = rowWidth < 1 || local.count % max(rowWidth, 1) != 0
        try agree(bad ? HDLError.cluster("gatherv: \(local.count) elements are not whole rows of \(rowWidth)") : nil, phase: "gatherv")
        let rows = try allgather(local.count / rowWidth)
        let total = rows.reduce(0, +) * rowWidth
        var out = [T](unsafeUninitializedCapacity: rank == root ? total : 0) { _, c in c = rank == root ? total : 0 }
        if !fitsOneCall(rows) {
            let elems = rows.map { $0 * rowWidth }, offs = Communicator.offsets(elems)
            let none = [(offset: Int, count: Int)](repeating: (0, 0), count: size)
            var sends = none
            sends[root] = (0, local.count)
            let recvs = rank == root ? (0 ..< size).map { (offs[$0], elems[$0]) } : none
            try local.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
                try exchange(T.self, send: s.baseAddress, sends: sends, recv: o.baseAddress, recvs: recvs)
            } }
            return out
        }
        let c32 = rows.map { Int32($0) }, d32 = Communicator.offsets(rows).map { Int32($0) }
        var rowType: MPI_Datatype? = T.mpiType
        if rowWidth > 1 {
            try Communicator.check(MPI_Type_contiguous(try Communicator.count(rowWidth, "MPI_Type_contiguous"), T.mpiType, &rowType),
                                   "MPI_Type_contiguous")
            try Communicator.check(MPI_Type_commit(&rowType), "MPI_Type_commit")
        }
        defer { if rowWidth > 1 { MPI_Type_free(&rowType) } }
        if rank != root { sent(T.self, local.count) }
        try local.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Gatherv(s.baseAddress, c32[rank], rowType, o.baseAddress, c32, d32, rowType,
                                                   Int32(root), comm), "MPI_Gatherv")
            }
        }
        return out
    }

    /// **Collective.** Concatenation (rank order) of every rank's `local`, on every rank. When the total passes
    /// `maxCount` (e.g. n × C floats for 10⁸ rows and C ≥ 22), the pieces go as chunked point-to-point messages.
    public func allgatherv<T: MPIScalar>(_ local: [T]) throws -> [T] {
        let counts = try allgather(local.count)
        let total = counts.reduce(0, +)
        var out = [T](unsafeUninitializedCapacity: total) { _, c in c = total }
        if !fitsOneCall(counts) {
            let offs = Communicator.offsets(counts)
            let sends = [(offset: Int, count: Int)](repeating: (0, local.count), count: size)
            let recvs = (0 ..< size).map { (offset: offs[$0], count: counts[$0]) }
            try local.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
                try exchange(T.self, send: s.baseAddress, sends: sends, recv: o.baseAddress, recvs: recvs)
            } }
            return out
        }
        let c32 = counts.map { Int32($0) }, d32 = Communicator.offsets(counts).map { Int32($0) }
        sent(T.self, local.count * (size - 1))
        try local.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Allgatherv(s.baseAddress, c32[rank], T.mpiType, o.baseAddress, c32, d32, T.mpiType, comm),
                                       "MPI_Allgatherv")
            }
        }
        return out
    }

    /// **Collective.** Personalised all-to-all: `send` is the concatenation of the pieces for ranks 0, 1, …
    /// (`sendCounts[r]` elements for rank r); returns the concatenation (rank order) of the pieces every rank sent
    /// to this one. The counts are checked and agreed first, then the receive counts travel (one `MPI_Alltoall`);
    /// when any rank's send or receive total passes `maxCount` (agreed by an allreduce), the pieces go as chunked
    /// point-to-point messages.
    public func alltoallv<T: MPIScalar>(_ send: [T], sendCounts: [Int]) throws -> [T] {
        let ok = sendCounts.count == size && sendCounts.reduce(0, +) == send.count && sendCounts.allSatisfy { $0 >= 0 }
        try agree(ok ? nil : HDLError.cluster("alltoallv: \(sendCounts.count) counts summing to \(sendCounts.reduce(0, +)) for \(send.count) elements"),
                  phase: "alltoallv")
        var sc = sendCounts.map { Int64($0) }
        var rc = [Int64](repeating: 0, count: size)
        sent(Int64.self, size - 1)
        try sc.withUnsafeMutableBytes { s in try rc.withUnsafeMutableBytes { r in
            try Communicator.check(MPI_Alltoall(s.baseAddress, 1, hdl_mpi_int64(), r.baseAddress, 1, hdl_mpi_int64(), comm), "MPI_Alltoall")
        } }
        let recvCounts = rc.map { Int($0) }
        let total = recvCounts.reduce(0, +)
        let big = try allreduce(max(send.count, total), .max) > min(maxCount, Int(Int32.max))
        var out = [T](unsafeUninitializedCapacity: total) { _, c in c = total }
        let so = Communicator.offsets(sendCounts), ro = Communicator.offsets(recvCounts)
        if big {
            try send.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
                try exchange(T.self, send: s.baseAddress, sends: (0 ..< size).map { (so[$0], sendCounts[$0]) },
                             recv: o.baseAddress, recvs: (0 ..< size).map { (ro[$0], recvCounts[$0]) })
            } }
            return out
        }
        let s32 = sendCounts.map { Int32($0) }, sd = so.map { Int32($0) }
        let r32 = recvCounts.map { Int32($0) }, rd = ro.map { Int32($0) }
        sent(T.self, send.count - sendCounts[rank])
        try send.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
            try Communicator.check(MPI_Alltoallv(s.baseAddress, s32, sd, T.mpiType, o.baseAddress, r32, rd, T.mpiType, comm), "MPI_Alltoallv")
        } }
        return out
    }

    /// **Collective.** `alltoallv` when every rank already knows what it receives (`receiveCounts[r]` elements from
    /// rank r, matching rank r's `sendCounts[rank]`, e.g. from a `HaloPlan`): no count exchange, one allreduce to agree
    /// on the chunked path when a total passes `maxCount`, then one `MPI_Alltoallv`. The caller guarantees that the
    /// counts match (a mismatch is an MPI error, not a hang: MPI checks the message sizes).
    public func alltoallv<T: MPIScalar>(_ send: [T], sendCounts: [Int], receiveCounts: [Int]) throws -> [T] {
        guard sendCounts.count == size, receiveCounts.count == size, sendCounts.reduce(0, +) == send.count else {
            throw HDLError.cluster("alltoallv: \(sendCounts.count) send counts summing to \(sendCounts.reduce(0, +)) for \(send.count) elements, \(receiveCounts.count) receive counts")
        }
        let total = receiveCounts.reduce(0, +)
        let big = try allreduce(Swift.max(send.count, total), .max) > min(maxCount, Int(Int32.max))
        var out = [T](unsafeUninitializedCapacity: total) { _, c in c = total }
        let so = Communicator.offsets(sendCounts), ro = Communicator.offsets(receiveCounts)
        if big {
            try send.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
                try exchange(T.self, send: s.baseAddress, sends: (0 ..< size).map { (so[$0], sendCounts[$0]) },
                             recv: o.baseAddress, recvs: (0 ..< size).map { (ro[$0], receiveCounts[$0]) })
            } }
            return out
        }
        let s32 = sendCounts.map { Int32($0) }, sd = so.map { Int32($0) }
        let r32 = receiveCounts.map { Int32($0) }, rd = ro.map { Int32($0) }
        try send.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
            try Communicator.check(MPI_Alltoallv(s.baseAddress, s32, sd, T.mpiType, o.baseAddress, r32, rd, T.mpiType, comm), "MPI_Alltoallv")
        } }
        return out
    }

    /// **Collective.** Splits `root`'s `all` (ignored elsewhere) into consecutive pieces of `counts[r]` elements
    /// and returns piece `rank` on each rank. `counts` (length `size`) must be the same on every rank; root's check
    /// of its array's length is agreed before anything moves. Beyond `maxCount` in total, chunked point-to-point.
    public func scatterv<T: MPIScalar>(_ all: [T], counts: [Int], root: Int = 0) throws -> [T] {
        var problem: Error?
        if counts.count != size { problem = HDLError.cluster("scatterv: \(counts.count) counts for \(size) ranks") }
        else if rank == root, all.count != counts.reduce(0, +) {
            problem = HDLError.cluster("scatterv: root holds \(all.count) elements, counts sum to \(counts.reduce(0, +))")
        }
        try agree(problem, phase: "scatterv")
        let n = counts[rank]
        var out = [T](unsafeUninitializedCapacity: n) { _, c in c = n }
        let offs = Communicator.offsets(counts)
        if !fitsOneCall(counts) {
            let none = [(offset: Int, count: Int)](repeating: (0, 0), count: size)
            let sends = rank == root ? (0 ..< size).map { (offs[$0], counts[$0]) } : none
            var recvs = none
            recvs[root] = (0, n)
            try all.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
                try exchange(T.self, send: s.baseAddress, sends: sends, recv: o.baseAddress, recvs: recvs)
            } }
            return out
        }
        let c32 = counts.map { Int32($0) }, d32 = offs.map { Int32($0) }
        if rank == root { sent(T.self, all.count - counts[root]) }
        try all.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Scatterv(s.baseAddress, c32, d32, T.mpiType, o.baseAddress, c32[rank], T.mpiType,
                                                    Int32(root), comm), "MPI_Scatterv")
            }
        }
        return out
    }

    /// **Collective.** Element-wise reduction of every rank's `values` (same length on every rank), on every rank;
    /// in chunks of at most `maxCount` elements.
    public func allreduce<T: MPIScalar>(_ values: [T], _ op: ReduceOp) throws -> [T] {
        var out = values
        let stride = MemoryLayout<T>.stride
        sent(T.self, values.count * (size - 1))
        try values.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                for (off, c) in chunks(values.count) {
                    try Communicator.check(MPI_Allreduce(s.baseAddress! + off * stride, o.baseAddress! + off * stride, c, T.mpiType,
                                                         op.handle, comm), "MPI_Allreduce")
                }
            }
        }
        return out
    }

    /// **Collective.** Element-wise reduction of integers (as Int64; same length on every rank), on every rank.
    public func allreduce(_ values: [Int], _ op: ReduceOp) throws -> [Int] {
        try allreduce(values.map { Int64($0) }, op).map { Int($0) }
    }

    /// **Collective.** Reduction of one integer over all ranks.
    public func allreduce(_ value: Int, _ op: ReduceOp) throws -> Int {
        try allreduce([value], op)[0]
    }

    /// **Collective.** Reduction of one double over all ranks.
    public func allreduce(_ value: Double, _ op: ReduceOp) throws -> Double {
        try allreduce([value], op)[0]
    }

    // MARK: Point-to-point (the ring)

    /// **Point-to-point.** Starts sending `buffer` to `dest` (in chunks of at most `maxCount` elements, matched in
    /// order by the receiver's `irecv` of the same count). The memory must stay valid and unmodified until `wait`
    /// on the returned request (so it cannot be a temporary Swift array pointer).
    public func isend<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to dest: Int, tag: Int = 0) throws -> MPIRequest {
        var handles: [MPI_Request?] = []
        sent(T.self, buffer.count)
        for (off, c) in chunks(buffer.count) {
            var req: MPI_Request? = hdl_mpi_request_null()
            try Communicator.check(MPI_Isend(buffer.baseAddress! + off, c, T.mpiType, Int32(dest), Int32(tag), comm, &req), "MPI_Isend")
            handles.append(req)
        }
        return MPIRequest(handles: handles)
    }

    /// **Point-to-point.** Starts receiving exactly `buffer.count` elements from `source` into `buffer`, which
    /// must stay valid and unread until `wait` on the returned request.
    public func irecv<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0) throws -> MPIRequest {
        var handles: [MPI_Request?] = []
        for (off, c) in chunks(buffer.count) {
            var req: MPI_Request? = hdl_mpi_request_null()
            try Communicator.check(MPI_Irecv(buffer.baseAddress! + off, c, T.mpiType, Int32(source), Int32(tag), comm, &req), "MPI_Irecv")
            handles.append(req)
        }
        return MPIRequest(handles: handles)
    }

    /// **Point-to-point.** Lets MPI progress `request` without blocking; true once it has completed (then it is the
    /// null request). Calling this between compute chunks keeps large transfers moving while this rank computes.
    @discardableResult
    public func test(_ request: inout MPIRequest) throws -> Bool {
        if request.handles.isEmpty { return true }
        var flag: Int32 = 0
        let n = Int32(request.handles.count)
        try Communicator.check(MPI_Testall(n, &request.handles, &flag, hdl_mpi_statuses_ignore()), "MPI_Testall")
        if flag != 0 { request.handles = [] }
        return flag != 0
    }

    /// **Point-to-point.** Blocks until `request` completes; afterwards it is the null request.
    public func wait(_ request: inout MPIRequest) throws {
        if request.handles.isEmpty { return }
        let n = Int32(request.handles.count)
        try Communicator.check(MPI_Waitall(n, &request.handles, hdl_mpi_statuses_ignore()), "MPI_Waitall")
        request.handles = []
    }
}
