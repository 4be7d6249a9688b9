import Foundation
import XCTest

/// Every option of every command, checked from one table: numeric options reject NaN, ±inf and out-of-range values,
/// enumerated ones reject unknown names — each with one error line naming the option and the value, a non-zero exit,
/// and before any work (the positional files here do not exist, so any work would fail differently).
final class OptionValidationTests: CLITestCase {
    /// Positional arguments that get each command past parsing.
    static let positionals: [String: [String]] = [
        "label": ["e.npy", "l.npy", "-o", "o.csv"], "cluster": ["e.npy", "l.npy", "-o", "o.csv"],
        "evaluate": ["p.csv", "t.npy", "s.npy"], "prepare": ["fashion-mnist", "-o", "out"],
        "issues": ["e.npy", "l.npy", "-o", "o.csv"], "review export": ["r.csv", "e.npy", "-o", "o.csv"],
        "review import": ["c.csv", "s.npy", "-o", "o.csv"], "report": ["rundir", "-o", "o.html"],
        "bench quality": [], "bench graph": [], "bench noise": [], "bench review": [], "graph": ["e.npy", "-o", "g"],
        "items": ["datadir", "-o", "out"],
    ]

    /// Options shared by every command that labels (`LabelingOptions`).
    static let labeling: [String: [String]] = [
        "--k": ["0", "-3", "nan", "x"], "--k-max": ["0", "5000", "nan"], "--alpha": ["nan", "inf", "0", "1", "-0.5"],
        "--tau-start": ["nan", "0", "1.5"], "--tau-min": ["nan", "0", "0.9"], "--layer-fraction": ["nan", "0", "2"], "--global-layer-fraction": ["nan", "0", "1.5"],
        "--evidence-margin": ["nan", "-1", "inf"], "--prior-flattening": ["nan", "-0.1", "1.1"],
        "--shrinkage-floor": ["nan", "-0.1", "1.1"], "--gamma": ["nan", "inf", "0", "-1"], "--iterations": ["0", "100000", "nan"],
        "--cg-tolerance": ["nan", "-0.1", "1", "inf"], "--pilot-iterations": ["-1", "100000", "nan"], "--threads": ["-1", "5000", "nan"],
        "--method": ["bogus"], "--evidence": ["bogus"], "--class-prior": ["bogus"], "--refine": ["bogus"], "--balance-classes": ["bogus"], "--refine-sources": ["bogus"], "--class-quota": ["bogus"], "--source-weight": ["0", "-1", "nan", "2"], "--metric-pass": ["bogus"], "--calibration-shift": ["bogus"], "--metric-shrinkage": ["-0.1", "nan", "2"], "--metric-class-balance": ["-0.1", "nan", "1.5"], "--seed": ["-1", "nan"],
        "--calibration": ["bogus"], "--confidence": ["bogus"], "--min-confidence": ["nan", "-0.1", "1.5", "inf"],
        "--k-min": ["-1", "5000", "nan", "x"], "--propagation-blend": ["nan", "-0.1", "1.5", "inf"],
    ]
    static let graph: [String: [String]] = ["--tile": ["0", "4", "100000", "nan"], "--graph": ["bogus"], "--overlap": ["0", "17", "nan"],
                                            "--recall-rows": ["-1", "nan"]]
    static let mpi: [String: [String]] = ["--blas-threads": ["0", "-1", "nan"]]
    static let input: [String: [String]] = ["--raw-shape": ["10", "0x5", "axb"]]

    /// Bad values per command and option.
    static var table: [String: [String: [String]]] {
        var t: [String: [String: [String]]] = [:]
        t["label"] = labeling.merging(graph) { $1 }.merging(input) { $1 }
        t["cluster"] = labeling.merging(graph) { $1 }.merging(mpi) { $1 }.merging(input) { $1 }
        t["bench quality"] = labeling.merging([
            "--fashion-n": ["50", "nan"], "--pca": ["0", "785"], "--seeds": ["0", "nan"], "--first-seed": ["-1"],
            "--max-points": ["-1"], "--budgets": ["bogus"], "--balances": ["bogus"], "--methods": ["bogus"], "--graph": ["bogus"],
        ]) { $1 }
        t["issues"] = graph.merging(mpi) { $1 }.merging(input) { $1 }.merging([
            "--neighbors": ["0", "5000", "nan"], "--graph-k": ["0", "nan"], "--rule": ["bogus"], "--rounds": ["0", "101"],
            "--gamma": ["nan", "inf", "-1"], "--threshold-cap": ["nan", "0", "1.5"],
        ]) { $1 }
        t["prepare"] = ["--pca": ["0", "785"], "--n": ["10", "80000"], "--per-class": ["0"], "--imbalance": ["nan", "inf", "0.5"], "--seed": ["-1"]]
        t["review export"] = ["--count": ["0", "nan"], "--neighbors": ["0", "5000"], "--ranking": ["bogus"], "--seed": ["-1"],
                              "--item-kind": ["bogus"], "--context-seeds": ["-1", "51", "nan"]]
        t["items"] = ["--scale": ["0", "17", "nan"]]
        t["review import"] = ["--rows": ["0", "nan"]]
        t["report"] = ["--seconds-per-label": ["nan", "inf", "-1"]]
        t["bench noise"] = ["--fashion-n": ["50"], "--pca": ["0"], "--rates": ["nan", "0", "1.5", "x"], "--kinds": ["bogus"],
                            "--seed": ["-1"], "--neighbors": ["0"], "--gamma": ["nan"], "--rule": ["bogus"], "--rounds": ["0"],
                            "--threshold-cap": ["nan", "2"], "--cleanlab-k": ["0"]]
        t["bench review"] = ["--fashion-n": ["50"], "--pca": ["0"], "--per-class": ["0"], "--count": ["0"], "--rounds": ["0"],
                             "--seeds": ["0"], "--rankings": ["bogus"]]
        t["bench graph"] = ["--n": ["0", "x"], "--d": ["0", "x"], "--k": ["0", "nan"], "--tile": ["4", "x"], "--repeats": ["0", "nan"],
                            "--graph": ["bogus"], "--overlap": ["0", "17"], "--cells": ["0"], "--refine": ["-1", "11"],
                            "--recall-rows": ["-1"], "--exact-rows": ["0"]]
        t["graph"] = mpi.merging(["--graph": ["bogus"], "--k": ["0", "nan"], "--overlap": ["0", "17"], "--recall-rows": ["-1"],
                                  "--tile": ["0", "4", "100000", "nan"]]) { $1 }
        return t
    }

    /// Options that take a path or a free name and have no range to check (a missing path is an error at run time).
    static let free: Set<String> = [
        "--output", "--classes", "--timings", "--checkpoint", "--dataset", "--python", "--script", "--out", "--embeddings",
        "--from-name", "--to-name", "--truth", "--budget-table", "--budget-balance", "--budget-dataset", "--main",
        "--knn-graph", "--input", "--json",
        "report --seeds", "--items", "--image-url-prefix", "--local-files-root", "items --ids",
    ]

    /// Every option the binary declares (from its own help dump), per command path.
    func declaredOptions() throws -> [String: Set<String>] {
        let r = try run(["--experimental-dump-help"])
        XCTAssertEqual(r.code, 0)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        var out: [String: Set<String>] = [:]
        func walk(_ c: [String: Any], _ path: [String]) {
            for a in c["arguments"] as? [[String: Any]] ?? [] where a["kind"] as? String == "option" {
                let names = (a["names"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "long" }.compactMap { $0["name"] as? String }
                if let n = names.first { out[path.joined(separator: " "), default: []].insert("--" + n) }
            }
            for s in c["subcommands"] as? [[String: Any]] ?? [] { walk(s, path + [s["commandName"] as? String ?? "?"]) }
        }
        walk(try XCTUnwrap(root["command"] as? [String: Any]), [])
        return out
    }

    func testTableCoversEveryOptionOfEveryCommand() throws {
        let declared = try declaredOptions()
        XCTAssertFalse(declared.isEmpty)
        for (command, options) in declared where command != "help" {
            for o in options where !Self.free.contains(o) && !Self.free.contains("\(command) \(o)") {
                XCTAssertNotNil(Self.table[command]?[o], "\(command) \(o) has no row in the bad-value table")
            }
        }
        for (command, options) in Self.table {
            for o in options.keys { XCTAssertTrue(declared[command]?.contains(o) ?? false, "table row \(command) \(o) is not an option") }
        }
    }

    func testEveryBadValueIsRejectedWithOneLine() throws {
        var checked = 0
        for (command, options) in Self.table.sorted(by: { $0.key < $1.key }) {
            for (option, values) in options.sorted(by: { $0.key < $1.key }) {
                for v in values {
                    let args = command.split(separator: " ").map(String.init) + Self.positionals[command]! + ["\(option)=\(v)"]
                    let r = try run(args)
                    let lines = r.stderr.split(separator: "\n")
                    XCTAssertNotEqual(r.code, 0, "\(args) was accepted")
                    XCTAssertEqual(lines.count, 1, "\(args): expected one error line, got \(r.stderr)")
                    XCTAssertTrue(r.stderr.contains(option), "\(args): the error should name \(option): \(r.stderr)")
                    XCTAssertTrue(r.stderr.contains("'\(v)'") || r.stderr.contains("\(Double(v) ?? .nan)"), "\(args): the error should quote the value: \(r.stderr)")
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 150)
    }

    /// A good value in the same table passes validation and the command then fails only on the missing input file.
    func testGoodValuesPassValidation() throws {
        let r = try run(["label", dir + "/missing.npy", dir + "/l.npy", "-o", dir + "/o.csv", "--gamma", "3", "--tile", "64", "--k", "7"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("missing.npy"), r.stderr)
    }
}
