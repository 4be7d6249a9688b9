import Foundation
import XCTest
@testable import HDLabelCuration
import HDLabelCore
import HDLabelIO
import HDLabelTestSupport

/// Items a reviewer looks at: reading them (and refusing files that do not match the run), turning image paths into
/// URLs Label Studio serves, the context beside each sample, and the tasks and configuration that show them.
final class ReviewItemsTests: XCTestCase {
    func write(_ text: String, _ name: String) throws -> String {
        let dir = tempPath("items-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let p = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    func testReadsCSVAndPlainItemsAndRefusesMismatches() throws {
        let csv = try write("id,image\n2,img/2.png\n0,img/0.png\n1,\"img/a,b.png\"\n", "items.csv")
        let items = try ReviewItems.read(path: csv, rows: 3)
        XCTAssertEqual(items.kind, .image)
        XCTAssertEqual(items.values, ["img/0.png", "img/a,b.png", "img/2.png"])
        XCTAssertEqual(items.baseDirectory, URL(fileURLWithPath: csv).deletingLastPathComponent().standardizedFileURL.path)
        let text = try ReviewItems.read(path: try write("id,text\n0,a cat\n1,a dog\n", "t.csv"), rows: 2)
        XCTAssertEqual(text.kind, .text); XCTAssertEqual(text.values, ["a cat", "a dog"])
        let plain = try ReviewItems.read(path: try write("first, with comma\nsecond\n", "t.txt"), rows: 2)
        XCTAssertEqual(plain.kind, .text); XCTAssertEqual(plain.values, ["first, with comma", "second"])
        XCTAssertEqual(try ReviewItems.read(path: try write("a.png\nb.png\n", "t.txt"), rows: 2, kind: .image).kind, .image)

        func fails(_ body: String, _ name: String, rows: Int, kind: ItemKind? = nil, _ expect: String, line: UInt = #line) throws {
            XCTAssertThrowsError(try ReviewItems.read(path: try write(body, name), rows: rows, kind: kind), line: line) { e in
                XCTAssertTrue("\(e)".contains(expect), "\(e)", line: line)
            }
        }
        try fails("id,image\n0,a.png\n1,b.png\n", "i.csv", rows: 3, "has 2 rows but the run has 3")
        try fails("id,image\n0,a.png\n0,b.png\n", "i.csv", rows: 2, "id 0 appears twice")
        try fails("id,image\n0,a.png\n5,b.png\n", "i.csv", rows: 2, "id 5 outside")
        try fails("id,image\n0,a.png\nx,b.png\n", "i.csv", rows: 2, "is not a row index")
        try fails("id,image\n0,a.png,extra\n1,b.png\n", "i.csv", rows: 2, "expected 2 fields")
        try fails("a\nb\nc\n", "i.txt", rows: 2, "has 3 lines but the run has 2 rows")
        try fails("id,text\n0,a\n1,b\n", "i.csv", rows: 2, kind: .image, "--item-kind image")
        try fails("", "i.txt", rows: 2, "empty")
    }

    func testLocatorURLsAndMissingFiles() throws {
        let root = tempPath("ls-root-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: root + "/items/images", withIntermediateDirectories: true)
        try Data([1]).write(to: URL(fileURLWithPath: root + "/items/images/0.png"))
        let base = root + "/items"
        let ls = ItemLocator(localFilesRoot: root)
        XCTAssertEqual(try ls.url("images/0.png", base: base), "/data/local-files/?d=items/images/0.png")
        XCTAssertEqual(try ls.url("images/a b&c.png", base: base), "/data/local-files/?d=items/images/a%20b%26c.png")
        XCTAssertEqual(try ls.url("https://example.org/x.png", base: base), "https://example.org/x.png", "URLs pass through")
        XCTAssertThrowsError(try ls.url("/elsewhere/x.png", base: base)) { XCTAssertTrue("\($0)".contains("outside the local-files root"), "\($0)") }
        XCTAssertThrowsError(try ls.url("../../x.png", base: base))
        let web = ItemLocator(urlPrefix: "http://127.0.0.1:8081/static")
        XCTAssertEqual(try web.url("images/0.png", base: base), "http://127.0.0.1:8081/static/images/0.png")
        XCTAssertEqual(try ItemLocator().url("images/0.png", base: base), base + "/images/0.png")
        XCTAssertEqual(ItemLocator.missing(["images/0.png", "images/1.png", "images/1.png", "http://x/2.png"], base: base),
                       [base + "/images/1.png"], "each missing local file once; URLs are not checked")
    }

    func testContextNearestSeedsAndNeighbourLabels() throws {
        // Rows on a circle: row i at angle 0.1·i. Seeds 0 (a), 5 (b), 9 (a); row 3 is nearest 5 then 0 and 9.
        let n = 10
        let x = Embeddings(rows: n, cols: 2, data: (0 ..< n).flatMap { [Float(cos(0.1 * Double($0))), Float(sin(0.1 * Double($0)))] })
        let g = try KNNGraphBuilder.build(x, options: GraphOptions(k: 4))
        let run = RunLabels(labels: [0, 0, 0, 1, 1, 1, 1, 0, 0, 0], confidence: [Float](repeating: 0.5, count: n),
                            layer: [Int32](repeating: 1, count: n), isSeed: (0 ..< n).map { [0, 5, 9].contains($0) }, classNames: ["a", "b"])
        let item = ReviewItem(id: 3, label: "b", confidence: 0.5, score: 1, rank: 1)
        let c = Review.context(of: [item], run: run, graph: g, x: x, seeds: 2, neighbours: 4)[0]
        XCTAssertEqual(c.nearestSeeds.map(\.id), [5, 0]); XCTAssertEqual(c.nearestSeeds.map(\.label), ["b", "a"])
        XCTAssertEqual(c.nearestSeeds[0].similarity, Float(cos(0.2)), accuracy: 1e-6)
        // Neighbours of 3 at k = 4: 2 and 4 (distance 1), then 1 and 5: labels a, b, a, b.
        XCTAssertEqual(c.neighbourLabels, [.init(label: "a", count: 2), .init(label: "b", count: 2)])
        XCTAssertEqual(c.summary, "nearest labeled: b \(String(format: "%.2f", cos(0.2))), a \(String(format: "%.2f", cos(0.3))) · neighbours now: a 2, b 2")
        XCTAssertTrue(Review.context(of: [item], run: run, graph: g, x: x, seeds: 0, neighbours: 4)[0].nearestSeeds.isEmpty)
    }

    func testImageTasksConfigAndCSVShowTheItem() throws {
        let items = [ReviewItem(id: 7, label: "Shirt", confidence: 0.23, score: 2, rank: 1)]
        let ctx = ReviewContext(nearestSeeds: [.init(id: 3, label: "Coat", similarity: 0.9)], neighbourLabels: [.init(label: "Shirt", count: 4)])
        let shown = [ReviewShown(item: "/data/local-files/?d=images/7.png", context: ctx, seedImage: "/data/local-files/?d=images/3.png")]
        let data = try Review.encodeLabelStudio(items, shown: shown, kind: .image)
        let t = try XCTUnwrap((JSONSerialization.jsonObject(with: data) as? [[String: Any]])?.first)
        let d = try XCTUnwrap(t["data"] as? [String: Any])
        XCTAssertEqual(d["image"] as? String, "/data/local-files/?d=images/7.png")
        XCTAssertEqual(d["seed_image"] as? String, "/data/local-files/?d=images/3.png")
        XCTAssertEqual(d["context"] as? String, "nearest labeled: Coat 0.90 · neighbours now: Shirt 4")
        XCTAssertEqual(d["summary"] as? String, "sample 7 · current label: Shirt · confidence 0.23 · review rank 1")
        XCTAssertEqual(d["seed_caption"] as? String, "nearest labeled sample (3): Coat, similarity 0.90")
        XCTAssertNil(d["text"])
        let r = try XCTUnwrap((t["predictions"] as? [[String: Any]])?.first?["result"] as? [[String: Any]])
        XCTAssertEqual(r[0]["to_name"] as? String, "image", "the prediction points at the Image tag")
        let config = Review.labelStudioConfig(classNames: ["T-shirt/top", "Shirt & co"], kind: .image)
        XCTAssertTrue(config.contains("<Image name=\"image\" value=\"$image\""), config)
        XCTAssertTrue(config.contains("<Choices name=\"label\" toName=\"image\""), config)
        XCTAssertTrue(config.contains("<Choice value=\"Shirt &amp; co\"/>"), config)
        XCTAssertTrue(config.contains("$seed_image") && config.contains("$context") && config.contains("$summary"), config)
        let textConfig = Review.labelStudioConfig(classNames: ["a"], kind: .text)
        XCTAssertTrue(textConfig.contains("<Text name=\"text\" value=\"$text\"/>") && !textConfig.contains("<Image"), textConfig)

        let csv = String(decoding: Review.encodeCSV(items, shown: shown), as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(csv[0], "id,label,confidence,score,rank,item,context,corrected")
        XCTAssertEqual(csv[1], "7,Shirt,0.2300,2.0000,1,/data/local-files/?d=images/7.png,nearest labeled: Coat 0.90 · neighbours now: Shirt 4,")
    }

    func testRunNamedByClassList() throws {
        let ids = RunLabels(labels: [0, 1, -1], confidence: [1, 1, 0], layer: [0, 1, -1], isSeed: [true, false, false], classNames: ["0", "1"])
        let named = try ids.named(["cat", "dog", "bird"])
        XCTAssertEqual(named.classNames, ["cat", "dog", "bird"]); XCTAssertEqual(named.labels, [0, 1, -1])
        let names = RunLabels(labels: [0, 1], confidence: [1, 1], layer: [0, 1], isSeed: [true, false], classNames: ["dog", "cat"])
        XCTAssertEqual(try names.named(["cat", "dog"]).labels, [1, 0], "names are re-indexed to the list's order")
        XCTAssertThrowsError(try names.named(["cat", "bird"])) { XCTAssertTrue("\($0)".contains("'dog'"), "\($0)") }
        XCTAssertThrowsError(try ids.named(["cat"]), "id 1 is not a class of a 1-class list")
    }
}
