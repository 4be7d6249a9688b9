import Foundation
import XCTest
@testable import HDLabelReport
@testable import HDLabelCore
import HDLabelTestSupport

final class MetricsTests: XCTestCase {
    func testHandComputedCase() {
        // Positions 0,1 are seeds (ignored). Evaluated: 8 points.
        let seeds: [Int32] = [0, 1, -1, -1, -1, -1, -1, -1, -1, -1]
        let truth = [0, 1, 0, 0, 0, 1, 1, 2, 2, 2]
        let pred: [Int32] = [0, 1, 0, 0, 1, 1, -1, 2, 0, -1]
        let m = QualityMetrics.evaluate(predicted: pred, truth: truth, seeds: seeds, numClasses: 3,
                                        layer: [0, 0, 1, 1, 2, 1, -1, 2, 2, -1],
                                        confidence: [1, 1, 0.9, 0.8, 0.3, 0.7, 0, 0.6, 0.2, 0])
        XCTAssertEqual(m.evaluated, 8); XCTAssertEqual(m.covered, 6); XCTAssertEqual(m.correct, 4)
        XCTAssertEqual(m.accuracy, 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.coveredAccuracy, 4.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(m.coverage, 0.75, accuracy: 1e-12)
        // Class 0: true 3, pred 3 (pos 2,3,8), TP 2 → recall 2/3, F1 = 4/6.
        // Class 1: true 2, pred 2 (pos 4,5), TP 1 → recall 1/2, F1 = 2/4.
        // Class 2: true 3, pred 1 (pos 7), TP 1 → recall 1/3, F1 = 2/4.
        XCTAssertEqual(m.perClassRecall[0], 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.perClassRecall[1], 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.perClassRecall[2], 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.macroF1, (4.0 / 6 + 0.5 + 0.5) / 3, accuracy: 1e-12)
        XCTAssertEqual(m.balancedAccuracy, (2.0 / 3 + 0.5 + 1.0 / 3) / 3, accuracy: 1e-12)
        XCTAssertEqual(m.meanRecall(classes: [1, 2]), (0.5 + 1.0 / 3) / 2, accuracy: 1e-12)
        // Layers: -1 → 2 points 0 correct; 1 → pos 2,3,5: 3 correct; 2 → pos 4,7,8: 1 correct.
        XCTAssertEqual(m.byLayer.map(\.group), [-1, 1, 2])
        XCTAssertEqual(m.byLayer.map(\.count), [2, 3, 3])
        XCTAssertEqual(m.byLayer.map(\.correct), [0, 3, 1])
        // Deciles over the 6 covered points sorted by confidence: 0.2✗ 0.3✗ 0.6✓ 0.7✓ 0.8✓ 0.9✓.
        XCTAssertEqual(m.byConfidenceDecile.map(\.count).reduce(0, +), 6)
        XCTAssertEqual(m.byConfidenceDecile.first?.minConfidence, 0.2)
        XCTAssertEqual(m.byConfidenceDecile.first?.correct, 0)
        XCTAssertEqual(m.byConfidenceDecile.last?.maxConfidence, 0.9)
        XCTAssertEqual(m.byConfidenceDecile.last?.correct, 1)
    }

    func testPerfectAndAbsentClass() {
        let seeds: [Int32] = [0, 1, 2, -1, -1]
        let m = QualityMetrics.evaluate(predicted: [0, 1, 2, 0, 1], truth: [0, 1, 2, 0, 1], seeds: seeds, numClasses: 3)
        XCTAssertEqual(m.accuracy, 1); XCTAssertEqual(m.macroF1, 1); XCTAssertEqual(m.balancedAccuracy, 1)
        XCTAssertTrue(m.perClassRecall[2].isNaN)  // class 2 has no evaluated point
        XCTAssertTrue(m.byConfidenceDecile.isEmpty)
        let (mu, sd) = meanStd([1, 2, 3]); XCTAssertEqual(mu, 2); XCTAssertEqual(sd, 1)
    }
}
