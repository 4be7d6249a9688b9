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
        // Tile pairs in rounds on 1, 2, 3 and 4 workers (one BLAS thread each, or one pair at a time when a round
        // has fewer pairs than workers): the same bits.
        for threads in [1, 2, 3, 4] {
            var o = GraphOptions(k: 7, tile: 16)
            o.threads = threads
            XCTAssertEqual(try KNNGraphBuilder.build(x, options: o), ref, "\(threads) workers")
        }
    }

    /// The ring's pieces on one process: three row blocks, each scored with itself (`accumulateSelf`) and each pair
    /// of blocks once (`accumulateCross`, one of them split in halves from both sides as the even-P last step does),
    /// the partner's lists merged back (`mergeLists`): the reference graph bit for bit.
    func testPairsOnceAcrossBlocksEqualsReference() throws {
        let n = 211, d = 13, k = 6, tile = 16
        let x = randomUnit(n: n, d: d, seed: 11)
        let ref = KNNGraphBuilder.bruteForce(x, k: k)
        let bounds = [0, 64, 80, 211]   // uneven blocks: 4 tiles, 1 tile, 9 tiles (the last one partial)
        var accs = (0 ..< 3).map { TopKAccumulator(rows: bounds[$0 + 1] - bounds[$0], k: k, firstRow: bounds[$0]) }
        let blocks = (0 ..< 3).map { Array(x.data[bounds[$0] * d ..< bounds[$0 + 1] * d]) }
        for b in 0 ..< 3 {
            blocks[b].withUnsafeBufferPointer { xb in
                KNNGraphBuilder.accumulateSelf(x: xb.baseAddress!, rows: 0 ..< accs[b].rows, d: d, tile: tile, into: &accs[b], threads: 1 + b % 2)
            }
        }
        func cross(_ a: Int, _ aRows: Range<Int>, _ b: Int, _ bRows: Range<Int>) {
            var theirs = TopKAccumulator(rows: accs[b].rows, k: k, firstRow: bounds[b])
            blocks[a].withUnsafeBufferPointer { ab in
                blocks[b].withUnsafeBufferPointer { bb in
                    KNNGraphBuilder.accumulateCross(a: ab.baseAddress!, aRows: aRows, into: &accs[a], b: bb.baseAddress!, bRows: bRows,
                                                    into: &theirs, d: d, tile: tile, threads: 2)
                }
            }
            accs[b].mergeLists(theirs)
        }
        cross(0, 0 ..< 64, 1, 0 ..< 16)
        cross(2, 0 ..< 131, 0, 0 ..< 64)
        // Blocks 1 and 2 from both sides: block 1 against the first half of block 2, block 2's second half against block 1.
        cross(1, 0 ..< 16, 2, 0 ..< 65)
        cross(2, 65 ..< 131, 1, 0 ..< 16)
        let g = KNNGraph.concatenate(try accs.map { try $0.finish() })
        XCTAssertEqual(g, ref)
        // Scoring a pair twice would repeat a neighbour: the builder's single-process graph equals it too.
        XCTAssertEqual(try KNNGraphBuilder.build(x, options: GraphOptions(k: k, tile: tile)), ref)
    }

    /// Rows sorted by cluster, every row twice (exact ties throughout every list): the tile's
    /// k-th-score floor (`candidateCut`) skips most of a cluster's candidates and must not change one id or bit,
    /// for tiles smaller and larger than a cluster.
    func testSortedClustersWithDuplicatesMatchReference() throws {
        var rng = TestRNG(21)
        let clusters = 6, per = 40, d = 32, k = 12
        let centres = (0 ..< clusters * d).map { _ in rng.normal() }
        var data: [Float] = []
        for c in 0 ..< clusters {
            for _ in 0 ..< per / 2 {
                let row = (0 ..< d).map { centres[c * d + $0] + 0.05 * rng.normal() }
                data += row; data += row   // duplicates: equal canonical similarities, ranked by id
            }
        }
        let x = Embeddings(rows: clusters * per, cols: d, data: data).l2Normalized()
        let ref = KNNGraphBuilder.bruteForce(x, k: k)
        for tile in [8, 33, 128, 1024] {
            XCTAssertEqual(try KNNGraphBuilder.build(x, options: GraphOptions(k: k, tile: tile)), ref, "tile \(tile)")
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
