import HDLabelCluster
import HDLabelCore
import HDLabelIO
import XCTest

/// Single-process tests of the pieces that need no MPI; the multi-rank checks live in `hdlabel-mpitest`
/// (run by `Scripts/mpi-tests.sh`).
final class ShardTableTests: XCTestCase {
    func testShardsAreWholeTilesWithRemainderOnFirstRanks() throws {
        let t = try ShardTable(n: 1003, tile: 64, ranks: 3)  // 16 tiles: 6, 5, 5
        XCTAssertEqual(t.bounds, [0, 384, 704, 1003])
        XCTAssertEqual(t.counts, [384, 320, 299])
        XCTAssertEqual(t.maxCount, 384)
    }

    func testMoreRanksThanTilesGivesEmptyShards() throws {
        let t = try ShardTable(n: 100, tile: 64, ranks: 4)
        XCTAssertEqual(t.counts, [64, 36, 0, 0])
        XCTAssertTrue(t.rows(of: 3).isEmpty)
    }

    func testBadParametersAreErrors() {
        XCTAssertThrowsError(try ShardTable(n: 10, tile: 0, ranks: 2))
        XCTAssertThrowsError(try ShardTable(n: 10, tile: 4, ranks: 0))
    }

    func testLabelsCSVUsesGlobalIds() {
        let csv = LabelsIO.encodeCSV(firstId: 10, labels: [1, -1], confidence: [0.5, 0], layer: [2, -1], source: [.propagated, .unlabeled],
                                     classNames: ["a", "b"])
        XCTAssertEqual(String(decoding: csv, as: UTF8.self),
                       "id,label,confidence,layer,source\n10,b,0.5000,2,propagated\n11,,0.0000,-1,unlabeled\n")
    }
}
