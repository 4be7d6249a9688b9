import Foundation
import XCTest
@testable import HDLabelCuration
@testable import HDLabelCore
import HDLabelIO
import HDLabelTestSupport

final class ReviewTests: XCTestCase {
    func run(_ n: Int, classes: [String]) -> RunLabels {
        RunLabels(labels: (0 ..< n).map { Int32($0 % classes.count) }, confidence: (0 ..< n).map { Float($0) / Float(n) },
                  layer: [Int32](repeating: 1, count: n), isSeed: (0 ..< n).map { $0 < 2 }, classNames: classes)
    }

    func testSelectSkipsSeedsAndRanks() throws {
        let (x, _) = clusteredData(c: 2, perClass: 20, d: 4, spread: 0.2, seed: 5)
        let g = try KNNGraphBuilder.build(x.l2Normalized(), options: GraphOptions(k: 10, tile: 16))
        let r = run(40, classes: ["a", "b"])
        for ranking in ReviewRanking.allCases {
            let items = Review.select(run: r, graph: g, count: 10, ranking: ranking)
            XCTAssertEqual(items.count, 10)
            XCTAssertTrue(items.allSatisfy { !r.isSeed[$0.id] })
            XCTAssertEqual(Set(items.map(\.id)).count, 10)
            XCTAssertEqual(items.map(\.rank), Array(1 ... 10))
        }
        let byConf = Review.select(run: r, graph: g, count: 3, ranking: .confidence, diverse: false)
        XCTAssertEqual(byConf.map(\.id), [2, 3, 4], "lowest confidence first")
    }

    /// Export → Label Studio JSON with the fields Label Studio needs → a Label Studio-style export → import.
    func testLabelStudioRoundTrip() throws {
        let items = [ReviewItem(id: 5, label: "cat", confidence: 0.3, score: 0.7, rank: 1),
                     ReviewItem(id: 9, label: "", confidence: 0, score: 1, rank: 2)]
        let data = try Review.encodeLabelStudio(items)
        let tasks = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        XCTAssertEqual(tasks.count, 2)
        for t in tasks {
            XCTAssertNotNil(t["id"] as? Int)
            let d = try XCTUnwrap(t["data"] as? [String: Any])
            XCTAssertNotNil(d["sample_id"] as? Int); XCTAssertNotNil(d["text"] as? String)
        }
        let pred = try XCTUnwrap((tasks[0]["predictions"] as? [[String: Any]])?.first?["result"] as? [[String: Any]])
        XCTAssertEqual(pred[0]["type"] as? String, "choices"); XCTAssertEqual(pred[0]["from_name"] as? String, "label")
        XCTAssertEqual(pred[0]["to_name"] as? String, "text")
        XCTAssertEqual((pred[0]["value"] as? [String: Any])?["choices"] as? [String], ["cat"])
        XCTAssertTrue(Review.labelStudioConfig(classNames: ["cat", "dog"]).contains("<Choice value=\"dog\"/>"))

        // What Label Studio exports after review: the task with annotations (one cancelled, one answered).
        var exported = tasks
        exported[0]["id"] = 1001  // server task ids differ from sample ids
        exported[0]["annotations"] = [["was_cancelled": true, "result": [["value": ["choices": ["cat"]]]]],
                                      ["was_cancelled": false, "result": [["from_name": "label", "to_name": "text", "type": "choices", "value": ["choices": ["dog"]]]]]]
        exported[1]["annotations"] = [["result": [["value": ["choices": ["cat"]]]]]]
        let path = tempPath("ls-export-\(UUID().uuidString.prefix(6)).json")
        try JSONSerialization.data(withJSONObject: exported).write(to: URL(fileURLWithPath: path))
        let (cs, problems) = try Review.readCorrections(path: path)
        XCTAssertTrue(problems.isEmpty)
        XCTAssertEqual(cs.map(\.id), [5, 9]); XCTAssertEqual(cs.map(\.label), ["dog", "cat"])
        let seeds = SeedLabels(seeds: [0, 1] + [Int32](repeating: -1, count: 8), classNames: ["cat", "dog"])
        let r = Review.apply(cs, to: seeds, force: false)
        XCTAssertEqual(r.seeds.seeds[5], 1); XCTAssertEqual(r.seeds.seeds[9], 0)
        XCTAssertEqual(r.added.map(\.id), [5, 9]); XCTAssertTrue(r.conflicts.isEmpty && r.rejected.isEmpty)
    }

    func testConflictsUnknownsAndForce() throws {
        let seeds = SeedLabels(seeds: [0, 1, -1, -1], classNames: ["cat", "dog"])
        let cs = [Correction(id: 0, label: "dog", origin: "l1"),   // conflicts with seed cat
                  Correction(id: 1, label: "dog", origin: "l2"),   // confirms
                  Correction(id: 2, label: "cat", origin: "l3"),   // new
                  Correction(id: 7, label: "cat", origin: "l4"),   // unknown id
                  Correction(id: 3, label: "bird", origin: "l5"),  // unknown class
                  Correction(id: 3, label: "cat", origin: "l6"), Correction(id: 3, label: "dog", origin: "l7")]  // contradictory
        let r = Review.apply(cs, to: seeds, force: false)
        XCTAssertEqual(r.seeds.seeds, [0, 1, 0, -1], "the conflicting seed keeps its label")
        XCTAssertEqual(r.conflicts.map(\.id), [0]); XCTAssertEqual(r.conflicts[0].existing, "cat"); XCTAssertEqual(r.conflicts[0].proposed, "dog")
        XCTAssertEqual(r.confirmed, [1]); XCTAssertEqual(r.added.map(\.id), [2]); XCTAssertTrue(r.overwritten.isEmpty)
        XCTAssertEqual(r.rejected.map(\.origin), ["l4", "l5", "l6", "l7"])
        let f = Review.apply(cs, to: seeds, force: true)
        XCTAssertEqual(f.seeds.seeds, [1, 1, 0, -1]); XCTAssertEqual(f.overwritten, [0])
    }

    func testCSVCorrectionsAndRunFile() throws {
        let path = tempPath("review-\(UUID().uuidString.prefix(6)).csv")
        try Data("id,label,confidence,score,rank,corrected\n4,cat,0.2,0.8,1,dog\n6,cat,0.3,0.7,2,\nx,cat,0,0,3,dog\n".utf8).write(to: URL(fileURLWithPath: path))
        let (cs, problems) = try Review.readCorrections(path: path)
        XCTAssertEqual(cs, [Correction(id: 4, label: "dog", origin: "\(path):2")])
        XCTAssertEqual(problems.count, 1)
        let runPath = tempPath("run-\(UUID().uuidString.prefix(6)).csv")
        try Data("id,label,confidence,layer,source\n1,dog,0.5,2,propagated\n0,cat,1.0,0,seed\n2,,0.0,-1,unlabeled\n".utf8).write(to: URL(fileURLWithPath: runPath))
        let r = try RunLabels.read(path: runPath)
        XCTAssertEqual(r.labels, [0, 1, -1]); XCTAssertEqual(r.isSeed, [true, false, false]); XCTAssertEqual(r.classNames, ["cat", "dog"])
    }
}
