import Foundation
import XCTest
import HDLabelCore
import HDLabelBench
import HDLabelReport
import HDLabelIO

/// `hdlabel report`: a real run directory (Fashion-MNIST 3000 rows when the dataset is installed, else synthetic
/// clusters) → one self-contained HTML page with every chart; bad input → one error line and no page.
final class ReportCLITests: CLITestCase {

    /// Writes a run directory (hdl.csv, knn.csv, spreading.csv with manifests, a timings JSON) and returns
    /// (runDir, truth, seeds).
    func makeRun() throws -> (run: String, truth: String, seeds: String) {
        let data = dir + "/data", runDir = dir + "/run"
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        if FashionMNIST.unavailableReason() == nil {
            let p = try run(["prepare", "fashion-mnist", "-o", data, "--n", "3000", "--per-class", "10"])
            XCTAssertEqual(p.code, 0, p.stderr)
        } else {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            var x = [Float](), y = [Int](), s = [Int]()
            var state: UInt64 = 7
            func noise() -> Float { state = state &* 6364136223846793005 &+ 1442695040888963407; return Float(state >> 40) / Float(1 << 24) }
            for i in 0 ..< 600 {
                let c = i % 4
                for j in 0 ..< 8 { x.append((j == c ? 2 : 0) + 1.5 * noise()) }
                y.append(c); s.append(i < 20 ? c : -1)
            }
            try NPY.write(Embeddings(rows: 600, cols: 8, data: x), to: data + "/embeddings.npy")
            try NPY.write(ints: s, to: data + "/seeds.npy"); try NPY.write(ints: y, to: data + "/truth.npy")
        }
        for m in ["hdl", "knn", "spreading"] {
            let r = try run(["label", data + "/embeddings.npy", data + "/seeds.npy", "-o", "\(runDir)/\(m).csv", "--method", m, "-q"])
            XCTAssertEqual(r.code, 0, r.stderr)
        }
        let timings = #"{"ranks":2,"maxSeconds":{"read":0.01,"normalize":0.002,"compute":0.4,"commWait":0.01,"gather":0.02,"hierarchy":1.1,"broadcast":0.001,"write":0.01},"totalSeconds":1.6,"maxBytesSentPerRank":1000,"totalBytesSent":2000,"info":{}}"#
        try AtomicFile.write(timings, to: runDir + "/timings-np2.json")
        return (runDir, data + "/truth.npy", data + "/seeds.npy")
    }

    func testReportHasEverySection() throws {
        let r = try makeRun()
        let out = dir + "/report.html"
        let budget = Self.root.appendingPathComponent("benchmarks/results/quality/records-fashion.csv").path
        var args = ["report", r.run, "-o", out, "--truth", r.truth, "--seeds", r.seeds, "--seconds-per-label", "30"]
        if FileManager.default.fileExists(atPath: budget) { args += ["--budget-table", budget] }
        let res = try run(args)
        XCTAssertEqual(res.code, 0, res.stderr)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        for id in ReportHTML.sectionIds { XCTAssertTrue(html.contains("<section id=\"\(id)\">"), "section \(id) missing") }
        // methods, budget, layers, calibration, 2 × classes, confusion, timings
        let svgs = html.components(separatedBy: "<svg").count - 1
        XCTAssertEqual(svgs, FileManager.default.fileExists(atPath: budget) ? 8 : 7, "svg charts")
        for f in ["hdl.csv", "knn.csv", "spreading.csv", "timings-np2.json: 2 ranks", "annotation time", "accuracy of hdl"] {
            XCTAssertTrue(html.contains(f), f)
        }
        for banned in ["<script", "src=", "href=", "@import", "url("] { XCTAssertFalse(html.contains(banned), "external or scripted: \(banned)") }
        XCTAssertTrue(html.hasSuffix("</html>\n"))

        // Without truth: still a page; the truth-only charts say what they need.
        let bare = dir + "/bare.html"
        let b = try run(["report", r.run, "-o", bare])
        XCTAssertEqual(b.code, 0, b.stderr)
        let bh = try String(contentsOfFile: bare, encoding: .utf8)
        for id in ReportHTML.sectionIds { XCTAssertTrue(bh.contains("<section id=\"\(id)\">"), id) }
        XCTAssertTrue(bh.contains("needs <code>--truth</code>"))

        // Rendering in headless Chromium, when it is installed.
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard chromium != nil else { throw XCTSkip("chromium not installed: screenshot check skipped (apt-get install -y chromium)") }
        let png = dir + "/report.png"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.root.appendingPathComponent("Scripts/report-screenshot.sh").path, out, png]
        let e = Pipe(); p.standardError = e; p.standardOutput = Pipe()
        try p.run()
        let err = String(decoding: e.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, err)
        let img = try Data(contentsOf: URL(fileURLWithPath: png))
        XCTAssertEqual(Array(img.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "not a PNG")
        // Width and height from the IHDR chunk.
        let w = img[16 ..< 20].reduce(0) { $0 << 8 | Int($1) }, h = img[20 ..< 24].reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(w, 1280); XCTAssertEqual(h, 4000)
        XCTAssertGreaterThan(img.count, 50_000, "a blank page compresses to a few KB")
    }

    func testBadInputFailsCleanly() throws {
        let out = dir + "/never.html"
        func expectFailure(_ args: [String], mentions fragment: String, line: UInt = #line) throws {
            let r = try run(args)
            XCTAssertNotEqual(r.code, 0, "should fail: \(args)", line: line)
            XCTAssertTrue(r.stderr.contains(fragment), "stderr '\(r.stderr)' should mention '\(fragment)'", line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one error line: \(r.stderr)", line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output may be left behind", line: line)
        }
        try expectFailure(["report", dir + "/missing", "-o", out], mentions: "no such directory")
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try AtomicFile.write("id,label\n0,a\n", to: empty + "/seeds.csv")   // a CSV, but not a labeling run
        try expectFailure(["report", empty, "-o", out], mentions: "no label CSV")
        let rd = dir + "/run"
        try FileManager.default.createDirectory(atPath: rd, withIntermediateDirectories: true)
        try AtomicFile.write("id,label,confidence,layer,source\n0,0,1.0,0,seed\n1,1,1.0,0,seed\n2,1,0.5,1,propagated\n", to: rd + "/hdl.csv")
        let t = dir + "/truth.npy"; try NPY.write(ints: [0, 1, 1, 0], to: t)
        try expectFailure(["report", rd, "-o", out, "--truth", t], mentions: "has 4 labels but the label files have 3 rows")
        let s = dir + "/seeds.npy"; try NPY.write(ints: [0, -1], to: s)
        try expectFailure(["report", rd, "-o", out, "--seeds", s], mentions: "has 2 labels")
        try expectFailure(["report", rd, "-o", out, "--budget-table", dir + "/none.csv"], mentions: "no such file")
        // The 3-row run with matching truth works.
        let t3 = dir + "/t3.npy"; try NPY.write(ints: [0, 1, 1], to: t3)
        let ok = try run(["report", rd, "-o", out, "--truth", t3])
        XCTAssertEqual(ok.code, 0, ok.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
    }
}
