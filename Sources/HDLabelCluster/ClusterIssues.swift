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
/// and no output is left behind.
public enum ClusterIssues {
    public static func run(comm: Communicator, options o: ClusterIssuesOptions,
                           log: ((String) -> Void)? = nil) throws -> ClusterIssuesOutcome {
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
        var detectError: Error?
        var result: LabelIssueResult?
        let t0 = WallClock.now()
        do {
            result = try LabelIssues.detect(labels: given, numClasses: c, graphWidth: g.k, config: cfg) { voter in
                let mine = LabelIssues.voteShares(graph: g.local, labels: given, voter: voter, numClasses: c,
                                                  k: cfg.k, gamma: cfg.gamma)
                return try comm.allgatherv(mine)
            }
        } catch { detectError = error }
        t.add(.hierarchy, WallClock.now() - t0)
        try comm.agree(detectError, phase: "detecting label issues")
        let r = result!

        // Root writes the CSV; removed again if anything failed afterwards.
        var written: [String] = []
        var writeError: Error?
        let t1 = WallClock.now()
        if rank == 0 {
            do {
                try AtomicFile.write(LabelIssues.encodeCSV(r, classNames: g.labels.classNames, all: o.all), to: o.output)
                written.append(o.output)
            } catch { writeError = error }
        }
        t.add(.write, WallClock.now() - t1)
        do { try comm.agree(writeError, phase: "writing output") } catch {
            for f in written { unlink(f) }
            throw error
        }

        let timings = try t.finish(over: comm, start: start, writeTo: o.timingsPath, info: [
            "n": "\(g.n)", "d": "\(g.d)", "k": "\(g.k)", "voteK": "\(cfg.k)", "tile": "\(g.table.tile)",
            "rule": cfg.rule.rawValue, "blasThreads": "\(BLASThreads.current)", "reusedCheckpoint": "\(g.reused)"])
        return ClusterIssuesOutcome(result: r, classNames: g.labels.classNames, graphK: g.k, voteK: cfg.k,
                                    timings: timings, written: written)
    }
}
