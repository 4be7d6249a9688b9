import Foundation
import HDLabelCore

/// Deterministic generator for test data (the core's SplitMix64, with float draws).
public struct TestRNG {
    public var base: SplitMix64
    public init(_ seed: UInt64) { base = SplitMix64(seed: seed) }
    public mutating func next() -> UInt64 { base.next() }
    public mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    public mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// `c` Gaussian clusters in `d` dimensions, `perClass` points each; returns embeddings and true classes.
public func clusteredData(c: Int, perClass: Int, d: Int, spread: Float, seed: UInt64) -> (Embeddings, [Int32]) {
    var rng = TestRNG(seed)
    let centres = (0 ..< c).map { _ in (0 ..< d).map { _ in rng.normal() } }
    var data = [Float](), y = [Int32]()
    for i in 0 ..< c * perClass {
        let cl = i % c
        for j in 0 ..< d { data.append(centres[cl][j] + spread * rng.normal()) }
        y.append(Int32(cl))
    }
    return (Embeddings(rows: c * perClass, cols: d, data: data), y)
}

/// Seeds: the first `per` points of each class labeled, the rest -1.
public func seedsFrom(_ y: [Int32], per: Int, classes: Int) -> [Int32] {
    var count = [Int](repeating: 0, count: classes)
    return y.map { l in
        if count[Int(l)] < per { count[Int(l)] += 1; return l }
        return -1
    }
}

public func tempPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hdlabel-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}
