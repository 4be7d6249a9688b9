import Foundation
import XCTest
@testable import HDLabelIO
@testable import HDLabelCore
import HDLabelTestSupport

final class KNNGraphIOTests: XCTestCase {
    func graph() -> KNNGraph {
        let x = clusteredData(c: 3, perClass: 10, d: 8, spread: 0.3, seed: 3).0.l2Normalized()
        return KNNGraphBuilder.bruteForce(x, k: 4)
    }

    /// Writes `g`'s files under a fresh prefix, optionally replacing one file's bytes.
    func write(_ g: KNNGraph, _ name: String) throws -> String {
        let prefix = tempPath(name)
        try KNNGraphFile.write(g, prefix: prefix, manifest: nil)
        return prefix
    }

    func expectFormatError(_ prefix: String, expectedRows: Int? = nil, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try KNNGraphFile.read(prefix: prefix, expectedRows: expectedRows), file: file, line: line) { e in
            guard case let .format(_, reason)? = e as? HDLError else { return XCTFail("not a format error: \(e)", file: file, line: line) }
            XCTAssertTrue(reason.contains(fragment), "'\(reason)' lacks '\(fragment)'", file: file, line: line)
        }
    }

    func testRoundTripWithManifest() throws {
        let g = graph(), prefix = tempPath("roundtrip")
        let est = GraphRecall.Estimate(k: 4, rows: 30, recall: 1, lower: 1, upper: 1, exact: true)
        let m = KNNGraphFile.Manifest(command: "test", builder: "exact", parameters: ["k": "4"], input: nil, n: g.n, k: g.k, dimensions: 8,
                                      recall: est, seconds: ["graph": 0.1])
        try KNNGraphFile.write(g, prefix: prefix, manifest: m)
        XCTAssertEqual(try KNNGraphFile.read(prefix: prefix, expectedRows: g.n), g)
        let back = try JSONDecoder().decode(KNNGraphFile.Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: KNNGraphFile.manifestPath(prefix))))
        XCTAssertEqual(back, m)
        // numpy-compatible headers.
        XCTAssertEqual(try NPY.readHeader(path: KNNGraphFile.neighborsPath(prefix)).shape, [g.n, g.k])
        XCTAssertEqual(try NPY.readHeader(path: KNNGraphFile.similaritiesPath(prefix)).dtype, .float32)
    }

    /// A rank's offset read of rows lo..<hi equals those rows of the whole graph (ids stay global); a truncated file
    /// is refused even when the rows read lie before the cut.
    func testRowRangeReadAndTruncation() throws {
        let g = graph(), prefix = try write(g, "range")
        for r in [0 ..< 0, 0 ..< 7, 7 ..< 30, 29 ..< 30] {
            let part = try KNNGraphFile.read(prefix: prefix, expectedRows: g.n, rows: r)
            XCTAssertEqual(part.n, r.count)
            XCTAssertEqual(part.neighbors, Array(g.neighbors[r.lowerBound * g.k ..< r.upperBound * g.k]))
            XCTAssertEqual(part.similarities, Array(g.similarities[r.lowerBound * g.k ..< r.upperBound * g.k]))
        }
        let path = KNNGraphFile.similaritiesPath(prefix)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 4).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try KNNGraphFile.read(prefix: prefix, expectedRows: g.n, rows: 0 ..< 5)) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
    }

    /// Staged at full length, filled in two pieces out of order, committed: the file is header + pieces.
    func testStagedFileFilledInPieces() throws {
        let path = tempPath("pieces.bin")
        let s = try AtomicFile.stage(Data("HEAD".utf8), for: path, length: 12)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        try Data("bbbb".utf8).withUnsafeBytes { try AtomicFile.write($0, at: 8, into: s.temporary) }
        try Data("aaaa".utf8).withUnsafeBytes { try AtomicFile.write($0, at: 4, into: s.temporary) }
        try AtomicFile.commit(s)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data("HEADaaaabbbb".utf8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.temporary))
    }

    func testRowCountMismatch() throws {
        expectFormatError(try write(graph(), "rows"), expectedRows: 31, "the embeddings have 31")
    }

    func testIdOutOfRange() throws {
        var g = graph(); g.neighbors[7] = Int32(g.n)
        expectFormatError(try write(g, "range"), "outside 0..<30")
        g = graph(); g.neighbors[3] = -1
        expectFormatError(try write(g, "negative"), "is -1")
    }

    func testSelfLoop() throws {
        var g = graph(); g.neighbors[2 * g.k + 1] = 2
        expectFormatError(try write(g, "self"), "row 2 lists itself")
    }

    func testNaNSimilarity() throws {
        var g = graph(); g.similarities[5] = .nan
        expectFormatError(try write(g, "nan"), "NaN")
    }

    func testWrongShapeAndDtype() throws {
        let g = graph()
        let prefix = try write(g, "shape")
        // Similarities with one column fewer.
        try AtomicFile.write(NPY.encode(Embeddings(rows: g.n, cols: g.k - 1, data: [Float](repeating: 0.5, count: g.n * (g.k - 1)))),
                             to: KNNGraphFile.similaritiesPath(prefix))
        expectFormatError(prefix, "differs from the neighbours'")
        // Neighbours as 1-D int64.
        let p2 = try write(g, "dtype")
        try NPY.write(ints: g.neighbors.map(Int.init), to: KNNGraphFile.neighborsPath(p2))
        expectFormatError(p2, "must be int32")
        // Neighbours 1-D int32.
        let p3 = try write(g, "onedim")
        var one = NPY.encodeHeader(dtype: .int32, shape: [g.n * g.k])
        g.neighbors.withUnsafeBytes { one.append(contentsOf: $0) }
        try AtomicFile.write(one, to: KNNGraphFile.neighborsPath(p3))
        expectFormatError(p3, "must be 2-D")
    }

    func testLeanReaderMatchesReader() throws {
        let x = clusteredData(c: 2, perClass: 20, d: 5, spread: 0.4, seed: 9).0
        let p = tempPath("lean.npy")
        try NPY.write(x, to: p)
        XCTAssertEqual(try NPY.readFloat32Matrix(path: p), try NPY.readEmbeddings(path: p))
        var y = x; y.normalizeInPlace()
        XCTAssertEqual(y, x.l2Normalized())
    }
}
