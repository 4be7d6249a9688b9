import Foundation
import XCTest
@testable import HDLabelCore
import HDLabelTestSupport

final class ApproxKNNGraphTests: XCTestCase {
    /// 1,200 points in 40 Gaussian clusters, d = 24, L2-normalised; the exact reference built once.
    static let data: Embeddings = clusteredData(c: 40, perClass: 30, d: 24, spread: 0.6, seed: 11).0.l2Normalized()
    static let exact: KNNGraph = KNNGraphBuilder.bruteForce(data, k: 10)
    static let approx: KNNGraph = try! ApproxKNNGraph.build(data, options: ApproxGraphOptions(k: 10))

    func testRecallAboveFloor() throws {
        let r = GraphRecall.trueRecall(Self.approx, exact: Self.exact)
        XCTAssertGreaterThan(r, 0.95, "recall@10 \(r)")
        // Less overlap with a refinement round.
        let wide = try ApproxKNNGraph.build(Self.data, options: ApproxGraphOptions(k: 10, overlap: 2, refineRounds: 1))
        XCTAssertGreaterThan(GraphRecall.trueRecall(wide, exact: Self.exact), 0.95)
    }

    func testIdenticalForAnyThreadCount() throws {
        for t in [1, 2, 4] {
            let g = try ApproxKNNGraph.build(Self.data, options: ApproxGraphOptions(k: 10, threads: t))
            XCTAssertEqual(g, Self.approx, "threads \(t)")
            let r = try ApproxKNNGraph.build(Self.data, options: ApproxGraphOptions(k: 10, overlap: 2, refineRounds: 2, threads: t))
            XCTAssertEqual(r, try ApproxKNNGraph.build(Self.data, options: ApproxGraphOptions(k: 10, overlap: 2, refineRounds: 2, threads: 3)), "refined, threads \(t)")
        }
    }

    func testRowsSortedCanonicalNoSelfNoDuplicates() {
        let g = Self.approx, d = Self.data.cols
        for i in 0 ..< g.n {
            let ids = g.neighbors[i * g.k ..< (i + 1) * g.k], sims = Array(g.similarities[i * g.k ..< (i + 1) * g.k])
            XCTAssertFalse(ids.contains(Int32(i)), "row \(i) lists itself")
            XCTAssertEqual(Set(ids).count, g.k, "row \(i) has a repeated neighbour")
            for (j, id) in ids.enumerated() {
                let s = Self.data.data.withUnsafeBufferPointer { CanonicalSimilarity.dot($0.baseAddress! + i * d, $0.baseAddress! + Int(id) * d, d) }
                XCTAssertEqual(s, sims[j], "row \(i): similarity is not the canonical value")
                if j > 0 {
                    let prev = ids[ids.startIndex + j - 1]
                    XCTAssertTrue(sims[j - 1] > sims[j] || (sims[j - 1] == sims[j] && prev < id), "row \(i) not sorted at \(j)")
                }
            }
        }
    }

    func testParameterErrors() {
        let x = Self.data.slice(rows: 0 ..< 50)
        XCTAssertThrowsError(try ApproxKNNGraph.build(x, options: ApproxGraphOptions(k: 50))) { e in
            XCTAssertEqual(e as? HDLError, .invalidParameter(name: "k", value: "50", allowed: "k < number of points (50)"))
        }
        XCTAssertThrowsError(try ApproxKNNGraph.build(x, options: ApproxGraphOptions(k: 0)))
        XCTAssertThrowsError(try ApproxKNNGraph.build(x, options: ApproxGraphOptions(k: 5, overlap: 0)))
        XCTAssertThrowsError(try ApproxKNNGraph.build(x, options: ApproxGraphOptions(k: 5, cells: 51)))
        XCTAssertThrowsError(try ApproxKNNGraph.build(x, options: ApproxGraphOptions(k: 5, overlap: 3, cells: 2)))
        XCTAssertThrowsError(try KNNGraphBuilder.build(x, method: .approx, k: 50))
    }

    func testTinyCellsStillGiveKNeighbours() throws {
        // 30 points in 20 cells: most cells hold fewer than k+1 points, so rows are completed exactly.
        let x = Self.data.slice(rows: 0 ..< 30)
        let g = try ApproxKNNGraph.build(x, options: ApproxGraphOptions(k: 8, overlap: 1, cells: 20, refineRounds: 0))
        XCTAssertFalse(g.neighbors.contains(-1))
        XCTAssertGreaterThan(GraphRecall.trueRecall(g, exact: KNNGraphBuilder.bruteForce(x, k: 8)), 0.6)
    }

    func testRecallEstimateCoversTrueRecall() {
        let weak = try! ApproxKNNGraph.build(Self.data, options: ApproxGraphOptions(k: 10, overlap: 1, cells: 200, refineRounds: 0))
        let truth = GraphRecall.trueRecall(weak, exact: Self.exact)
        let est = GraphRecall.estimate(weak, x: Self.data, sampleSize: 400)
        XCTAssertEqual(est.rows, 400)
        XCTAssertLessThan(truth, 0.99, "the check needs a graph with misses")
        XCTAssertTrue(est.lower <= truth && truth <= est.upper, "true \(truth) outside \(est.description)")
        // Every row sampled: the estimate is the true recall.
        let all = GraphRecall.estimate(weak, x: Self.data, sampleSize: Self.data.rows)
        XCTAssertTrue(all.exact)
        XCTAssertEqual(all.recall, truth, accuracy: 1e-12)
    }

    func testExactPartsOverRowRangesMerge() {
        let rows = GraphRecall.sampleRows(n: Self.data.rows, count: 50)
        let whole = GraphRecall.exactNeighbors(rows: rows, x: Self.data, database: 0 ..< Self.data.rows, k: 10)
        let parts = [0 ..< 500, 500 ..< 811, 811 ..< Self.data.rows].map {
            GraphRecall.exactNeighbors(queries: Self.data.gather(rows), ids: rows, database: Self.data.slice(rows: $0), range: $0, k: 10)
        }
        XCTAssertEqual(GraphRecall.merge(parts.reversed()), whole)
        for (t, i) in rows.enumerated() {
            XCTAssertEqual(Array(whole.ids[t * 10 ..< (t + 1) * 10]), Array(Self.exact.neighbors[i * 10 ..< (i + 1) * 10]))
        }
    }

    func testMethodResolution() throws {
        XCTAssertEqual(GraphMethod.auto.resolved(n: GraphMethod.crossover - 1), .exact)
        XCTAssertEqual(GraphMethod.auto.resolved(n: GraphMethod.crossover), .approx)
        XCTAssertEqual(try KNNGraphBuilder.build(Self.data, method: .auto, k: 10), Self.exact)
    }
}
