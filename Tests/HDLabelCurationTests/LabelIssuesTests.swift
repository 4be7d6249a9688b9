import Foundation
import XCTest
@testable import HDLabelCuration
@testable import HDLabelCore
import HDLabelBench
import HDLabelTestSupport

final class LabelIssuesTests: XCTestCase {
    /// 4 separated clusters, 60 points each, 12 planted flips: found without false alarms. On data this clean the
    /// calibrated thresholds of `confident` / `prune` sit near 1 and miss flips that have another flip among their
    /// neighbours, unless capped at 0.5; uncapped they still find most of them with few false alarms.
    func testPlantedFlipsAreFound() throws {
        let (x, y) = clusteredData(c: 4, perClass: 60, d: 8, spread: 0.15, seed: 7)
        let g = try KNNGraphBuilder.build(x.l2Normalized(), options: GraphOptions(k: 20, tile: 64))
        var noisy = y
        let planted = [3, 17, 40, 77, 101, 130, 150, 181, 199, 200, 222, 239]
        for i in planted { noisy[i] = (y[i] + 1 + Int32(i % 3)) % 4 }
        for (rule, cap) in [(IssueRule.majority, 1.0), (.confident, 0.5), (.prune, 0.5), (.confident, 1), (.prune, 1)] {
            var cfg = LabelIssueConfig(); cfg.k = 10; cfg.rule = rule; cfg.thresholdCap = cap
            let r = try LabelIssues.detect(graph: g, labels: noisy, numClasses: 4, config: cfg)
            if cap == 1 && rule != .majority {
                let sc = DetectionScore(flagged: r.flagged, flipped: (0 ..< y.count).map { noisy[$0] != y[$0] })
                XCTAssertGreaterThanOrEqual(sc.precision, 0.9, "rule \(rule)")
                XCTAssertGreaterThanOrEqual(r.ranking.count, planted.count * 3 / 4, "rule \(rule)")
                continue
            }
            XCTAssertEqual(Set(r.ranking), Set(planted), "rule \(rule)")
            for i in planted { XCTAssertEqual(r.suggested[i], y[i], "rule \(rule) suggests the true class for \(i)") }
            XCTAssertEqual(r.ranking.map { r.score[$0] }, r.ranking.map { r.score[$0] }.sorted(by: >), "ranked by score")
            let sc = DetectionScore(flagged: r.flagged, flipped: (0 ..< y.count).map { noisy[$0] != y[$0] })
            XCTAssertEqual(sc.f1, 1, accuracy: 1e-12)
        }
    }

    /// Partly labeled sets: unlabeled rows are never flagged and do not vote; flips among the labeled are found.
    func testPartlyLabeled() throws {
        let (x, y) = clusteredData(c: 3, perClass: 80, d: 6, spread: 0.15, seed: 3)
        let g = try KNNGraphBuilder.build(x.l2Normalized(), options: GraphOptions(k: 60, tile: 64))
        var given = y.enumerated().map { $0.offset % 2 == 0 ? $0.element : -1 }
        given[10] = (y[10] + 1) % 3
        var cfg = LabelIssueConfig(); cfg.k = 10
        let r = try LabelIssues.detect(graph: g, labels: given, numClasses: 3, config: cfg)
        XCTAssertEqual(r.ranking, [10])
        XCTAssertEqual(r.suggested[10], y[10])
        XCTAssertTrue((0 ..< y.count).filter { given[$0] < 0 }.allSatisfy { !r.flagged[$0] && r.score[$0] == 0 })
    }

    func testCSVAndNoise() throws {
        let truth = (0 ..< 1000).map { $0 % 5 }
        for kind in LabelNoise.allCases {
            let (noisy, flipped) = kind.apply(truth, numClasses: 5, rate: 0.2, seed: 1)
            XCTAssertEqual(flipped.filter { $0 }.count, 200)
            XCTAssertTrue((0 ..< 1000).allSatisfy { flipped[$0] == (Int(noisy[$0]) != truth[$0]) })
            if kind == .pair { XCTAssertTrue((0 ..< 1000).filter { flipped[$0] }.allSatisfy { Int(noisy[$0]) == (truth[$0] + 1) % 5 }) }
        }
        let r = LabelIssueResult(given: [0, 1, -1], suggested: [1, 1, -1], score: [0.9, 0.1, 0], suggestedShare: [0.9, 0.9, 0],
                                 flagged: [true, false, false], thresholds: [], ranking: [0], scored: 2)
        XCTAssertEqual(String(decoding: LabelIssues.encodeCSV(r, classNames: ["a,b", "c"]), as: UTF8.self),
                       "id,given,suggested,score,rank\n0,\"a,b\",c,0.9000,1\n")
        XCTAssertEqual(String(decoding: LabelIssues.encodeCSV(r, classNames: ["a", "c"], all: true), as: UTF8.self),
                       "id,given,suggested,score,rank\n0,a,c,0.9000,1\n1,c,c,0.1000,\n")
    }

    func testBadInput() throws {
        let (x, y) = clusteredData(c: 2, perClass: 10, d: 3, spread: 0.1, seed: 1)
        let g = try KNNGraphBuilder.build(x.l2Normalized(), options: GraphOptions(k: 5, tile: 16))
        XCTAssertThrowsError(try LabelIssues.detect(graph: g, labels: Array(y.prefix(5)), numClasses: 2, config: LabelIssueConfig()))
        XCTAssertThrowsError(try LabelIssues.detect(graph: g, labels: y.map { $0 + 5 }, numClasses: 2, config: LabelIssueConfig()))
        var cfg = LabelIssueConfig(); cfg.rounds = 0
        XCTAssertThrowsError(try LabelIssues.detect(graph: g, labels: y, numClasses: 2, config: cfg))
    }
}

