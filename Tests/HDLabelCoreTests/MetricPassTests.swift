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
    /// checked against a dense Double computation (Gaussian elimination); unlabeled rows do not enter Σ. With class
    /// balance β each class's scatter is weighted by (m / (C · n_c))^β: pooled rows (β = 0) and equal classes (β = 1)
    /// on labels whose class sizes differ 1 : 2 : 3 : 4.
    func testWhitenedRowsGiveTheShrunkMahalanobisCosine() throws {
        let (x0, y) = Self.stretched()
        let x = x0.l2Normalized()
        let n = x.rows, d = x.cols, c = 4
        var labels = y
        for i in stride(from: 0, to: n, by: 7) { labels[i] = -1 }
        // Class l keeps (l + 1) of every 4 of its labeled rows: sizes about 1 : 2 : 3 : 4.
        var seen = [Int](repeating: 0, count: c)
        for i in 0 ..< n where labels[i] >= 0 {
            let l = Int(labels[i]); seen[l] += 1
            if seen[l] % 4 >= l + 1 { labels[i] = -1 }
        }
        let lam = 0.3
        for beta in [0.0, 1.0] {
            let z = try MetricPass.whitened(rows: x, comm: LocalRows(n: n), localLabels: labels, numClasses: c, shrinkage: lam, classBalance: beta)
            XCTAssertEqual(z.rows, n); XCTAssertEqual(z.cols, d)
            let sigma = Self.denseCovariance(x: x, labels: labels, numClasses: c, shrinkage: lam, classBalance: beta)
            for (i, j) in [(0, 1), (3, 250), (17, 399), (120, 121), (5, 5)] {
                let xi = (0 ..< d).map { Double(x.data[i * d + $0]) }, xj = (0 ..< d).map { Double(x.data[j * d + $0]) }
                let si = Self.solve(sigma, xi), sj = Self.solve(sigma, xj)
                func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
                let want = dot(xi, sj) / (dot(xi, si).squareRoot() * dot(xj, sj).squareRoot())
                var got = 0.0
                for t in 0 ..< d { got += Double(z.data[i * d + t]) * Double(z.data[j * d + t]) }
                XCTAssertEqual(got, want, accuracy: 1e-5, "pair \(i), \(j), class balance \(beta)")
            }
        }
        // The two weightings are different metrics on these unequal classes.
        let pooled = try MetricPass.whitened(rows: x, comm: LocalRows(n: n), localLabels: labels, numClasses: c, shrinkage: lam, classBalance: 0)
        let equal = try MetricPass.whitened(rows: x, comm: LocalRows(n: n), localLabels: labels, numClasses: c, shrinkage: lam, classBalance: 1)
        XCTAssertGreaterThan(zip(pooled.data, equal.data).map { abs($0 - $1) }.max() ?? 0, 1e-3)
        // λ = 1: the cosine metric again (up to the ridge).
        let cosine = try MetricPass.whitened(rows: x, comm: LocalRows(n: n), localLabels: labels, numClasses: c, shrinkage: 1)
        for i in [0, 10, 200] { for t in 0 ..< d { XCTAssertEqual(cosine.data[i * d + t], x.data[i * d + t], accuracy: 1e-5) } }
        // Too few labels: the reason, not an error.
        var few = [Int32](repeating: -1, count: n)
        few[0] = 0; few[1] = 0
        let none = try MetricPass.whitenedOrReason(rows: x, comm: LocalRows(n: n), localLabels: few, numClasses: c, shrinkage: lam, classBalance: 1)
        XCTAssertNil(none.rows)
        XCTAssertTrue(none.reason?.contains("2 classes") == true, none.reason ?? "")
    }

    /// Σ = (1 − λ) S/(m − C) + (λ tr(S/(m − C))/d + 10⁻⁶) I with S = Σ_c w_c S_c, w_c = (m / (C' · n_c))^β over the C'
    /// classes with labels (dense Double, d × d).
    static func denseCovariance(x: Embeddings, labels: [Int32], numClasses c: Int, shrinkage lam: Double, classBalance beta: Double) -> [[Double]] {
        let n = x.rows, d = x.cols
        var mu = [[Double]](repeating: [Double](repeating: 0, count: d), count: c), cnt = [Int](repeating: 0, count: c)
        for i in 0 ..< n where labels[i] >= 0 { let l = Int(labels[i]); cnt[l] += 1; for j in 0 ..< d { mu[l][j] += Double(x.data[i * d + j]) } }
        for l in 0 ..< c where cnt[l] > 0 { for j in 0 ..< d { mu[l][j] /= Double(cnt[l]) } }
        let m = cnt.reduce(0, +), present = cnt.filter { $0 > 0 }.count
        let w = cnt.map { $0 > 0 ? pow(Double(m) / Double(present) / Double($0), beta) : 1 }
        var s = [[Double]](repeating: [Double](repeating: 0, count: d), count: d)
        for i in 0 ..< n where labels[i] >= 0 {
            let l = Int(labels[i])
            for a in 0 ..< d { for b in 0 ..< d { s[a][b] += w[l] * (Double(x.data[i * d + a]) - mu[l][a]) * (Double(x.data[i * d + b]) - mu[l][b]) } }
        }
        let denom = Double(m - c)
        var tr = 0.0
        for a in 0 ..< d { tr += s[a][a] / denom }
        var sigma = s.map { $0.map { (1 - lam) * $0 / denom } }
        for a in 0 ..< d { sigma[a][a] += lam * tr / Double(d) + 1e-6 }
        return sigma
    }

    /// Σ⁻¹ b by Gaussian elimination with partial pivoting (Double).
    static func solve(_ sigma: [[Double]], _ b: [Double]) -> [Double] {
        let d = b.count
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

    /// `auto`'s gate: after the graph evidence the pass runs only when the first labeling's mean confidence over its
    /// non-seed rows is at least `minFirstConfidence` of the way from chance to 1; seeds and unlabeled rows do not count.
    func testAutoSkipsAFirstLabelingNearChance() {
        let c = 4 // chance 0.25
        func first(_ conf: Float, evidence: String = "graph") -> LabelingResult {
            // Two seeds (confidence 1), five labeled rows at `conf`, one unlabeled row (confidence 0).
            LabelingResult(labels: [0, 1, 2, 3, 0, 1, 2, -1], confidence: [1, 1, conf, conf, conf, conf, conf, 0], layer: [0, 0, 1, 1, 1, 2, 2, -1],
                           source: [.seed, .seed, .propagated, .propagated, .propagated, .propagated, .fallback, .unlabeled], layers: [], chosenK: 5,
                           evidence: evidence)
        }
        XCTAssertEqual(MetricPass.confidenceLift(first(0.25), numClasses: c)!, 0, accuracy: 1e-6)
        XCTAssertEqual(MetricPass.confidenceLift(first(1), numClasses: c)!, 1, accuracy: 1e-6)
        // Just below and just above the bound: lift = (conf − 0.25)/0.75.
        let atBound = Float(0.25 + 0.75 * MetricPass.minFirstConfidence)
        let below = MetricPass.autoSkipReason(after: first(atBound - 0.01), numClasses: c)
        XCTAssertNotNil(below)
        XCTAssertTrue(below?.contains("chance") == true, below ?? "")
        XCTAssertNil(MetricPass.autoSkipReason(after: first(atBound + 0.01), numClasses: c))
        // The geometry evidence is skipped whatever the confidence.
        XCTAssertTrue(MetricPass.autoSkipReason(after: first(1, evidence: "geometry"), numClasses: c)?.contains("geometry") == true)
        // No labeled non-seed row: no lift, the pass is not gated on it.
        let seedsOnly = LabelingResult(labels: [0, 1, -1], confidence: [1, 1, 0], layer: [0, 0, -1], source: [.seed, .seed, .unlabeled],
                                       layers: [], chosenK: 1, evidence: "graph")
        XCTAssertNil(MetricPass.confidenceLift(seedsOnly, numClasses: 2))
        XCTAssertNil(MetricPass.autoSkipReason(after: seedsOnly, numClasses: 2))
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
