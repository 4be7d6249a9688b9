import HDLabelIO
import Foundation
import HDLabelCore

/// The phases of a cluster job, in the order they run. Times are wall seconds on one rank.
public enum Phase: String, CaseIterable, Codable, Sendable {
    /// Reading this rank's rows (offset read) and, on root, the seed labels.
    case read
    /// Validating and L2-normalising this rank's rows.
    case normalize
    /// `sgemm` + top-k merge against every block of the ring.
    case compute
    /// Time blocked waiting for ring transfers that did not finish behind the compute.
    case commWait
    /// Saving or loading the partial-graph checkpoint.
    case checkpoint
    /// `MPI_Gatherv` of the partial graphs to root.
    case gather
    /// The labeling hierarchy on root (`Labeling.run`); other ranks wait here.
    case hierarchy
    /// Broadcast of k and layer records, scatter of labels/confidence/layer/source.
    case broadcast
    /// Writing the output file(s).
    case write
}

/// Per-phase seconds and bytes sent by one rank; `reduced(over:)` turns them into job-wide numbers.
public struct PhaseTimings: Sendable, Equatable {
    public var timer = PhaseTimer<Phase>()
    /// Bytes this rank sent in the ring exchange (payload only).
    public var bytesSent: Int = 0
    /// Cumulative `Communicator.traffic` bytes at the end of each marked stage, in marking order.
    public var stageMarks: [(stage: String, bytes: Int)] = []

    public init() {}

    public var seconds: [Phase: Double] { timer.seconds }
    /// Records that `stage` ended now: its bytes are the traffic since the previous mark.
    public mutating func mark(_ stage: String, _ comm: Communicator) { stageMarks.append((stage, comm.traffic.bytesSent)) }

    public static func == (a: PhaseTimings, b: PhaseTimings) -> Bool {
        a.timer == b.timer && a.bytesSent == b.bytesSent && a.stageMarks.map(\.stage) == b.stageMarks.map(\.stage)
            && a.stageMarks.map(\.bytes) == b.stageMarks.map(\.bytes)
    }
    public mutating func add(_ phase: Phase, _ s: Double) { timer.add(phase, s) }
    /// Runs `body`, adding its wall time to `phase`.
    public mutating func time<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T { try timer.time(phase, body) }

    /// **Collective.** Max over ranks of every phase's seconds and of bytes sent, plus the total bytes sent by all
    /// ranks. The max is the wall time of a phase (every rank leaves a synchronising phase together).
    public func reduced(over comm: Communicator) throws -> JobTimings {
        let local = Phase.allCases.map { seconds[$0] ?? 0 }
        let mx = try comm.allreduce(local, .max)
        let maxBytes = try comm.allreduce(bytesSent, .max), totalBytes = try comm.allreduce(bytesSent, .sum)
        var byRank: [String: [Int]] = [:], previous = 0
        for (stage, bytes) in stageMarks {
            byRank[stage] = try comm.allgather(bytes - previous)
            previous = bytes
        }
        byRank["total"] = try comm.allgather(comm.traffic.bytesSent)
        var j = JobTimings(ranks: comm.size,
                           maxSeconds: Dictionary(uniqueKeysWithValues: zip(Phase.allCases.map(\.rawValue), mx)),
                           maxBytesSentPerRank: maxBytes, totalBytesSent: totalBytes)
        j.bytesSentByRank = byRank
        return j
    }
}

extension PhaseTimings {
    /// **Collective.** The job-wide timings (`reduced(over:)`), the job's wall time since `start` (max over ranks)
    /// and `info`; root writes them as JSON to `path` when given (write errors are agreed).
    public func finish(over comm: Communicator, start: Double, writeTo path: String?, info: [String: String]) throws -> JobTimings {
        var timings = try reduced(over: comm)
        timings.totalSeconds = try comm.allreduce(WallClock.now() - start, .max)
        timings.info = info
        _ = try comm.together("writing timings") { () throws -> Bool in
            if comm.rank == 0, let path { try AtomicFile.write(try timings.json(), to: path) }
            return true
        }
        return timings
    }
}

/// Job-wide timings (what `--timings FILE` writes as JSON).
public struct JobTimings: Codable, Sendable, Equatable {
    public var ranks: Int
    /// Phase name → max over ranks of that phase's seconds.
    public var maxSeconds: [String: Double]
    /// Ring exchange bytes (exact graph): max over ranks and sum.
    public var maxBytesSentPerRank: Int
    public var totalBytesSent: Int
    /// Stage ("graph", "labeling", … and "total" = the whole job up to the timings) → bytes each rank addressed to
    /// other ranks (`TrafficMeter`), in rank order. Nil in files written before it existed.
    public var bytesSentByRank: [String: [Int]]?
    /// Wall time of the whole job, measured on root from start to end of `ClusterJob.run`.
    public var totalSeconds: Double = 0
    /// Extra facts about the run (n, d, k, tile, BLAS threads, reused checkpoint...).
    public var info: [String: String] = [:]

    public func json() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }
}
