import Foundation

/// Where a sample's output label came from.
public enum LabelSource: UInt8, Sendable, CustomStringConvertible {
    case seed = 0, propagated = 1, fallback = 2, unlabeled = 3
    public var description: String { ["seed", "propagated", "fallback", "unlabeled"][Int(rawValue)] }
}

/// One layer of the hierarchy: the k and acceptance threshold in force, and how many points it labeled.
public struct LayerRecord: Sendable, Equatable, Codable {
    public var layer: Int
    public var k: Int
    public var threshold: Double
    public var added: Int
    public init(layer: Int, k: Int, threshold: Double, added: Int) {
        self.layer = layer; self.k = k; self.threshold = threshold; self.added = added
    }
}

/// The output of any labeling method, one entry per sample (length n).
/// `labels[i] == -1` means the method abstained; `layer[i]` is 0 for seeds and -1 when never labeled.
public struct LabelingResult: Sendable, Equatable {
    public var labels: [Int32]
    public var confidence: [Float]
    public var layer: [Int32]
    public var source: [LabelSource]
    public var layers: [LayerRecord]
    public var chosenK: Int

    public init(labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource], layers: [LayerRecord], chosenK: Int) {
        self.labels = labels; self.confidence = confidence; self.layer = layer; self.source = source
        self.layers = layers; self.chosenK = chosenK
    }
}

/// The labeling methods hdlabel offers. `hdl` is the method; the others are baselines behind the same interface.
public enum LabelMethod: String, Sendable, CaseIterable, Codable {
    case hdl, knn, spreading, propagation
}

/// Neighbourhood size: chosen from label clusterability (`auto`) or fixed by the user.
public enum KChoice: Sendable, Equatable, CustomStringConvertible {
    case auto
    case fixed(Int)
    public init?(_ text: String) {
        if text == "auto" { self = .auto } else if let v = Int(text), v >= 1 { self = .fixed(v) } else { return nil }
    }
    public var description: String { if case let .fixed(v) = self { return "\(v)" } else { return "auto" } }
}
