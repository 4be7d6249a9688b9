import Foundation
import XCTest
@testable import HDLabelIO
@testable import HDLabelCore
import HDLabelTestSupport

final class NPYTests: XCTestCase {
    func testFloat32RoundTrip() throws {
        let m = Embeddings(rows: 3, cols: 4, data: (0 ..< 12).map { Float($0) * 0.5 - 2 })
        let p = tempPath("rt.npy")
        try NPY.write(m, to: p)
        XCTAssertEqual(try NPY.readEmbeddings(path: p), m)
        XCTAssertEqual(try NPY.readEmbeddings(path: p, rows: 1 ..< 3), m.slice(rows: 1 ..< 3))
        let h = try NPY.readHeader(path: p)
        XCTAssertEqual(h.shape, [3, 4]); XCTAssertEqual(h.dataOffset % 64, 0)
    }

    func testIntsRoundTripAndFloat64() throws {
        let p = tempPath("ints.npy")
        try NPY.write(ints: [3, -1, 0, 7], to: p)
        XCTAssertEqual(try NPY.readInts(path: p), [3, -1, 0, 7])
        // float64 matrix written by hand
        var d = NPY.encodeHeader(dtype: .float64, shape: [2, 2])
        for v in [1.5, -2.0, 0.25, 8.0] { withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        let p2 = tempPath("f64.npy"); try AtomicFile.write(d, to: p2)
        XCTAssertEqual(try NPY.readEmbeddings(path: p2).data, [1.5, -2, 0.25, 8])
    }

    func testMalformedFilesGiveClearErrors() throws {
        func expectFormat(_ bytes: Data, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
            let p = tempPath("bad-\(fragment.hashValue).npy")
            try? AtomicFile.write(bytes, to: p)
            XCTAssertThrowsError(try NPY.readEmbeddings(path: p), file: file, line: line) { e in
                XCTAssertTrue("\(e)".contains(fragment), "'\(e)' should mention '\(fragment)'", file: file, line: line)
            }
        }
        expectFormat(Data(), "empty")
        expectFormat(Data("hello world, not numpy".utf8), "magic")
        var trunc = NPY.encodeHeader(dtype: .float32, shape: [10, 10]); trunc.append(Data(count: 17))
        expectFormat(trunc, "truncated")
        expectFormat(NPY.encodeHeader(dtype: .float32, shape: [10, 10]).prefix(30), "truncated")
        var ints = NPY.encodeHeader(dtype: .int32, shape: [2, 2]); ints.append(Data(count: 16))
        expectFormat(ints, "float32 or float64")
        var f = NPY.encodeHeader(dtype: .float32, shape: [2, 2]); f.append(Data(count: 16))
        let fortran = replacing(f, "False", "True ")
        expectFormat(fortran, "Fortran")
        var three = NPY.encodeHeader(dtype: .float32, shape: [2, 2, 2]); three.append(Data(count: 32))
        expectFormat(three, "2-D")
        var bigEndian = NPY.encodeHeader(dtype: .float32, shape: [1, 1]); bigEndian.append(Data(count: 4))
        expectFormat(replacing(bigEndian, "<f4", ">f4"), "unsupported dtype")
        XCTAssertThrowsError(try NPY.readEmbeddings(path: tempPath("missing.npy"))) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    /// Replaces the first occurrence of ASCII `a` by `b` (same length) inside raw bytes.
    func replacing(_ d: Data, _ a: String, _ b: String) -> Data {
        var bytes = [UInt8](d); let pa = [UInt8](a.utf8), pb = [UInt8](b.utf8)
        for i in 0 ... bytes.count - pa.count where Array(bytes[i ..< i + pa.count]) == pa {
            bytes.replaceSubrange(i ..< i + pa.count, with: pb); break
        }
        return Data(bytes)
    }

    func testRawFloat32ShapeChecked() throws {
        let p = tempPath("raw.f32")
        let v: [Float] = [1, 2, 3, 4, 5, 6]
        try AtomicFile.write(v.withUnsafeBytes { Data($0) }, to: p)
        XCTAssertEqual(try RawF32.read(path: p, rows: 2, cols: 3).data, v)
        XCTAssertThrowsError(try RawF32.read(path: p, rows: 4, cols: 3)) { XCTAssertTrue("\($0)".contains("does not match")) }
    }

    func testAtomicWriteLeavesNoTempFile() throws {
        let p = tempPath("atomic/out.csv")
        try AtomicFile.write("a,b\n", to: p)
        let dir = (p as NSString).deletingLastPathComponent
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.csv"])
    }
}

final class EmbeddingFilesTests: XCTestCase {
    /// Shards read as one matrix (directory or comma list), any row range across shard borders, header checks.
    func testShardsReadAsOneMatrix() throws {
        let dir = tempPath("shards-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let all = Embeddings(rows: 10, cols: 3, data: (0 ..< 30).map { Float($0) + 1 })
        try NPY.write(all.slice(rows: 0 ..< 4), to: dir + "/part-0.npy")
        try NPY.write(all.slice(rows: 4 ..< 5), to: dir + "/part-1.npy")
        try NPY.write(all.slice(rows: 5 ..< 10), to: dir + "/part-2.npy")
        let viaDir = try EmbeddingFiles.open(dir)
        XCTAssertEqual(viaDir.rows, 10); XCTAssertEqual(viaDir.cols, 3); XCTAssertEqual(viaDir.rowCounts, [4, 1, 5])
        XCTAssertEqual(try viaDir.read(), all)
        for r in [0 ..< 10, 3 ..< 6, 4 ..< 5, 5 ..< 5, 2 ..< 9] { XCTAssertEqual(try viaDir.read(rows: r), all.slice(rows: r), "rows \(r)") }
        let list = ["part-0", "part-1", "part-2"].map { dir + "/\($0).npy" }.joined(separator: ",")
        XCTAssertEqual(try EmbeddingFiles.open(list).read(rows: 3 ..< 7), all.slice(rows: 3 ..< 7))
        XCTAssertEqual(try EmbeddingFiles.open(dir + "/part-2.npy").rows, 5)
        XCTAssertThrowsError(try viaDir.read(rows: 8 ..< 11)) { XCTAssertTrue("\($0)".contains("outside")) }
        try NPY.write(Embeddings(rows: 2, cols: 4, data: [Float](repeating: 1, count: 8)), to: dir + "/part-3.npy")
        XCTAssertThrowsError(try EmbeddingFiles.open(dir)) { XCTAssertTrue("\($0)".contains("d = 4"), "\($0)") }
        try NPY.write(ints: [1, 2], to: dir + "/part-3.npy")
        XCTAssertThrowsError(try EmbeddingFiles.open(dir)) { XCTAssertTrue("\($0)".contains("float32 or float64"), "\($0)") }
        let empty = tempPath("empty-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try EmbeddingFiles.open(empty)) { XCTAssertTrue("\($0)".contains("no .npy shards")) }
    }
}
