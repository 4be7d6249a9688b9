import HDLabelIO
import Foundation
import HDLabelCore

/// Inputs of the graph phase that every cluster job starts with.
public struct ClusterGraphInput: Sendable {
    /// 2-D float32/float64 `.npy` (n × d); every rank reads only its rows.
    public var embeddings: String
    /// Labels (`.npy` ints or CSV `id,label`), read by root only and broadcast; "" = none (a graph-only job).
    public var labels: String
    /// Class names in id order (optional).
    public var classes: [String]?
    /// Global tile edge of the similarity grid (rows per shard are whole tiles).
    public var tile: Int = GraphOptions.defaultTile
    /// Graph builder: exact (ring exchange), approx (`DistributedApproxGraph`: cells owned by ranks), or auto by n.
    public var graph: GraphMethod = .exact
    /// The approximate builder's options (k is set by the job).
    public var approx = ApproxGraphOptions(k: 1)
    /// Sample rows of the approximate graph's recall estimate (`DistributedRecall`); 0 = none.
    public var recallRows = 1000
    /// A graph written by `hdlabel graph -o PREFIX`: each rank reads its own rows of it instead of building them.
    public var knnGraph: String?
    /// Directory for per-rank partial-graph checkpoints (`GraphCheckpoint`); nil = no checkpoint.
    public var checkpointDir: String?
    /// Test hook at the job's named points (`Communicator.faultInjector`); nil in production.
    public var faultInjector: FaultInjector?

    public init(embeddings: String, labels: String) { self.embeddings = embeddings; self.labels = labels }
}

/// Steps 1–4 of every cluster job, the same for labeling and label-issue detection: agree on the embeddings' shape,
/// read and broadcast the labels (root), plan the shards, and build this rank's rows of the exact kNN graph (ring
/// exchange, or a matching checkpoint).
///
/// **Collective**: every rank calls `build` with the same input; every step that can fail on some ranks only ends in
/// `Communicator.agree`, so all ranks throw the same error together.
public struct ClusterGraph {
    public let n: Int
    public let d: Int
    /// The labels as read by root, on every rank (length n).
    public let labels: SeedLabels
    public let table: ShardTable
    /// Neighbours per graph row.
    public let k: Int
    /// This rank's rows of the graph (global neighbour ids, `rows.count` rows).
    public let local: KNNGraph
    /// This rank's L2-normalised rows, when loaded (`needRows`, or no reusable checkpoint).
    public let shard: Shard?
    /// True when every rank reused its checkpointed partial graph.
    public let reused: Bool
    /// This rank's global rows (possibly empty).
    public let rows: Range<Int>
    /// The builder that made the graph (`exact` or `approx`).
    public let method: GraphMethod
    /// Recall estimate of an approximate graph built by this job (same on every rank); nil otherwise.
    public let recall: GraphRecall.Estimate?
    /// The graph file prefix the rows were read from (`ClusterGraphInput.knnGraph`); nil when built here.
    public let file: String?

    /// - readLabels: root's reader of `input.labels` for n rows (checks what this job needs).
    /// - plan: run on every rank once n, labels and the shard table are known; checks the job's parameters and
    ///   returns the graph width k. Throwing here stops every rank before any work.
    /// - needRows: keep this rank's normalised rows (`shard`) even when the graph comes from a checkpoint.
    public static func build(comm: Communicator, input o: ClusterGraphInput, needRows: Bool, timings t: inout PhaseTimings,
                             log say: @escaping (String) -> Void,
                             readLabels: (String, Int) throws -> SeedLabels,
                             plan: (Int, SeedLabels, ShardTable) throws -> Int) throws -> ClusterGraph {
        var comm = comm
        comm.faultInjector = o.faultInjector
        let rank = comm.rank
        try comm.boundary("reading")

        // 1. Shape of the embeddings: every rank reads the header of its view of the file; all must agree.
        let shape = try comm.together("reading embeddings header") { () throws -> [Int] in
            try t.time(.read) {
                // One .npy, or a directory / comma list of .npy shards (same d and dtype, rows in file order).
                let files = try EmbeddingFiles.open(o.embeddings)
                return [files.rows, files.cols]
            }
        }
        let lo = try comm.allreduce(shape, .min), hi = try comm.allreduce(shape, .max)
        if lo != hi {
            throw HDLError.cluster("ranks see different embeddings files at '\(o.embeddings)': shapes range from \(lo) to \(hi)")
        }
        let (n, d) = (shape[0], shape[1])
        say("embeddings: \(n) x \(d) over \(comm.size) rank(s)")
        // Where the ranks run, so that a lost host in mpirun's messages can be matched to its ranks.
        let hosts = try comm.hostNames()
        say("ranks per host: \(Communicator.placement(hosts))")

        // 2. Labels: root reads and checks them, then broadcasts them with the class names.
        // (An empty `labels` path: a graph-only job, no labels.)
        var labels = SeedLabels(seeds: [], classNames: [])
        if !o.labels.isEmpty {
            let rootLabels = try comm.together("reading labels") { () throws -> SeedLabels in
                guard rank == 0 else { return SeedLabels(seeds: [], classNames: []) }
                return try t.time(.read) { try readLabels(o.labels, n) }
            }
            let seeds = try comm.bcast(rootLabels.seeds)
            let classNames = try JSONDecoder().decode([String].self, from: comm.bcast(try JSONEncoder().encode(rootLabels.classNames)))
            labels = SeedLabels(seeds: seeds, classNames: classNames)
        }

        // 3. Parameters, shard table and graph width: the same checks and arithmetic on every rank.
        let (table, k) = try comm.together("planning shards") { () throws -> (ShardTable, Int) in
            guard n >= 2 else { throw HDLError.invalidInput("need at least 2 rows, found \(n)") }
            try KNNGraph.checkRowCount(n)  // neighbour ids and row numbers travel as Int32
            let table = try ShardTable(n: n, tile: o.tile, ranks: comm.size)
            return (table, try plan(n, labels, table))
        }
        let rows = table.rows(of: rank)
        say("graph: k=\(k), tile=\(table.tile), rows per rank \(table.counts)")

        let method = o.graph.resolved(n: n)
        /// This rank's rows, read (offset read) and normalised; their seconds are added to the timings. **Collective**.
        func loadShard() throws -> Shard {
            let s = try comm.together("reading embeddings") { try Shard.load(path: o.embeddings, rows: rows, d: d) }
            t.add(.read, s.readSeconds); t.add(.normalize, s.normalizeSeconds)
            return s
        }
        // 4a. Partial graph from a graph file: each rank reads and checks its rows (agreed), cut to width k.
        if let prefix = o.knnGraph {
            let local = try comm.together("reading the kNN graph") { () throws -> KNNGraph in
                try t.time(.read) {
                    let g = try KNNGraphFile.read(prefix: prefix, expectedRows: n, rows: rows)
                    guard g.k >= k else {
                        throw HDLError.invalidInput("the kNN graph holds \(g.k) neighbours per row, this run needs \(k); rebuild it with hdlabel graph --k \(k)")
                    }
                    return g.truncated(to: k)
                }
            }
            var shard: Shard?
            if needRows {
                shard = try loadShard()
            }
            say("graph: rows read from \(prefix)")
            return ClusterGraph(n: n, d: d, labels: labels, table: table, k: k, local: local, shard: shard, reused: false,
                                rows: rows, method: method, recall: nil, file: prefix)
        }
        // 4. Partial graph: from a matching checkpoint on every rank, or computed by the ring. A checkpoint made for
        // another job (input, shape, k, tile, ranks, build, BLAS kernel) is refused with the reason.
        var key: GraphCheckpoint.Key?
        var saved: KNNGraph?
        if let dir = o.checkpointDir {
            let mine = try comm.together("checking checkpoint") {
                var key = try GraphCheckpoint.Key(input: o.embeddings, n: n, d: d, k: k, table: table, rank: rank)
                if method == .approx { key.builder = "approx overlap \(o.approx.overlap) cells \(o.approx.cellCount(n: n)) seed \(o.approx.seed)" }
                return key
            }
            key = mine
            saved = try comm.together("checking checkpoint") { try t.time(.checkpoint) { try GraphCheckpoint.load(dir: dir, key: mine) } }
        }
        let reused = try comm.allreduce(saved == nil ? 0 : 1, .min) == 1
        let local: KNNGraph
        var shard: Shard?
        var recall: GraphRecall.Estimate?
        if !reused || needRows {
            shard = try loadShard()
        }
        if reused, let g = saved {
            say("checkpoint: reusing partial graphs from \(o.checkpointDir ?? "")")
            local = g
        } else {
            try comm.boundary("graph")
            var ring: RingCheckpoint?
            if let dir = o.checkpointDir, let key, method == .exact {
                ring = RingCheckpoint(dir: dir, key: key, embeddings: o.embeddings)
                ring?.log = say
            }
            if method == .approx {
                var a = o.approx
                a.k = k
                say("graph: approximate, overlap \(a.overlap), \(a.cellCount(n: n)) cells")
                local = try comm.collective("graph") {
                    try t.time(.compute) { try DistributedApproxGraph.build(shard: shard!, table: table, options: a, comm: comm) }
                }
                if o.recallRows > 0 {
                    let e = try comm.collective("recall estimate") {
                        try DistributedRecall.estimate(local: local, shard: shard!, n: n, comm: comm, sampleSize: o.recallRows)
                    }
                    say("approximate kNN graph: \(e.description)")
                    recall = e
                }
            } else {
                local = try comm.collective("graph") {
                    try DistributedGraph.build(shard: shard!, table: table, k: k, comm: comm, timings: &t, ring: ring)
                }
            }
            if let dir = o.checkpointDir, let key {
                try comm.boundary("checkpoint")
                try comm.together("saving checkpoint") { try t.time(.checkpoint) { try GraphCheckpoint.save(local, dir: dir, key: key) } }
                ring?.removeAll()
            }
        }
        return ClusterGraph(n: n, d: d, labels: labels, table: table, k: k, local: local, shard: shard, reused: reused,
                            rows: rows, method: method, recall: recall, file: nil)
    }
}

extension ClusterGraph {
    /// Manifest parameters of the graph: builder, the approximate builder's parameters and its recall estimate
    /// (the same keys as the single-process commands write).
    public func manifestParameters(approx a: ApproxGraphOptions) -> [String: String] {
        var p = ["graph": method.rawValue, "graph_k": "\(k)"]
        if let file { return ["graph": "file", "knn_graph": file, "graph_k": "\(k)"] }
        if reused { p["graph_reused_checkpoint"] = "true" }
        if method == .approx { p["graph_overlap"] = "\(a.overlap)"; p["graph_cells"] = "\(a.cellCount(n: n))" }
        if let e = recall {
            p.merge(e.manifestParameters) { $1 }
        }
        return p
    }
}
