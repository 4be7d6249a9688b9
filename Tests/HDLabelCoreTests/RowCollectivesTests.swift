import Foundation
import XCTest
@testable import HDLabelCore

final class RowCollectivesTests: XCTestCase {
    /// The fixed-point conversion equals truncating the exact scaled value, for normal, subnormal and signed floats.
    func testFixedIsExactTruncation() {
        let samples: [Double] = [0, -0, 1, -1, 0.1, -3.75, 1e-30, -2.5e-38, Double.leastNonzeroMagnitude, 1e20, 123456.7]
        for t in samples {
            for shift in [0, 10, 40, 100, 150, 200, 1100] {
                let scaled = t * Double(sign: .plus, exponent: shift, significand: 1)
                guard abs(scaled) < 0x1p126 else { continue }
                XCTAssertEqual(Reduction.fixed(t, shift: shift), Int128(scaled.rounded(.towardZero)), "t=\(t) shift=\(shift)")
            }
        }
    }

    /// Exact column dots: the same bits for any thread count and any order of the 32-row blocks (the integers add
    /// exactly), and close to a Double reference.
    func testDotsIndependentOfThreadsAndBlockOrder() throws {
        var rng = SplitMix64(seed: 11)
        let rows = 1024, m = 7
        var a = [Float](repeating: 0, count: rows * m), b = a
        for i in 0 ..< rows * m {
            // Mixed magnitudes, signs and a zero column (4).
            let scale = Float(1 << (i % 11))
            a[i] = i % m == 4 ? 0 : (Float(rng.next() % 2001) / 1000 - 1) * scale
            b[i] = (Float(rng.next() % 2001) / 1000 - 1) / scale
        }
        func dots(_ a: [Float], _ b: [Float], threads: Int) throws -> [Double] {
            try a.withUnsafeBufferPointer { ab in try b.withUnsafeBufferPointer { bb in
                try Reduction.dots(ab.baseAddress!, bb.baseAddress!, rows: rows, columns: m, threads: threads, comm: LocalRows(n: rows))
            } }
        }
        let one = try dots(a, b, threads: 1)
        for t in [2, 3, 8] { XCTAssertEqual(try dots(a, b, threads: t).map(\.bitPattern), one.map(\.bitPattern)) }
        // Blocks reversed: every block partial is the same, only the order of the sum changes.
        var ra = a, rb = b
        let nb = rows / Reduction.block
        for i in 0 ..< rows {
            let j = (nb - 1 - i / Reduction.block) * Reduction.block + i % Reduction.block
            for c in 0 ..< m { ra[i * m + c] = a[j * m + c]; rb[i * m + c] = b[j * m + c] }
        }
        XCTAssertEqual(try dots(ra, rb, threads: 1).map(\.bitPattern), one.map(\.bitPattern))
        for c in 0 ..< m {
            var ref = 0.0
            for i in 0 ..< rows { ref += Double(a[i * m + c] * b[i * m + c]) }
            XCTAssertEqual(one[c], ref, accuracy: 1e-9 * max(1, abs(ref)))
        }
        XCTAssertEqual(one[4], 0)
        var bad = a; bad[3] = .nan
        XCTAssertTrue(try dots(bad, b, threads: 2)[3].isNaN)
    }

    /// Ghosts: sorted distinct ids outside the own range; on one process the plan is empty and the affinity's
    /// local columns are the global ones.
    func testGhostsAndLocalPlan() throws {
        XCTAssertEqual(HaloPlan.ghosts(of: [5, 1, 9, 12, 1, 7, 40, 12], own: 5 ..< 10), [1, 12, 40])
        let plan = HaloPlan(ghosts: [1, 12, 40], receiveCounts: [1, 0, 2], sendRows: [2, 0], sendCounts: [1, 1, 0])
        XCTAssertEqual(plan.ghostIndex(12), 1)
        XCTAssertEqual(plan.pack([0, 1, 10, 11, 20, 21], width: 2), [20, 21, 0, 1])
        let g = KNNGraph(n: 4, k: 2, neighbors: [1, 2, 0, 3, 3, 0, 2, 1], similarities: [0.9, 0.5, 0.9, 0.4, 0.8, 0.5, 0.8, 0.4])
        let s = try NormalizedAffinity(rows: g, comm: LocalRows(n: 4), weight: { $0 })
        XCTAssertTrue(s.halo.ghosts.isEmpty)
        XCTAssertEqual(s.extendedRows, 4)
        XCTAssertEqual(s.cols, s.localCols)
    }
}
