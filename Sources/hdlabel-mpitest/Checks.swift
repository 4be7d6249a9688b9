import HDLabelCuration
import HDLabelIO
import Foundation
import HDLabelCluster
import HDLabelCore

/// Runs named checks on every rank; a check fails when it fails (or throws) on any rank. Rank 0 prints one line per
/// check and the final `N passed, M failed` line. Every check is run by every rank in the same order.
final class Checker {
    let comm: Communicator
    var passed = 0, failed = 0

    init(comm: Communicator) { self.comm = comm }

    /// `body` returns nil on success or a description of what differs on this rank.
    /// HDLABEL_MPITEST_ONLY=TEXT runs only the checks whose name contains TEXT (the same on every rank).
    static let only = ProcessInfo.processInfo.environment["HDLABEL_MPITEST_ONLY"]

    func check(_ name: String, _ body: () throws -> String?) {
        if let only = Checker.only, !name.contains(only) { return }
        var detail: String?
        do { detail = try body() } catch { detail = "threw: \(Communicator.describe(error))" }
        if let detail { stderrLine("[rank \(comm.rank)] \(name): \(detail)") }
        let bad = (try? comm.allreduce(detail == nil ? 0 : 1, .sum)) ?? 1
        if bad == 0 { passed += 1 } else { failed += 1 }
        if comm.isRoot { print(bad == 0 ? "PASS \(name)" : "FAIL \(name) (on \(bad) rank(s))"); fflush(stdout) }
    }
}

func sameBits(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// The expected message of an agreed error, or a description of what came instead.
func expectClusterError(_ body: () throws -> Void, containing parts: [String]) -> String? {
    do { try body() } catch let HDLError.cluster(msg) {
        for p in parts where !msg.contains(p) { return "error '\(msg)' does not mention '\(p)'" }
        return nil
    } catch { return "wrong error type: \(error)" }
    return "no error"
}

func runChecks() -> Int32 {
    let comm: Communicator
    do { comm = try Communicator.initialize() } catch { stderrLine("error: \(error)"); return 1 }
    defer { Communicator.finalize() }
    BLASThreads.set(1)
    let p = comm.size, rank = comm.rank
    let c = Checker(comm: comm)
    if comm.isRoot { print("hdlabel-mpitest: \(p) rank(s)") }

    // Shared scratch directory (named by root).
    let dir = (try? comm.bcast(Data((rank == 0 ? NSTemporaryDirectory() + "hdlabel-mpitest.\(getpid())" : "").utf8)))
        .map { String(decoding: $0, as: UTF8.self) } ?? "/tmp/hdlabel-mpitest"

    c.check("shard table: whole tiles, balanced, covers 0..<n, empty shards allowed") {
        for n in [0, 1, 63, 64, 65, 100, 1003, 5000] {
            for tile in [1, 32, 64, 512] {
                for ranks in 1 ... 9 {
                    let t = try ShardTable(n: n, tile: tile, ranks: ranks)
                    if t.bounds.first != 0 || t.bounds.last != n { return "n=\(n) tile=\(tile) P=\(ranks): bounds \(t.bounds)" }
                    for r in 0 ..< ranks where t.bounds[r] > t.bounds[r + 1] || (t.bounds[r] < n && t.bounds[r] % tile != 0) {
                        return "n=\(n) tile=\(tile) P=\(ranks): bad shard \(r) in \(t.bounds)"
                    }
                    let tiles = t.counts.map { ($0 + tile - 1) / tile }
                    if (tiles.max() ?? 0) - (tiles.min() ?? 0) > 1 { return "unbalanced tiles \(tiles)" }
                }
            }
        }
        let t = try ShardTable(n: 100, tile: 64, ranks: 4)
        return t.counts == [64, 36, 0, 0] ? nil : "n=100 tile=64 P=4 gave \(t.counts)"
    }

    // Data shared by the remaining checks: n = 1003 (divisible by neither P nor the tile), d = 24, 5 classes.
    let n = 1003, d = 24
    let data = SyntheticData(n: n, d: d, classes: 5, seedsPerClass: 4)
    let xn = data.x.l2Normalized()

    for (tile, k) in [(64, 10), (32, 10), (32, 30), (512, 5), (7, 3)] {
        c.check("distributed graph == single-process build, bitwise (n=\(n) d=\(d) tile=\(tile) k=\(k) P=\(p))") {
            let ref = try KNNGraphBuilder.build(xn, options: GraphOptions(k: k, tile: tile))
            let table = try ShardTable(n: n, tile: tile, ranks: p)
            let rows = table.rows(of: rank)
            var t = PhaseTimings()
            let g = try DistributedGraph.build(shard: Shard(rows: rows, x: xn.slice(rows: rows)), table: table, k: k, comm: comm, timings: &t)
            let span = rows.lowerBound * k ..< rows.upperBound * k
            if g.n != rows.count { return "got \(g.n) rows, expected \(rows.count)" }
            if g.neighbors[...] != ref.neighbors[span] { return "neighbour ids differ" }
            if !sameBits(g.similarities[...], ref.similarities[span]) { return "similarities differ in bits" }
            // Steps 0 ... P/2: the blocks passed on (all but the last step's) and the lists sent back (steps >= 1).
            let steps = p / 2 + 1
            let expectBytes = (0 ..< steps - 1).reduce(0) { $0 + table.counts[(rank + $1) % p] * d * 4 }
                + (1 ..< steps).reduce(0) { $0 + table.counts[(rank + $1) % p] * k * 8 }
            return t.bytesSent == expectBytes ? nil : "bytes sent \(t.bytesSent), expected \(expectBytes)"
        }
    }

    for (tile, opts) in [(32, ApproxGraphOptions(k: 10)), (64, ApproxGraphOptions(k: 10, overlap: 2, cells: 200)),
                         (7, ApproxGraphOptions(k: 5, overlap: 1, cells: 300))] {
        c.check("distributed approximate graph == single-process ApproxKNNGraph, bitwise (k=\(opts.k) overlap=\(opts.overlap) cells=\(opts.cellCount(n: n)) P=\(p))") {
            let ref = try ApproxKNNGraph.build(xn, options: opts)
            let table = try ShardTable(n: n, tile: tile, ranks: p)
            let rows = table.rows(of: rank)
            let g = try DistributedApproxGraph.build(shard: Shard(rows: rows, x: xn.slice(rows: rows)), table: table, options: opts, comm: comm)
            let span = rows.lowerBound * opts.k ..< rows.upperBound * opts.k
            if g.n != rows.count { return "got \(g.n) rows, expected \(rows.count)" }
            if g.neighbors[...] != ref.neighbors[span] { return "neighbour ids differ" }
            return sameBits(g.similarities[...], ref.similarities[span]) ? nil : "similarities differ in bits"
        }
    }

    c.check("distributed recall estimate == single-process GraphRecall.estimate (sample 300 and every row, P=\(p))") {
        let opts = ApproxGraphOptions(k: 10, overlap: 1, cells: 60)
        let ref = try ApproxKNNGraph.build(xn, options: opts)
        let table = try ShardTable(n: n, tile: 32, ranks: p)
        let rows = table.rows(of: rank)
        let shard = Shard(rows: rows, x: xn.slice(rows: rows))
        let g = try DistributedApproxGraph.build(shard: shard, table: table, options: opts, comm: comm)
        for size in [300, n] {
            let want = GraphRecall.estimate(ref, x: xn, sampleSize: size)
            let got = try DistributedRecall.estimate(local: g, shard: shard, n: n, comm: comm, sampleSize: size)
            if got != want { return "sample \(size): got \(got.description), single process \(want.description)" }
            if want.recall >= 0.999 { return "overlap 1 on 60 cells should miss some neighbours (recall \(want.recall))" }
        }
        return nil
    }

    c.check("traffic meter: allgatherv counts its piece once per other rank, alltoallv its pieces for others (P=\(p))") {
        let before = comm.traffic.bytesSent
        _ = try comm.allgatherv([Float](repeating: 1, count: 10 + rank))
        let afterGather = comm.traffic.bytesSent
        let expectGather = (10 + rank) * 4 * (p - 1) + 8 * (p - 1)   // the piece, plus the Int64 counts
        if afterGather - before != expectGather { return "allgatherv: \(afterGather - before) bytes, expected \(expectGather)" }
        let counts = (0 ..< p).map { $0 + 1 }
        _ = try comm.alltoallv([Int32](repeating: 7, count: counts.reduce(0, +)), sendCounts: counts)
        let sentPieces = (comm.traffic.bytesSent - afterGather)
        let expect = (counts.reduce(0, +) - counts[rank]) * 4 + 8 * (p - 1) + 8 * (p - 1) + 8 * (p - 1)
        return sentPieces == expect ? nil : "alltoallv: \(sentPieces) bytes, expected \(expect)"
    }

    let emb = dir + "/emb.npy", lab = dir + "/labels.npy"
    c.check("root writes the test data") {
        if rank == 0 { try data.write(embeddings: emb, labels: lab) }
        try comm.barrier()
        return FileManager.default.fileExists(atPath: emb) ? nil : "\(emb) missing"
    }

    c.check("each rank reads only its rows (offset read), validated and normalised") {
        let table = try ShardTable(n: n, tile: 64, ranks: p)
        let s = try Shard.load(path: emb, rows: table.rows(of: rank), d: d)
        return sameBits(s.x.data[...], xn.slice(rows: table.rows(of: rank)).data[...]) ? nil : "shard differs from slice"
    }

    /// The single-process reference for a configuration (same core code): one labeling over the exact graph, then
    /// HDL's metric pass where the configuration runs it (`onePass`: the labeling alone, as `DistributedLabeling.run`).
    func reference(_ config: LabelingConfig, tile: Int, onePass: Bool = false, rows xn: Embeddings = xn) throws -> LabelingResult {
        let options = GraphOptions(k: config.graphK(n: n), tile: tile)
        let g = try KNNGraphBuilder.build(xn, options: options)
        guard config.runsMetricPass, !onePass else {
            return try Labeling.run(graph: g, seeds: data.seeds, numClasses: 5, config: config, embeddings: xn)
        }
        let r1 = try Labeling.run(graph: g, seeds: data.seeds, numClasses: 5, config: MetricPass.firstPass(config), embeddings: xn)
        return try Labeling.metricPass(after: r1, x: xn, seeds: data.seeds, numClasses: 5, config: config) { z in
            try KNNGraphBuilder.build(z, options: options)
        }
    }
    func compare(_ out: ClusterJobOutcome, _ ref: LabelingResult) -> String? {
        let r = out.rows
        if out.chosenK != ref.chosenK { return "chosen k \(out.chosenK) != \(ref.chosenK)" }
        if out.layers != ref.layers { return "layer records differ" }
        if out.labels[...] != ref.labels[r] { return "labels differ" }
        if !sameBits(out.confidence[...], ref.confidence[r]) { return "confidence differs" }
        if out.layer[...] != ref.layer[r] || out.source[...] != ref.source[r] { return "layer/source differ" }
        return nil
    }

    for method in [LabelMethod.hdl, .knn, .propagation] {
        c.check("job (\(method.rawValue)): labels, confidence, k and layers == single-process Labeling.run; root CSV") {
            var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/out.\(method.rawValue).csv")
            o.config.method = method; o.tile = 64; o.timingsPath = dir + "/timings.json"
            let out = try ClusterJob.run(comm: comm, options: o)
            let ref = try reference(o.config, tile: 64)
            if let e = compare(out, ref) { return e }
            if rank == 0 {
                let want = LabelsIO.encodeCSV(labels: ref.labels, confidence: ref.confidence, layer: ref.layer, source: ref.source,
                                              classNames: classNames(ref))
                if FileManager.default.contents(atPath: o.output) != want { return "CSV differs" }
                let t = try JSONDecoder().decode(JobTimings.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/timings.json")))
                if t.ranks != p || t.maxSeconds["compute"] == nil { return "timings JSON incomplete" }
            }
            return nil
        }
    }

    // The metric pass on anisotropic rows (every fourth coordinate stretched 4×, so the within-class covariance is far
    // from a multiple of the identity and the whitened graph differs from the cosine one).
    var stretched = data.x
    for i in 0 ..< n { for j in stride(from: 0, to: d, by: 4) { stretched.data[i * d + j] *= 4 } }
    let embStretched = dir + "/emb-stretched.npy", xs = stretched.l2Normalized()
    for distributed in [false, true] {
        c.check("job, metric pass on\(distributed ? ", --distributed-labeling" : ""): the rebuilt graph's labels == single-process pipeline (tile=64)") {
            if rank == 0 { try NPY.write(stretched, to: embStretched) }
            try comm.barrier()
            var o = ClusterJobOptions(embeddings: embStretched, labels: lab, output: dir + "/metric\(distributed).csv")
            o.tile = 64; o.distributedLabeling = distributed; o.config.metricPass = .on
            let out = try ClusterJob.run(comm: comm, options: o)
            let ref = try reference(o.config, tile: 64, rows: xs)
            if ref.metricPass != true { return "reference did not run the metric pass" }
            var off = o.config
            off.metricPass = .off
            let one = try reference(off, tile: 64, rows: xs)
            if one.labels == ref.labels && sameBits(one.confidence[...], ref.confidence[...]) { return "the metric pass changed nothing" }
            return compare(out, ref)
        }
    }

    c.check("job with sharded output: each rank writes OUT.rankR with its rows (tile=32)") {
        var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/sharded.csv")
        o.tile = 32; o.shardedOutput = true
        let out = try ClusterJob.run(comm: comm, options: o)
        let ref = try reference(o.config, tile: 32)
        if let e = compare(out, ref) { return e }
        let r = out.rows
        let want = LabelsIO.encodeCSV(firstId: r.lowerBound, labels: Array(ref.labels[r]), confidence: Array(ref.confidence[r]),
                                      layer: Array(ref.layer[r]), source: Array(ref.source[r]), classNames: classNames(ref))
        if rank == 0, FileManager.default.fileExists(atPath: o.output) { return "single output written in sharded mode" }
        return FileManager.default.contents(atPath: o.output + ".rank\(rank)") == want ? nil : "shard file differs"
    }

    c.check("exact sums (Int128 limbs) and halo exchange over ranks (P=\(p))") {
        let table = try ShardTable(n: n, tile: 64, ranks: p)
        let rr = try RankRows(comm: comm, table: table)
        // Signed values near ±2^120 and small ones: the limb allreduce must give the exact total.
        let mine: [Int128] = [Int128(rank + 1) << 118, -(Int128(rank) << 100) - 7, Int128(rank) - 3]
        var want = [Int128](repeating: 0, count: 3)
        for r in 0 ..< p { want[0] += Int128(r + 1) << 118; want[1] += -(Int128(r) << 100) - 7; want[2] += Int128(r) - 3 }
        if try rr.sumExact(mine) != want { return "sumExact differs" }
        // Every rank reads rows 3r+1 (mod n) for r < 40; the ghosts arrive with the owners' values (row id · 10 + column).
        let rows = rr.rows
        let wanted = (0 ..< 40).map { Int32((3 * $0 + 1 + 17 * rank) % n) }
        let plan = try rr.halo(ghosts: HaloPlan.ghosts(of: wanted, own: rows))
        let local = rows.flatMap { i in [Float(i * 10), Float(i * 10 + 1)] }
        let got = try rr.exchange(local, width: 2, plan: plan)
        let expect = plan.ghosts.flatMap { j in [Float(Int(j) * 10), Float(Int(j) * 10 + 1)] }
        return got == expect ? nil : "halo exchange delivered other rows"
    }

    // Worker-side labeling (--distributed-labeling): the graph stays on the ranks; results must equal Labeling.run.
    for tile in [64, 32] {
        c.check("affinity rows + CG on ranks == single-process rows, bitwise (tile=\(tile) P=\(p))") {
            let ref = try KNNGraphBuilder.build(xn, options: GraphOptions(k: 10, tile: tile))
            let table = try ShardTable(n: n, tile: tile, ranks: p)
            let rows = table.rows(of: rank)
            let local = KNNGraph(n: rows.count, k: 10, neighbors: Array(ref.neighbors[rows.lowerBound * 10 ..< rows.upperBound * 10]),
                                 similarities: Array(ref.similarities[rows.lowerBound * 10 ..< rows.upperBound * 10]))
            let w: (Float) -> Float = { powf(max($0, 0), 3) }
            let full = try NormalizedAffinity(rows: ref, comm: LocalRows(n: n), weight: w)
            let part = try NormalizedAffinity(rows: local, comm: RankRows(comm: comm, table: table), weight: w)
            let lo = full.rowPtr[rows.lowerBound], hi = full.rowPtr[rows.upperBound]
            if part.cols[...] != full.cols[lo ..< hi] || !sameBits(part.values[...], full.values[lo ..< hi]) { return "rows of S differ" }
            let y = (0 ..< n * 5).map { Float(($0 * 7919) % 13) / 13 }
            let clamped = (0 ..< n).map { $0 % 9 == 0 }
            let f = try full.solve(y, columns: 5, alpha: 0.99, iterations: 30, clamped: clamped, comm: LocalRows(n: n))
            let g = try part.solve(Array(y[rows.lowerBound * 5 ..< rows.upperBound * 5]), columns: 5, alpha: 0.99, iterations: 30,
                                   clamped: Array(clamped[rows]), comm: RankRows(comm: comm, table: table))
            return sameBits(g[...], f[rows.lowerBound * 5 ..< rows.upperBound * 5]) ? nil : "CG solution differs in bits"
        }
    }

    var graphHDL = LabelingConfig()
    graphHDL.evidence = .graph
    var variants: [(String, LabelingConfig)] = [("default: auto evidence, k auto", LabelingConfig()), ("graph evidence", graphHDL)]
    do {
        var v = LabelingConfig(); v.evidence = .geometry; variants.append(("geometry evidence", v))
        v = LabelingConfig(); v.evidence = .both; v.k = .fixed(7); variants.append(("both, k 7", v))
        v = graphHDL; v.classPrior = .anchors; v.balance = true; variants.append(("graph, anchor prior, balance", v))
        v = graphHDL; v.clampAnchors = false; v.classQuota = .off; v.fallback = false; variants.append(("graph, sources, no quota, no fallback", v))
        v = LabelingConfig(); v.refine = .off; variants.append(("no refinement: confidences from the final posterior", v))
        v = graphHDL; v.refine = .on; v.refineSources = .on; v.balanceClasses = .off
        variants.append(("graph, refinement with the accepted labels as sources", v))
    }
    for tile in [64, 32] {
        for (name, config) in variants {
            c.check("distributed labeling == Labeling.run, all fields (\(name), tile=\(tile) P=\(p))") {
                let ref = try reference(config, tile: tile, onePass: true)
                let table = try ShardTable(n: n, tile: tile, ranks: p)
                let rows = table.rows(of: rank)
                let whole = try KNNGraphBuilder.build(xn, options: GraphOptions(k: config.graphK(n: n), tile: tile))
                let k = whole.k
                let local = KNNGraph(n: rows.count, k: k, neighbors: Array(whole.neighbors[rows.lowerBound * k ..< rows.upperBound * k]),
                                     similarities: Array(whole.similarities[rows.lowerBound * k ..< rows.upperBound * k]))
                let got = try DistributedLabeling.run(local: local, embeddings: xn.slice(rows: rows), comm: comm, table: table,
                                                      seeds: data.seeds, numClasses: 5, config: config)
                if got.labels != ref.labels || got.layer != ref.layer || got.source != ref.source { return "labels/layer/source differ" }
                if !sameBits(got.confidence[...], ref.confidence[...]) { return "confidence differs in bits" }
                if got.chosenK != ref.chosenK || got.layers != ref.layers { return "k \(got.chosenK) vs \(ref.chosenK) or layer records differ" }
                if got.evidence != ref.evidence || got.pilotAccuracy != ref.pilotAccuracy { return "evidence or pilot estimate differs" }
                return nil
            }
        }
    }

    for tile in [64, 32, 512] {  // 512: two tiles, so ranks 2 and 3 own no rows
        c.check("job --distributed-labeling (tile=\(tile)): == Labeling.run; root CSV and sharded files") {
            var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/dist\(tile).csv")
            o.tile = tile; o.distributedLabeling = true
            let out = try ClusterJob.run(comm: comm, options: o)
            let ref = try reference(o.config, tile: tile)
            if let e = compare(out, ref) { return e }
            if rank == 0 {
                let want = LabelsIO.encodeCSV(labels: ref.labels, confidence: ref.confidence, layer: ref.layer, source: ref.source,
                                              classNames: classNames(ref))
                if FileManager.default.contents(atPath: o.output) != want { return "CSV differs" }
            }
            o.shardedOutput = true
            let sharded = try ClusterJob.run(comm: comm, options: o)
            if let e = compare(sharded, ref) { return "sharded: " + e }
            let r = sharded.rows
            let want = LabelsIO.encodeCSV(firstId: r.lowerBound, labels: Array(ref.labels[r]), confidence: Array(ref.confidence[r]),
                                          layer: Array(ref.layer[r]), source: Array(ref.source[r]), classNames: classNames(ref))
            return FileManager.default.contents(atPath: o.output + ".rank\(rank)") == want ? nil : "shard file differs"
        }
    }

    for method in [LabelMethod.knn, .spreading, .propagation] {
        for tile in [64, 32] {
            c.check("job --distributed-labeling (\(method.rawValue), tile=\(tile)) == Labeling.run") {
                var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/distb.csv")
                o.config.method = method; o.tile = tile; o.distributedLabeling = true
                return compare(try ClusterJob.run(comm: comm, options: o), try reference(o.config, tile: tile))
            }
        }
    }

    c.check("job --distributed-labeling refuses tiles not a multiple of 32; no output") {
        var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/refused.csv")
        o.distributedLabeling = true; o.tile = 48
        if let e = expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) }, containing: ["tile", "48"]) { return "tile: " + e }
        return FileManager.default.fileExists(atPath: o.output) ? "output left behind" : nil
    }

    c.check("checkpoint: saved on first run, reused on the second, refused with the reason when k or the BLAS kernel changes") {
        var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/ckpt.csv")
        o.tile = 64; o.checkpointDir = dir + "/ckpt"
        let first = try ClusterJob.run(comm: comm, options: o)
        let second = try ClusterJob.run(comm: comm, options: o)
        if first.reusedCheckpoint || !second.reusedCheckpoint {
            return "reuse flags \(first.reusedCheckpoint)/\(second.reusedCheckpoint)"
        }
        if let e = compare(second, try reference(LabelingConfig(), tile: 64)) { return e }
        var other = o
        other.config.kMax = 12
        if let e = expectClusterError({ _ = try ClusterJob.run(comm: comm, options: other) },
                                      containing: ["checking checkpoint", "does not match", "k 30 → 12", "--checkpoint"]) { return "k change: " + e }
        // The override this process runs with (the environment may set one) against a different one; restored after.
        let core = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        let otherCore = core == "Prescott" ? "Sandybridge" : "Prescott"
        setenv("OPENBLAS_CORETYPE", otherCore, 1)
        defer { if let core { setenv("OPENBLAS_CORETYPE", core, 1) } else { unsetenv("OPENBLAS_CORETYPE") } }
        if let e = expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) },
                                      containing: ["does not match", "OPENBLAS_CORETYPE \(core ?? "") → \(otherCore)"]) { return "kernel change: " + e }
        return nil
    }

    c.check("ring checkpoint: every step saved in lockstep; a rebuild resumes at the last saved step, bitwise equal") {
        let table = try ShardTable(n: n, tile: 64, ranks: p)
        let rows = table.rows(of: rank)
        let ringDir = dir + "/ring"
        let key = try GraphCheckpoint.Key(input: emb, n: n, d: d, k: 10, table: table, rank: rank)
        var t = PhaseTimings()
        let shard = Shard(rows: rows, x: xn.slice(rows: rows))
        let ref = try DistributedGraph.build(shard: shard, table: table, k: 10, comm: comm, timings: &t)
        let ring = RingCheckpoint(dir: ringDir, key: key, embeddings: emb)
        let full = try DistributedGraph.build(shard: shard, table: table, k: 10, comm: comm, timings: &t, ring: ring)
        let saved = ((try? FileManager.default.contentsOfDirectory(atPath: ringDir)) ?? []).filter { $0.hasPrefix("ring.rank\(rank).") && $0.hasSuffix(".json") }.sorted()
        let steps = p / 2 + 1   // the two latest of the saved steps 1 ..< steps
        let want = p == 1 ? [] : (max(1, steps - 2) ..< steps).map { "ring.rank\(rank).done\($0).json" }
        if saved != want { return "saved \(saved), expected \(want)" }
        var t2 = PhaseTimings()
        let resumed = try DistributedGraph.build(shard: shard, table: table, k: 10, comm: comm, timings: &t2, ring: ring)
        if p > 1, t2.bytesSent >= t.bytesSent / 2 { return "did not resume (sent \(t2.bytesSent) bytes)" }
        ring.removeAll()
        for g in [full, resumed] where g.neighbors != ref.neighbors || !sameBits(g.similarities[...], ref.similarities[...]) {
            return "graph differs"
        }
        return nil
    }

    c.check("checkpoint key: the embeddings' content (same size) makes it invalid") {
        let copy = dir + "/emb-copy.npy"
        if rank == 0 {
            var x = data.x
            x.data[5] += 1
            try NPY.write(x, to: copy)
        }
        try comm.barrier()
        let table = try ShardTable(n: n, tile: 64, ranks: p)
        let a = try GraphCheckpoint.Key(input: emb, n: n, d: d, k: 10, table: table, rank: rank)
        var b = try GraphCheckpoint.Key(input: copy, n: n, d: d, k: 10, table: table, rank: rank)
        b.input = a.input; b.inputModified = a.inputModified
        let diff = b.differences(from: a)
        return diff.count == 1 && diff[0].hasPrefix("input head hash") ? nil : "differences \(diff)"
    }

    // MPI counts: every collective and the ring split their transfers at the Communicator's limit (here tiny, so
    // every path is taken); results must equal the unchunked calls.
    for limit in [1, 7, 1000] {
        c.check("chunked MPI transfers at a limit of \(limit) elements == one-call results") {
            var small = comm
            small.maxCount = limit
            let mine = (0 ..< (37 * (rank + 1))).map { Float(rank * 1000 + $0) }
            if try small.allgatherv(mine) != comm.allgatherv(mine) { return "allgatherv" }
            if try small.gatherv(mine, root: p - 1) != comm.gatherv(mine, root: p - 1) { return "gatherv" }
            let rowsOf3 = (0 ..< (3 * 11 * (rank + 1))).map { Int32(rank * 100 + $0) }
            if try small.gatherv(rowsOf3, rowWidth: 3) != comm.gatherv(rowsOf3, rowWidth: 3) { return "gatherv rows" }
            let counts = (0 ..< p).map { 5 * $0 + 3 }
            let all = rank == 0 ? (0 ..< counts.reduce(0, +)).map { Double($0) } : []
            if try small.scatterv(all, counts: counts) != comm.scatterv(all, counts: counts) { return "scatterv" }
            let sendCounts = (0 ..< p).map { ($0 + rank) % 3 * 9 }
            let send = (0 ..< sendCounts.reduce(0, +)).map { Int32(rank * 10_000 + $0) }
            if try small.alltoallv(send, sendCounts: sendCounts) != comm.alltoallv(send, sendCounts: sendCounts) { return "alltoallv" }
            let big = (0 ..< 100).map { Int64($0 * (rank + 1)) }
            if try small.allreduce(big, .sum) != comm.allreduce(big, .sum) { return "allreduce" }
            if try small.bcast(big, root: p - 1) != comm.bcast(big, root: p - 1) { return "bcast" }
            let table = try ShardTable(n: n, tile: 64, ranks: p)
            let rows = table.rows(of: rank)
            var t = PhaseTimings()
            let g1 = try DistributedGraph.build(shard: Shard(rows: rows, x: xn.slice(rows: rows)), table: table, k: 5, comm: small, timings: &t)
            let g2 = try DistributedGraph.build(shard: Shard(rows: rows, x: xn.slice(rows: rows)), table: table, k: 5, comm: comm, timings: &t)
            return g1.neighbors == g2.neighbors && sameBits(g1.similarities[...], g2.similarities[...]) ? nil : "ring graph"
        }
    }

    c.check("job --distributed-labeling with a 100-element MPI limit == Labeling.run") {
        var small = comm
        small.maxCount = 100
        var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/chunked.csv")
        o.tile = 64; o.distributedLabeling = true; o.config.evidence = .graph
        return compare(try ClusterJob.run(comm: small, options: o), try reference(o.config, tile: 64))
    }

    // Fault injection at a phase boundary (in-process: the agreed path; failures inside collectives, which stop
    // the job, and killed ranks are tested by Scripts/mpi-tests.sh through the `job` mode).
    for point in ["reading", "graph", "gather", "labeling", "broadcast", "write"] {
        c.check("fault on rank \(p - 1) at '\(point)': every rank throws the error naming it; existing output unchanged") {
            let out = dir + "/fault.csv"
            if rank == 0 { try AtomicFile.write("previous\n", to: out) }
            try comm.barrier()
            var o = ClusterJobOptions(embeddings: emb, labels: lab, output: out)
            o.tile = 64
            var plan = FaultPlan()
            _ = plan.parse("--fault", "throw:\(point):\(p - 1)")
            o.faultInjector = plan.injector()
            if let e = expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) },
                                          containing: ["rank \(p - 1) failed during \(point)", "fault injected"]) { return e }
            let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("fault.csv") }
            if left != ["fault.csv"] { return "files left: \(left)" }
            return FileManager.default.contents(atPath: out) == Data("previous\n".utf8) ? nil : "existing output changed"
        }
    }

    c.check("agree: one rank fails -> every rank throws the same error naming it") {
        let victim = p - 1
        return expectClusterError({ try comm.agree(rank == victim ? HDLError.invalidInput("boom on purpose") : nil, phase: "test") },
                                  containing: ["rank \(victim)", "boom on purpose", "during test"])
    }

    c.check("agree: all ranks fail -> lowest rank's message, others counted; no failure -> no error") {
        try comm.agree(nil)
        let parts = p > 1 ? ["rank 0", "other rank", "error of rank 0"] : ["rank 0", "error of rank 0"]
        return expectClusterError({ try comm.agree(HDLError.invalidInput("error of rank \(rank)")) }, containing: parts)
    }

    let bad = dir + "/bad.npy"
    c.check("job: NaN in a row of the last shard -> all ranks stop with the global row; no output") {
        var x = data.x
        x.data[1000 * d + 3] = .nan
        if rank == 0 { try NPY.write(x, to: bad) }
        try comm.barrier()
        var o = ClusterJobOptions(embeddings: bad, labels: lab, output: dir + "/nan.csv")
        o.tile = 64; o.shardedOutput = true
        let table = try ShardTable(n: n, tile: 64, ranks: p)
        let owner = (0 ..< p).first { table.rows(of: $0).contains(1000) }!
        if let e = expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) }, containing: ["rank \(owner)", "row 1000"]) { return e }
        return FileManager.default.fileExists(atPath: o.output + ".rank\(rank)") ? "output left behind" : nil
    }

    c.check("job: k >= n is refused on every rank before any work; no output") {
        var o = ClusterJobOptions(embeddings: emb, labels: lab, output: dir + "/bigk.csv")
        o.config.k = .fixed(n)
        if let e = expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) }, containing: ["rank 0", "k"]) { return e }
        return FileManager.default.fileExists(atPath: o.output) ? "output left behind" : nil
    }

    c.check("job: embeddings missing on one rank only -> error names that rank") {
        let victim = p - 1
        let o = ClusterJobOptions(embeddings: rank == victim ? dir + "/missing.npy" : emb, labels: lab, output: dir + "/missing.csv")
        if let e = expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) }, containing: ["rank \(victim)", "missing.npy"]) { return e }
        return FileManager.default.fileExists(atPath: o.output) ? "output left behind" : nil
    }

    c.check("job: ranks given different embeddings files -> mismatch error on every rank") {
        let other = dir + "/other.npy"
        if rank == 0 { try NPY.write(data.x.slice(rows: 0 ..< 900), to: other) }
        try comm.barrier()
        let o = ClusterJobOptions(embeddings: rank == p - 1 && p > 1 ? other : emb, labels: lab, output: dir + "/mismatch.csv")
        if p == 1 { return nil }  // one rank cannot disagree with itself
        return expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) }, containing: ["different embeddings"])
    }

    c.check("job: label file of the wrong length -> error from root on every rank") {
        let short = dir + "/short.npy"
        if rank == 0 { try NPY.write(ints: Array(repeating: -1, count: 10), to: short) }
        try comm.barrier()
        let o = ClusterJobOptions(embeddings: emb, labels: short, output: dir + "/short.csv")
        return expectClusterError({ _ = try ClusterJob.run(comm: comm, options: o) }, containing: ["rank 0", "label count 10"])
    }

    // Label-issue detection across ranks == single-process detection on the whole graph.
    let noisy = dir + "/noisy.npy"
    for (frac, rounds, tile) in [(1.0, 1, 64), (0.5, 3, 32)] {
        c.check("issues job (labeled \(frac), \(rounds) round(s), tile=\(tile)): == LabelIssues.detect; root CSV") {
            let given = data.noisyLabels(noise: .pair, rate: 0.2, labeledFraction: frac, classes: 5)
            if rank == 0 { try NPY.write(ints: given.map(Int.init), to: noisy) }
            try comm.barrier()
            var input = ClusterGraphInput(embeddings: emb, labels: noisy)
            input.tile = tile
            var o = ClusterIssuesOptions(input: input, output: dir + "/issues.csv")
            o.config.rounds = rounds; o.config.k = 20; o.all = true
            let out = try ClusterIssues.run(comm: comm, options: o)
            let gk = LabelIssues.graphWidth(n: n, labeled: given.filter { $0 >= 0 }.count, k: 20)
            if out.graphK != gk { return "graph k \(out.graphK) != \(gk)" }
            let g = try KNNGraphBuilder.build(xn, options: GraphOptions(k: gk, tile: tile))
            var cfg = o.config
            cfg.k = min(cfg.k, gk)
            let ref = try LabelIssues.detect(graph: g, labels: given, numClasses: 5, config: cfg)
            if out.result != ref { return "detection differs (\(out.result.flaggedCount) vs \(ref.flaggedCount) flagged)" }
            if ref.flaggedCount == 0 { return "nothing flagged at 20% noise" }
            if rank == 0, FileManager.default.contents(atPath: o.output) != LabelIssues.encodeCSV(ref, classNames: (0 ..< 5).map(String.init), all: true) {
                return "CSV differs"
            }
            return nil
        }
    }
    c.check("issues job: --graph-k >= n refused on every rank; no output") {
        var o = ClusterIssuesOptions(input: ClusterGraphInput(embeddings: emb, labels: noisy), output: dir + "/wide.csv")
        o.graphK = n
        if let e = expectClusterError({ _ = try ClusterIssues.run(comm: comm, options: o) }, containing: ["graph-k"]) { return e }
        return FileManager.default.fileExists(atPath: o.output) ? "output left behind" : nil
    }

    try? comm.barrier()
    if rank == 0 {
        try? FileManager.default.removeItem(atPath: dir)
        print("\(c.passed) passed, \(c.failed) failed")
        fflush(stdout)
    }
    return c.failed == 0 ? 0 : 1
}

/// Class names as the label reader assigns them to integer labels: "0", "1", ... up to the largest id.
func classNames(_ r: LabelingResult) -> [String] { (0 ... Int(r.labels.max() ?? 0)).map(String.init) }
