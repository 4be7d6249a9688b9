import Foundation
import XCTest
@testable import HDLabelCore
import HDLabelTestSupport

/// HDL's metric pass (`MetricPass`, `Labeling.metricPass`): the mapped rows' cosine is the shrunk within-class
/// Mahalanobis similarity, the pipeline runs it after the graph evidence only under `auto`, and what the second
/// labeling cannot reach keeps the first labeling's label.
final class MetricPassTests: XCTestCase {
    /// Clustered rows with every fourth coordinate stretched, so the within-class covariance is far from isotropic.
    static func stretched(seed: UInt64 = 53) -> (Embeddings, [Int32]) {
        var (x, y) = clusteredData(c: 4, perClass: 100, d: 12, spread: 1.5, seed: seed)
        for i in 0 ..< x.rows { for j in stride(from: 0, to: x.cols, by: 4) { x.data[i * x.cols + j] *= 4 } }
        return (x, y)
    }

    /// z_i · z_j = x_iᵀ Σ⁻¹ x_j / (‖x_i‖_Σ⁻¹ ‖x_j‖_Σ⁻¹) with Σ the shrunk within-class covariance of the labeled rows,
    /// checked against a dense Double computation (Gaussian elimination); unlabeled rows do not enter Σ.
    func testWhitenedRowsGiveTheShrunkMahalanobisCosine() throws {
        let (x0, y) = Self.stretched()
        let x = x0.l2Normalized()
        let n = x.rows, d = x.cols, c = 4
        var labels = y
        for i in stride(from: 0, to: n, by: 7) { labels[i] = -1 }
        let lam = 0.3
        let z = try MetricPass.whitened(rows: x, comm: LocalRows(n: n), localLabels: labels, numClasses: c, shrinkage: lam)
        XCTAssertEqual(z.rows, n); XCTAssertEqual(z.cols, d)
        // Dense reference: class means, scatter, shrinkage, inverse applied by solving.
        var mu = [[Double]](repeating: [Double](repeating: 0, count: d), count: c), cnt = [Int](repeating: 0, count: c)
        for i in 0 ..< n where labels[i] >= 0 { let l = Int(labels[i]); cnt[l] += 1; for j in 0 ..< d { mu[l][j] += Double(x.data[i * d + j]) } }
        for l in 0 ..< c { for j in 0 ..< d { mu[l][j] /= Double(cnt[l]) } }
        var s = [[Double]](repeating: [Double](repeating: 0, count: d), count: d)
        var m = 0
        for i in 0 ..< n where labels[i] >= 0 {
            m += 1
            let l = Int(labels[i])
            for a in 0 ..< d { for b in 0 ..< d { s[a][b] += (Double(x.data[i * d + a]) - mu[l][a]) * (Double(x.data[i * d + b]) - mu[l][b]) } }
        }
        let denom = Double(m - c)
        var tr = 0.0
        for a in 0 ..< d { tr += s[a][a] / denom }
        var sigma = s.map { $0.map { (1 - lam) * $0 / denom } }
        for a in 0 ..< d { sigma[a][a] += lam * tr / Double(d) + 1e-6 }
        func solve(_ b: [Double]) -> [Double] {
            var a = sigma, v = b
            for p in 0 ..< d {
                let piv = (p ..< d).max { abs(a[$0][p]) < abs(a[$1][p]) }!
                a.swapAt(p, piv); v.swapAt(p, piv)
                for r in p + 1 ..< d { let f = a[r][p] / a[p][p]; for q in p ..< d { a[r][q] -= f * a[p][q] }; v[r] -= f * v[p] }
            }
            var out = [Double](repeating: 0, count: d)
            for p in stride(from: d - 1, through: 0, by: -1) {
                var t = v[p]; for q in p + 1 ..< d { t -= a[p][q] * out[q] }; out[p] = t / a[p][p]
            }
            return out
        }
        let pairs = [(0, 1), (3, 250), (17, 399), (120, 121), (5, 5)]
        for (i, j) in pairs {
            let xi = (0 ..< d).map { Double(x.data[i * d + $0]) }, xj = (0 ..< d).map { Double(x.data[j * d + $0]) }
            let si = solve(xi), sj = solve(xj)
            func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
            let want = dot(xi, sj) / (dot(xi, si).squareRoot() * dot(xj, sj).squareRoot())
            var got = 0.0
            for t in 0 ..< d { got += Double(z.data[i * d + t]) * Double(z.data[j * d + t]) }
            XCTAssertEqual(got, want, accuracy: 1e-5, "pair \(i), \(j)")
        }
        // λ = 1: the cosine metric again (up to the ridge).
        let cosine = try MetricPass.whitened(rows: x, comm: LocalRows(n: n), localLabels: labels, numClasses: c, shrinkage: 1)
        for i in [0, 10, 200] { for t in 0 ..< d { XCTAssertEqual(cosine.data[i * d + t], x.data[i * d + t], accuracy: 1e-5) } }
        // Too few labels: the reason, not an error.
        var few = [Int32](repeating: -1, count: n)
        few[0] = 0; few[1] = 0
        let none = try MetricPass.whitenedOrReason(rows: x, comm: LocalRows(n: n), localLabels: few, numClasses: c, shrinkage: lam)
        XCTAssertNil(none.rows)
        XCTAssertTrue(none.reason?.contains("2 classes") == true, none.reason ?? "")
    }

    /// The pipeline: `auto` runs the pass after the graph evidence (the labels come from the rebuilt graph and differ
    /// from one labeling's), equals `on` there, skips it after the geometry evidence with the reason, and `off` is one
    /// labeling over the first graph; `on` with too few labels is one clear error.
    func testPipelineRunsThePassAfterTheGraphEvidence() throws {
        let (x, y) = Self.stretched(seed: 59)
        let seeds = seedsFrom(y, per: 3, classes: 4)
        func run(_ edit: (inout LabelingConfig) -> Void) throws -> LabelingResult {
            var cfg = LabelingConfig(); edit(&cfg)
            return try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: cfg).result
        }
        let auto = try run { $0.evidence = .graph }
        let on = try run { $0.evidence = .graph; $0.metricPass = .on }
        let off = try run { $0.evidence = .graph; $0.metricPass = .off }
        XCTAssertEqual(auto.metricPass, true)
        XCTAssertNil(off.metricPass)
        XCTAssertEqual(auto.labels, on.labels)
        XCTAssertEqual(auto.confidence.map(\.bitPattern), on.confidence.map(\.bitPattern))
        XCTAssertTrue(auto.labels != off.labels || auto.confidence != off.confidence, "the pass changed nothing on this data")
        // off == one labeling over the graph of the rows.
        let xn = x.l2Normalized()
        var cfg = LabelingConfig(); cfg.evidence = .graph; cfg.metricPass = .off
        let g = try KNNGraphBuilder.build(xn, options: GraphOptions(k: cfg.graphK(n: xn.rows), tile: GraphOptions.defaultTile))
        XCTAssertEqual(try Labeling.run(graph: g, seeds: seeds, numClasses: 4, config: cfg, embeddings: xn).labels, off.labels)
        // Seeds never change.
        for i in seeds.indices where seeds[i] >= 0 { XCTAssertEqual(auto.labels[i], seeds[i]); XCTAssertEqual(auto.source[i], .seed) }
        // After the geometry evidence auto keeps the first labeling and says why.
        let geo = try run { $0.evidence = .geometry }
        XCTAssertNil(geo.metricPass)
        XCTAssertTrue(geo.metricPassNote?.contains("geometry") == true, geo.metricPassNote ?? "")
        XCTAssertEqual(geo.labels, try run { $0.evidence = .geometry; $0.metricPass = .off }.labels)
        // With --min-confidence the abstention applies to the final labels only.
        let kept = try run { $0.evidence = .graph; $0.minConfidence = 0.9 }
        XCTAssertEqual(kept.metricPass, true)
        for i in kept.labels.indices where kept.source[i] == .abstained { XCTAssertLessThan(Double(kept.confidence[i]), 0.9) }
    }

    /// Rows the second labeling left unreached keep the first labeling's label as `fallback` (or abstain below the
    /// threshold); reached rows and the first labeling's own unlabeled rows are untouched.
    func testUnreachedRowsKeepTheFirstLabel() {
        var labels: [Int32] = [0, -1, -1, -1, 2], layer: [Int32] = [1, 0, 0, 0, 2]
        var conf: [Float] = [0.9, 0, 0, 0, 0.8]
        var source: [LabelSource] = [.propagated, .unlabeled, .unlabeled, .abstained, .seed]
        let first: ([Int32], [Float], [Int32], [LabelSource]) = ([1, 3, -1, 1, 2], [0.7, 0.6, 0, 0.95, 1], [1, 4, 0, 2, 0], [.propagated, .fallback, .unlabeled, .propagated, .seed])
        let filled = MetricPass.fillUnreached(labels: &labels, confidence: &conf, layer: &layer, source: &source, first: first, minConfidence: 0)
        XCTAssertEqual(filled, 1)
        XCTAssertEqual(labels, [0, 3, -1, -1, 2]); XCTAssertEqual(layer, [1, 4, 0, 0, 2])
        XCTAssertEqual(source, [.propagated, .fallback, .unlabeled, .abstained, .seed])
        var l2: [Int32] = [-1], c2: [Float] = [0], y2: [Int32] = [0], s2: [LabelSource] = [.unlabeled]
        MetricPass.fillUnreached(labels: &l2, confidence: &c2, layer: &y2, source: &s2, first: ([3], [0.4], [2], [.propagated]), minConfidence: 0.5)
        XCTAssertEqual(l2, [-1]); XCTAssertEqual(s2, [.abstained]); XCTAssertEqual(c2, [0.4])
    }
}
