import HDLabelCuration
import HDLabelIO
import Foundation
import HDLabelCore

/// What a cluster label-issue job reads and writes.
public struct ClusterIssuesOptions: Sendable {
    public var input: ClusterGraphInput
    /// Issues CSV written by root (`LabelIssues.encodeCSV`).
    public var output: String
    public var config: LabelIssueConfig
    /// Graph width; nil = `LabelIssues.graphWidth` (wider when partly labeled).
    public var graphK: Int?
    /// Write every labeled sample, not only the flagged ones.
    public var all: Bool = false
    /// Root writes the job timings (JSON) here when set.
    public var timingsPath: String?

    public init(input: ClusterGraphInput, output: String, config: LabelIssueConfig = LabelIssueConfig()) {
        self.input = input; self.output = output; self.config = config
    }
}

/// What every rank knows when a label-issue job has finished.
public struct ClusterIssuesOutcome {
    /// The whole detection (all n rows), identical on every rank.
    public let result: LabelIssueResult
    public let classNames: [String]
    /// Graph width used and labeled-neighbour votes per sample.
    public let graphK: Int
    public let voteK: Int
    public let timings: JobTimings
    /// Files this rank wrote (root: the CSV).
    public let written: [String]
}

/// Label-issue detection across ranks: the shared graph phase (`ClusterGraph`), then per cleaning round every rank
/// computes the neighbour vote shares of its own rows from its partial graph and the (broadcast) given labels, and an
/// all-gather gives every rank the n × C shares; the flag rule runs on every rank alike (`LabelIssues.detect`), so
/// the flags, and hence the next round's voters, agree without further messages. The graph never leaves its rank:
/// per round only n × C floats travel. Root writes the CSV. Results equal single-process `LabelIssues.detect` on the
/// same graph bit for bit, for any number of ranks.
///
/// **Collective**: every rank calls `run` with the same options; errors are agreed (all ranks throw the same one)
/// and no output is left behind. A one-rank failure inside the rounds (between their all-gathers) stops the job
/// (`Communicator.collective`); the CSV is staged and renamed only once every rank got to the write.
public enum ClusterIssues {
    public static func run(comm: Communicator, options o: ClusterIssuesOptions,
                           log: ((String) -> Void)? = nil) throws -> ClusterIssuesOutcome {
        var comm = comm
        comm.faultInjector = o.input.faultInjector
        let start = WallClock.now()
        var t = PhaseTimings()
        let rank = comm.rank
        let say: (String) -> Void = { msg in if rank == 0 { log?(msg) } }
        var cfg = o.config
        let g = try ClusterGraph.build(
            comm: comm, input: o.input, needRows: false, timings: &t, log: say,
            readLabels: { path, n in try LabelsIO.read(path: path, n: n, classes: o.input.classes) },
            plan: { _, labels, _ in
                let (width, planned) = try LabelIssues.plan(given: labels, source: o.input.labels, config: o.config, graphK: o.graphK)
                cfg = planned
                return width
            })
        let c = g.labels.numClasses, given = g.labels.seeds
        say("detecting: vote k=\(cfg.k), rule \(cfg.rule.rawValue), up to \(cfg.rounds) round(s)")

        // Rounds: local vote shares of this rank's rows → all-gather → the same flag rule on every rank.
        // A one-rank failure inside a round (between the all-gathers) stops the job (`collective`).
        try comm.boundary("issues")
        let t0 = WallClock.now()
        var round = 0
        let r = try comm.collective("detecting label issues") {
            try LabelIssues.detect(labels: given, numClasses: c, graphWidth: g.k, config: cfg) { voter in
                round += 1
                try comm.point("issues round \(round)")
                let mine = LabelIssues.voteShares(graph: g.local, labels: given, voter: voter, numClasses: c,
                                                  k: cfg.k, gamma: cfg.gamma)
                return try comm.allgatherv(mine)
            }
        }
        t.add(.hierarchy, WallClock.now() - t0)

        // Root stages the CSV; renamed into place only when every rank got here.
        try comm.boundary("write")
        var written: [String] = []
        var staged: AtomicFile.Staged?
        var writeError: Error?
        let t1 = WallClock.now()
        if rank == 0 {
            do { staged = try AtomicFile.stage(LabelIssues.encodeCSV(r, classNames: g.labels.classNames, all: o.all), for: o.output) }
            catch { writeError = error }
        }
        do { try comm.agree(writeError, phase: "writing output") } catch {
            if let staged { AtomicFile.discard(staged) }
            throw error
        }
        var commitError: Error?
        if let staged { do { try AtomicFile.commit(staged); written.append(staged.path) } catch { commitError = error } }
        t.add(.write, WallClock.now() - t1)
        do { try comm.agree(commitError, phase: "writing output") } catch {
            for f in written { unlink(f) }
            throw error
        }

        try comm.boundary("timings")
        let timings = try comm.collective("timings") { try t.finish(over: comm, start: start, writeTo: o.timingsPath, info: [
            "n": "\(g.n)", "d": "\(g.d)", "k": "\(g.k)", "voteK": "\(cfg.k)", "tile": "\(g.table.tile)",
            "rule": cfg.rule.rawValue, "blasThreads": "\(BLASThreads.current)", "reusedCheckpoint": "\(g.reused)"]) }
        return ClusterIssuesOutcome(result: r, classNames: g.labels.classNames, graphK: g.k, voteK: cfg.k,
                                    timings: timings, written: written)
    }
}
