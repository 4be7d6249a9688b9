import Foundation
import XCTest
@testable import HDLabelBench
@testable import HDLabelCore
import HDLabelIO
import HDLabelTestSupport

final class IDXTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "hdl-idx-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ bytes: [UInt8], _ name: String) -> String {
        let p = dir + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    func images() -> IDX.Array { IDX.Array(dims: [3, 2, 2], bytes: (0 ..< 12).map { UInt8($0 * 20) }) }

    func testReadsGzipImagesAndLabels() throws {
        let img = IDX.encode(images())
        XCTAssertEqual(img.count, 16 + 12)
        let ip = write(IDX.gzip(img), "img.gz")
        let r = try IDX.readImages(path: ip)
        XCTAssertEqual(r.count, 3); XCTAssertEqual(r.rows, 2); XCTAssertEqual(r.cols, 2)
        XCTAssertEqual(r.pixels, images().bytes)
        let lab = IDX.encode(IDX.Array(dims: [3], bytes: [7, 0, 9]))
        XCTAssertEqual(lab.count, 8 + 3)
        XCTAssertEqual(try IDX.readLabels(path: write(IDX.gzip(lab), "lab.gz")), [7, 0, 9])
        // Uncompressed works too.
        XCTAssertEqual(try IDX.readLabels(path: write(lab, "lab.idx")), [7, 0, 9])
        // Wrong kind of file.
        XCTAssertThrowsError(try IDX.readLabels(path: ip)) { XCTAssertTrue("\($0)".contains("1-D")) }
    }

    func testMissingTruncatedCorrupt() throws {
        XCTAssertThrowsError(try IDX.read(path: dir + "/nope.gz")) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
        let gz = IDX.gzip(IDX.encode(images()))
        // Truncated compressed stream.
        XCTAssertThrowsError(try IDX.read(path: write(Array(gz.prefix(gz.count - 6)), "trunc.gz"))) {
            XCTAssertTrue("\($0)".contains("truncated gzip"), "\($0)")
        }
        // Corrupt: flip a CRC byte in the trailer.
        var bad = gz; bad[bad.count - 6] ^= 0xff
        XCTAssertThrowsError(try IDX.read(path: write(bad, "crc.gz"))) { XCTAssertTrue("\($0)".contains("corrupt gzip"), "\($0)") }
        // Valid gzip whose IDX payload is short.
        let short = Array(IDX.encode(images()).dropLast(5))
        XCTAssertThrowsError(try IDX.read(path: write(IDX.gzip(short), "short.gz"))) { XCTAssertTrue("\($0)".contains("truncated IDX data"), "\($0)") }
        // Not IDX at all.
        XCTAssertThrowsError(try IDX.read(path: write(Array("hello world".utf8), "text"))) { XCTAssertTrue("\($0)".contains("not an IDX"), "\($0)") }
        XCTAssertThrowsError(try IDX.read(path: write([0, 0, 8], "tiny"))) { XCTAssertTrue("\($0)".contains("truncated IDX header"), "\($0)") }
        XCTAssertThrowsError(try IDX.read(path: write([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "float"))) { XCTAssertTrue("\($0)".contains("type code"), "\($0)") }
    }

    func testFashionMNISTDirectoryOverrideAndSkipReason() throws {
        // A fake Fashion-MNIST directory built from tiny IDX files.
        for (prefix, n) in [("train", 4), ("t10k", 2)] {
            let px = (0 ..< n * 784).map { UInt8($0 % 256) }
            _ = write(IDX.gzip(IDX.encode(IDX.Array(dims: [n, 28, 28], bytes: px))), "\(prefix)-images-idx3-ubyte.gz")
            _ = write(IDX.gzip(IDX.encode(IDX.Array(dims: [n], bytes: (0 ..< n).map { UInt8($0) }))), "\(prefix)-labels-idx1-ubyte.gz")
        }
        XCTAssertNil(FashionMNIST.unavailableReason(directory: dir))
        let tr = try FashionMNIST.load(split: .train, directory: dir)
        XCTAssertEqual(tr.embeddings.rows, 4); XCTAssertEqual(tr.embeddings.cols, 784)
        XCTAssertEqual(tr.embeddings.data[255], 1); XCTAssertEqual(tr.embeddings.data[0], 0)
        XCTAssertEqual(tr.labels, [0, 1, 2, 3])
        let all = try FashionMNIST.loadAll(directory: dir)
        XCTAssertEqual(all.embeddings.rows, 6); XCTAssertEqual(all.labels, [0, 1, 2, 3, 0, 1])
        let reason = try XCTUnwrap(FashionMNIST.unavailableReason(directory: dir + "/missing"))
        XCTAssertTrue(reason.contains("dataset-fashion-mnist"), reason)
        XCTAssertThrowsError(try FashionMNIST.load(split: .test, directory: dir + "/missing"))
    }

    func testRealFashionMNISTIfInstalled() throws {
        if let reason = FashionMNIST.unavailableReason() { throw XCTSkip(reason) }
        let te = try FashionMNIST.load(split: .test)
        XCTAssertEqual(te.embeddings.rows, 10000); XCTAssertEqual(te.embeddings.cols, 784)
        var counts = [Int](repeating: 0, count: 10); for l in te.labels { counts[l] += 1 }
        XCTAssertEqual(counts, [Int](repeating: 1000, count: 10))
        XCTAssertTrue(te.embeddings.data.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
}

final class PCATests: XCTestCase {
    func testHandCheckableCase() throws {
        // Points (±3, 0) and (0, ±1), shifted by (10, −5): covariance diag(6, 2/3) with n−1 = 3.
        let pts: [Float] = [13, -5, 7, -5, 10, -4, 10, -6]
        let x = Embeddings(rows: 4, cols: 2, data: pts)
        let p = try PCA.fit(x, components: 2)
        XCTAssertEqual(p.mean[0], 10, accuracy: 1e-5); XCTAssertEqual(p.mean[1], -5, accuracy: 1e-5)
        XCTAssertEqual(p.explainedVariance[0], 6, accuracy: 1e-4)
        XCTAssertEqual(p.explainedVariance[1], 2.0 / 3, accuracy: 1e-4)
        XCTAssertEqual(p.totalVariance, 6 + 2.0 / 3, accuracy: 1e-4)
        // Components e1, e2 with the largest entry positive.
        XCTAssertEqual(p.component(0)[0], 1, accuracy: 1e-5); XCTAssertEqual(p.component(0)[1], 0, accuracy: 1e-5)
        XCTAssertEqual(p.component(1)[1], 1, accuracy: 1e-5)
        let y = try p.transform(x)
        let want: [Float] = [3, 0, -3, 0, 0, 1, 0, -1]
        for (a, b) in zip(y.data, want) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        // Transform of new data uses the fitted mean.
        let z = try p.transform(Embeddings(rows: 1, cols: 2, data: [10, -5]))
        XCTAssertEqual(z.data[0], 0, accuracy: 1e-5); XCTAssertEqual(z.data[1], 0, accuracy: 1e-5)
        XCTAssertThrowsError(try p.transform(Embeddings(rows: 1, cols: 3, data: [1, 2, 3])))
        XCTAssertThrowsError(try PCA.fit(x, components: 3))
    }

    func testDiagonalDirectionAndSignConvention() throws {
        // Points along (1, 1)/√2 plus a small orthogonal spread; negate the data: components must not flip.
        let base: [Float] = [2, 2.1, -2, -1.9, 1, 0.9, -1, -1.1, 0.5, 0.5]
        let p1 = try PCA.fit(Embeddings(rows: 5, cols: 2, data: base), components: 1)
        let p2 = try PCA.fit(Embeddings(rows: 5, cols: 2, data: base.map { -$0 }), components: 1)
        let c = p1.component(0)
        XCTAssertEqual(abs(c[0]), Float(0.5).squareRoot(), accuracy: 0.02)
        XCTAssertGreaterThan(c[c[0].magnitude >= c[1].magnitude ? 0 : 1], 0)
        for (a, b) in zip(c, p2.component(0)) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testLargerRandomMatchesVarianceOfProjection() throws {
        var rng = SplitMix64(seed: 3)
        let n = 500, d = 20
        var data = [Float](repeating: 0, count: n * d)
        for i in 0 ..< n { for j in 0 ..< d { data[i * d + j] = Float(Double(rng.below(1000)) / 1000 - 0.5) * Float(j + 1) } }
        let (p, y) = try PCA.fitTransform(Embeddings(rows: n, cols: d, data: data), components: 5)
        for r in 0 ..< 5 {
            var s: Double = 0, s2: Double = 0
            for i in 0 ..< n { let v = Double(y.data[i * 5 + r]); s += v; s2 += v * v }
            XCTAssertEqual(s / Double(n), 0, accuracy: 1e-3)
            XCTAssertEqual(Float(s2 / Double(n - 1)), p.explainedVariance[r], accuracy: p.explainedVariance[r] * 1e-3)
            if r > 0 { XCTAssertLessThanOrEqual(p.explainedVariance[r], p.explainedVariance[r - 1]) }
        }
    }
}

final class SplitTests: XCTestCase {
    /// 10 classes of 100 rows each, interleaved.
    let truth10 = (0 ..< 1000).map { $0 % 10 }

    func testBalancedExactCountsAndNoLeak() throws {
        let s = try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(4), seed: 1))
        XCTAssertEqual(s.labeledPerClass, [Int](repeating: 4, count: 10))
        XCTAssertEqual(s.unlabeledPerClass, [Int](repeating: 96, count: 10))
        XCTAssertEqual(s.indices, Array(0 ..< 1000))
        let seeds = s.seeds(truth: truth10)
        XCTAssertEqual(seeds.filter { $0 >= 0 }.count, 40)
        var per = [Int](repeating: 0, count: 10)
        let labeledSet = Set(s.labeled)
        for (p, v) in seeds.enumerated() {
            if labeledSet.contains(p) { XCTAssertEqual(Int(v), truth10[s.indices[p]]); per[Int(v)] += 1 } else { XCTAssertEqual(v, -1) }
        }
        XCTAssertEqual(per, [Int](repeating: 4, count: 10))
    }

    func testSeedArrayNeverDependsOnHiddenTruth() throws {
        // Changing the labels of unlabeled rows must not change the seed array at all.
        let s = try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(1), seed: 9))
        var scrambled = truth10
        let lab = Set(s.labeled.map { s.indices[$0] })
        for i in 0 ..< scrambled.count where !lab.contains(i) { scrambled[i] = (scrambled[i] + 3) % 10 }
        XCTAssertEqual(s.seeds(truth: truth10), s.seeds(truth: scrambled))
    }

    func testDeterminismAndNesting() throws {
        let a = try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(10), imbalance: 10, seed: 7))
        let b = try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(10), imbalance: 10, seed: 7))
        let c = try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(10), imbalance: 10, seed: 8))
        XCTAssertEqual(a, b); XCTAssertEqual(a.hash, b.hash)
        XCTAssertNotEqual(a.hash, c.hash)
        // Same seed, smaller budget: labeled rows are a subset.
        let small = try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(4), imbalance: 10, seed: 7))
        let big = Set(a.labeled.map { a.indices[$0] })
        XCTAssertTrue(small.labeled.map { small.indices[$0] }.allSatisfy { big.contains($0) })
        // JSON round trip.
        let back = try Split.fromJSON(a.jsonData())
        XCTAssertEqual(back, a); XCTAssertEqual(back.hash, a.hash)
        // The generator itself is pinned (a change would silently change every published split).
        var g = SplitMix64(seed: 0)
        XCTAssertEqual(g.next(), 0xE220_A839_7B1D_CDAF)
    }

    func testLongTailCounts() throws {
        // ρ = 100 over 3 classes: weights 1, 0.1, 0.01. 1000 rows per class.
        let truth = (0 ..< 3000).map { $0 / 1000 }
        let s = try Split.make(truth: truth, numClasses: 3, spec: SplitSpec(budget: .perClass(40), imbalance: 100, seed: 0))
        XCTAssertEqual(s.labeledPerClass, [40, 4, 1])  // round(40·ρ^(−c/2)) with a floor of 1
        // n_max = min(960/1, 996/0.1, 999/0.01) = 960 → 960, 96, 9
        XCTAssertEqual(s.unlabeledPerClass, [960, 96, 9])
        XCTAssertEqual(s.indices.count, 40 + 4 + 1 + 960 + 96 + 9)
        var perClass = [Int](repeating: 0, count: 3)
        for i in s.indices { perClass[truth[i]] += 1 }
        XCTAssertEqual(perClass, [1000, 100, 10])

        // Unlabeled balanced while labeled is long-tailed.
        let u = try Split.make(truth: truth, numClasses: 3, spec: SplitSpec(budget: .perClass(40), imbalance: 100, unlabeled: .balanced, seed: 0))
        XCTAssertEqual(u.labeledPerClass, [40, 4, 1]); XCTAssertEqual(u.unlabeledPerClass, [960, 960, 960])
        // Reversed: the head of the unlabeled part is the last class.
        let r = try Split.make(truth: truth, numClasses: 3, spec: SplitSpec(budget: .perClass(40), imbalance: 100, unlabeled: .reversed, seed: 0))
        XCTAssertEqual(r.unlabeledPerClass, [9, 99, 999])
        // Natural: the data set's own distribution (here 1000/100/10 rows), all remaining rows, or scaled to a cap.
        let lt = (0 ..< 1110).map { $0 < 1000 ? 0 : ($0 < 1100 ? 1 : 2) }
        let nat = try Split.make(truth: lt, numClasses: 3, spec: SplitSpec(budget: .perClass(2), unlabeled: .natural, seed: 0))
        XCTAssertEqual(nat.labeledPerClass, [2, 2, 2]); XCTAssertEqual(nat.unlabeledPerClass, [998, 98, 8])
        let natCap = try Split.make(truth: lt, numClasses: 3, spec: SplitSpec(budget: .perClass(2), unlabeled: .natural, seed: 0, maxPoints: 561))
        XCTAssertEqual(natCap.unlabeledPerClass, [500, 50, 5])  // room 555 / 1110 rows = 0.5
        // Point cap: labeled 45, room 955 over weights 1.11 → n_max = 860.36.
        let cap = try Split.make(truth: truth, numClasses: 3, spec: SplitSpec(budget: .perClass(40), imbalance: 100, seed: 0, maxPoints: 1000))
        XCTAssertEqual(cap.unlabeledPerClass, [860, 86, 8])
        XCTAssertLessThanOrEqual(cap.indices.count, 1000)
    }

    func testTotalBudgetAndErrors() throws {
        let s = try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .total(25), seed: 2))
        XCTAssertEqual(s.labeledPerClass.reduce(0, +), 25)
        XCTAssertEqual(s.labeledPerClass, [3, 3, 3, 3, 3, 2, 2, 2, 2, 2])
        XCTAssertThrowsError(try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .total(5), seed: 2)))
        XCTAssertThrowsError(try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(100), seed: 2)))
        XCTAssertThrowsError(try Split.make(truth: truth10, numClasses: 10, spec: SplitSpec(budget: .perClass(1), imbalance: 0.5, seed: 2)))
        XCTAssertEqual(LabelBudget("10"), .perClass(10)); XCTAssertEqual(LabelBudget("4/class"), .perClass(4))
        XCTAssertEqual(LabelBudget("total=100"), .total(100)); XCTAssertNil(LabelBudget("x"))
    }
}

final class QualityBenchTests: XCTestCase {
    /// Three well-separated Gaussian-ish blobs: every method must beat chance by far.
    func blobs(perClass: Int) throws -> LabeledDataset {
        var rng = SplitMix64(seed: 11)
        var data: [Float] = [], labels: [Int] = []
        for i in 0 ..< 3 * perClass {
            let c = i % 3
            for j in 0 ..< 8 { data.append((j == c ? 5 : 0) + Float(rng.below(1000)) / 1000 - 0.5) }
            labels.append(c)
        }
        return try LabeledDataset(name: "blobs", embeddings: Embeddings(rows: 3 * perClass, cols: 8, data: data), labels: labels)
    }

    func testGridRunsAllMethodsAndTable() throws {
        let ds = try blobs(perClass: 120)
        let bench = QualityBench(datasets: [ds], budgets: [.perClass(4)], balances: [BalanceSetting("balanced")!, BalanceSetting("rho10")!],
                                 seeds: [0, 1], maxPoints: nil, workDir: NSTemporaryDirectory() + "hdl-qb-\(getpid())")
        let (records, splits) = try bench.run()
        XCTAssertEqual(splits.count, 4)
        XCTAssertEqual(records.count, 4 * LabelMethod.allCases.count)
        XCTAssertTrue(QualityBench.failures(records).isEmpty, "\(QualityBench.failures(records))")
        for r in records { XCTAssertGreaterThan(r.accuracy, 0.9, "\(r.method) \(r.balance)") }
        XCTAssertTrue(records.filter { $0.balance == "rho10" }.allSatisfy { !$0.tailRecall.isNaN })
        XCTAssertTrue(records.filter { $0.balance == "balanced" }.allSatisfy { $0.tailRecall.isNaN })
        let md = QualityBench.markdown(records)
        // Two rows in the accuracy table and two in HDL's calibration / pilot table.
        XCTAssertEqual(md.split(separator: "\n").filter { $0.hasPrefix("| blobs") }.count, 4)
        XCTAssertTrue(md.contains("HDL ECE") && md.contains("seed floor (%)") && md.contains("the larger of 3 % and the seed floor"))
        XCTAssertTrue(records.filter { $0.method == "hdl" }.allSatisfy { ($0.ece ?? .nan) >= 0 && ($0.ece ?? .nan) <= 1 })
        XCTAssertTrue(md.contains("**"))
        XCTAssertTrue(md.contains("tail"))
        XCTAssertEqual(QualityBench.csv(records).split(separator: "\n").count, records.count + 1)
        // NaN and below-chance results are flagged.
        var bad = records[0]; bad.accuracy = .nan
        var low = records[1]; low.accuracy = 0.1
        XCTAssertEqual(QualityBench.failures([bad, low, records[2]]).count, 2)
        // A scikit-learn reference below chance is a result (kept in the table), NaN still fails.
        var peerLow = records[1]; peerLow.method = "selftrain"; peerLow.accuracy = 0.01
        var peerNaN = peerLow; peerNaN.accuracy = .nan
        XCTAssertEqual(QualityBench.failures([peerLow, peerNaN]).count, 1)
        XCTAssertNoThrow(try QualityBench.jsonEncoder().encode([bad]))
    }

    func testBalanceParsing() {
        XCTAssertEqual(BalanceSetting("balanced"), BalanceSetting(imbalance: 1))
        XCTAssertEqual(BalanceSetting("rho100"), BalanceSetting(imbalance: 100))
        XCTAssertEqual(BalanceSetting("rho10-ureversed"), BalanceSetting(imbalance: 10, unlabeled: .reversed))
        XCTAssertEqual(BalanceSetting("rho10-ubalanced")?.description, "rho10-ubalanced")
        XCTAssertEqual(BalanceSetting("natural")?.description, "natural")
        XCTAssertEqual(BalanceSetting("natural")?.isLongTailed, true)
        XCTAssertNil(BalanceSetting("rho0.5")); XCTAssertNil(BalanceSetting("rho10-ufoo")); XCTAssertNil(BalanceSetting("lt"))
    }

    func testDatasetSpecParsing() throws {
        XCTAssertThrowsError(try LabeledDataset.load(spec: "nonsense")) { XCTAssertTrue("\($0)".contains("NAME=")) }
        let dir = NSTemporaryDirectory() + "hdl-ds-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPY.write(Embeddings(rows: 3, cols: 2, data: [1, 0, 0, 1, 1, 1]), to: dir + "/e.npy")
        try NPY.write(ints: [0, 1, 1], to: dir + "/l.npy")
        let ds = try LabeledDataset.load(spec: "toy=\(dir)/e.npy,\(dir)/l.npy")
        XCTAssertEqual(ds.name, "toy"); XCTAssertEqual(ds.numClasses, 2); XCTAssertEqual(ds.classCounts, [1, 2])
        try NPY.write(ints: [0, -1, 1], to: dir + "/bad.npy")
        XCTAssertThrowsError(try LabeledDataset.load(spec: "toy=\(dir)/e.npy,\(dir)/bad.npy"))
    }
}

/// The PNG writer behind `hdlabel items`: pixels survive a round trip, scaling repeats them, headers and CRCs are right.
final class PNGTests: XCTestCase {
    func testGrayRoundTripAndScale() throws {
        let px: [UInt8] = [0, 50, 100, 150, 200, 255]  // 3 wide, 2 high
        let png = try PNG.encodeGray(width: 3, height: 2, pixels: px)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertTrue(PNG.size(of: png)! == (3, 2))
        let d = try PNG.decodeGray(png)
        XCTAssertEqual(d.width, 3); XCTAssertEqual(d.height, 2); XCTAssertEqual(d.pixels, px)
        let big = try PNG.decodeGray(try PNG.encodeGray(width: 3, height: 2, pixels: px, scale: 2))
        XCTAssertEqual(big.width, 6); XCTAssertEqual(big.height, 4)
        XCTAssertEqual(Array(big.pixels[0 ..< 6]), [0, 0, 50, 50, 100, 100]); XCTAssertEqual(Array(big.pixels[18 ..< 24]), [150, 150, 200, 200, 255, 255])
        XCTAssertEqual(try PNG.encodeGray(width: 3, height: 2, pixels: px), png, "deterministic bytes")
        var corrupt = png; corrupt[30] ^= 0xff
        XCTAssertThrowsError(try PNG.decodeGray(corrupt))
        XCTAssertThrowsError(try PNG.encodeGray(width: 3, height: 3, pixels: px))
        XCTAssertNil(PNG.size(of: [1, 2, 3]))
    }
}
