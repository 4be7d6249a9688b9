import Foundation
import XCTest
@testable import HDLabelReport
@testable import HDLabelCore
import HDLabelTestSupport

/// `Report`: the numbers behind `hdlabel report`, on hand-made arrays.
final class ReportTests: XCTestCase {
    // 8 rows; rows 0 and 1 are seeds (not scored). Truth of the 6 scored rows: 0,0,1,1,2,2.
    let seeds: [Int32] = [0, 1, -1, -1, -1, -1, -1, -1]
    let truth = [0, 1, 0, 0, 1, 1, 2, 2]
    let labels: [Int32] = [0, 1, 0, 1, 1, 1, 2, -1]
    let layer: [Int32] = [0, 0, 1, 1, 1, 2, 2, -1]
    let conf: [Float] = [1, 1, 0.9, 0.3, 0.8, 0.6, 0.7, 0]
    var evaluated: [Bool] { seeds.map { $0 < 0 } }

    func testLayerStats() {
        let s = Report.layerStats(labels: labels, layer: layer, evaluated: evaluated, truth: truth)
        XCTAssertEqual(s.map(\.layer), [1, 2, -1])
        XCTAssertEqual(s.map(\.count), [3, 2, 1])
        XCTAssertEqual(s.map(\.correct), [2, 2, 0])            // layer 1: rows 2 ok, 3 wrong, 4 ok
        XCTAssertEqual(s[0].accuracy!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(s.map(\.coverage), [0.5, 2.0 / 6, 1.0 / 6])
        XCTAssertEqual(s[1].cumulativeCoverage, 5.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(s[2].cumulativeCoverage, 5.0 / 6, accuracy: 1e-12)  // never-labeled rows add no coverage
        let noTruth = Report.layerStats(labels: labels, layer: layer, evaluated: evaluated)
        XCTAssertNil(noTruth[0].correct); XCTAssertNil(noTruth[0].accuracy)
    }

    func testCalibrationDecilesAndECE() {
        let bins = Report.calibration(labels: labels, confidence: conf, truth: truth, evaluated: evaluated, bins: 5)
        // 5 labeled scored rows, sorted by confidence: 0.3(x) 0.6(ok) 0.7(ok) 0.8(ok) 0.9(ok) -> one per bin.
        XCTAssertEqual(bins.map(\.count), [1, 1, 1, 1, 1])
        XCTAssertEqual(bins.map(\.correct), [0, 1, 1, 1, 1])
        XCTAssertEqual(bins[0].meanConfidence, 0.3, accuracy: 1e-6)
        let ece = Report.expectedCalibrationError(bins)
        XCTAssertEqual(ece, (0.3 + 0.4 + 0.3 + 0.2 + 0.1) / 5, accuracy: 1e-6)
        let two = Report.calibration(labels: labels, confidence: conf, truth: truth, evaluated: evaluated, bins: 2)
        XCTAssertEqual(two.map(\.count), [2, 3])                // ranks [0,2) and [2,5)
        XCTAssertEqual(two[1].meanConfidence, 0.8, accuracy: 1e-6)
        XCTAssertEqual(two[0].minConfidence, 0.3, accuracy: 1e-6); XCTAssertEqual(two[0].maxConfidence, 0.6, accuracy: 1e-6)
        XCTAssertTrue(Report.expectedCalibrationError([]).isNaN)
    }

    func testClassStatsSortedByCountWithRecall() {
        // Truth counts on scored rows: class 0: 2, class 1: 2, class 2: 2 -> tie broken by id; make class 2 the head.
        let t = [0, 1, 2, 2, 1, 2, 2, 0]
        let s = Report.classStats(labels: labels, seeds: seeds, truth: t, numClasses: 4)
        XCTAssertEqual(s.map(\.classId), [2, 0, 1, 3])
        XCTAssertEqual(s.map(\.truthCount), [4, 1, 1, 0])
        XCTAssertEqual(s.first { $0.classId == 2 }!.recall!, 1.0 / 4, accuracy: 1e-12)   // only row 6
        XCTAssertEqual(s.first { $0.classId == 1 }!.recall!, 1, accuracy: 1e-12)
        XCTAssertTrue(s.first { $0.classId == 3 }!.recall!.isNaN)
        XCTAssertEqual(s.map(\.seedCount), [0, 1, 1, 0])
        XCTAssertEqual(s.first { $0.classId == 1 }!.predictedCount, 3)
        let noTruth = Report.classStats(labels: labels, seeds: seeds, truth: nil, numClasses: 3)
        XCTAssertEqual(noTruth.map(\.classId), [1, 0, 2])       // predicted counts 3, 2, 1
        XCTAssertNil(noTruth[0].recall)
    }

    func testConfusionHasAbstainColumn() {
        let m = Report.confusion(labels: labels, truth: truth, evaluated: evaluated, numClasses: 3)
        XCTAssertEqual(m, [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 1]])
        XCTAssertEqual(m.flatMap { $0 }.reduce(0, +), 6)
    }

    func testHeadline() {
        let h = Report.headline(method: "hdl", labels: labels, seeds: seeds, secondsPerLabel: 36, accuracies: ["hdl": 0.8, "knn": 0.7, "spreading": 0.75])
        XCTAssertEqual(h.seedLabels, 2); XCTAssertEqual(h.producedLabels, 5); XCTAssertEqual(h.rows, 8)
        XCTAssertEqual(h.annotationHoursSaved, 5 * 36 / 3600, accuracy: 1e-12)
        XCTAssertEqual(h.bestBaseline, "spreading"); XCTAssertEqual(h.accuracyGain!, 0.05, accuracy: 1e-12)
        let alone = Report.headline(method: "hdl", labels: labels, seeds: seeds, secondsPerLabel: 30, accuracies: [:])
        XCTAssertNil(alone.accuracyGain); XCTAssertNil(alone.bestBaseline)
    }

    func testBudgetCurvesAndLabelsSaved() throws {
        let csv = """
        dataset,balance,budget,seed,split_hash,n,labeled,method,accuracy,macro_f1,balanced_accuracy,coverage,tail_recall,seconds,error
        d,balanced,4/class,0,h,100,40,hdl,0.70,0,0,1,,1,""
        d,balanced,4/class,1,h,100,40,hdl,0.72,0,0,1,,1,""
        d,balanced,4/class,0,h,100,40,knn,0.60,0,0,1,,1,""
        d,balanced,10/class,0,h,100,100,hdl,0.80,0,0,1,,1,""
        d,balanced,10/class,0,h,100,100,knn,0.70,0,0,1,,1,""
        d,balanced,40/class,0,h,100,400,hdl,0.85,0,0,1,,1,""
        d,balanced,40/class,0,h,100,400,knn,0.80,0,0,1,,1,""
        d,balanced,40/class,0,h,100,400,logreg,,0,0,1,,1,"failed"
        d,rho10,4/class,0,h,100,40,hdl,0.10,0,0,1,,1,""
        """
        let recs = try Report.parseBudgetRecords(csv)
        XCTAssertEqual(recs.count, 8)                           // the failed row is skipped
        let curves = Report.budgetCurves(recs, dataset: "d", balance: "balanced")
        XCTAssertEqual(Set(curves.keys), ["hdl", "knn"])
        XCTAssertEqual(curves["hdl"]!.map(\.labeled), [40, 100, 400])
        XCTAssertEqual(curves["hdl"]![0].accuracy, 0.71, accuracy: 1e-12); XCTAssertEqual(curves["hdl"]![0].runs, 2)
        // knn reaches 0.71 between 40 (0.60) and 100 (0.70)? no: between 100 (0.70) and 400 (0.80): 100 + 0.1·300 = 130.
        XCTAssertEqual(Report.labelsNeeded(curve: curves["knn"]!, target: 0.71)!, 130, accuracy: 1e-9)
        XCTAssertEqual(Report.labelsNeeded(curve: curves["knn"]!, target: 0.5)!, 40)
        XCTAssertNil(Report.labelsNeeded(curve: curves["knn"]!, target: 0.81))
        let sv = Report.budgetSavings(curves: curves)
        XCTAssertEqual(sv.count, 3)
        XCTAssertEqual(sv[0].baseline, "knn"); XCTAssertEqual(sv[0].labelsSaved!, 90, accuracy: 1e-9)
        XCTAssertEqual(sv[1].labelsSaved!, 400 - 100, accuracy: 1e-9)   // knn reaches 0.80 exactly at 400
        XCTAssertNil(sv[2].baseline); XCTAssertNil(sv[2].labelsSaved); XCTAssertEqual(sv[2].largestBudget, 400)
        XCTAssertThrowsError(try Report.parseBudgetRecords("a,b\n1,2\n"))
        XCTAssertThrowsError(try Report.parseBudgetRecords(""))
    }

    func testTimingsParseAndOrder() {
        let json = #"{"ranks":2,"maxSeconds":{"write":0.1,"compute":1.5,"read":0.2,"zeta":0.01},"totalSeconds":2.5,"maxBytesSentPerRank":1,"totalBytesSent":2}"#
        let t = Report.parseTimings(Data(json.utf8), name: "t.json")!
        XCTAssertEqual(t.ranks, 2); XCTAssertEqual(t.totalSeconds, 2.5)
        XCTAssertEqual(t.phases.map(\.0), ["read", "compute", "write", "zeta"])
        XCTAssertNil(Report.parseTimings(Data(#"{"tool":"hdlabel"}"#.utf8), name: "m.json"))
        XCTAssertNil(Report.parseTimings(Data("not json".utf8), name: "x"))
    }

    func testRenderedPageIsSelfContained() {
        let q = QualityMetrics.evaluate(predicted: labels, truth: truth, seeds: seeds, numClasses: 3, layer: layer, confidence: conf)
        var d = ReportData(
            runDir: "run<1>", primary: "hdl", methods: [.init(name: "hdl", file: "hdl.csv", method: "hdl", metrics: q, coverage: q.coverage)],
            classNames: ["a", "b&c", "d"], hasTruth: true, seedSource: "test",
            layers: Report.layerStats(labels: labels, layer: layer, evaluated: evaluated, truth: truth),
            calibration: Report.calibration(labels: labels, confidence: conf, truth: truth, evaluated: evaluated),
            classes: Report.classStats(labels: labels, seeds: seeds, truth: truth, numClasses: 3),
            confusion: Report.confusion(labels: labels, truth: truth, evaluated: evaluated, numClasses: 3),
            timings: [.init(name: "t.json", ranks: 2, phases: [("read", 0.1)], totalSeconds: 1)],
            budgetCurves: ["hdl": [.init(labeled: 40, accuracy: 0.7, runs: 1), .init(labeled: 400, accuracy: 0.8, runs: 1)],
                           "knn": [.init(labeled: 40, accuracy: 0.6, runs: 1), .init(labeled: 400, accuracy: 0.75, runs: 1)]],
            budgetSavings: [], budgetSource: "r.csv", budgetDataset: "d", budgetBalance: "balanced",
            headline: Report.headline(method: "hdl", labels: labels, seeds: seeds, secondsPerLabel: 30, accuracies: ["hdl": q.accuracy]),
            created: "now")
        d.calibrationNote = ReportData.calibrationNote(manifest: ["calibration": "temperature", "calibrationSamples": 100,
                                                                   "calibrationSamplingError": 0.035])
        XCTAssertEqual(d.calibrationNote, "The confidences were calibrated by temperature on 100 held-out seeds; the seeds' sampling alone leaves "
                       + "their level uncertain by about 3.5 points, so an expected calibration error below that is not something these seeds can promise.")
        XCTAssertEqual(ReportData.calibrationNote(manifest: ["calibration": "none", "calibrationReason": "too few"]),
                       "The confidences are uncalibrated top shares (no calibration map: too few).")
        XCTAssertNil(ReportData.calibrationNote(manifest: ["method": "knn"]))
        XCTAssertNil(ReportData.calibrationNote(manifest: nil))
        d.balanceNote = ReportData.balanceNote(manifest: ["balancedClasses": true, "labelShift": 0.0694])
        XCTAssertEqual(d.balanceNote, "The refinement pulled the class totals to the seeds' class shares (--balance-classes). "
                       + "The layers' labels were 0.069 (total variation) from the seeds' class shares.")
        XCTAssertTrue(ReportData.balanceNote(manifest: ["balancedClasses": false, "labelShift": 0.4])!.hasPrefix("The class totals were not pulled"))
        XCTAssertFalse(ReportData.balanceNote(manifest: ["balancedClasses": false, "labelShift": 0.4])!.contains("sources"))
        XCTAssertTrue(ReportData.balanceNote(manifest: ["balancedClasses": false, "labelShift": 0.4, "refinementSources": true])!
            .hasSuffix("The accepted labels were sources of the refinement posterior (--refine-sources), so its class mass follows them."))
        XCTAssertNil(ReportData.balanceNote(manifest: ["calibration": "none"]))
        let html = ReportHTML.render(d)
        XCTAssertTrue(html.contains("uncertain by about 3.5 points"))
        XCTAssertTrue(html.contains("0.069 (total variation)"))
        for id in ReportHTML.sectionIds { XCTAssertTrue(html.contains("<section id=\"\(id)\">"), id) }
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 8)
        XCTAssertTrue(html.contains("b&amp;c")); XCTAssertFalse(html.contains("b&c<")); XCTAssertTrue(html.contains("run&lt;1&gt;"))
        for banned in ["<script", "src=", "href=", "@import", "url("] { XCTAssertFalse(html.contains(banned), banned) }
        XCTAssertEqual(ReportHTML.escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }
}
