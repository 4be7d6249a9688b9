import Foundation
import HDLabelCore

/// What a cluster labeling job reads and writes.
public struct ClusterJobOptions: Sendable {
    /// 2-D float32/float64 `.npy` (n × d); every rank reads only its rows.
    public var embeddings: String
    /// 1-D integer `.npy` of length n: class id or -1 (unlabeled). Read by root only.
    public var labels: String
    /// Labels CSV path. With `shardedOutput`, rank r writes `output + ".rank\(r)"` with its rows instead.
    public var output: String
    public var config: LabelingConfig
    /// Global tile edge of the similarity grid (rows per shard are whole tiles).
    public var tile: Int = GraphOptions.defaultTile
    public var shardedOutput: Bool = false
    /// Directory for per-rank partial-graph checkpoints (`GraphCheckpoint`); nil = no checkpoint.
    public var checkpointDir: String?
    /// Root writes the job timings (JSON) here when set.
    public var timingsPath: String?
    /// Class names in id order (optional); every listed class must have a seed.
    public var classes: [String]?
    /// Worker-side labeling: the graph stays on the ranks that built it and every rank runs HDL on its rows
    /// (`DistributedLabeling`); only per-row vectors of n or n × C and class statistics (C·d + d²) travel. The tile must
    /// be a multiple of `Reduction.block`.
    public var distributedLabeling: Bool = false

    public init(embeddings: String, labels: String, output: String, config: LabelingConfig = LabelingConfig()) {
        self.embeddings = embeddings; self.labels = labels; self.output = output; self.config = config
    }
}

/// What every rank knows when a job has finished: its own rows' results and the job-wide facts.
public struct ClusterJobOutcome {
    /// This rank's global rows; the arrays below have `rows.count` entries.
    public let rows: Range<Int>
    public let labels: [Int32]
    public let confidence: [Float]
    public let layer: [Int32]
    public let source: [LabelSource]
    /// Same on every rank (broadcast from root).
    public let chosenK: Int
    public let layers: [LayerRecord]
    public let numClasses: Int
    /// Class names in id order (same on every rank).
    public let classNames: [String]
    /// Job-wide timings (max over ranks), same on every rank.
    public let timings: JobTimings
    /// True when every rank reused its checkpointed partial graph.
    public let reusedCheckpoint: Bool
    /// Files this rank wrote.
    public let written: [String]
}

/// The whole distributed job: shard → ring kNN graph → gather to root → `Labeling.run` on root (the same code as
/// the single-process CLI) → broadcast k and layer records, scatter per-sample results → write.
///
/// **Collective**: every rank calls `run` with the same options. Every phase that can fail on some ranks only
/// (missing or different input files, bad rows, bad labels, k ≥ n, write errors) ends with `Communicator.agree`,
/// so all ranks stop together with the same message and no output is left behind (a rank whose output write
/// succeeded removes it when another rank's failed).
///
/// Test hook: when the environment variable `HDLABEL_TEST_KILL_RANK` equals this rank, the rank kills itself with
/// SIGKILL right after the graph phase, to test that `mpirun` ends the job non-zero without any output.
public enum ClusterJob {
    public static func run(comm: Communicator, options o: ClusterJobOptions,
                           log: ((String) -> Void)? = nil) throws -> ClusterJobOutcome {
        let start = Clock.now()
        var t = PhaseTimings()
        let rank = comm.rank
        let say: (String) -> Void = { msg in if rank == 0 { log?(msg) } }

        // 1. Shape of the embeddings: every rank reads the header of its view of the file; all must agree.
        let shape = try comm.together("reading embeddings header") { () throws -> [Int] in
            try t.time(.read) {
                let h = try NPY.readHeader(path: o.embeddings)
                guard h.shape.count == 2 else {
                    throw HDLError.format(path: o.embeddings, reason: "embeddings must be 2-D (n, d), found shape \(h.shape)")
                }
                return h.shape
            }
        }
        let lo = try comm.allreduce(shape, .min), hi = try comm.allreduce(shape, .max)
        if lo != hi {
            throw HDLError.cluster("ranks see different embeddings files at '\(o.embeddings)': shapes range from \(lo) to \(hi)")
        }
        let (n, d) = (shape[0], shape[1])
        say("embeddings: \(n) x \(d) over \(comm.size) rank(s)")

        // 2. Seeds: root reads and checks them, then broadcasts them with the class count.
        let rootSeeds = try comm.together("reading labels") { () throws -> SeedLabels in
            guard rank == 0 else { return SeedLabels(seeds: [], classNames: []) }
            return try t.time(.read) { try readSeeds(path: o.labels, n: n, classes: o.classes) }
        }
        let seeds = try comm.bcast(rootSeeds.seeds)
        let classNames = try JSONDecoder().decode([String].self, from: comm.bcast(try JSONEncoder().encode(rootSeeds.classNames)))
        let numClasses = classNames.count

        // 3. Parameters, shard table and graph size: the same checks and arithmetic on every rank.
        let (table, k) = try comm.together("planning shards") { () throws -> (ShardTable, Int) in
            guard n >= 2 else { throw HDLError.invalidInput("need at least 2 rows, found \(n)") }
            try o.config.validate(n: n)
            let table = try ShardTable(n: n, tile: o.tile, ranks: comm.size)
            if o.distributedLabeling { _ = try RankRows(comm: comm, table: table) }
            return (table, o.config.graphK(n: n))
        }
        let rows = table.rows(of: rank)
        say("graph: k=\(k), tile=\(table.tile), rows per rank \(table.counts)")

        // 4. Partial graph: from a matching checkpoint on every rank, or computed by the ring.
        var key: GraphCheckpoint.Key?
        var saved: KNNGraph?
        if let dir = o.checkpointDir {
            let mine = try comm.together("checking checkpoint") {
                try GraphCheckpoint.Key(input: o.embeddings, n: n, d: d, k: k, table: table, rank: rank)
            }
            key = mine
            saved = t.time(.checkpoint) { GraphCheckpoint.load(dir: dir, key: mine) }
        }
        let reused = try comm.allreduce(saved == nil ? 0 : 1, .min) == 1
        let local: KNNGraph
        var shard: Shard?
        if !reused || o.config.usesEmbeddings {
            shard = try comm.together("reading embeddings") { try Shard.load(path: o.embeddings, rows: rows, d: d) }
            t.add(.read, shard!.readSeconds); t.add(.normalize, shard!.normalizeSeconds)
        }
        if reused, let g = saved {
            say("checkpoint: reusing partial graphs from \(o.checkpointDir ?? "")")
            local = g
        } else {
            local = try DistributedGraph.build(shard: shard!, table: table, k: k, comm: comm, timings: &t)
            if let dir = o.checkpointDir, let key {
                try comm.together("saving checkpoint") { try t.time(.checkpoint) { try GraphCheckpoint.save(local, dir: dir, key: key) } }
            }
        }
        if let victim = ProcessInfo.processInfo.environment["HDLABEL_TEST_KILL_RANK"], Int(victim) == rank {
            kill(getpid(), SIGKILL)
        }

        // 5–7, worker-side: every rank labels its rows; the result (all rows) is the same on every rank.
        if o.distributedLabeling {
            var result: LabelingResult?
            var labelingError: Error?
            do {
                result = try t.time(.hierarchy) {
                    try DistributedLabeling.run(local: local, embeddings: o.config.usesEmbeddings ? shard?.x : nil, comm: comm, table: table, seeds: seeds, numClasses: numClasses,
                                                config: o.config, log: log)
                }
            } catch { labelingError = error }
            try comm.agree(labelingError, phase: "labeling")
            let r = result!
            let mine = rows
            return try finish(comm: comm, options: o, timings: &t, start: start, n: n, d: d, k: k, table: table, reused: reused,
                              rows: rows, labels: Array(r.labels[mine]), confidence: Array(r.confidence[mine]),
                              layer: Array(r.layer[mine]), source: Array(r.source[mine]), chosenK: r.chosenK, layers: r.layers,
                              all: rank == 0 ? r : nil, numClasses: numClasses, classNames: classNames)
        }

        // 5. Gather the partial graphs on root (rank order = row order).
        let (ids, sims) = try t.time(.gather) {
            (try comm.gatherv(local.neighbors, rowWidth: k), try comm.gatherv(local.similarities, rowWidth: k))
        }
        // HDL's geometry evidence needs the normalised rows on root too (n · d · 4 bytes there).
        let allRows: [Float] = try o.config.usesEmbeddings ? t.time(.gather) { try comm.gatherv(shard?.x.data ?? [], rowWidth: d) } : []

        // 6. The hierarchy on root: the same core code as the single-process CLI. Meanwhile the other ranks sleep in
        // a barrier (rather than spin in MPI) so root's threads have the node's cores; then all agree on the outcome.
        var result: LabelingResult?
        var labelingError: Error?
        if rank == 0 {
            do {
                result = try t.time(.hierarchy) {
                    let graph = KNNGraph(n: n, k: k, neighbors: ids, similarities: sims)
                    let x = o.config.usesEmbeddings ? Embeddings(rows: n, cols: d, data: allRows) : nil
                    return try Labeling.run(graph: graph, seeds: seeds, numClasses: numClasses, config: o.config, embeddings: x, log: log)
                }
            } catch { labelingError = error }
        }
        try t.time(.hierarchy) { try comm.sleepingBarrier() }
        try comm.agree(labelingError, phase: "labeling")

        // 7. Broadcast the job-wide facts, scatter each rank's rows.
        let t0 = Clock.now()
        let chosenK = try comm.bcast(result?.chosenK ?? 0)
        let layerData = try comm.bcast(rank == 0 ? try JSONEncoder().encode(result?.layers ?? []) : Data())
        let layers = try comm.together("decoding layer records") { try JSONDecoder().decode([LayerRecord].self, from: layerData) }
        let counts = table.counts
        let labels = try comm.scatterv(result?.labels ?? [], counts: counts)
        let confidence = try comm.scatterv(result?.confidence ?? [], counts: counts)
        let layer = try comm.scatterv(result?.layer ?? [], counts: counts)
        let sourceRaw = try comm.scatterv(result?.source.map(\.rawValue) ?? [], counts: counts)
        let source = sourceRaw.map { LabelSource(rawValue: $0) ?? .unlabeled }
        t.add(.broadcast, Clock.now() - t0)
        return try finish(comm: comm, options: o, timings: &t, start: start, n: n, d: d, k: k, table: table, reused: reused,
                          rows: rows, labels: labels, confidence: confidence, layer: layer, source: source, chosenK: chosenK,
                          layers: layers, all: result, numClasses: numClasses, classNames: classNames)
    }

    /// Steps 8–9, shared by both labeling modes: write (root: `all`, or every rank its rows) and reduce the timings.
    static func finish(comm: Communicator, options o: ClusterJobOptions, timings t: inout PhaseTimings, start: Double,
                       n: Int, d: Int, k: Int, table: ShardTable, reused: Bool, rows: Range<Int>,
                       labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource], chosenK: Int,
                       layers: [LayerRecord], all result: LabelingResult?, numClasses: Int, classNames: [String]) throws -> ClusterJobOutcome {
        let rank = comm.rank

        // 8. Outputs: one file from root, or one shard file per rank. Removed again if any rank failed.
        var written: [String] = []
        let t1 = Clock.now()
        var writeError: Error?
        do {
            if o.shardedOutput {
                let path = o.output + ".rank\(rank)"
                try AtomicFile.write(LabelsIO.encodeCSV(firstId: rows.lowerBound, labels: labels, confidence: confidence,
                                                        layer: layer, source: source, classNames: classNames), to: path)
                written.append(path)
            } else if let all = result {
                try AtomicFile.write(LabelsIO.encodeCSV(labels: all.labels, confidence: all.confidence, layer: all.layer,
                                                        source: all.source, classNames: classNames), to: o.output)
                written.append(o.output)
            }
        } catch { writeError = error }
        t.add(.write, Clock.now() - t1)
        do { try comm.agree(writeError, phase: "writing output") } catch {
            for f in written { unlink(f) }
            throw error
        }

        // 9. Timings (max over ranks); root writes them when asked.
        var timings = try t.reduced(over: comm)
        timings.totalSeconds = try comm.allreduce(Clock.now() - start, .max)
        timings.info = ["n": "\(n)", "d": "\(d)", "k": "\(k)", "tile": "\(table.tile)", "method": o.config.method.rawValue,
                        "distributedLabeling": "\(o.distributedLabeling)",
                        "blasThreads": "\(BLASThreads.current)", "reusedCheckpoint": "\(reused)", "chosenK": "\(chosenK)"]
        try comm.together("writing timings") { () throws -> Bool in
            if rank == 0, let p = o.timingsPath { try AtomicFile.write(try timings.json(), to: p) }
            return true
        }
        return ClusterJobOutcome(rows: rows, labels: labels, confidence: confidence, layer: layer, source: source,
                                 chosenK: chosenK, layers: layers, numClasses: numClasses, classNames: classNames, timings: timings,
                                 reusedCheckpoint: reused, written: written)
    }

    /// Reads and checks seed labels (root only): `.npy` ints or CSV `id,label` (see `LabelsIO.read`).
    public static func readSeeds(path: String, n: Int, classes: [String]? = nil) throws -> SeedLabels {
        let s = try LabelsIO.read(path: path, n: n, classes: classes)
        try validateSeeds(s.seeds, numClasses: s.numClasses, n: n)
        return s
    }
}
