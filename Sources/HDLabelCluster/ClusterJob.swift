import HDLabelIO
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
    /// Graph builder (exact ring, approximate cells, or auto by n) and the approximate builder's options.
    public var graph: GraphMethod = .exact
    public var approx = ApproxGraphOptions(k: 1)
    /// Sample rows of the approximate graph's recall estimate (printed, kept in the manifest); 0 = none.
    public var recallRows = 1000
    /// Prefix of a graph file (`hdlabel graph -o PREFIX`) whose rows each rank reads instead of building them.
    public var knnGraph: String?
    public var shardedOutput: Bool = false
    /// Directory for per-rank partial-graph checkpoints (`GraphCheckpoint`); nil = no checkpoint.
    public var checkpointDir: String?
    /// Root writes the job timings (JSON) here when set.
    public var timingsPath: String?
    /// Root writes this manifest, completed with the run's facts (n, d, classes, k, layers, timings, ranks), to
    /// `RunManifest.path(for: output)` when set. Labels, manifest and timings are staged together and renamed only
    /// when every rank staged its files: all are new, or none is.
    public var manifest: RunManifest?
    /// Class names in id order (optional); every listed class must have a seed.
    public var classes: [String]?
    /// Worker-side labeling: the graph stays on the ranks that built it and every rank runs HDL on its rows
    /// (`DistributedLabeling`); only per-row vectors of n or n × C and class statistics (C·d + d²) travel. The tile must
    /// be a multiple of `Reduction.block`.
    public var distributedLabeling: Bool = false
    /// Test hook at the job's named points (`Communicator.faultInjector`: reading, graph, graph step S, checkpoint,
    /// gather, labeling, broadcast, write, timings); nil in production.
    public var faultInjector: FaultInjector?

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
/// Phases that call collectives run inside `Communicator.collective`, so an error on one rank there stops the job
/// (one message, `MPI_Abort`) instead of leaving the others waiting; outputs are staged on every rank and renamed into
/// place only once every rank staged its file.
public enum ClusterJob {
    public static func run(comm: Communicator, options o: ClusterJobOptions,
                           log: ((String) -> Void)? = nil) throws -> ClusterJobOutcome {
        var comm = comm
        comm.faultInjector = o.faultInjector
        let start = WallClock.now()
        var t = PhaseTimings()
        let rank = comm.rank
        let say: (String) -> Void = { msg in if rank == 0 { log?(msg) } }

        // 1–4. Shape, seeds (root reads and checks them), shards, and this rank's rows of the kNN graph.
        var input = ClusterGraphInput(embeddings: o.embeddings, labels: o.labels)
        input.classes = o.classes; input.tile = o.tile; input.checkpointDir = o.checkpointDir
        input.graph = o.graph; input.approx = o.approx; input.recallRows = o.recallRows; input.knnGraph = o.knnGraph
        input.faultInjector = o.faultInjector
        let g = try ClusterGraph.build(
            comm: comm, input: input, needRows: o.config.usesEmbeddings, timings: &t, log: say,
            readLabels: { path, n in try readSeeds(path: path, n: n, classes: o.classes) },
            plan: { n, _, table in
                try o.config.validate(n: n)
                if o.distributedLabeling { _ = try RankRows(comm: comm, table: table) }
                return o.config.graphK(n: n)
            })
        let (n, d, k, table, rows, local, shard, reused) = (g.n, g.d, g.k, g.table, g.rows, g.local, g.shard, g.reused)
        t.mark("graph", comm)
        let graphFacts = g.manifestParameters(approx: o.approx)
        let seeds = g.labels.seeds, classNames = g.labels.classNames, numClasses = g.labels.numClasses

        // 5–7: label (the hierarchy), then HDL's metric pass: the same labeling again over a graph rebuilt in the first
        // labeling's within-class metric.
        var pass = try labelPass(comm: comm, options: o, config: MetricPass.firstPass(o.config), timings: &t, n: n, d: d, k: k, table: table, rows: rows,
                                 local: local, shard: shard, seeds: seeds, numClasses: numClasses, log: log)
        // (`auto` only after the graph evidence: root's result decides, broadcast.)
        var skip: String?
        if o.config.runsMetricPass, o.config.metricPass == .auto {
            let why = try comm.bcast(rank == 0 ? Data((pass.result.flatMap { MetricPass.autoSkipReason(after: $0, numClasses: numClasses) } ?? "").utf8) : Data())
            skip = why.isEmpty ? nil : String(decoding: why, as: UTF8.self)
        }
        if let skip {
            say("HDL: metric pass skipped: \(skip)")
            pass.result?.metricPassNote = skip
        } else if o.config.runsMetricPass, let shard {
            // 7a. Each rank maps its rows (exact class statistics over the ranks, the factor on every rank); the graph is
            // rebuilt by the same builder over the mapped rows; then the labeling runs again with the graph evidence.
            try comm.boundary("metric pass")
            let statsComm: RowCollectives = comm.size == 1 ? LocalRows(n: n) : try RankRows(comm: comm, table: table)
            let mapped = try comm.collective("metric pass") {
                try t.time(.hierarchy) {
                    try MetricPass.whitenedOrReason(rows: shard.x, comm: statsComm, localLabels: pass.labels, numClasses: numClasses,
                                                    shrinkage: o.config.metricShrinkage, classBalance: o.config.metricClassBalance)
                }
            }
            if let z = mapped.rows {
                say("HDL: metric pass: rows mapped into the first labeling's within-class metric (shrinkage \(o.config.metricShrinkage), class balance \(o.config.metricClassBalance)); "
                    + "graph rebuilt there, labeling again from the seeds with the graph evidence")
                let zShard = Shard(rows: shard.rows, x: z, readSeconds: 0, normalizeSeconds: 0)
                try comm.boundary("graph")
                let local2: KNNGraph
                if g.method == .approx {
                    var a = o.approx
                    a.k = k
                    local2 = try comm.collective("graph") {
                        try t.time(.compute) { try DistributedApproxGraph.build(shard: zShard, table: table, options: a, comm: comm) }
                    }
                } else {
                    local2 = try comm.collective("graph") {
                        try DistributedGraph.build(shard: zShard, table: table, k: k, comm: comm, timings: &t, ring: nil)
                    }
                }
                let before = pass.labels, firstPass = pass
                pass = try labelPass(comm: comm, options: o, config: MetricPass.secondPass(o.config), timings: &t, n: n, d: d, k: k,
                                     table: table, rows: rows, local: local2, shard: zShard, seeds: seeds, numClasses: numClasses, log: log)
                pass.result?.metricPass = true
                if let f = firstPass.result, var r = pass.result {
                    MetricPass.fillUnreached(labels: &r.labels, confidence: &r.confidence, layer: &r.layer, source: &r.source,
                                             first: (f.labels, f.confidence, f.layer, f.source), minConfidence: o.config.minConfidence)
                    pass.result = r
                }
                let filled = MetricPass.fillUnreached(labels: &pass.labels, confidence: &pass.confidence, layer: &pass.layer, source: &pass.source,
                                                      first: (firstPass.labels, firstPass.confidence, firstPass.layer, firstPass.source),
                                                      minConfidence: o.config.minConfidence)
                let counts = try comm.allreduce([zip(before, pass.labels).filter { $0 != $1 }.count, filled], .sum)
                say("HDL: metric pass: \(counts[0]) labels changed by the second labeling"
                    + (counts[1] > 0 ? "; \(counts[1]) rows it could not reach (no seed in their component of the rebuilt graph) keep the first labeling's" : ""))
            } else {
                let reason = try MetricPass.unavailable(mapped.reason ?? "", config: o.config)
                say("HDL: metric pass skipped: \(reason) (auto); the first labeling stands")
                pass.result?.metricPassNote = reason
            }
        }
        return try finish(comm: comm, options: o, timings: &t, start: start, n: n, d: d, k: k, table: table, reused: reused,
                          graphFacts: graphFacts, rows: rows, labels: pass.labels, confidence: pass.confidence, layer: pass.layer,
                          source: pass.source, chosenK: pass.chosenK, layers: pass.layers, all: pass.result, numClasses: numClasses,
                          classNames: classNames)
    }

    /// One labeling's outcome on a rank: its rows' columns, the job-wide facts, and (root) every row.
    struct Pass {
        var chosenK: Int
        var layers: [LayerRecord]
        var labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource]
        var result: LabelingResult?
    }

    /// Steps 5–7 for one labeling over the rows' graph `local`: worker-side (`--distributed-labeling`: every rank labels
    /// its rows, the result is the same on every rank) or on root (gather the partial graphs, the hierarchy on root
    /// with the geometry served by the ranks, broadcast the facts and scatter each rank's rows). **Collective**.
    static func labelPass(comm: Communicator, options o: ClusterJobOptions, config: LabelingConfig, timings t: inout PhaseTimings,
                          n: Int, d: Int, k: Int, table: ShardTable, rows: Range<Int>, local: KNNGraph, shard: Shard?,
                          seeds: [Int32], numClasses: Int, log: ((String) -> Void)?) throws -> Pass {
        let rank = comm.rank
        if o.distributedLabeling {
            try comm.boundary("labeling")
            let r = try comm.collective("labeling") {
                try t.time(.hierarchy) {
                    try DistributedLabeling.run(local: local, embeddings: config.usesEmbeddings ? shard?.x : nil, comm: comm, table: table, seeds: seeds, numClasses: numClasses,
                                                config: config, log: log)
                }
            }
            t.mark("labeling", comm)
            let mine = rows
            return Pass(chosenK: r.chosenK, layers: r.layers, labels: Array(r.labels[mine]), confidence: Array(r.confidence[mine]),
                        layer: Array(r.layer[mine]), source: Array(r.source[mine]), result: rank == 0 ? r : nil)
        }

        // 5. Gather the partial graphs on root (rank order = row order). HDL's geometry evidence is served by the ranks
        // that hold the rows (`ServedGeometry`: exact distributed class statistics, each rank scores its rows), so the
        // normalised rows stay where they are; only with a tile that is not a multiple of `Reduction.block` (shards
        // not aligned to the statistics' fixed blocks) are they gathered to root as before (n · d · 4 bytes there).
        // (On one rank root's shard is every row: it is used in place, nothing is gathered or served.)
        let alone = comm.size == 1 && shard != nil
        let served = config.usesEmbeddings && table.tile % Reduction.block == 0 && !alone
        try comm.boundary("gather")
        let (ids, sims, allRows) = try comm.collective("gather") { () throws -> ([Int32], [Float], [Float]) in
            try t.time(.gather) {
                (try comm.gatherv(local.neighbors, rowWidth: k), try comm.gatherv(local.similarities, rowWidth: k),
                 config.usesEmbeddings && !served && !alone ? try comm.gatherv(shard?.x.data ?? [], rowWidth: d) : [])
            }
        }

        t.mark("gather", comm)

        // 6. The hierarchy on root: the same core code as the single-process CLI. Meanwhile the other ranks sleep (in an
        // `MPI_Ibarrier`, or between geometry requests in an `MPI_Ibcast`) so root's threads have the node's cores; then
        // all agree on the outcome.
        try comm.boundary("labeling")
        var result: LabelingResult?
        var labelingError: Error?
        let geometry = served ? try ServedGeometry(comm: comm, table: table, x: shard?.x ?? Embeddings(rows: 0, cols: d, data: [])) : nil
        if rank == 0 {
            do {
                result = try t.time(.hierarchy) {
                    let graph = KNNGraph(n: n, k: k, neighbors: ids, similarities: sims)
                    if let geometry {
                        return try Labeling.run(graph: graph, seeds: seeds, numClasses: numClasses, config: config, geometry: geometry, log: log)
                    }
                    let x = !config.usesEmbeddings ? nil : alone ? shard!.x : Embeddings(rows: n, cols: d, data: allRows)
                    return try Labeling.run(graph: graph, seeds: seeds, numClasses: numClasses, config: config, embeddings: x, log: log)
                }
            } catch { labelingError = error }
            // A failure between geometry requests is agreed below; the serving ranks are released first.
            try t.time(.hierarchy) { try geometry?.stop() }
        } else if let geometry {
            try t.time(.hierarchy) { try geometry.serve(numClasses: numClasses) }
        }
        if geometry == nil { try t.time(.hierarchy) { try comm.sleepingBarrier() } }
        try comm.agree(labelingError, phase: "labeling")

        // 7. Broadcast the job-wide facts, scatter each rank's rows.
        try comm.boundary("broadcast")
        let t0 = WallClock.now()
        let (chosenK, layers, labels, confidence, layer, source) = try comm.collective("broadcast") {
            () throws -> (Int, [LayerRecord], [Int32], [Float], [Int32], [LabelSource]) in
            let chosenK = try comm.bcast(result?.chosenK ?? 0)
            let layerData = try comm.bcast(rank == 0 ? try JSONEncoder().encode(result?.layers ?? []) : Data())
            let layers = try comm.together("decoding layer records") { try JSONDecoder().decode([LayerRecord].self, from: layerData) }
            let counts = table.counts
            let labels = try comm.scatterv(result?.labels ?? [], counts: counts)
            let confidence = try comm.scatterv(result?.confidence ?? [], counts: counts)
            let layer = try comm.scatterv(result?.layer ?? [], counts: counts)
            let sourceRaw = try comm.scatterv(result?.source.map(\.rawValue) ?? [], counts: counts)
            return (chosenK, layers, labels, confidence, layer, sourceRaw.map { LabelSource(rawValue: $0) ?? .unlabeled })
        }
        t.add(.broadcast, WallClock.now() - t0)
        t.mark("labeling", comm)
        return Pass(chosenK: chosenK, layers: layers, labels: labels, confidence: confidence, layer: layer, source: source, result: result)
    }

    /// Steps 8–9, shared by both labeling modes: write (root: `all`, or every rank its rows) and reduce the timings.
    static func finish(comm: Communicator, options o: ClusterJobOptions, timings t: inout PhaseTimings, start: Double,
                       n: Int, d: Int, k: Int, table: ShardTable, reused: Bool, graphFacts: [String: String], rows: Range<Int>,
                       labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource], chosenK: Int,
                       layers: [LayerRecord], all result: LabelingResult?, numClasses: Int, classNames: [String]) throws -> ClusterJobOutcome {
        let rank = comm.rank

        // 8. Timings (max over ranks), reduced before the write so that they can travel with the outputs; the write
        // phase itself is therefore not in them.
        try comm.boundary("timings")
        let timings = try comm.collective("timings") { try t.finish(over: comm, start: start, writeTo: nil, info: [
            "n": "\(n)", "d": "\(d)", "k": "\(k)", "tile": "\(table.tile)", "method": o.config.method.rawValue,
            "distributedLabeling": "\(o.distributedLabeling)", "blasThreads": "\(BLASThreads.current)",
            "labelingThreads": "\(Parallel.resolve(o.config.threads))", "reusedCheckpoint": "\(reused)", "chosenK": "\(chosenK)"]) }

        // 9. Outputs: one labels file from root, or one shard file per rank, plus root's manifest and timings. Every
        // rank first stages its files (written and flushed under temporary names); only when all staged theirs are they
        // renamed into place, so a failure on any rank (or a rank killed before the agreement) leaves no output and an
        // existing output unchanged.
        try comm.boundary("write")
        var written: [String] = []
        var staged: [AtomicFile.Staged] = []
        var writeError: Error?
        do {
            if o.shardedOutput {
                staged.append(try AtomicFile.stage(LabelsIO.encodeCSV(firstId: rows.lowerBound, labels: labels, confidence: confidence,
                                                                      layer: layer, source: source, classNames: classNames),
                                                   for: o.output + ".rank\(rank)"))
            } else if let all = result {
                staged.append(try AtomicFile.stage(LabelsIO.encodeCSV(labels: all.labels, confidence: all.confidence, layer: all.layer,
                                                                      source: all.source, classNames: classNames), for: o.output))
            }
            if rank == 0, var m = o.manifest {
                m.parameters.merge(graphFacts, uniquingKeysWith: { _, new in new })
                m.n = n; m.dimensions = d; m.classes = classNames; m.chosenK = chosenK; m.layers = layers
                m.timingsSeconds = timings.maxSeconds; m.ranks = comm.size
                if let r = result { m.record(labeling: r, minConfidence: o.config.minConfidence) }
                staged.append(try AtomicFile.stage(try m.json(), for: RunManifest.path(for: o.output)))
            }
            if rank == 0, let path = o.timingsPath { staged.append(try AtomicFile.stage(try timings.json(), for: path)) }
        } catch { writeError = error }
        do { try comm.agree(writeError, phase: "writing output") } catch {
            staged.forEach(AtomicFile.discard)
            throw error
        }
        var commitError: Error?
        do { try AtomicFile.commit(staged); written = staged.map(\.path) } catch { commitError = error }
        do { try comm.agree(commitError, phase: "writing output") } catch {
            for f in written { unlink(f) }
            throw error
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
