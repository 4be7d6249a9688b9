import Foundation
import XCTest
@testable import HDLabelCore
import HDLabelTestSupport

final class KNNGraphTests: XCTestCase {
    func randomUnit(n: Int, d: Int, seed: UInt64) -> Embeddings {
        var rng = TestRNG(seed)
        return Embeddings(rows: n, cols: d, data: (0 ..< n * d).map { _ in rng.normal() }).l2Normalized()
    }

    func testMatchesBruteForceReference() throws {
        let x = randomUnit(n: 333, d: 19, seed: 1)
        let ref = KNNGraphBuilder.bruteForce(x, k: 7)
        // Canonical similarities: the BLAS builder equals the BLAS-free reference bit for bit, for any tile.
        for tile in [16, 64, 1024] {
            XCTAssertEqual(try KNNGraphBuilder.build(x, options: GraphOptions(k: 7, tile: tile)), ref, "tile \(tile)")
        }
    }

    func testSelfNeverANeighbourAndOrdering() throws {
        let x = randomUnit(n: 200, d: 8, seed: 2)
        let g = try KNNGraphBuilder.build(x, options: GraphOptions(k: 10, tile: 32))
        for i in 0 ..< g.n {
            let row = g.neighbors[i * 10 ..< (i + 1) * 10]
            XCTAssertFalse(row.contains(Int32(i)), "row \(i) lists itself")
            XCTAssertEqual(Set(row).count, 10, "row \(i) repeats a neighbour")
            for t in 1 ..< 10 { XCTAssertGreaterThanOrEqual(g.similarities[i * 10 + t - 1], g.similarities[i * 10 + t]) }
        }
    }

    func testBlockSizeIndependence() throws {
        let x = randomUnit(n: 301, d: 24, seed: 3)
        let a = try KNNGraphBuilder.build(x, options: GraphOptions(k: 5, tile: 16))
        let b = try KNNGraphBuilder.build(x, options: GraphOptions(k: 5, tile: 100))
        let c = try KNNGraphBuilder.build(x, options: GraphOptions(k: 5, tile: 1024))
        XCTAssertEqual(a, b); XCTAssertEqual(a, c)   // ids and similarities, bit for bit
    }

    func testExactDuplicatesAreDeterministic() throws {
        // Rows 0, 5 and 9 are identical: each one's nearest neighbours are the other two, smaller id first.
        var x = randomUnit(n: 12, d: 6, seed: 4)
        for j in 0 ..< 6 { x.data[5 * 6 + j] = x.data[j]; x.data[9 * 6 + j] = x.data[j] }
        let g = try KNNGraphBuilder.build(x, options: GraphOptions(k: 3, tile: 4))
        XCTAssertEqual(Array(g.neighbors[0 ..< 2]), [5, 9])
        XCTAssertEqual(Array(g.neighbors[15 ..< 17]), [0, 9])
        XCTAssertEqual(Array(g.neighbors[27 ..< 29]), [0, 5])
        XCTAssertEqual(g.similarities[0], 1, accuracy: 1e-5)
    }

    /// Many near-ties (points on a few tight clusters, d = 384 as real encoders): the graph is the same bit for bit
    /// for tiles whose sgemm call shapes differ, and equals the BLAS-free reference.
    func testNearTiesIndependentOfTileAndKernel() throws {
        var rng = TestRNG(7)
        let n = 260, d = 384
        let centres = (0 ..< 4 * d).map { _ in rng.normal() }
        let x = Embeddings(rows: n, cols: d, data: (0 ..< n * d).map { i in centres[(i / d) % 4 * d + i % d] + 1e-3 * rng.normal() }).l2Normalized()
        let ref = KNNGraphBuilder.bruteForce(x, k: 9)
        for tile in [8, 40, 256] {
            let g = try KNNGraphBuilder.build(x, options: GraphOptions(k: 9, tile: tile))
            let ids = zip(g.neighbors, ref.neighbors).filter { $0 != $1 }.count
            let sims = zip(g.similarities, ref.similarities).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(ids + sims, 0, "tile \(tile): \(ids) neighbour ids and \(sims) similarities differ from the reference")
        }
    }

    func testKMustBeSmallerThanN() {
        let x = randomUnit(n: 5, d: 3, seed: 5)
        XCTAssertThrowsError(try KNNGraphBuilder.build(x, options: GraphOptions(k: 5))) { XCTAssertTrue("\($0)".contains("k < number of points")) }
    }

    func testTruncateKeepsPrefix() throws {
        let x = randomUnit(n: 50, d: 5, seed: 6)
        let g = try KNNGraphBuilder.build(x, options: GraphOptions(k: 8, tile: 16))
        let t = g.truncated(to: 3)
        let direct = try KNNGraphBuilder.build(x, options: GraphOptions(k: 3, tile: 16))
        XCTAssertEqual(t, direct)
    }
}
