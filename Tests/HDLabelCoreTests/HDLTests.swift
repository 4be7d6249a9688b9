import Foundation
import XCTest
@testable import HDLabelCore
import HDLabelTestSupport

final class HDLTests: XCTestCase {
    func accuracy(_ r: LabelingResult, _ y: [Int32], _ seeds: [Int32]) -> Double {
        var ok = 0, tot = 0
        for i in 0 ..< y.count where seeds[i] < 0 { tot += 1; if r.labels[i] == y[i] { ok += 1 } }
        return Double(ok) / Double(tot)
    }

    func testHDLInvariants() throws {
        let (x, y) = clusteredData(c: 4, perClass: 150, d: 16, spread: 0.6, seed: 11)
        let seeds = seedsFrom(y, per: 3, classes: 4)
        let (_, r) = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: LabelingConfig(), tile: 64)
        // Seeds unchanged, layer 0, source seed.
        for i in 0 ..< y.count where seeds[i] >= 0 {
            XCTAssertEqual(r.labels[i], seeds[i]); XCTAssertEqual(r.layer[i], 0); XCTAssertEqual(r.source[i], .seed)
        }
        // Layers numbered 1...T in order, counts add up, thresholds never increase.
        XCTAssertEqual(r.layers.map(\.layer), Array(1 ... r.layers.count))
        for (a, b) in zip(r.layers, r.layers.dropFirst()) { XCTAssertGreaterThanOrEqual(a.threshold, b.threshold) }
        for rec in r.layers { XCTAssertEqual(r.layer.filter { $0 == Int32(rec.layer) }.count, rec.added) }
        for i in 0 ..< y.count where seeds[i] < 0 {
            XCTAssertGreaterThanOrEqual(r.layer[i], 1)
            XCTAssertTrue(r.source[i] == .propagated || r.source[i] == .fallback)
            XCTAssertTrue((0 ... 1).contains(r.confidence[i]))
        }
        XCTAssertGreaterThan(accuracy(r, y, seeds), 0.95, "well-separated clusters should be labeled almost perfectly")
        XCTAssertTrue(KSelection.candidates(kMax: LabelingConfig().kMax).contains(r.chosenK))
    }

    func testDeterministic() throws {
        let (x, y) = clusteredData(c: 3, perClass: 100, d: 8, spread: 1.0, seed: 12)
        let seeds = seedsFrom(y, per: 2, classes: 3)
        let a = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 3, config: LabelingConfig(), tile: 32).result
        let b = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 3, config: LabelingConfig(), tile: 32).result
        XCTAssertEqual(a, b)
    }

    func testNoFallbackLeavesLeftoversUnlabeled() throws {
        let (x, y) = clusteredData(c: 3, perClass: 80, d: 8, spread: 2.0, seed: 13)
        let seeds = seedsFrom(y, per: 2, classes: 3)
        var cfg = LabelingConfig(); cfg.fallback = false; cfg.maxLayers = 2
        let r = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 3, config: cfg, tile: 32).result
        let unl = (0 ..< y.count).filter { r.labels[$0] == -1 }
        XCTAssertFalse(unl.isEmpty, "two layers cannot reach every point")
        for i in unl { XCTAssertEqual(r.source[i], .unlabeled); XCTAssertEqual(r.layer[i], -1) }
    }

    func testBaselinesLabelClusteredData() throws {
        let (x, y) = clusteredData(c: 5, perClass: 100, d: 12, spread: 0.5, seed: 14)
        let seeds = seedsFrom(y, per: 4, classes: 5)
        for m in LabelMethod.allCases {
            var cfg = LabelingConfig(); cfg.method = m
            let r = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 5, config: cfg, tile: 64).result
            XCTAssertGreaterThan(accuracy(r, y, seeds), 0.9, "\(m) on well-separated clusters")
            for i in 0 ..< y.count where seeds[i] >= 0 { XCTAssertEqual(r.labels[i], seeds[i], "\(m) overwrote a seed") }
        }
    }

    func testClusterabilityBound() {
        // Majority of 1 vote with error e is right with probability 1 - e; of 3 votes: (1-e)^3 + 3e(1-e)^2.
        XCTAssertEqual(KSelection.majorityBound(k: 1, error: 0.2), 0.8, accuracy: 1e-12)
        XCTAssertEqual(KSelection.majorityBound(k: 3, error: 0.2), 0.512 + 3 * 0.2 * 0.64, accuracy: 1e-12)
        // δ̂_k on a 4-point path graph labeled a a b b.
        let g = KNNGraph(n: 4, k: 2, neighbors: [1, 2, 0, 2, 3, 1, 2, 1], similarities: [Float](repeating: 1, count: 8))
        let d = KSelection.deltaHat(graph: g, labels: [0, 0, 1, 1])
        XCTAssertEqual(d[1], 0.0, accuracy: 1e-12)   // every first neighbour agrees
        XCTAssertEqual(d[2], 1.0, accuracy: 1e-12)   // every point has a disagreeing second neighbour
    }
}

final class BadInputTests: XCTestCase {
    func expectError(_ fragment: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(fragment), "'\(e)' should mention '\(fragment)'", file: file, line: line)
        }
    }

    func testBadInputs() {
        let (x, y) = clusteredData(c: 2, perClass: 20, d: 4, spread: 0.5, seed: 21)
        let seeds = seedsFrom(y, per: 2, classes: 2)
        var nan = x; nan.data[7] = .nan
        expectError("NaN") { _ = try Labeling.label(embeddings: nan, seeds: seeds, numClasses: 2, config: LabelingConfig()) }
        var inf = x; inf.data[3] = .infinity
        expectError("inf") { _ = try Labeling.label(embeddings: inf, seeds: seeds, numClasses: 2, config: LabelingConfig()) }
        var zero = x; for j in 0 ..< 4 { zero.data[2 * 4 + j] = 0 }
        expectError("row 2 is all zeros") { _ = try Labeling.label(embeddings: zero, seeds: seeds, numClasses: 2, config: LabelingConfig()) }
        expectError("does not match row count") { _ = try Labeling.label(embeddings: x, seeds: Array(seeds.dropLast()), numClasses: 2, config: LabelingConfig()) }
        expectError("not a known class") { var s = seeds; s[5] = 7; _ = try Labeling.label(embeddings: x, seeds: s, numClasses: 2, config: LabelingConfig()) }
        expectError("has no seed") { _ = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 3, config: LabelingConfig()) }
        expectError("at least two classes") { _ = try Labeling.label(embeddings: x, seeds: seeds.map { $0 == 1 ? -1 : $0 }, numClasses: 1, config: LabelingConfig()) }
        var big = LabelingConfig(); big.k = .fixed(40)
        expectError("k < number of points") { _ = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 2, config: big) }
        expectError("empty") { _ = try Embeddings(rows: 0, cols: 3, data: []).validate() }
    }
}

final class GeometryTests: XCTestCase {
    func testClassGeometryPosteriorsSeparateClusters() throws {
        let (x, y) = clusteredData(c: 3, perClass: 60, d: 10, spread: 0.4, seed: 31)
        let xn = x.l2Normalized()
        let seeds = seedsFrom(y, per: 5, classes: 3)
        let p = try ClassGeometry.posteriors(rows: xn, comm: LocalRows(n: xn.rows), anchors: seeds, numClasses: 3, shrinkage: 0.5)
        var ok = 0
        for i in 0 ..< y.count {
            XCTAssertEqual(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2], 1, accuracy: 1e-4)
            let arg = (0 ..< 3).max { p[i * 3 + $0] < p[i * 3 + $1] }!
            if arg == Int(y[i]) { ok += 1 }
        }
        XCTAssertGreaterThan(Double(ok) / Double(y.count), 0.95)
    }

    /// A geometry source other than the rows themselves (the cluster's served geometry) gives the same labeling as
    /// the embeddings, and the local-anchor form of the posteriors equals the all-rows form.
    func testGeometrySourceEqualsEmbeddings() throws {
        struct Counting: GeometrySource {
            let inner: RowGeometry
            let calls: UnsafeMutablePointer<Int>
            func posteriors(anchors: [Int32], numClasses: Int, shrinkage: Double) throws -> [Float] {
                calls.pointee += 1
                return try inner.posteriors(anchors: anchors, numClasses: numClasses, shrinkage: shrinkage)
            }
        }
        let (x, y) = clusteredData(c: 3, perClass: 80, d: 10, spread: 0.8, seed: 5)
        let xn = x.l2Normalized()
        let seeds = seedsFrom(y, per: 5, classes: 3)
        let graph = try KNNGraphBuilder.build(xn, options: GraphOptions(k: LabelingConfig().graphK(n: xn.rows), tile: 64))
        let calls = UnsafeMutablePointer<Int>.allocate(capacity: 1); calls.pointee = 0
        defer { calls.deallocate() }
        let source = Counting(inner: RowGeometry(x: xn, comm: LocalRows(n: xn.rows)), calls: calls)
        let a = try Labeling.run(graph: graph, seeds: seeds, numClasses: 3, config: LabelingConfig(), embeddings: xn)
        let b = try Labeling.run(graph: graph, seeds: seeds, numClasses: 3, config: LabelingConfig(), geometry: source)
        XCTAssertEqual(a, b)
        XCTAssertGreaterThan(calls.pointee, 0)
        let all = try ClassGeometry.posteriors(rows: xn, comm: LocalRows(n: xn.rows), anchors: seeds, numClasses: 3, shrinkage: 0.5)
        let local = try ClassGeometry.posteriors(rows: xn, comm: LocalRows(n: xn.rows), localAnchors: seeds, numClasses: 3, shrinkage: 0.5)
        XCTAssertEqual(all.map(\.bitPattern), local.map(\.bitPattern))
    }

    func testEvidenceModesAndPilot() throws {
        let (x, y) = clusteredData(c: 4, perClass: 80, d: 12, spread: 0.7, seed: 32)
        let seeds = seedsFrom(y, per: 5, classes: 4)
        for mode in EvidenceMode.allCases {
            var cfg = LabelingConfig(); cfg.evidence = mode
            let r = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: cfg, tile: 64).result
            if mode == .auto { XCTAssertTrue(r.evidence == "graph" || r.evidence == "geometry") } else { XCTAssertEqual(r.evidence, mode.rawValue) }
            let p = try XCTUnwrap(r.pilotAccuracy)
            XCTAssertTrue((0 ... 1).contains(p))
            var ok = 0
            for i in 0 ..< y.count where seeds[i] < 0 && r.labels[i] == y[i] { ok += 1 }
            XCTAssertGreaterThan(Double(ok) / Double(y.count - 20), 0.9, "\(mode)")
        }
    }

    /// The pilot computes the refinement-like fold posteriors (the calibration samples) for the mode the labeling uses
    /// only: with the geometry used, its graph solves are the 5 folds' one-shot solves; with the graph used, 5 more;
    /// the samples of the used mode are the same whichever other modes were tried.
    func testPilotRefinesOnlyTheUsedMode() throws {
        let (x, y) = clusteredData(c: 4, perClass: 80, d: 12, spread: 1.0, seed: 34)
        let seeds = seedsFrom(y, per: 6, classes: 4)
        let xn = x.l2Normalized()
        let graph = try KNNGraphBuilder.build(xn, options: GraphOptions(k: 20, tile: 64))
        let comm = LocalRows(n: graph.n)
        func pilot(_ mode: EvidenceMode, geometry: Bool = true) throws -> (Evidence.Pilot, Int) {
            var cfg = LabelingConfig(); cfg.evidence = mode
            var ev = Evidence(graph: graph, comm: comm, geometry: geometry ? RowGeometry(x: xn, comm: comm) : nil, numClasses: 4, config: cfg)
            let p = try ev.pilot(seeds: seeds, k: 10, refined: true)
            return (p, ev.tally.solves)
        }
        let (geo, geoSolves) = try pilot(.geometry), (gr, grSolves) = try pilot(.graph)
        XCTAssertEqual(geoSolves, HDL.pilotFolds, "one-shot graph solves only")
        XCTAssertEqual(grSolves, 2 * HDL.pilotFolds, "one-shot and refinement-like graph solves")
        XCTAssertEqual(geo.samples[.geometry]?.count, 24); XCTAssertEqual(geo.samples[.graph]?.count ?? 0, 0)
        XCTAssertEqual(gr.samples[.graph]?.count, 24); XCTAssertEqual(gr.samples[.geometry]?.count ?? 0, 0)
        // Without geometry evidence the graph's samples are the same bits.
        let (only, _) = try pilot(.graph, geometry: false)
        XCTAssertEqual(only.samples[.graph], gr.samples[.graph])
        XCTAssertEqual(only.accuracy[.graph], gr.accuracy[.graph])
    }

    func testEvidenceMarginDecidesAutoChoice() throws {
        // Overlapping clusters: the seed cross-validation could favour either mode.
        let (x, y) = clusteredData(c: 5, perClass: 60, d: 20, spread: 1.1, seed: 33)
        let seeds = seedsFrom(y, per: 8, classes: 5)
        func run(_ mode: EvidenceMode, margin: Double = 1) throws -> LabelingResult {
            var cfg = LabelingConfig(); cfg.evidence = mode; cfg.evidenceMargin = margin
            return try Labeling.label(embeddings: x, seeds: seeds, numClasses: 5, config: cfg, tile: 64).result
        }
        let pg = try XCTUnwrap(run(.graph).pilotAccuracy), pe = try XCTUnwrap(run(.geometry).pilotAccuracy)
        // Margin 0: the higher cross-validated accuracy (ties: graph).
        XCTAssertEqual(try run(.auto, margin: 0).evidence, pe > pg ? "geometry" : "graph")
        // A margin no paired z can reach: always the graph.
        XCTAssertEqual(try run(.auto, margin: 100).evidence, "graph")
        var bad = LabelingConfig(); bad.evidenceMargin = -1
        XCTAssertThrowsError(try bad.validate(n: 100))
    }

    func testRefineAndPriorFlatteningOptions() throws {
        let (x, y) = clusteredData(c: 4, perClass: 80, d: 12, spread: 0.9, seed: 34)
        let seeds = seedsFrom(y, per: 5, classes: 4)
        func run(_ edit: (inout LabelingConfig) -> Void) throws -> LabelingResult {
            // One labeling: the refinement's invariants (layers kept) hold within it; the metric pass relabels anew.
            var cfg = LabelingConfig(); cfg.evidence = .graph; cfg.metricPass = .off
            edit(&cfg)
            return try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: cfg, tile: 64).result
        }
        let off = try run { $0.refine = .off }, on = try run { $0.refine = .on }, auto = try run { _ in }
        // Balanced seeds -> uniform prior -> auto refines.
        XCTAssertEqual(auto.labels, on.labels)
        for r in [off, on] {
            // Seeds are never changed; layers and sources stay those of the layered run.
            for i in 0 ..< y.count where seeds[i] >= 0 { XCTAssertEqual(r.labels[i], seeds[i]) }
            XCTAssertEqual(r.layer, off.layer); XCTAssertEqual(r.source, off.source)
            var ok = 0
            for i in 0 ..< y.count where seeds[i] < 0 && r.labels[i] == y[i] { ok += 1 }
            XCTAssertGreaterThan(Double(ok) / Double(y.count - 20), 0.85)
        }
        // Prior flattening: 1 with the anchors' prior is the uniform prior.
        let flat = try run { $0.classPrior = .anchors; $0.priorFlattening = 1; $0.refine = .off }
        let uniform = try run { $0.classPrior = .uniform; $0.refine = .off }
        XCTAssertEqual(flat.labels, uniform.labels)
        var bad = LabelingConfig(); bad.priorFlattening = 1.5
        XCTAssertThrowsError(try bad.validate(n: 100))
        bad = LabelingConfig(); bad.shrinkageFloor = -0.1
        XCTAssertThrowsError(try bad.validate(n: 100))
    }

    func testClampedSolveKeepsAnchorsAndMatchesHarmonicOnAPath() throws {
        // Path 0-1-2-3-4 with ends clamped to classes 0 and 1: the middle point is split evenly.
        let g = KNNGraph(n: 5, k: 1, neighbors: [1, 2, 3, 4, 3], similarities: [1, 1, 1, 1, 1])
        let s = try NormalizedAffinity(rows: g, comm: LocalRows(n: 5), weight: { _ in 1 })
        var y = [Float](repeating: 0, count: 10); y[0] = 1; y[9] = 1
        let clamped = [true, false, false, false, true]
        let f = try s.solve(y, columns: 2, alpha: 0.99, iterations: 50, clamped: clamped, comm: LocalRows(n: 5))
        XCTAssertEqual(f[0], 1); XCTAssertEqual(f[9], 1)
        XCTAssertGreaterThan(f[2], f[3]); XCTAssertLessThan(f[6], f[7])
    }

    /// The clamped system on the path 0-1-2-3-4 (ends clamped; `y` is 5 × 2) solved directly in Double by Gauss
    /// elimination: (I − αS_UU) F_U = α S_UL Y_L (+ Y_U with `sources`); clamped rows keep their values of `y`.
    static func densePathSolve(_ s: NormalizedAffinity, y: [Float], alpha: Double, sources: Bool) -> [[Double]] {
        var dense = [[Double]](repeating: [Double](repeating: 0, count: 5), count: 5)
        for i in 0 ..< 5 { for p in s.rowPtr[i] ..< s.rowPtr[i + 1] { dense[i][Int(s.cols[p])] += Double(s.values[p]) } }
        let free = [1, 2, 3]
        var f = (0 ..< 5).map { i in [Double(y[i * 2]), Double(y[i * 2 + 1])] }
        for col in 0 ..< 2 {
            var a = free.map { i in free.map { j in (i == j ? 1 : 0) - alpha * dense[i][j] } }
            var b = free.map { i in alpha * (dense[i][0] * f[0][col] + dense[i][4] * f[4][col]) + (sources ? Double(y[i * 2 + col]) : 0) }
            for piv in 0 ..< 3 {
                for r in piv + 1 ..< 3 {
                    let m = a[r][piv] / a[piv][piv]
                    for c in piv ..< 3 { a[r][c] -= m * a[piv][c] }
                    b[r] -= m * b[piv]
                }
            }
            for r in (0 ..< 3).reversed() {
                var v = b[r]
                for c in r + 1 ..< 3 { v -= a[r][c] * f[free[c]][col] }
                f[free[r]][col] = v / a[r][r]
            }
        }
        return f
    }

    func testEarlyStoppedAndWarmStartedSolveMatchesHarmonicOnAPath() throws {
        // The same path; the exact harmonic extension (I − αS_UU) F_U = α S_UL Y_L solved directly in Double.
        let g = KNNGraph(n: 5, k: 1, neighbors: [1, 2, 3, 4, 3], similarities: [1, 1, 1, 1, 1])
        let s = try NormalizedAffinity(rows: g, comm: LocalRows(n: 5), weight: { _ in 1 })
        var y = [Float](repeating: 0, count: 10); y[0] = 1; y[9] = 1
        let exact = Self.densePathSolve(s, y: y, alpha: 0.99, sources: false)
        let clamped = [true, false, false, false, true]
        let comm = LocalRows(n: 5)
        // From the right-hand side, from zero and from a poor guess: each stops on the tolerance before the cap and
        // lands on the harmonic solution.
        let guesses: [[Float]?] = [nil, [Float](repeating: 0, count: 10), [Float](repeating: 0.7, count: 10)]
        for initial in guesses {
            let (f, st) = try s.solveCounting(y, columns: 2, alpha: 0.99, iterations: 50, tolerance: 1e-5, initial: initial,
                                              clamped: clamped, comm: comm)
            XCTAssertTrue(st.converged); XCTAssertLessThan(st.iterations, 50)
            XCTAssertEqual(f[0], 1); XCTAssertEqual(f[9], 1)
            for i in 0 ..< 5 { for c in 0 ..< 2 { XCTAssertEqual(Double(f[i * 2 + c]), exact[i][c], accuracy: 1e-4) } }
        }
        // Warm start from the converged solution: nothing left to do.
        let f = try s.solve(y, columns: 2, alpha: 0.99, iterations: 50, tolerance: 1e-5, clamped: clamped, comm: comm)
        let again = try s.solveCounting(y, columns: 2, alpha: 0.99, iterations: 50, tolerance: 1e-3, initial: f, clamped: clamped, comm: comm)
        XCTAssertEqual(again.stats.iterations, 0)
    }

    func testLabelsBitIdenticalForAnyThreadCount() throws {
        // Over 4,096 rows so the sparse product splits too; auto evidence, auto k, refinement: every kernel runs.
        let (x, y) = clusteredData(c: 5, perClass: 900, d: 8, spread: 1.6, seed: 21)
        let seeds = seedsFrom(y, per: 6, classes: 5)
        let xn = x.l2Normalized()
        let graph = try KNNGraphBuilder.build(xn, options: GraphOptions(k: LabelingConfig().graphK(n: xn.rows), tile: 512))
        var results: [LabelingResult] = []
        for t in [1, 2, 3, 8] {
            var cfg = LabelingConfig(); cfg.threads = t
            results.append(try Labeling.run(graph: graph, seeds: seeds, numClasses: 5, config: cfg, embeddings: xn))
        }
        for r in results.dropFirst() {
            XCTAssertEqual(r.labels, results[0].labels)
            XCTAssertEqual(r.confidence.map(\.bitPattern), results[0].confidence.map(\.bitPattern))
            XCTAssertEqual(r, results[0])
        }
        // The solver alone, without early stopping: the iterates are the same bits for any thread count.
        let s = try NormalizedAffinity(rows: graph.truncated(to: 10), comm: LocalRows(n: xn.rows), weight: { max($0, 0) * max($0, 0) })
        var yy = [Float](repeating: 0, count: xn.rows * 5)
        for i in 0 ..< xn.rows where seeds[i] >= 0 { yy[i * 5 + Int(seeds[i])] = 1 }
        let one = try s.solve(yy, columns: 5, alpha: 0.99, iterations: 20, threads: 1, comm: LocalRows(n: xn.rows))
        for t in [2, 5] {
            let other = try s.solve(yy, columns: 5, alpha: 0.99, iterations: 20, threads: t, comm: LocalRows(n: xn.rows))
            XCTAssertEqual(other.map(\.bitPattern), one.map(\.bitPattern))
        }
    }

    /// The normalised rows, their graph (tile 64) and a runner of `Labeling.run` on them with an edited default config
    /// (4 classes).
    typealias Run = ((inout LabelingConfig) -> Void) throws -> LabelingResult
    static func labeler(_ x: Embeddings, seeds: [Int32], classes: Int = 4) throws -> (Embeddings, KNNGraph, Run) {
        let xn = x.l2Normalized()
        let graph = try KNNGraphBuilder.build(xn, options: GraphOptions(k: LabelingConfig().graphK(n: xn.rows), tile: 64))
        return (xn, graph, { edit in
            var cfg = LabelingConfig(); edit(&cfg)
            return try Labeling.run(graph: graph, seeds: seeds, numClasses: classes, config: cfg, embeddings: xn)
        })
    }

    /// `kMin` and `propagationBlend`: a k floor is obeyed by every layer; `auto` floors k when the largest class has
    /// fewer than 3 seeds, with more seeds only in the graph's layers (geometry: the unfloored run bit for bit); the blend at w = 0 is no blend, at w = 1
    /// the propagation baseline's labels; seeds never change; the thread count changes no bit.
    func testKMinAndPropagationBlend() throws {
        let (x, y) = clusteredData(c: 4, perClass: 120, d: 10, spread: 1.4, seed: 41)
        let seeds = seedsFrom(y, per: 2, classes: 4)
        let (xn, graph, run) = try Self.labeler(x, seeds: seeds)
        // The blend at weight 0 is no blend (bit for bit).
        let plain = try run { $0.kMin = .fixed(0) }
        let explicitOff = try run { $0.kMin = .fixed(0); $0.propagationBlend = 0 }
        XCTAssertEqual(plain, explicitOff)
        XCTAssertEqual(plain.confidence.map(\.bitPattern), explicitOff.confidence.map(\.bitPattern))
        XCTAssertEqual(LabelingConfig().propagationBlend, 0)
        // A floor above every choice the bound would make is what every layer uses.
        let floored = try run { $0.kMin = .fixed(25) }
        XCTAssertGreaterThanOrEqual(floored.chosenK, 25)
        for rec in floored.layers { XCTAssertGreaterThanOrEqual(rec.k, 25) }
        // auto: 2 seeds per class (< HDL.kFloorBelowSeeds) floor k at 10 with either evidence.
        for ev in [EvidenceMode.graph, .geometry] {
            let autoFew = try run { $0.kMin = .auto; $0.evidence = ev }
            for rec in autoFew.layers { XCTAssertGreaterThanOrEqual(rec.k, HDL.provisionalK) }
        }
        // With 3 per class: the geometry's layers are the unfloored run bit for bit; the graph's layers are floored
        // at 10 where the bound (here) picks less, and the pilot's estimate is the unfloored run's.
        let many = seedsFrom(y, per: HDL.kFloorBelowSeeds, classes: 4)
        func manyRun(_ kMin: KSetting, _ ev: EvidenceMode) throws -> LabelingResult {
            var cfg = LabelingConfig(); cfg.kMin = kMin; cfg.evidence = ev
            return try Labeling.run(graph: graph, seeds: many, numClasses: 4, config: cfg, embeddings: xn)
        }
        XCTAssertEqual(try manyRun(.auto, .geometry), try manyRun(.fixed(0), .geometry))
        let graphPlain = try manyRun(.fixed(0), .graph), graphAuto = try manyRun(.auto, .graph)
        XCTAssertLessThan(graphPlain.chosenK, HDL.provisionalK, "the data must make the bound pick k < 10 for this check")
        XCTAssertEqual(graphAuto.chosenK, HDL.provisionalK)
        for rec in graphAuto.layers { XCTAssertGreaterThanOrEqual(rec.k, HDL.provisionalK) }
        XCTAssertEqual(graphAuto.pilotEstimate, graphPlain.pilotEstimate)
        XCTAssertEqual(try manyRun(.fixed(HDL.provisionalK), .graph).labels, graphAuto.labels)
        // w = 1: every non-seed label is the one-shot propagation's (balanced seeds: the baseline's class mass).
        let full = try run { $0.propagationBlend = 1; $0.evidence = .graph }
        let prop = try run { $0.method = .propagation }
        XCTAssertEqual(full.labels, prop.labels)
        // Any weight: seeds kept, labels in range, the same bits for any thread count.
        let half1 = try run { $0.propagationBlend = 0.5; $0.threads = 1 }
        let half3 = try run { $0.propagationBlend = 0.5; $0.threads = 3 }
        XCTAssertEqual(half1, half3)
        for i in 0 ..< y.count where seeds[i] >= 0 { XCTAssertEqual(half1.labels[i], seeds[i]); XCTAssertEqual(half1.source[i], .seed) }
        for i in 0 ..< y.count where seeds[i] < 0 { XCTAssertTrue((0 ..< 4).contains(half1.labels[i])) }
        var bad = LabelingConfig(); bad.propagationBlend = 1.5
        XCTAssertThrowsError(try bad.validate(n: 100))
        bad = LabelingConfig(); bad.kMin = .fixed(-1)
        XCTAssertThrowsError(try bad.validate(n: 100))
    }

    /// `confidence` without the refinement: `final` changes no label, layer or source against `acceptance`, only the
    /// confidences (the labels' shares in one more posterior of all labels, so some differ); `auto` calibrates them
    /// from the pilot's refined samples while `acceptance` keeps the raw shares; with the refinement the option
    /// changes no bit; the thread count changes no bit.
    func testConfidenceSource() throws {
        let (x, y) = clusteredData(c: 4, perClass: 120, d: 10, spread: 1.4, seed: 43)
        let seeds = seedsFrom(y, per: 5, classes: 4)
        let (_, _, run) = try Self.labeler(x, seeds: seeds)
        let fin = try run { $0.refine = .off }, acc = try run { $0.refine = .off; $0.confidence = .acceptance }
        XCTAssertEqual(LabelingConfig().confidence, .final)
        XCTAssertEqual(fin.labels, acc.labels); XCTAssertEqual(fin.layer, acc.layer); XCTAssertEqual(fin.source, acc.source)
        let moved = zip(fin.rawConfidence, acc.rawConfidence).enumerated().filter { seeds[$0.offset] < 0 && $0.element.0 != $0.element.1 }.count
        XCTAssertGreaterThan(moved, 0, "final confidences must come from another posterior than the acceptance shares")
        XCTAssertEqual(acc.calibration.method, .none)
        XCTAssertNotEqual(fin.calibration.method, .none)
        for i in 0 ..< y.count where seeds[i] < 0 {
            XCTAssertTrue((0 ... 1).contains(fin.confidence[i]) && (0 ... 1).contains(fin.rawConfidence[i]))
        }
        for i in 0 ..< y.count where seeds[i] >= 0 { XCTAssertEqual(fin.confidence[i], 1); XCTAssertEqual(fin.source[i], .seed) }
        XCTAssertEqual(try run { $0.refine = .off; $0.threads = 3 }, try run { $0.refine = .off; $0.threads = 1 })
        XCTAssertEqual(try run { $0.refine = .on }, try run { $0.refine = .on; $0.confidence = .acceptance })
    }

    /// `balanceClasses`: the balancing itself pulls the active rows' column totals to the target and keeps rows
    /// normalised (inactive rows untouched); in HDL it changes only the refinement's relabeling, seeds stay, the thread
    /// count changes no bit, and `auto` (the default) balances exactly when the evidence is the graph.
    func testBalanceClasses() throws {
        var p: [Float] = [0.7, 0.2, 0.1, 0.6, 0.3, 0.1, 0.8, 0.1, 0.1, 0.5, 0.4, 0.1, 1, 0, 0]
        let active = [true, true, true, true, false]
        let before = p
        try Scores.balanceColumns(&p, n: 5, c: 3, target: [1.0 / 3, 1.0 / 3, 1.0 / 3], rowActive: active, iterations: 200, power: 1,
                                  threads: 1, comm: LocalRows(n: 5))
        for j in 0 ..< 3 {
            let col = (0 ..< 4).reduce(Float(0)) { $0 + p[$1 * 3 + j] }
            XCTAssertEqual(col, 4.0 / 3, accuracy: 1e-3, "column \(j)")
        }
        for i in 0 ..< 4 { XCTAssertEqual(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2], 1, accuracy: 1e-5) }
        XCTAssertEqual(Array(p[12 ..< 15]), Array(before[12 ..< 15]))
        XCTAssertEqual(LabelingConfig().balanceClasses, .auto)

        let (x, y) = clusteredData(c: 4, perClass: 120, d: 10, spread: 1.6, seed: 43)
        let seeds = seedsFrom(y, per: 4, classes: 4)
        let (_, _, run) = try Self.labeler(x, seeds: seeds)
        let off = try run { $0.balanceClasses = .off }, on1 = try run { $0.balanceClasses = .on; $0.threads = 1 }
        let on3 = try run { $0.balanceClasses = .on; $0.threads = 3 }
        XCTAssertEqual(on1, on3)
        XCTAssertEqual(on1.layers, off.layers)   // the layers are untouched; only the refinement reads the balanced posterior
        for i in 0 ..< y.count where seeds[i] >= 0 { XCTAssertEqual(on1.labels[i], seeds[i]) }
        // `auto` is `on` with the graph evidence (these balanced clusters are labeled close to the seeds' shares) and
        // `off` with the geometry's; each pair differs somewhere, so the equalities say which rule ran.
        for (mode, same) in [(EvidenceMode.graph, AutoSwitch.on), (.geometry, .off)] {
            let auto = try run { $0.evidence = mode }
            let on = try run { $0.evidence = mode; $0.balanceClasses = .on }, off = try run { $0.evidence = mode; $0.balanceClasses = .off }
            XCTAssertNotEqual(on.labels, off.labels, "\(mode): balancing changes no label on this data; the check below would be empty")
            XCTAssertEqual(auto.labels, (same == .on ? on : off).labels, "\(mode)")
            XCTAssertEqual(auto.balancedClasses, same == .on)
            XCTAssertEqual(auto.labelShift!, HDL.labelShift(labels: off.labels, seeds: seeds, numClasses: 4), accuracy: 0.05)
            XCTAssertNil(off.balancedClasses)
        }
        // A pool far from the seeds' shares is not balanced under `auto`: every point of two clusters (of four) hidden
        // but one seed each, so the layers label a pool of two classes while the seeds say four equal shares.
        let keep = (0 ..< y.count).filter { y[$0] < 2 || seeds[$0] >= 0 }
        let xs = Embeddings(rows: keep.count, cols: x.cols, data: keep.flatMap { Array(x.data[$0 * x.cols ..< ($0 + 1) * x.cols]) })
        let (_, _, runSkew) = try Self.labeler(xs, seeds: keep.map { seeds[$0] })
        let skewed = try runSkew { $0.evidence = .graph; $0.refine = .on }
        XCTAssertGreaterThan(skewed.labelShift!, HDL.balanceMaxShift)
        XCTAssertEqual(skewed.balancedClasses, false)
    }

    /// `freeSources`: the free rows' values of y join the right-hand side, (I − αS_UU) F_U = α S_UL Y_L + Y_U, checked
    /// against the system solved directly in Double; without it the free rows' values are ignored.
    func testClampedSolveWithFreeSourcesMatchesTheDenseSystem() throws {
        let g = KNNGraph(n: 5, k: 1, neighbors: [1, 2, 3, 4, 3], similarities: [1, 1, 1, 1, 1])
        let s = try NormalizedAffinity(rows: g, comm: LocalRows(n: 5), weight: { _ in 1 })
        let clamped = [true, false, false, false, true]
        // Seeds: row 0 class 0, row 4 class 1; sources: row 2 class 1 with weight 0.3, row 1 class 0 with 0.05.
        var y = [Float](repeating: 0, count: 10); y[0] = 1; y[9] = 1; y[5] = 0.3; y[2] = 0.05
        func exact(sources: Bool) -> [[Double]] { Self.densePathSolve(s, y: y, alpha: 0.99, sources: sources) }
        for sources in [false, true] {
            let want = exact(sources: sources)
            let (f, st) = try s.solveCounting(y, columns: 2, alpha: 0.99, iterations: 50, tolerance: 1e-6, clamped: clamped,
                                              freeSources: sources, comm: LocalRows(n: 5))
            XCTAssertTrue(st.converged)
            XCTAssertEqual(f[0], 1); XCTAssertEqual(f[9], 1)
            for i in 0 ..< 5 { for c in 0 ..< 2 { XCTAssertEqual(Double(f[i * 2 + c]), want[i][c], accuracy: 1e-3, "sources \(sources) row \(i) class \(c)") } }
        }
        // The sources move the solution (the check above would otherwise not tell the two systems apart).
        XCTAssertGreaterThan(exact(sources: true)[2][1] - exact(sources: false)[2][1], 0.1)
    }

    /// `refineSources`: the weights (`HDL.sourceWeights`), and the `auto` rule — sources where the refinement is not
    /// balanced and the layers' labels are within `HDL.sourceMaxShift` of the seeds' shares, not where it is balanced,
    /// not on a collapsed labeling, never with the geometry evidence; the thread count changes no bit.
    func testRefineSources() throws {
        // 2 classes, 4 seeds (2 per class): scale 0.001 · 2 / 4; seeds and unlabeled rows get 0.
        let w = HDL.sourceWeights(labels: [0, 1, 0, 1, 1, -1], confidence: [1, 1, 1, 1, 0.5, 0], seeds: [0, 1, 0, 1, -1, -1],
                                  numClasses: 2, weight: 0.001)
        XCTAssertEqual(w, [0, 0, 0, 0, 0.00025, 0])
        XCTAssertEqual(LabelingConfig().refineSources, .auto)
        XCTAssertEqual(LabelingConfig().sourceWeight, 0.001)

        let (x, y) = clusteredData(c: 5, perClass: 120, d: 10, spread: 1.6, seed: 47)
        let seeds = seedsFrom(y, per: 4, classes: 5)
        // Keep every point of the given classes and the seeds of all five (the seeds stay balanced: HDL refines).
        func pool(_ classes: Set<Int32>) throws -> (Run, [Int32]) {
            let keep = (0 ..< y.count).filter { classes.contains(y[$0]) || seeds[$0] >= 0 }
            let xs = Embeddings(rows: keep.count, cols: x.cols, data: keep.flatMap { Array(x.data[$0 * x.cols ..< ($0 + 1) * x.cols]) })
            let s = keep.map { seeds[$0] }
            return (try Self.labeler(xs, seeds: s, classes: 5).2, s)
        }
        // Three of five classes in the pool: the layers' labels are about 0.4 from the seeds' equal shares.
        let (run, _) = try pool([0, 1, 2])
        let auto = try run { $0.evidence = .graph }
        let on = try run { $0.evidence = .graph; $0.refineSources = .on }, off = try run { $0.evidence = .graph; $0.refineSources = .off }
        XCTAssertGreaterThan(auto.labelShift!, HDL.sourceMinShift)
        XCTAssertLessThanOrEqual(auto.labelShift!, HDL.sourceMaxShift)
        XCTAssertEqual(auto.balancedClasses, false)
        XCTAssertEqual(auto.refinementSources, true)
        XCTAssertNotEqual(on.labels, off.labels, "the sources change no label on this data; the check below would be empty")
        XCTAssertEqual(auto, on)
        XCTAssertEqual(off.refinementSources, false)
        XCTAssertEqual(try run { $0.evidence = .graph; $0.refineSources = .on; $0.threads = 3 }, try run { $0.evidence = .graph; $0.refineSources = .on; $0.threads = 1 })
        // A stronger weight moves further from the seeds' posterior.
        let strong = try run { $0.evidence = .graph; $0.refineSources = .on; $0.sourceWeight = 0.1 }
        XCTAssertNotEqual(strong.labels, on.labels)
        // A pool labeled near the seeds' shares (the data of `testBalanceClasses`): balanced, so no sources under `auto`.
        let (x4, y4) = clusteredData(c: 4, perClass: 120, d: 10, spread: 1.6, seed: 43)
        let runAll = try Self.labeler(x4, seeds: seedsFrom(y4, per: 4, classes: 4)).2
        let bal = try runAll { $0.evidence = .graph }
        XCTAssertEqual(bal.balancedClasses, true)
        XCTAssertEqual(bal.refinementSources, false)
        XCTAssertEqual(bal, try runAll { $0.evidence = .graph; $0.refineSources = .off })
        // One class in the pool: the labeling sits far from the seeds' shares (collapsed), no sources.
        let (runOne, _) = try pool([0])
        let one = try runOne { $0.evidence = .graph }
        XCTAssertGreaterThan(one.labelShift!, HDL.sourceMaxShift)
        XCTAssertEqual(one.refinementSources, false)
        XCTAssertEqual(one, try runOne { $0.evidence = .graph; $0.refineSources = .off })
        // The geometry evidence has no graph sources, and unclamped anchors are all sources already.
        XCTAssertNil(try run { $0.evidence = .geometry }.refinementSources)
        XCTAssertNil(try run { $0.evidence = .graph; $0.clampAnchors = false; $0.refineSources = .on }.refinementSources)
    }

    /// `HDL.labelShift`: the total variation between the non-seed labels' class shares and the seeds'.
    func testLabelShift() {
        // Seeds 2:2 (shares ½, ½); non-seed labels 3 of class 0, 1 of class 1, one unlabeled (ignored): |¾ − ½| = ¼.
        let seeds: [Int32] = [0, 0, 1, 1, -1, -1, -1, -1, -1]
        let labels: [Int32] = [0, 0, 1, 1, 0, 0, 0, 1, -1]
        XCTAssertEqual(HDL.labelShift(labels: labels, seeds: seeds, numClasses: 2), 0.25, accuracy: 1e-12)
        XCTAssertEqual(HDL.labelShift(labels: seeds, seeds: seeds, numClasses: 2), 0)
        XCTAssertEqual(HDL.labelShift(labels: [0, 1, 1, 1], seeds: [0, 1, -1, -1], numClasses: 3), 0.5, accuracy: 1e-12)
    }

    /// A layer's selection: with quotas every class keeps its share of the layer (by share, ties by id); without them
    /// the layer takes the most confident rows of any class by log-odds, which still order rows whose shares all round
    /// to 1, ties by global id; either way ascending ids.
    func testSelectQuotaAndLogOddsOrder() throws {
        // Rows 0–5 remain; class 0 wins rows 0–3, class 1 rows 4–5. Shares saturate at 1 for rows 0–2 and 4.
        let arg: [Int32] = [0, 0, 0, 0, 1, 1]
        let share: [Float] = [1, 1, 1, 0.9, 1, 0.8]
        let odds: [Float] = [20, 30, 25, 2.2, 20, 1.4]
        var cfg = LabelingConfig(); cfg.layerFraction = 0.5; cfg.globalLayerFraction = 0.5
        let all = Array(0 ..< 6)
        func pick(_ quota: Bool) -> [Int] {
            HDL.select(all, arg: arg, share: share, logOdds: odds, remaining: all, numClasses: 2, config: cfg, quota: quota, minAdd: 1)
        }
        // Quotas: ⌈0.5 · 4⌉ = 2 of class 0 (shares tie at 1: the lower ids), ⌈0.5 · 2⌉ = 1 of class 1.
        XCTAssertEqual(pick(true), [0, 1, 4])
        // No quota: 0.5 · 6 = 3 rows by log-odds (30, 25, then 20 at rows 0 and 4: the lower id).
        XCTAssertEqual(pick(false), [0, 1, 2])
        // The default follows the evidence: quotas with the graph, none with the geometry (the log names it).
        let (x, y) = clusteredData(c: 4, perClass: 80, d: 12, spread: 0.7, seed: 32)
        let seeds = seedsFrom(y, per: 5, classes: 4)
        for mode in [EvidenceMode.graph, .geometry] {
            var lines: [String] = []
            var c = LabelingConfig(); c.evidence = mode
            let rAuto = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: c, tile: 64, log: { lines.append($0) }).result
            XCTAssertEqual(lines.contains { $0.contains("without per-class quotas") }, mode == .geometry, "\(mode)")
            var off = c; off.classQuota = .off
            var on = c; on.classQuota = .on
            let rOff = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: off, tile: 64).result
            let rOn = try Labeling.label(embeddings: x, seeds: seeds, numClasses: 4, config: on, tile: 64).result
            XCTAssertEqual(rAuto.labels, (mode == .geometry ? rOff : rOn).labels, "\(mode)")
        }
    }
}
