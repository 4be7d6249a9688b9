import CBLAS
import Dispatch
import Foundation

/// Recall of a kNN graph against exact neighbours of a deterministic sample of rows.
///
/// The exact part is a function of one row range of the database (`exactNeighbors(rows:x:database:k:)`), and
/// partial results over disjoint ranges combine with `merge`, so ranks holding different rows can each score
/// their own range and the merged result equals the single-process one bit for bit.
public enum GraphRecall {
    /// Recall@kEval estimated from `rows` sampled rows: the mean of the per-row recalls and a 95 % normal
    /// confidence interval over them (clipped to [0, 1]); `exact` when the sample is every row.
    public struct Estimate: Sendable, Codable, Equatable {
        public var k: Int
        public var rows: Int
        public var recall: Double
        public var lower: Double
        public var upper: Double
        public var exact: Bool
        public var description: String {
            exact ? String(format: "recall@%d %.4f (all %d rows)", k, recall, rows)
                : String(format: "recall@%d %.4f (95%% CI %.4f–%.4f, %d rows)", k, recall, lower, upper, rows)
        }
    }

    /// Exact top-k of some query rows over one database row range: `ids`/`sims` are `rows.count × k`, ranked by
    /// `CanonicalSimilarity.dot` (desc), ties by smaller id, -1 / -inf where the range has fewer candidates.
    public struct Partial: Sendable, Equatable {
        public var rows: [Int]
        public var k: Int
        public var ids: [Int32]
        public var sims: [Float]
        public init(rows: [Int], k: Int, ids: [Int32], sims: [Float]) { self.rows = rows; self.k = k; self.ids = ids; self.sims = sims }
    }

    /// The default sample: `count` rows of `0 ..< n` drawn with `seed`, ascending (every row when count ≥ n).
    public static func sampleRows(n: Int, count: Int = 1000, seed: UInt64 = 0x7265_6361_6c6c) -> [Int] {
        KMeans.sample(n: n, count: count, seed: seed)
    }

    /// Exact neighbours of `rows` (global ids into `x`) among database rows `database` of `x` (self excluded).
    public static func exactNeighbors(rows: [Int], x: Embeddings, database: Range<Int>, k: Int) -> Partial {
        exactNeighbors(queries: x.gather(rows), ids: rows, database: x, range: database, k: k)
    }

    /// As above with the query rows given separately (`queries.rows == ids.count`) and `database` holding the rows
    /// `range` of the global matrix (row 0 of `database` is global id `range.lowerBound`), as a rank would have them.
    public static func exactNeighbors(queries: Embeddings, ids: [Int], database: Embeddings, range: Range<Int>, k: Int) -> Partial {
        let d = queries.cols, q = ids.count
        let localDB = database.rows == range.count
        let base = localDB ? 0 : range.lowerBound
        var accs = ids.map { TopKAccumulator(rows: 1, k: k, firstRow: $0) }
        let tile = GraphOptions.defaultTile
        var scores = [Float](repeating: 0, count: min(q, tile) * tile)
        queries.data.withUnsafeBufferPointer { qb in
            database.data.withUnsafeBufferPointer { db in
                scores.withUnsafeMutableBufferPointer { sb in
                    var r0 = 0
                    while r0 < q {
                        let rc = min(tile, q - r0)
                        var c0 = range.lowerBound
                        while c0 < range.upperBound {
                            let cc = min(tile, range.upperBound - c0)
                            let dbp = db.baseAddress! + (c0 - range.lowerBound + base) * d
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rc), Int32(cc), Int32(d), 1,
                                        qb.baseAddress! + r0 * d, Int32(d), dbp, Int32(d), 0, sb.baseAddress!, Int32(cc))
                            for r in 0 ..< rc {
                                accs[r0 + r].merge(scores: sb.baseAddress! + r * cc, ldScores: cc, qStart: 0, qCount: 1, dbStart: c0, dbCount: cc,
                                                   queries: qb.baseAddress! + (r0 + r) * d, database: dbp, d: d)
                            }
                            c0 += cc
                        }
                        r0 += rc
                    }
                }
            }
        }
        return Partial(rows: ids, k: k, ids: accs.flatMap(\.ids), sims: accs.flatMap(\.sims))
    }

    /// Combines partial results over disjoint database ranges (same rows, same k); order of `parts` does not matter.
    public static func merge(_ parts: [Partial]) -> Partial {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.rows == parts[0].rows && $0.k == parts[0].k })
        let k = parts[0].k, q = parts[0].rows.count
        var ids = [Int32](repeating: -1, count: q * k), sims = [Float](repeating: -.infinity, count: q * k)
        var cand: [(Float, Int32)] = []
        ids.withUnsafeMutableBufferPointer { ib in
            sims.withUnsafeMutableBufferPointer { sb in
                for r in 0 ..< q {
                    cand.removeAll(keepingCapacity: true)
                    for p in parts { for j in 0 ..< k where p.ids[r * k + j] >= 0 { cand.append((p.sims[r * k + j], p.ids[r * k + j])) } }
                    ApproxKNNGraph.writeTop(&cand, k: k, row: r, ids: ib.baseAddress!, sims: sb.baseAddress!)
                }
            }
        }
        return Partial(rows: parts[0].rows, k: k, ids: ids, sims: sims)
    }

    /// Recall@min(k, 10) of `graph` on the rows of `exact` (per row: shared ids among the first kEval / kEval).
    public static func recall(of graph: KNNGraph, exact: Partial) -> Estimate {
        let ke = min(10, graph.k, exact.k)
        var rows = [Int32](); rows.reserveCapacity(exact.rows.count * ke)
        for i in exact.rows { rows.append(contentsOf: graph.neighbors[i * graph.k ..< i * graph.k + ke]) }
        return recall(sampleNeighbors: rows, k: ke, exact: exact, n: graph.n)
    }

    /// The same from the graph rows of the sample only: `sampleNeighbors` holds `exact.rows.count × k` ids (row t =
    /// the graph's first k neighbours of `exact.rows[t]`), as ranks that each own some sample rows can gather them.
    public static func recall(sampleNeighbors: [Int32], k: Int, exact: Partial, n: Int) -> Estimate {
        let ke = min(10, k, exact.k)
        var per = [Double]()
        for t in exact.rows.indices {
            let truth = Set(exact.ids[t * exact.k ..< t * exact.k + ke])
            var hit = 0
            for j in 0 ..< ke where truth.contains(sampleNeighbors[t * k + j]) { hit += 1 }
            per.append(Double(hit) / Double(ke))
        }
        let m = Double(per.count)
        let mean = per.reduce(0, +) / m
        let exactAll = per.count == n
        let sd = per.count > 1 ? (per.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (m - 1)).squareRoot() : 0
        let half = exactAll ? 0 : 1.96 * sd / m.squareRoot()
        return Estimate(k: ke, rows: per.count, recall: mean, lower: max(0, mean - half), upper: min(1, mean + half), exact: exactAll)
    }

    /// Estimates recall@min(k, 10) of `graph` over `x` (L2-normalised) from `sampleSize` deterministic rows whose
    /// exact neighbours come from `sgemm` against all rows.
    public static func estimate(_ graph: KNNGraph, x: Embeddings, sampleSize: Int = 1000, seed: UInt64 = 0x7265_6361_6c6c) -> Estimate {
        let rows = sampleRows(n: x.rows, count: sampleSize, seed: seed)
        let ke = min(10, graph.k)
        return recall(of: graph, exact: exactNeighbors(rows: rows, x: x, database: 0 ..< x.rows, k: ke))
    }

    /// Recall@min(k, 10) of `graph` against a full exact graph (for tests and small benchmarks).
    public static func trueRecall(_ graph: KNNGraph, exact: KNNGraph) -> Double {
        let ke = min(10, graph.k, exact.k)
        var hit = 0
        for i in 0 ..< graph.n {
            let truth = Set(exact.neighbors[i * exact.k ..< i * exact.k + ke])
            for j in 0 ..< ke where truth.contains(graph.neighbors[i * graph.k + j]) { hit += 1 }
        }
        return Double(hit) / Double(graph.n * ke)
    }
}
