import Foundation
import XCTest
import HDLabelCore
import HDLabelIO

/// `hdlabel issues` and `hdlabel review export|import` run as a user would.
final class ReviewCLITests: CLITestCase {

    /// 3 separated clusters in 5-D, 40 points each; returns embeddings path and true classes.
    func writeEmbeddings() throws -> (String, [Int]) {
        var x = [Float](), y = [Int]()
        var state: UInt64 = 7
        func noise() -> Float { state = state &* 6364136223846793005 &+ 1442695040888963407; return Float(state >> 40) / Float(1 << 24) }
        for i in 0 ..< 120 { let c = i % 3; for j in 0 ..< 5 { x.append((j == c ? 5 : 0) + noise()) }; y.append(c) }
        let e = dir + "/emb.npy"
        try NPY.write(Embeddings(rows: 120, cols: 5, data: x), to: e)
        return (e, y)
    }

    /// The embeddings of `writeEmbeddings`, seeds on the first 6 rows, and the run `hdlabel label --k 5` wrote from them:
    /// (embeddings path, true classes, seeds path, run CSV path).
    func labeledRun() throws -> (String, [Int], String, String) {
        let (emb, y) = try writeEmbeddings()
        let seeds = dir + "/seeds.npy"
        try NPY.write(ints: (0 ..< 120).map { $0 < 6 ? y[$0] : -1 }, to: seeds)
        let runCSV = dir + "/run.csv"
        XCTAssertEqual(try run(["label", emb, seeds, "-o", runCSV, "--k", "5"]).code, 0)
        return (emb, y, seeds, runCSV)
    }

    func testIssuesFindsPlantedFlips() throws {
        let (emb, y) = try writeEmbeddings()
        var noisy = y
        for i in [4, 50, 99] { noisy[i] = (y[i] + 1) % 3 }
        let lab = dir + "/noisy.npy"
        try NPY.write(ints: noisy, to: lab)
        let out = dir + "/issues.csv"
        let r = try run(["issues", emb, lab, "-o", out, "--neighbors", "10"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "id,given,suggested,score,rank")
        let rows = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(Set(rows.map { Int($0[0])! }), [4, 50, 99])
        for f in rows { XCTAssertEqual(Int(f[2]), y[Int(f[0])!], "suggested = true class") }
        XCTAssertEqual(rows.map { $0[4] }, ["1", "2", "3"])
        let bad = try run(["issues", emb, lab, "-o", dir + "/x.csv", "--rule", "vote"])
        XCTAssertNotEqual(bad.code, 0)
        // MPI-only options outside mpirun, and --graph-k >= n: clear errors, no output.
        let mpiOnly = try run(["issues", emb, lab, "-o", dir + "/x.csv", "--timings", dir + "/t.json"])
        XCTAssertNotEqual(mpiOnly.code, 0); XCTAssertTrue(mpiOnly.stderr.contains("an MPI run"), mpiOnly.stderr)
        let wide = try run(["issues", emb, lab, "-o", dir + "/x.csv", "--graph-k", "120"])
        XCTAssertNotEqual(wide.code, 0); XCTAssertTrue(wide.stderr.contains("graph-k"), wide.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.csv"))
    }

    func testReviewExportImportRoundTripAndConflicts() throws {
        let (emb, y, seeds, runCSV) = try labeledRun()

        // Label Studio export: tasks with data + id, a prediction, and the labeling config beside it.
        let json = dir + "/review.json"
        let ex = try run(["review", "export", runCSV, emb, "--count", "10", "-o", json])
        XCTAssertEqual(ex.code, 0, ex.stderr)
        var tasks = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [[String: Any]])
        XCTAssertEqual(tasks.count, 10)
        let ids = tasks.map { ($0["data"] as! [String: Any])["sample_id"] as! Int }
        XCTAssertTrue(ids.allSatisfy { $0 >= 6 }, "seeds are never proposed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: json + ".config.xml"))

        // Simulated reviewers answer with the truth, in Label Studio's export format.
        for t in tasks.indices {
            tasks[t]["annotations"] = [["was_cancelled": false, "result": [["from_name": "label", "to_name": "text", "type": "choices",
                                                                             "value": ["choices": [String(y[ids[t]])]]]]]]
        }
        let answers = dir + "/export.json"
        try JSONSerialization.data(withJSONObject: tasks).write(to: URL(fileURLWithPath: answers))
        let newSeeds = dir + "/new-seeds.npy"
        let im = try run(["review", "import", answers, seeds, "-o", newSeeds])
        XCTAssertEqual(im.code, 0, im.stderr)
        let ns = try NPY.readInts(path: newSeeds)
        XCTAssertEqual(ns.filter { $0 >= 0 }.count, 16)
        for i in ids { XCTAssertEqual(ns[i], y[i]) }

        // CSV review sheet → CSV seeds; an unknown class and an unknown id are reported, not applied.
        let csv = dir + "/review.csv"
        XCTAssertEqual(try run(["review", "export", runCSV, emb, "--count", "3", "-o", csv]).code, 0)
        var sheet = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(sheet[0], "id,label,confidence,score,rank,item,context,corrected")
        let first = Int(sheet[1].split(separator: ",")[0])!
        sheet[1] += String(y[first]); sheet[2] += "zebra"; sheet.append("500,,,,,,,1")
        try (sheet.joined(separator: "\n") + "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        let outCSV = dir + "/seeds2.csv"
        let im2 = try run(["review", "import", csv, seeds, "-o", outCSV])
        XCTAssertEqual(im2.code, 0, im2.stderr)
        XCTAssertTrue(im2.stderr.contains("unknown class 'zebra'"), im2.stderr)
        XCTAssertTrue(im2.stderr.contains("unknown id 500"), im2.stderr)
        XCTAssertEqual(try LabelsIO.read(path: outCSV, n: 120).seeds.filter { $0 >= 0 }.count, 7)

        // A conflicting answer: listed, nothing written, unless --force.
        let conflict = dir + "/conflict.csv"
        try "id,label\n0,\((y[0] + 1) % 3)\n20,\(y[20])\n".write(toFile: conflict, atomically: true, encoding: .utf8)
        let out3 = dir + "/seeds3.npy"
        let c1 = try run(["review", "import", conflict, seeds, "-o", out3])
        XCTAssertNotEqual(c1.code, 0)
        XCTAssertTrue(c1.stderr.contains("conflict: sample 0"), c1.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out3))
        let c2 = try run(["review", "import", conflict, seeds, "-o", out3, "--force"])
        XCTAssertEqual(c2.code, 0, c2.stderr)
        let forced = try NPY.readInts(path: out3)
        XCTAssertEqual(forced[0], (y[0] + 1) % 3); XCTAssertEqual(forced[20], y[20])
    }

    /// What reviewers see: items (text or images) in the tasks, class names as the choices, the answers back as
    /// seeds with the same --classes; an items file that does not match the run is one error and no output.
    func testReviewExportShowsItemsAndClassNames() throws {
        let (emb, y, seeds, runCSV) = try labeledRun()
        let names = ["red fox", "blue jay", "green frog"]

        // Text items, one per line in row order.
        let texts = dir + "/items.txt"
        try ((0 ..< 120).map { "item \($0) of \(names[y[$0]])" }.joined(separator: "\n") + "\n").write(toFile: texts, atomically: true, encoding: .utf8)
        let json = dir + "/text.json"
        let ex = try run(["review", "export", runCSV, emb, "--count", "5", "-o", json, "--items", texts, "--classes", names.joined(separator: ",")])
        XCTAssertEqual(ex.code, 0, ex.stderr)
        let tasks = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [[String: Any]])
        for t in tasks {
            let d = t["data"] as! [String: Any], id = d["sample_id"] as! Int
            XCTAssertEqual(d["text"] as? String, "item \(id) of \(names[y[id]])")
            XCTAssertTrue(names.contains(d["current_label"] as! String), "\(d)")
            XCTAssertTrue((d["context"] as! String).hasPrefix("nearest labeled: "), "\(d)")
        }
        let config = try String(contentsOfFile: json + ".config.xml", encoding: .utf8)
        XCTAssertTrue(config.contains("<Choice value=\"blue jay\"/>") && config.contains("value=\"$text\""), config)

        // The reviewer's answers (names) become seeds in the .npy of class ids.
        var answered = tasks
        for t in answered.indices {
            let id = (answered[t]["data"] as! [String: Any])["sample_id"] as! Int
            answered[t]["annotations"] = [["result": [["value": ["choices": [names[y[id]]]]]]]]
        }
        let export = dir + "/export.json", newSeeds = dir + "/seeds2.npy"
        try JSONSerialization.data(withJSONObject: answered).write(to: URL(fileURLWithPath: export))
        let im = try run(["review", "import", export, seeds, "-o", newSeeds, "--classes", names.joined(separator: ",")])
        XCTAssertEqual(im.code, 0, im.stderr)
        let ns = try NPY.readInts(path: newSeeds)
        XCTAssertEqual(ns.filter { $0 >= 0 }.count, 11)
        for t in tasks { let id = (t["data"] as! [String: Any])["sample_id"] as! Int; XCTAssertEqual(ns[id], y[id]) }

        // Image items: served through Label Studio's local-files root; missing files are reported, not fatal.
        try FileManager.default.createDirectory(atPath: dir + "/img", withIntermediateDirectories: true)
        for i in stride(from: 0, to: 120, by: 2) { try Data([0]).write(to: URL(fileURLWithPath: dir + "/img/\(i).png")) }
        let imgCSV = dir + "/items.csv"
        try ("id,image\n" + (0 ..< 120).map { "\($0),img/\($0).png\n" }.joined()).write(toFile: imgCSV, atomically: true, encoding: .utf8)
        let ij = dir + "/img.json", ic = dir + "/img.csv"
        let ex2 = try run(["review", "export", runCSV, emb, "--count", "10", "-o", ij, "--items", imgCSV, "--local-files-root", dir])
        XCTAssertEqual(ex2.code, 0, ex2.stderr)
        let itasks = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ij))) as? [[String: Any]])
        var missing = Set<String>()
        for t in itasks {
            let d = t["data"] as! [String: Any], id = d["sample_id"] as! Int
            XCTAssertEqual(d["image"] as? String, "/data/local-files/?d=img/\(id).png")
            if id % 2 == 1 { missing.insert("\(id)") }
            let seedImage = d["seed_image"] as! String
            XCTAssertTrue(seedImage.hasPrefix("/data/local-files/?d=img/"), seedImage)
            let seedId = Int(seedImage.dropFirst("/data/local-files/?d=img/".count).dropLast(4))!
            XCTAssertTrue(seedId < 6, "the nearest labeled sample is a seed: \(seedId)")
            if seedId % 2 == 1 { missing.insert("\(seedId)") }
        }
        XCTAssertFalse(missing.isEmpty, "the batch should reach rows without a file (odd ids)")
        XCTAssertTrue(ex2.stderr.contains("warning: \(missing.count) of "), ex2.stderr)
        XCTAssertTrue(try String(contentsOfFile: ij + ".config.xml", encoding: .utf8).contains("<Image name=\"image\" value=\"$image\""))
        XCTAssertEqual(try run(["review", "export", runCSV, emb, "--count", "10", "-o", ic, "--items", imgCSV]).code, 0)
        let sheet = try String(contentsOfFile: ic, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertTrue(sheet[1].contains(",\(dir)/img/"), "CSV item column holds the image path: \(sheet[1])")

        // Items that do not match the run: one clear error, no output.
        let short = dir + "/short.csv", out = dir + "/never.json"
        try ("id,image\n" + (0 ..< 119).map { "\($0),img/\($0).png\n" }.joined()).write(toFile: short, atomically: true, encoding: .utf8)
        let bad = try run(["review", "export", runCSV, emb, "-o", out, "--items", short])
        XCTAssertNotEqual(bad.code, 0); XCTAssertTrue(bad.stderr.contains("has 119 rows but the run has 120"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out)); XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".config.xml"))
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        let badRoot = try run(["review", "export", runCSV, emb, "-o", out, "--items", imgCSV, "--local-files-root", dir + "/elsewhere"])
        XCTAssertNotEqual(badRoot.code, 0); XCTAssertTrue(badRoot.stderr.contains("outside the local-files root"), badRoot.stderr)
        let badClasses = try run(["review", "export", runCSV, emb, "-o", out, "--classes", "a,b"])
        XCTAssertNotEqual(badClasses.code, 0); XCTAssertTrue(badClasses.stderr.contains("neither one of the 2 listed classes"), badClasses.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
