import Foundation
import XCTest
@testable import HDLabelIO
@testable import HDLabelCore
import HDLabelTestSupport

final class LabelsIOTests: XCTestCase {
    func testLabelsCSVWithNamesAndErrors() throws {
        let p = tempPath("seeds.csv")
        try AtomicFile.write("id,label\n0,cat\n2,dog\n3,\n", to: p)
        let s = try LabelsIO.read(path: p, n: 4)
        XCTAssertEqual(s.classNames, ["cat", "dog"]); XCTAssertEqual(s.seeds, [0, -1, 1, -1])
        let listed = try LabelsIO.read(path: p, n: 4, classes: ["cat", "dog", "bird"])
        XCTAssertThrowsError(try validateSeeds(listed.seeds, numClasses: listed.numClasses, n: 4)) { XCTAssertTrue("\($0)".contains("class 2 has no seed")) }
        XCTAssertThrowsError(try LabelsIO.read(path: p, n: 4, classes: ["cat"])) { XCTAssertTrue("\($0)".contains("not one of the listed classes")) }
        try AtomicFile.write("id,label\n0,cat\n9,dog\n", to: p)
        XCTAssertThrowsError(try LabelsIO.read(path: p, n: 4)) { XCTAssertTrue("\($0)".contains("outside")) }
        try AtomicFile.write("id,label\n0,cat\n0,dog\n", to: p)
        XCTAssertThrowsError(try LabelsIO.read(path: p, n: 4)) { XCTAssertTrue("\($0)".contains("twice")) }
        let np = tempPath("seeds.npy"); try NPY.write(ints: [0, 1, -1], to: np)
        XCTAssertThrowsError(try LabelsIO.read(path: np, n: 4)) { XCTAssertTrue("\($0)".contains("does not match row count")) }
    }

    /// `--classes` as a names CSV; a .npy of class ids read with a class list (ids index the list).
    func testClassNamesCSVAndIdsWithAList() throws {
        let p = tempPath("names-\(UUID().uuidString.prefix(6)).csv")
        try AtomicFile.write("id,name\n1,Trouser\n0,T-shirt/top\n2,\"Bag, small\"\n", to: p)
        XCTAssertEqual(try LabelsIO.parseClassList(p), ["T-shirt/top", "Trouser", "Bag, small"])
        try AtomicFile.write("id,name\n0,a\n2,b\n", to: p)
        XCTAssertThrowsError(try LabelsIO.parseClassList(p)) { XCTAssertTrue("\($0)".contains("0..<C"), "\($0)") }
        try AtomicFile.write("id,name\n0,a\n0,b\n", to: p)
        XCTAssertThrowsError(try LabelsIO.parseClassList(p)) { XCTAssertTrue("\($0)".contains("twice"), "\($0)") }
        let np = tempPath("ids-\(UUID().uuidString.prefix(6)).npy"); try NPY.write(ints: [1, -1, 0], to: np)
        let s = try LabelsIO.read(path: np, n: 3, classes: ["cat", "dog"])
        XCTAssertEqual(s.seeds, [1, -1, 0]); XCTAssertEqual(s.classNames, ["cat", "dog"])
        XCTAssertThrowsError(try LabelsIO.read(path: np, n: 3, classes: ["cat"])) { XCTAssertTrue("\($0)".contains("not a class id"), "\($0)") }
    }

    func testOutputCSVRoundTrip() throws {
        let r = LabelingResult(labels: [0, 1, -1], confidence: [1, 0.5, 0], layer: [0, 2, -1], source: [.seed, .propagated, .unlabeled], layers: [], chosenK: 5)
        let p = tempPath("out.csv")
        try LabelsIO.writeCSV(r, classNames: ["a", "b,c"], to: p)
        let text = try String(contentsOfFile: p, encoding: .utf8)
        XCTAssertEqual(text, "id,label,confidence,layer,source\n0,a,1.0000,0,seed\n1,\"b,c\",0.5000,2,propagated\n2,,0.0000,-1,unlabeled\n")
    }
}
