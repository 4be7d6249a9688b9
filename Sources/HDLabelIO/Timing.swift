import HDLabelCore
import Foundation

/// Monotonic wall clock in seconds (`CLOCK_MONOTONIC`): the one clock every timing in hdlabel reads.
public enum WallClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Wall seconds of named phases (a phase timed twice adds up). `Phase` is a string for the single-process
/// commands and the cluster's `Phase` enum under `mpirun`.
public struct PhaseTimer<Key: Hashable & Sendable>: Sendable, Equatable {
    public private(set) var seconds: [Key: Double] = [:]
    public init() {}
    public mutating func add(_ phase: Key, _ s: Double) { seconds[phase, default: 0] += s }
    /// Runs `body`, adding its wall time to `phase`.
    public mutating func time<T>(_ phase: Key, _ body: () throws -> T) rethrows -> T {
        let t0 = WallClock.now()
        defer { add(phase, WallClock.now() - t0) }
        return try body()
    }
}

extension PhaseTimer: PhaseTiming where Key == String {}
