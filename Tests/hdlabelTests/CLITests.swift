import Foundation
import XCTest
import HDLabelCore
import HDLabelIO

/// End-to-end tests of the `hdlabel` executable: exit codes, one-line errors, outputs and manifests.
final class CLITests: CLITestCase {

    /// 3 well-separated clusters in 5-D, 40 points each, 2 seeds per cluster.
    func writeData(mutate: (inout [Float]) -> Void = { _ in }) throws -> (emb: String, seeds: String, truth: String) {
        var x = [Float](), y = [Int](), s = [Int]()
        var state: UInt64 = 42
        func noise() -> Float { state = state &* 6364136223846793005 &+ 1442695040888963407; return Float(state >> 40) / Float(1 << 24) }
        for i in 0 ..< 120 {
            let c = i % 3
            for j in 0 ..< 5 { x.append((j == c ? 5 : 0) + noise()) }
            y.append(c); s.append(i < 6 ? c : -1)
        }
        mutate(&x)
        let tag = UUID().uuidString.prefix(8)
        let e = dir + "/emb-\(tag).npy", sp = dir + "/seeds-\(tag).npy", t = dir + "/truth-\(tag).npy"
        try NPY.write(Embeddings(rows: 120, cols: 5, data: x), to: e)
        try NPY.write(ints: s, to: sp); try NPY.write(ints: y, to: t)
        return (e, sp, t)
    }

    func testLabelWritesCSVManifestAndScores() throws {
        let d = try writeData()
        let out = dir + "/labels.csv"
        let r = try run(["label", d.emb, d.seeds, "-o", out, "--k", "5"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 121); XCTAssertEqual(lines[0], "id,label,confidence,layer,source")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + ".manifest.json"))) as! [String: Any]
        XCTAssertEqual(manifest["method"] as? String, "hdl"); XCTAssertEqual(manifest["chosenK"] as? Int, 5)
        XCTAssertNotNil((manifest["inputs"] as? [String: String])?["embeddings_hash"])
        let ev = try run(["evaluate", out, d.truth, d.seeds])
        XCTAssertEqual(ev.code, 0, ev.stderr)
        XCTAssertTrue(ev.stdout.hasPrefix("accuracy 1.0000"), ev.stdout)
    }

    /// `--min-confidence c`: non-seed rows below c get an empty label and source `abstained`, the others are
    /// unchanged; the command prints coverage and expected accuracy, the manifest records the threshold and the
    /// calibration (none here: 2 seeds per class leave the pilot too few held-out seeds, and it says so); `evaluate`
    /// scores the kept rows and reports coverage.
    func testMinConfidenceAbstainsAndEvaluateScoresKeptRows() throws {
        // Noise of the clusters' scale: confidences spread out (and some labels go wrong).
        let d = try writeData { x in
            var state: UInt64 = 7
            for j in 0 ..< x.count { state = state &* 6364136223846793005 &+ 1442695040888963407; x[j] += 6 * Float(state >> 40) / Float(1 << 24) }
        }
        let full = dir + "/full.csv", cut = dir + "/cut.csv"
        XCTAssertEqual(try run(["label", d.emb, d.seeds, "-o", full, "--k", "5"]).code, 0)
        func rows(_ path: String) throws -> [[String]] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        }
        let before = try rows(full)
        // A threshold halfway between two printed values near the median (the CSV rounds to 4 decimals).
        let conf = Array(Set(before.filter { $0[4] != "seed" }.map { Double($0[2])! })).sorted()
        XCTAssertGreaterThan(conf.count, 3, "confidences should spread out")
        let c = (conf[conf.count / 2 - 1] + conf[conf.count / 2]) / 2
        let r = try run(["label", d.emb, d.seeds, "-o", cut, "--k", "5", "--min-confidence", "\(c)"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("coverage") && r.stderr.contains("expected accuracy of the kept rows"), r.stderr)
        XCTAssertTrue(r.stderr.contains("calibration: none ("), r.stderr)
        var abstained = 0, keptRight = 0
        for (a, b) in zip(before, try rows(cut)) {
            if a[4] == "seed" { XCTAssertEqual(a, b); continue }
            if Double(a[2])! < c {
                XCTAssertEqual(b[1], ""); XCTAssertEqual(b[4], "abstained"); XCTAssertEqual(b[2], a[2]); abstained += 1
            } else {
                XCTAssertEqual(a, b)
                if Int(b[1]) == Int(b[0])! % 3 { keptRight += 1 }
            }
        }
        XCTAssertGreaterThan(abstained, 0)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cut + ".manifest.json"))) as! [String: Any]
        XCTAssertEqual(manifest["minConfidence"] as? Double, c)
        XCTAssertEqual(manifest["calibration"] as? String, "none")
        XCTAssertFalse((manifest["calibrationReason"] as? String ?? "").isEmpty)
        let ev = try run(["evaluate", cut, d.truth, d.seeds])
        XCTAssertEqual(ev.code, 0, ev.stderr)
        let kept = 114 - abstained
        XCTAssertTrue(ev.stdout.contains(String(format: "coverage %.4f", Double(kept) / 114)), ev.stdout)
        XCTAssertTrue(ev.stdout.contains(String(format: "kept accuracy %.4f", Double(keptRight) / Double(kept))), ev.stdout)
        XCTAssertTrue(ev.stdout.contains("\(kept) kept, \(abstained) abstained"), ev.stdout)
    }

    /// Seeds given by class name: `evaluate` maps the CSV's names to ids through the manifest written beside it, or
    /// through --classes; with neither it stops with a clear error instead of scoring 0.
    func testEvaluateNamedLabelsUsesManifestOrClasses() throws {
        let d = try writeData()
        let names = ["ant", "bee", "cat"]
        let csv = dir + "/named.csv"
        try AtomicFile.write("id,label\n" + (0 ..< 6).map { "\($0),\(names[$0 % 3])" }.joined(separator: "\n") + "\n", to: csv)
        let out = dir + "/named-out.csv"
        XCTAssertEqual(try run(["label", d.emb, csv, "-o", out, "--classes", names.joined(separator: ","), "--k", "5"]).code, 0)
        let viaManifest = try run(["evaluate", out, d.truth, d.seeds])
        XCTAssertEqual(viaManifest.code, 0, viaManifest.stderr)
        XCTAssertTrue(viaManifest.stdout.hasPrefix("accuracy 1.0000"), viaManifest.stdout)
        let viaOption = try run(["evaluate", out, d.truth, d.seeds, "--classes", names.joined(separator: ",")])
        XCTAssertEqual(viaOption.stdout, viaManifest.stdout)
        try FileManager.default.removeItem(atPath: out + ".manifest.json")
        let none = try run(["evaluate", out, d.truth, d.seeds])
        XCTAssertNotEqual(none.code, 0)
        XCTAssertTrue(none.stderr.contains("holds class names"), none.stderr)
        XCTAssertTrue(none.stdout.isEmpty, "no accuracy may be printed: \(none.stdout)")
    }

    /// `hdlabel graph` then `label --knn-graph`: the same labels as building the graph in the run; a graph of other
    /// embeddings (row count) or too narrow for the run is refused with one error line and no output.
    func testKnnGraphRoundTrip() throws {
        let d = try writeData()
        let prefix = dir + "/g"
        let built = try run(["graph", d.emb, "-o", prefix, "--k", "30"])
        XCTAssertEqual(built.code, 0, built.stderr)
        let direct = dir + "/direct.csv", reused = dir + "/reused.csv"
        XCTAssertEqual(try run(["label", d.emb, d.seeds, "-o", direct]).code, 0)
        let r = try run(["label", d.emb, d.seeds, "-o", reused, "--knn-graph", prefix])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(try String(contentsOfFile: direct, encoding: .utf8), try String(contentsOfFile: reused, encoding: .utf8))
        let narrow = dir + "/narrow"
        XCTAssertEqual(try run(["graph", d.emb, "-o", narrow, "--k", "5"]).code, 0)
        try expectFailure(["label", d.emb, d.seeds, "-o", dir + "/n.csv", "--knn-graph", narrow], mentions: "neighbours per row")
        let other = try writeData { _ in }
        var small = try NPY.readEmbeddings(path: other.emb); small = small.slice(rows: 0 ..< 60)
        let smallEmb = dir + "/small.npy"; try NPY.write(small, to: smallEmb)
        let smallSeeds = dir + "/small-seeds.npy"; try NPY.write(ints: (0 ..< 60).map { $0 < 6 ? $0 % 3 : -1 }, to: smallSeeds)
        try expectFailure(["label", smallEmb, smallSeeds, "-o", dir + "/m.csv", "--knn-graph", prefix], mentions: "rows")
    }

    /// Labels and manifest are one unit: when the manifest cannot be written, the labels are not written either, and
    /// an existing labels file is left byte for byte as it was.
    func testLabelsAndManifestAreWrittenTogether() throws {
        let d = try writeData()
        let out = dir + "/pair.csv"
        try FileManager.default.createDirectory(atPath: out + ".manifest.json", withIntermediateDirectories: false)
        let r = try run(["label", d.emb, d.seeds, "-o", out, "--k", "5"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("manifest.json"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "labels written without their manifest")
        try AtomicFile.write("old contents\n", to: out)
        XCTAssertNotEqual(try run(["label", d.emb, d.seeds, "-o", out, "--k", "5"]).code, 0)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "old contents\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp.") }, [], "temporary files left behind")
    }

    /// Bad input: non-zero exit, a single error line naming the problem, and no output file.
    func expectFailure(_ args: [String], mentions fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let out = args[args.firstIndex(of: "-o")! + 1]
        let r = try run(args)
        XCTAssertNotEqual(r.code, 0, "should fail: \(args)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(fragment), "stderr '\(r.stderr)' should mention '\(fragment)'", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output may be left behind", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".manifest.json"), file: file, line: line)
    }

    func testBadInputsFailCleanly() throws {
        let good = try writeData()
        let out = dir + "/never.csv"
        let nan = try writeData { $0[17] = .nan }
        try expectFailure(["label", nan.emb, nan.seeds, "-o", out], mentions: "NaN")
        let zero = try writeData { for j in 0 ..< 5 { $0[10 + j] = 0 } }
        try expectFailure(["label", zero.emb, zero.seeds, "-o", out], mentions: "row 2 is all zeros")
        try expectFailure(["label", good.emb, good.seeds, "-o", out, "--k", "500"], mentions: "k < number of points")
        try expectFailure(["label", good.emb, good.seeds, "-o", out, "--k", "zero"], mentions: "zero")
        let short = dir + "/short.npy"; try NPY.write(ints: [0, 1, 2], to: short)
        try expectFailure(["label", good.emb, short, "-o", out], mentions: "does not match row count")
        let oneClass = dir + "/one.npy"; try NPY.write(ints: (0 ..< 120).map { $0 < 3 ? 0 : -1 }, to: oneClass)
        try expectFailure(["label", good.emb, oneClass, "-o", out], mentions: "at least two classes")
        let csv = dir + "/s.csv"; try AtomicFile.write("id,label\n0,a\n1,b\n", to: csv)
        try expectFailure(["label", good.emb, csv, "-o", out, "--classes", "a,b,c"], mentions: "class 2 has no seed")
        let empty = dir + "/empty.npy"; FileManager.default.createFile(atPath: empty, contents: Data())
        try expectFailure(["label", empty, good.seeds, "-o", out], mentions: "empty")
        let trunc = dir + "/trunc.npy"
        try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: good.emb)).prefix(300), to: trunc)
        try expectFailure(["label", trunc, good.seeds, "-o", out], mentions: "truncated")
        try expectFailure(["label", good.seeds, good.seeds, "-o", out], mentions: "float32 or float64")
        try expectFailure(["label", dir + "/nope.npy", good.seeds, "-o", out], mentions: "no such file")
    }
}
