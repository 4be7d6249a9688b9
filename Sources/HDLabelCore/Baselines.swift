import Foundation

/// Baseline labelers with the same interface as HDL. None of them uses ground truth beyond the seeds.
public enum Baselines {
    /// One-shot kNN vote from the seeds: each unlabeled point takes the similarity-weighted majority of the
    /// seeds among its k graph neighbours; points with no seed among them fall back to the nearest seed
    /// by a graph walk (breadth-first over neighbours, ties by order). Confidence = winning vote share.
    /// `graph` holds the rows `comm.rows` (all rows with `LocalRows`; `seeds` covers all n rows); each round of the graph walk
    /// allgathers the labels (n Int32). Returns all n rows on every process. **Collective** over `comm`.
    public static func knnVote(rows graph: KNNGraph, comm: RowCollectives, seeds allSeeds: [Int32], numClasses c: Int, k: Int) throws -> LabelingResult {
        let n = graph.n, gk = graph.k, own = comm.rows
        let seeds = Array(allSeeds[own])
        var labels = seeds, conf = [Float](repeating: 0, count: n)
        var layer = seeds.map { $0 >= 0 ? Int32(0) : Int32(-1) }
        var source = seeds.map { $0 >= 0 ? LabelSource.seed : LabelSource.unlabeled }
        for i in 0 ..< n where seeds[i] >= 0 { conf[i] = 1 }
        var votes = [Float](repeating: 0, count: c)
        var unresolved: [Int] = []
        for i in 0 ..< n where seeds[i] < 0 {
            for j in 0 ..< c { votes[j] = 0 }
            var any = false
            for t in 0 ..< k {
                let nb = Int(graph.neighbors[i * gk + t])
                if allSeeds[nb] >= 0 { votes[Int(allSeeds[nb])] += max(graph.similarities[i * gk + t], 1e-6); any = true }
            }
            if any {
                var best = 0; var tot: Float = 0
                for j in 0 ..< c { tot += votes[j]; if votes[j] > votes[best] { best = j } }
                labels[i] = Int32(best); conf[i] = votes[best] / tot; layer[i] = 1; source[i] = .propagated
            } else { unresolved.append(i) }
        }
        // Points with no seed in their k-list: label of the first labeled point reached through the graph.
        var changed = true
        var left = try comm.sum([unresolved.count])[0]
        while changed && left > 0 {
            var mine = false
            var still: [Int] = []
            let snapshot = try comm.allgather(labels)
            for i in unresolved {
                var got: Int32 = -1
                for t in 0 ..< gk { let nb = Int(graph.neighbors[i * gk + t]); if snapshot[nb] >= 0 { got = snapshot[nb]; break } }
                if got >= 0 { labels[i] = got; conf[i] = 0; layer[i] = 2; source[i] = .fallback; mine = true } else { still.append(i) }
            }
            unresolved = still
            let s = try comm.sum([mine ? 1 : 0, unresolved.count])
            changed = s[0] > 0; left = s[1]
        }
        return LabelingResult(labels: try comm.allgather(labels), confidence: try comm.allgather(conf), layer: try comm.allgather(layer),
                              source: try comm.allgather(source.map { Int32($0.rawValue) }).map { LabelSource(rawValue: UInt8($0)) ?? .unlabeled },
                              layers: [LayerRecord(layer: 1, k: k, threshold: 0, added: comm.n - allSeeds.filter { $0 >= 0 }.count - left)], chosenK: k)
    }

    /// Label spreading (Zhou et al. 2004): binary symmetric kNN affinity, F = (I − αS)⁻¹ Y with one-hot Y.
    /// `graph` holds the rows `comm.rows` (all rows with `LocalRows`); returns all n rows on every process. **Collective** over `comm`.
    public static func labelSpreading(rows graph: KNNGraph, comm: RowCollectives, seeds: [Int32], numClasses c: Int, alpha: Double,
                                      iterations: Int) throws -> LabelingResult {
        let s = try NormalizedAffinity(rows: graph, comm: comm, weight: { _ in 1 })
        let y = seedMatrix(seeds, rows: comm.rows, numClasses: c, classMassNormalized: false)
        let f = try s.solve(y, columns: c, alpha: Float(alpha),
                            iterations: iterations, comm: comm)
        return try finish(f, comm: comm, seeds: seeds, numClasses: c, k: graph.k)
    }

    /// Graph propagation in the style of Iscen et al. (CVPR 2019): edge weights similarity^γ (negatives 0),
    /// symmetric normalisation, seeds normalised by class mass, solved by conjugate gradient.
    /// `graph` holds the rows `comm.rows` (all rows with `LocalRows`); returns all n rows on every process. **Collective** over `comm`.
    public static func iscenPropagation(rows graph: KNNGraph, comm: RowCollectives, seeds: [Int32], numClasses c: Int, alpha: Double,
                                        gamma: Double, iterations: Int) throws -> LabelingResult {
        let g = Float(gamma)
        let s = try NormalizedAffinity(rows: graph, comm: comm, weight: { powf(max($0, 0), g) })
        let y = seedMatrix(seeds, rows: comm.rows, numClasses: c, classMassNormalized: true)
        let f = try s.solve(y, columns: c, alpha: Float(alpha),
                            iterations: iterations, comm: comm)
        return try finish(f, comm: comm, seeds: seeds, numClasses: c, k: graph.k)
    }

    /// Rows `rows` of the `n × C` seed matrix (`rows.count × C`; `seeds` covers all n rows); with class-mass
    /// normalisation each class column (over all n rows) sums to 1.
    static func seedMatrix(_ seeds: [Int32], rows: Range<Int>, numClasses c: Int, classMassNormalized: Bool) -> [Float] {
        var y = [Float](repeating: 0, count: rows.count * c)
        let count = classCounts(seeds, numClasses: c)
        for (r, i) in rows.enumerated() where seeds[i] >= 0 {
            let s = Int(seeds[i])
            y[r * c + s] = classMassNormalized ? 1 / Float(count[s]) : 1
        }
        return y
    }

    static func finish(_ f: [Float], comm: RowCollectives, seeds: [Int32], numClasses c: Int, k: Int) throws -> LabelingResult {
        let n = seeds.count
        let (lab0, share0, _) = Scores.argmaxShare(f, n: comm.rows.count, c: c)
        let lab = try comm.allgather(lab0), share = try comm.allgather(share0)
        var labels = lab, conf = share
        var layer = lab.map { $0 >= 0 ? Int32(1) : -1 }, source = lab.map { $0 >= 0 ? LabelSource.propagated : .unlabeled }
        for i in 0 ..< n where seeds[i] >= 0 { labels[i] = seeds[i]; conf[i] = 1; layer[i] = 0; source[i] = .seed }
        return LabelingResult(labels: labels, confidence: conf, layer: layer, source: source,
                              layers: [LayerRecord(layer: 1, k: k, threshold: 0, added: source.filter { $0 == .propagated }.count)], chosenK: k)
    }
}
