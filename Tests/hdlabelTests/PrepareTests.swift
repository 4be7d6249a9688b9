import Foundation
import XCTest
import HDLabelCore
import HDLabelBench
import HDLabelIO

/// `hdlabel prepare fashion-mnist`: files, shapes, seeds per class, and the hidden truth agreeing with the seeds.
final class PrepareTests: CLITestCase {

    func testPrepareFashionMNIST() throws {
        if let reason = FashionMNIST.unavailableReason() { throw XCTSkip(reason) }
        let r = try run(["prepare", "fashion-mnist", "-o", dir, "--n", "3000", "--per-class", "10", "--seed", "3"])
        XCTAssertEqual(r.code, 0, r.stderr)

        let x = try NPY.readEmbeddings(path: dir + "/embeddings.npy")
        XCTAssertEqual(x.rows, 3000); XCTAssertEqual(x.cols, 50)
        XCTAssertEqual(try NPY.readHeader(path: dir + "/embeddings.npy").dtype, .float32)
        XCTAssertEqual(try NPY.readHeader(path: dir + "/seeds.npy").dtype, .int64)
        let seeds = try NPY.readInts(path: dir + "/seeds.npy"), truth = try NPY.readInts(path: dir + "/truth.npy")
        XCTAssertEqual(seeds.count, 3000); XCTAssertEqual(truth.count, 3000)
        XCTAssertTrue(x.data.allSatisfy(\.isFinite))

        var perClass = [Int](repeating: 0, count: 10)
        for s in seeds where s >= 0 { perClass[s] += 1 }
        XCTAssertEqual(perClass, [Int](repeating: 10, count: 10))
        XCTAssertTrue(seeds.allSatisfy { $0 >= -1 && $0 < 10 })
        XCTAssertTrue(truth.allSatisfy { $0 >= 0 && $0 < 10 })
        for i in 0 ..< seeds.count where seeds[i] >= 0 { XCTAssertEqual(seeds[i], truth[i], "row \(i): seed disagrees with truth") }
        // Balanced split keeps every row in order: truth is the first 3000 Fashion-MNIST labels.
        let all = try FashionMNIST.loadAll(n: 3000)
        XCTAssertEqual(truth, all.labels)

        let classes = try String(contentsOfFile: dir + "/classes.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(classes, FashionMNIST.classNames)
        let split = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/split.json"))) as! [String: Any]
        XCTAssertEqual(split["rows"] as? Int, 3000); XCTAssertEqual(split["seeded"] as? Int, 100)
        XCTAssertEqual((split["parameters"] as? [String: Any])?["seed"] as? Int, 3)

        // The prepared files are a valid labeling job.
        let out = dir + "/labels.csv"
        let l = try run(["label", dir + "/embeddings.npy", dir + "/seeds.npy", "-o", out, "--method", "knn", "-q"])
        XCTAssertEqual(l.code, 0, l.stderr)
        let ev = try run(["evaluate", out, dir + "/truth.npy", dir + "/seeds.npy"])
        XCTAssertEqual(ev.code, 0, ev.stderr)
        XCTAssertTrue(ev.stdout.hasPrefix("accuracy 0.") && ev.stdout.contains("(2900 unlabeled rows, "), ev.stdout)
    }

    /// `hdlabel items`: the PNG of a row is that row's Fashion-MNIST image (through the split), scaled; the items CSV
    /// lists every row; --ids writes the listed rows and the seeds only.
    func testItemsWritesEachRowsImage() throws {
        if let reason = FashionMNIST.unavailableReason() { throw XCTSkip(reason) }
        XCTAssertEqual(try run(["prepare", "fashion-mnist", "-o", dir, "--n", "2000", "--per-class", "2", "--imbalance", "10"]).code, 0)
        let ids = dir + "/ids.csv"
        try "id,label\n7,x\n700,y\n".write(toFile: ids, atomically: true, encoding: .utf8)
        let r = try run(["items", dir, "-o", dir + "/items", "--ids", ids, "--scale", "2"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let seeds = try NPY.readInts(path: dir + "/seeds.npy")
        let expected = Set([7, 700] + seeds.indices.filter { seeds[$0] >= 0 })
        let written = try FileManager.default.contentsOfDirectory(atPath: dir + "/items/images")
        XCTAssertEqual(Set(written), Set(expected.map { "\($0).png" }))
        let csv = try String(contentsOfFile: dir + "/items/items.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + seeds.count); XCTAssertEqual(csv[0], "id,image"); XCTAssertEqual(csv[8], "7,images/7.png")
        // Row 700 of the long-tailed split is data-set row split.indices[700]: its pixels, each repeated 2 × 2.
        let split = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/split.json"))) as! [String: Any]
        let source = ((split["split"] as! [String: Any])["indices"] as! [Int])[700]
        let raw = try FashionMNIST.rawImages()
        let png = try PNG.decodeGray([UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/items/images/700.png"))))
        XCTAssertEqual(png.width, 56); XCTAssertEqual(png.height, 56)
        for y in 0 ..< 56 { for x in 0 ..< 56 where png.pixels[y * 56 + x] != raw.pixels[source * 784 + (y / 2) * 28 + x / 2] {
            return XCTFail("pixel (\(x), \(y)) of row 700 is not data-set row \(source)'s")
        } }
        let bad = try run(["items", dir + "/nowhere", "-o", dir + "/x"])
        XCTAssertNotEqual(bad.code, 0); XCTAssertTrue(bad.stderr.contains("written by 'hdlabel prepare'"), bad.stderr)
    }

    func testPrepareLongTail() throws {
        if let reason = FashionMNIST.unavailableReason() { throw XCTSkip(reason) }
        let r = try run(["prepare", "fashion-mnist", "-o", dir, "--n", "3000", "--per-class", "10", "--imbalance", "10"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let seeds = try NPY.readInts(path: dir + "/seeds.npy"), truth = try NPY.readInts(path: dir + "/truth.npy")
        XCTAssertEqual(seeds.count, truth.count)
        var labeled = [Int](repeating: 0, count: 10), rows = [Int](repeating: 0, count: 10)
        for (s, t) in zip(seeds, truth) { rows[t] += 1; if s >= 0 { labeled[s] += 1; XCTAssertEqual(s, t) } }
        XCTAssertEqual(labeled.first, 10); XCTAssertEqual(labeled.last, 1)
        XCTAssertGreaterThan(rows[0], 5 * rows[9], "head class should be about 10x the tail: \(rows)")
    }

    func testPrepareFailsClearlyWithoutDataset() throws {
        let r = try run(["prepare", "fashion-mnist", "-o", dir], environment: ["HDLABEL_FASHION_MNIST": dir + "/nowhere"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("apt-get install dataset-fashion-mnist"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/split.json"))
        let bad = try run(["prepare", "mnist-digits", "-o", dir])
        XCTAssertNotEqual(bad.code, 0)
        XCTAssertTrue(bad.stderr.contains("DATASET") && bad.stderr.contains("fashion-mnist"), bad.stderr)
    }
}
