@testable import HDLabelCluster
import HDLabelCore
import HDLabelIO
import XCTest

/// The MPI count chunking arithmetic, the row-count limit and checkpoint validity, without MPI (the multi-rank
/// transfers at small limits are checked by `hdlabel-mpitest`).
final class ChunkingAndCheckpointTests: XCTestCase {
    func testChunksCoverTheRangeWithinTheLimit() {
        var c = Communicator(rank: 0, size: 1, comm: nil)
        XCTAssertTrue(c.chunks(0).isEmpty)
        XCTAssertEqual(c.chunks(5).map(\.count), [5])
        c.maxCount = 7
        let parts = c.chunks(23)
        XCTAssertEqual(parts.map(\.offset), [0, 7, 14, 21])
        XCTAssertEqual(parts.map(\.count), [7, 7, 7, 2])
        XCTAssertTrue(c.fitsOneCall([3, 4]))
        XCTAssertFalse(c.fitsOneCall([3, 5]))
        // 10⁸ rows × 22 classes of floats: more than one Int32 count, so the default limit splits it.
        c.maxCount = Int(Int32.max)
        XCTAssertEqual(c.chunks(100_000_000 * 22).count, 2)
        XCTAssertFalse(c.fitsOneCall([100_000_000 * 22]))
    }

    func testPlacementGroupsRanksPerHostAsRanges() {
        XCTAssertEqual(Communicator.placement(["a", "a", "b", "a", "b", "c"]), "a 0-1,3, b 2,4, c 5")
        XCTAssertEqual(Communicator.placement(["h1", "h2", "h3"]), "h1 0, h2 1, h3 2")
    }

    func testRowCountLimitIsClear() {
        XCTAssertNoThrow(try KNNGraph.checkRowCount(Int(Int32.max)))
        XCTAssertThrowsError(try KNNGraph.checkRowCount(1 << 31)) { e in
            XCTAssertTrue("\(e)".contains("n < 2^31"), "\(e)")
        }
    }

    func testCheckpointIsRefusedWithTheFieldsThatDiffer() throws {
        let dir = NSTemporaryDirectory() + "hdl-ckpt-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let emb = dir + "/emb.npy"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try NPY.write(Embeddings(rows: 4, cols: 2, data: [1, 0, 0, 1, 1, 1, 2, 1]), to: emb)
        let table = try ShardTable(n: 4, tile: 2, ranks: 1)
        let key = try GraphCheckpoint.Key(input: emb, n: 4, d: 2, k: 1, table: table, rank: 0)
        XCTAssertEqual(key.version, RunManifest.version)
        XCTAssertFalse(key.blasCore.isEmpty)
        XCTAssertNil(try GraphCheckpoint.load(dir: dir, key: key))  // nothing saved yet
        let g = KNNGraph(n: 4, k: 1, neighbors: [2, 2, 0, 2], similarities: [0.7, 0.9, 0.7, 0.9])
        try GraphCheckpoint.save(g, dir: dir, key: key)
        XCTAssertEqual(try GraphCheckpoint.load(dir: dir, key: key), g)
        var other = key
        // The override this process runs with (the environment may set one) against a different one.
        let core = key.blasCoreType, otherCore = core == "Prescott" ? "Sandybridge" : "Prescott"
        other.k = 2; other.blasCoreType = otherCore
        XCTAssertThrowsError(try GraphCheckpoint.load(dir: dir, key: other)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("k 1 → 2") && m.contains("OPENBLAS_CORETYPE \(core) → \(otherCore)") && m.contains("--checkpoint"), m)
        }
        other = key
        other.version = "0.0.1"
        XCTAssertThrowsError(try GraphCheckpoint.load(dir: dir, key: other))
    }
}
