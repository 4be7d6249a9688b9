import Foundation
import HDLabelCluster
import HDLabelCore

/// Test-side fault injection for the cluster job's named points (`Communicator.faultInjector`).
///
/// `--fault ACTION:POINT:RANK[:NTH]` acts on rank RANK the NTH time (default 1) it reaches the point named POINT
/// (e.g. `graph`, `graph step 1`, `gather`, `labeling`, `labeling collective`, `issues round 2`, `write`):
/// `throw` makes that rank fail there, `kill` SIGKILLs its process. `--pause POINT:SECONDS[:MARKER]` makes every
/// rank sleep at the first visit of POINT (rank 0 first creates MARKER), so a script can act at a known moment.
struct FaultPlan: Sendable {
    var action = "", point = "", rank = -1, nth = 1
    var pausePoint = "", pauseSeconds = 0.0, pauseMarker = ""

    /// Consumes `--fault` / `--pause` at `a[i]`; true when it did.
    mutating func parse(_ flag: String, _ value: String) -> Bool {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch flag {
        case "--fault":
            guard parts.count >= 3, ["throw", "kill"].contains(parts[0]), let r = Int(parts[2]) else { return false }
            action = parts[0]; point = parts[1]; rank = r; nth = parts.count > 3 ? Int(parts[3]) ?? 1 : 1
            return true
        case "--pause":
            guard parts.count >= 2, let s = Double(parts[1]) else { return false }
            pausePoint = parts[0]; pauseSeconds = s; pauseMarker = parts.count > 2 ? parts[2] : ""
            return true
        default: return false
        }
    }

    var isEmpty: Bool { action.isEmpty && pausePoint.isEmpty }

    /// The injector, or nil when nothing was asked for.
    func injector() -> FaultInjector? {
        if isEmpty { return nil }
        let counts = Counter()
        let plan = self
        return { name, rank in
            if name == plan.pausePoint, counts.bump("pause " + name) == 1 {
                if rank == 0, !plan.pauseMarker.isEmpty { FileManager.default.createFile(atPath: plan.pauseMarker, contents: Data()) }
                usleep(UInt32(plan.pauseSeconds * 1e6))
            }
            guard name == plan.point, rank == plan.rank, counts.bump(name) == plan.nth else { return }
            // The wall-clock moment of the fault, so scripts can measure the time from it to the job's end.
            stderrLine("[rank \(rank)] test: \(plan.action) at \(name), t=\(String(format: "%.3f", Date().timeIntervalSince1970))")
            if plan.action == "kill" { kill(getpid(), SIGKILL) }
            throw HDLError.invalidInput("fault injected at \(name) on rank \(rank)")
        }
    }
}

/// Visit counts per point name (only the main thread calls MPI, hence the injector).
final class Counter: @unchecked Sendable {
    private var seen: [String: Int] = [:]
    func bump(_ key: String) -> Int { seen[key, default: 0] += 1; return seen[key]! }
}

/// `issues-job` mode: the cluster label-issue job; exit code 0 on success, 1 on an (agreed) error.
func runIssuesJobMode(_ a: [String]) -> Int32 {
    guard a.count >= 3 else { stderrLine("usage: hdlabel-mpitest issues-job EMB LABELS OUT [options]"); return 2 }
    var input = ClusterGraphInput(embeddings: a[0], labels: a[1])
    var rounds = 1
    var faults = FaultPlan()
    var i = 3
    do {
        while i < a.count {
            let flag = a[i], value = i + 1 < a.count ? a[i + 1] : ""
            if faults.parse(flag, value) { i += 2; continue }
            switch flag {
            case "--tile": input.tile = try parsed(flag, value) { Int($0) }
            case "--rounds": rounds = try parsed(flag, value) { Int($0) }
            case "--checkpoint": input.checkpointDir = value
            default: stderrLine("unknown option \(flag)"); return 2
            }
            i += 2
        }
    } catch let e as BadTestOption { stderrLine("bad value '\(e.value)' for \(e.flag)"); return 2 } catch { return 2 }
    BLASThreads.set(1)
    input.faultInjector = faults.injector()
    var o = ClusterIssuesOptions(input: input, output: a[2])
    o.config.rounds = rounds; o.all = true
    let comm: Communicator
    do { comm = try Communicator.initialize() } catch { stderrLine("error: \(error)"); return 1 }
    defer { Communicator.finalize() }
    do {
        let r = try ClusterIssues.run(comm: comm, options: o)
        if comm.isRoot { stderrLine("done: \(r.result.flaggedCount) flagged") }
        return 0
    } catch {
        if comm.isRoot { stderrLine("error: \(error)") }
        return 1
    }
}
