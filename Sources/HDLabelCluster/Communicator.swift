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

/// A pending non-blocking send or receive. Its buffer must stay alive and untouched (for a receive) until `wait`.
public struct MPIRequest {
    var handle: MPI_Request?
    /// A request that is already complete (waiting on it returns at once).
    public static var null: MPIRequest { MPIRequest(handle: hdl_mpi_request_null()) }
}

/// The world communicator of an OpenMPI job, as a value: this process's `rank` in `0..<size`.
///
/// Conventions:
/// - Every method whose doc says **collective** must be called by every rank, in the same order, with
///   matching arguments (same `root`, same element type). A rank that skips one deadlocks the others, so code
///   that can fail on one rank first catches its error and passes it to `agree(_:phase:)`.
/// - **Point-to-point** methods (`sendrecv`, `isend`, `irecv`, `wait`) are called by the two ranks involved.
/// - The world communicator uses `MPI_ERRORS_RETURN`: a failing MPI call becomes `HDLError.cluster` with the MPI
///   error string instead of aborting the job.
/// - Counts are `Int32` in MPI-3: one call moves fewer than 2³¹ elements (checked, reported as an error).
public struct Communicator {
    public let rank: Int
    public let size: Int
    let comm: MPI_Comm?

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

    /// Kills the whole job (every rank) with `code`. For states that cannot be agreed collectively
    /// (a bug, not user input).
    public func abort(_ code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
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
            throw HDLError.cluster("\(call): \(n) elements exceed MPI's Int32 count limit; use more ranks")
        }
        return Int32(n)
    }

    /// One line for an error: `HDLError`s by their description, others by `String(describing:)`.
    public static func describe(_ error: Error) -> String {
        if let e = error as? HDLError { return e.description }
        return String(describing: error)
    }

    /// **Collective.** Every rank passes its own outcome of the phase just run (`nil` = success). Returns when
    /// every rank succeeded; otherwise every rank throws the same `HDLError.cluster` naming the lowest failing
    /// rank, its message (broadcast from that rank) and how many ranks failed. Nothing in the phase being checked
    /// may itself call a collective (a failed rank would have skipped it).
    public func agree(_ localError: Error?, phase: String = "") throws {
        let failedRank = try allreduce(localError == nil ? Int.max : rank, .min)
        if failedRank == Int.max { return }
        let failures = try allreduce(localError == nil ? 0 : 1, .sum)
        let text = rank == failedRank ? Communicator.describe(localError!) : ""
        let msg = String(decoding: try bcast(Data(text.utf8), root: failedRank), as: UTF8.self)
        let others = failures > 1 ? " (and \(failures - 1) other rank\(failures > 2 ? "s" : ""))" : ""
        let where_ = phase.isEmpty ? "" : " during \(phase)"
        throw HDLError.cluster("rank \(failedRank)\(others) failed\(where_): \(msg)")
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

    // MARK: Collectives

    /// **Collective.** Waits until every rank has arrived.
    public func barrier() throws { try Communicator.check(MPI_Barrier(comm), "MPI_Barrier") }

    /// **Collective.** A barrier that sleeps while it waits (`MPI_Ibarrier` polled every `pollMicroseconds`)
    /// instead of spinning like `MPI_Barrier`. For ranks that idle while another rank works alone (the hierarchy on
    /// root), so their cores stay free for the working rank's threads.
    public func sleepingBarrier(pollMicroseconds: UInt32 = 500) throws {
        var req = MPIRequest.null
        try Communicator.check(MPI_Ibarrier(comm, &req.handle), "MPI_Ibarrier")
        while try !test(&req) { usleep(pollMicroseconds) }
    }

    /// **Collective.** `root`'s array on every rank (other ranks' `value` is ignored). The length travels first.
    public func bcast<T: MPIScalar>(_ value: [T], root: Int = 0) throws -> [T] {
        let n = try bcast(value.count, root: root)
        var buf = rank == root ? value : [T](unsafeUninitializedCapacity: n) { _, c in c = n }
        if n == 0 { return buf }
        let c = try Communicator.count(n, "MPI_Bcast")
        try buf.withUnsafeMutableBytes { b in
            try Communicator.check(MPI_Bcast(b.baseAddress, c, T.mpiType, Int32(root), comm), "MPI_Bcast")
        }
        return buf
    }

    /// **Collective.** `root`'s integer on every rank (sent as Int64).
    public func bcast(_ value: Int, root: Int = 0) throws -> Int {
        var v = Int64(value)
        try Communicator.check(MPI_Bcast(&v, 1, hdl_mpi_int64(), Int32(root), comm), "MPI_Bcast")
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
        var out = [Int64](repeating: 0, count: size)
        try out.withUnsafeMutableBytes { o in
            try Communicator.check(MPI_Allgather(&mine, 1, hdl_mpi_int64(), o.baseAddress, 1, hdl_mpi_int64(), comm), "MPI_Allgather")
        }
        return out.map { Int($0) }
    }

    /// Exclusive prefix sums of `counts` as MPI displacements, checked against the Int32 limit.
    static func displacements(_ counts: [Int], _ call: String) throws -> (counts: [Int32], displs: [Int32]) {
        var d: [Int32] = [], off = 0
        for c in counts { d.append(try count(off, call)); off += c }
        _ = try count(off, call)
        return (try counts.map { try count($0, call) }, d)
    }

    /// **Collective.** Concatenation (rank order) of every rank's `local` on `root`; `[]` on other ranks.
    /// Lengths may differ per rank (and be zero); they are gathered first. With `rowWidth > 1` the data travels as
    /// rows of `rowWidth` elements (an `MPI_Type_contiguous`), so the Int32 count limit applies to rows, not elements
    /// (a 10⁸ × 30 graph fits); every rank's length must then be a multiple of `rowWidth`.
    public func gatherv<T: MPIScalar>(_ local: [T], root: Int = 0, rowWidth: Int = 1) throws -> [T] {
        guard rowWidth >= 1, local.count % rowWidth == 0 else {
            throw HDLError.cluster("gatherv: \(local.count) elements are not whole rows of \(rowWidth)")
        }
        let rows = try allgather(local.count / rowWidth)
        let (c32, d32) = try Communicator.displacements(rows, "MPI_Gatherv")
        let total = rows.reduce(0, +) * rowWidth
        var out = [T](unsafeUninitializedCapacity: rank == root ? total : 0) { _, c in c = rank == root ? total : 0 }
        var rowType: MPI_Datatype? = T.mpiType
        if rowWidth > 1 {
            try Communicator.check(MPI_Type_contiguous(try Communicator.count(rowWidth, "MPI_Type_contiguous"), T.mpiType, &rowType),
                                   "MPI_Type_contiguous")
            try Communicator.check(MPI_Type_commit(&rowType), "MPI_Type_commit")
        }
        defer { if rowWidth > 1 { MPI_Type_free(&rowType) } }
        try local.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Gatherv(s.baseAddress, c32[rank], rowType, o.baseAddress, c32, d32, rowType,
                                                   Int32(root), comm), "MPI_Gatherv")
            }
        }
        return out
    }

    /// **Collective.** Concatenation (rank order) of every rank's `local`, on every rank.
    public func allgatherv<T: MPIScalar>(_ local: [T]) throws -> [T] {
        let counts = try allgather(local.count)
        let (c32, d32) = try Communicator.displacements(counts, "MPI_Allgatherv")
        let total = counts.reduce(0, +)
        var out = [T](unsafeUninitializedCapacity: total) { _, c in c = total }
        let mine = try Communicator.count(local.count, "MPI_Allgatherv")
        try local.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Allgatherv(s.baseAddress, mine, T.mpiType, o.baseAddress, c32, d32, T.mpiType, comm),
                                       "MPI_Allgatherv")
            }
        }
        return out
    }

    /// **Collective.** Personalised all-to-all: `send` is the concatenation of the pieces for ranks 0, 1, …
    /// (`sendCounts[r]` elements for rank r); returns the concatenation (rank order) of the pieces every rank sent
    /// to this one. The receive counts travel first (one `MPI_Alltoall` of integers).
    public func alltoallv<T: MPIScalar>(_ send: [T], sendCounts: [Int]) throws -> [T] {
        guard sendCounts.count == size, sendCounts.reduce(0, +) == send.count else {
            throw HDLError.cluster("alltoallv: \(sendCounts.count) counts summing to \(sendCounts.reduce(0, +)) for \(send.count) elements")
        }
        var sc = try sendCounts.map { Int64(try Communicator.count($0, "MPI_Alltoallv")) }
        var rc = [Int64](repeating: 0, count: size)
        try sc.withUnsafeMutableBytes { s in try rc.withUnsafeMutableBytes { r in
            try Communicator.check(MPI_Alltoall(s.baseAddress, 1, hdl_mpi_int64(), r.baseAddress, 1, hdl_mpi_int64(), comm), "MPI_Alltoall")
        } }
        let (s32, sd) = try Communicator.displacements(sendCounts, "MPI_Alltoallv")
        let (r32, rd) = try Communicator.displacements(rc.map { Int($0) }, "MPI_Alltoallv")
        let total = rc.reduce(0) { $0 + Int($1) }
        var out = [T](unsafeUninitializedCapacity: total) { _, c in c = total }
        try send.withUnsafeBytes { s in try out.withUnsafeMutableBytes { o in
            try Communicator.check(MPI_Alltoallv(s.baseAddress, s32, sd, T.mpiType, o.baseAddress, r32, rd, T.mpiType, comm), "MPI_Alltoallv")
        } }
        return out
    }

    /// **Collective.** Splits `root`'s `all` (ignored elsewhere) into consecutive pieces of `counts[r]` elements
    /// and returns piece `rank` on each rank. `counts` (length `size`) must be the same on every rank.
    public func scatterv<T: MPIScalar>(_ all: [T], counts: [Int], root: Int = 0) throws -> [T] {
        guard counts.count == size else { throw HDLError.cluster("scatterv: \(counts.count) counts for \(size) ranks") }
        if rank == root, all.count != counts.reduce(0, +) {
            throw HDLError.cluster("scatterv: root holds \(all.count) elements, counts sum to \(counts.reduce(0, +))")
        }
        let (c32, d32) = try Communicator.displacements(counts, "MPI_Scatterv")
        let n = counts[rank]
        var out = [T](unsafeUninitializedCapacity: n) { _, c in c = n }
        try all.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Scatterv(s.baseAddress, c32, d32, T.mpiType, o.baseAddress, c32[rank], T.mpiType,
                                                    Int32(root), comm), "MPI_Scatterv")
            }
        }
        return out
    }

    /// **Collective.** Element-wise reduction of every rank's `values` (same length on every rank), on every rank.
    public func allreduce<T: MPIScalar>(_ values: [T], _ op: ReduceOp) throws -> [T] {
        var out = values
        let c = try Communicator.count(values.count, "MPI_Allreduce")
        try values.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Allreduce(s.baseAddress, o.baseAddress, c, T.mpiType, op.handle, comm), "MPI_Allreduce")
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

    /// **Point-to-point.** Sends `send` to `dest` and receives `recvCount` elements from `source` in one call
    /// (no deadlock whatever the order the two ranks call it in).
    public func sendrecv<T: MPIScalar>(_ send: [T], to dest: Int, recvCount: Int, from source: Int, tag: Int = 0) throws -> [T] {
        var out = [T](unsafeUninitializedCapacity: recvCount) { _, c in c = recvCount }
        let sc = try Communicator.count(send.count, "MPI_Sendrecv"), rc = try Communicator.count(recvCount, "MPI_Sendrecv")
        try send.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { o in
                try Communicator.check(MPI_Sendrecv(s.baseAddress, sc, T.mpiType, Int32(dest), Int32(tag),
                                                    o.baseAddress, rc, T.mpiType, Int32(source), Int32(tag),
                                                    comm, hdl_mpi_status_ignore()), "MPI_Sendrecv")
            }
        }
        return out
    }

    /// **Point-to-point.** Starts sending `buffer` to `dest`. The memory must stay valid and unmodified until
    /// `wait` on the returned request (so it cannot be a temporary Swift array pointer).
    public func isend<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to dest: Int, tag: Int = 0) throws -> MPIRequest {
        var req = hdl_mpi_request_null()
        let c = try Communicator.count(buffer.count, "MPI_Isend")
        try Communicator.check(MPI_Isend(buffer.baseAddress, c, T.mpiType, Int32(dest), Int32(tag), comm, &req), "MPI_Isend")
        return MPIRequest(handle: req)
    }

    /// **Point-to-point.** Starts receiving exactly `buffer.count` elements from `source` into `buffer`, which
    /// must stay valid and unread until `wait` on the returned request.
    public func irecv<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0) throws -> MPIRequest {
        var req = hdl_mpi_request_null()
        let c = try Communicator.count(buffer.count, "MPI_Irecv")
        try Communicator.check(MPI_Irecv(buffer.baseAddress, c, T.mpiType, Int32(source), Int32(tag), comm, &req), "MPI_Irecv")
        return MPIRequest(handle: req)
    }

    /// **Point-to-point.** Lets MPI progress `request` without blocking; true once it has completed (then it is the
    /// null request). Calling this between compute chunks keeps large transfers moving while this rank computes.
    @discardableResult
    public func test(_ request: inout MPIRequest) throws -> Bool {
        var flag: Int32 = 0
        try Communicator.check(MPI_Test(&request.handle, &flag, hdl_mpi_status_ignore()), "MPI_Test")
        return flag != 0
    }

    /// **Point-to-point.** Blocks until `request` completes; afterwards it is the null request.
    public func wait(_ request: inout MPIRequest) throws {
        try Communicator.check(MPI_Wait(&request.handle, hdl_mpi_status_ignore()), "MPI_Wait")
    }
}
