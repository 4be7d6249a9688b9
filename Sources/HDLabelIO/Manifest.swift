import HDLabelCore
import Foundation

/// Provenance written next to every output: what ran, on what, with which parameters, and how long it took.
public struct RunManifest: Codable, Sendable {
    public static let version = "0.1.0"
    public var tool = "hdlabel"
    public var version = RunManifest.version
    public var command: String
    public var method: String
    public var parameters: [String: String]
    public var inputs: [String: String]
    public var n: Int
    public var dimensions: Int
    public var classes: [String]
    public var chosenK: Int
    public var layers: [LayerRecord]
    public var timingsSeconds: [String: Double]
    public var ranks: Int
    /// HDL: evidence used; the pilot estimate of accuracy (held-out seeds whose class kept an anchor), its 95 % interval
    /// and sample count (absent when it cannot be estimated); the estimated accuracy after labeling.
    public var evidence: String?
    public var pilotAccuracy: Double?
    public var pilotInterval: [Double]?
    public var pilotSamples: Int?
    public var estimatedAccuracy: Double?
    /// The confidence calibration applied (`platt`, …, or `none`), why it is `none` (or how `auto` chose the map), the
    /// fitted parameters, and the `--min-confidence` threshold below which rows were abstained (0 = none).
    public var calibration: String?
    public var calibrationReason: String?
    public var calibrationParameters: String?
    public var calibrationSamples: Int?
    /// Expected error of the confidences' level from sampling the held-out seeds alone (`Calibration.samplingError`
    /// at the pilot estimate; absent without a fitted map and a pilot estimate).
    public var calibrationSamplingError: Double?
    public var minConfidence: Double?
    /// HDL: whether the refinement posterior was balanced to the seeds' class shares, and the layers' labels' distance
    /// from them (`HDL.labelShift`) that `--balance-classes auto` compared with `HDL.balanceMaxShift`.
    public var balancedClasses: Bool?
    public var labelShift: Double?
    /// HDL: whether the accepted labels were sources of the refinement posterior (`--refine-sources`).
    public var refinementSources: Bool?
    /// HDL: true when the labels come from the metric pass's second labeling; the reason when it was skipped.
    public var metricPass: Bool?
    public var metricPassNote: String?
    public var created: String

    public init(command: String, method: String, parameters: [String: String], inputs: [String: String], n: Int,
                dimensions: Int, classes: [String], chosenK: Int, layers: [LayerRecord],
                timingsSeconds: [String: Double], ranks: Int) {
        self.command = command; self.method = method; self.parameters = parameters; self.inputs = inputs; self.n = n
        self.dimensions = dimensions; self.classes = classes; self.chosenK = chosenK; self.layers = layers
        self.timingsSeconds = timingsSeconds; self.ranks = ranks
        created = ISO8601DateFormatter().string(from: Date())
    }

    /// Records what a labeling run says about itself: the evidence used, HDL's accuracy estimates (the pilot's with
    /// its interval, and the estimate after labeling), the calibration map and the abstention threshold. One call for
    /// every command that writes labels (single process and cluster).
    public mutating func record(labeling r: LabelingResult, minConfidence: Double) {
        evidence = r.evidence
        pilotAccuracy = r.pilotAccuracy
        pilotInterval = r.pilotEstimate.map { [$0.interval.lower, $0.interval.upper] }
        pilotSamples = r.pilotEstimate?.samples
        estimatedAccuracy = r.estimatedAccuracy
        let map = r.calibration
        calibration = map.method.rawValue
        calibrationReason = map.method == .none ? map.reason : map.choice.isEmpty ? nil : "auto: " + map.choice
        calibrationParameters = map.method == .none ? nil : map.parameters
        calibrationSamples = map.samples
        calibrationSamplingError = map.samplingError(pilot: r.pilotEstimate)
        self.minConfidence = minConfidence
        balancedClasses = r.balancedClasses
        labelShift = r.labelShift
        refinementSources = r.refinementSources
        metricPass = r.metricPass; metricPassNote = r.metricPassNote
    }

    public func write(to path: String) throws {
        try AtomicFile.write(try json(), to: path)
    }

    public func json() throws -> Data {
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }

    /// Where the manifest of `output` lives.
    public static func path(for output: String) -> String { output + ".manifest.json" }

    /// `fnv1a64-head:<hex>:<bytes>` of a file's first MiB and its size: cheap provenance for inputs too large to hash
    /// on one rank (the cluster's manifests and checkpoint keys).
    public static func headHash(_ path: String) -> String {
        guard let fh = FileHandle(forReadingAtPath: path) else { return "unreadable" }
        defer { try? fh.close() }
        var h: UInt64 = 0xcbf29ce484222325
        for b in (try? fh.read(upToCount: 1 << 20)) ?? Data() { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        let size = (try? fh.seekToEnd()).map(Int.init) ?? 0
        return "fnv1a64-head:" + String(h, radix: 16) + ":\(size)"
    }

    /// `fnv1a64:<hex>:<bytes>` of a file's content (streamed), for input provenance.
    public static func fileHash(_ path: String) -> String {
        guard let fh = FileHandle(forReadingAtPath: path) else { return "unreadable" }
        defer { try? fh.close() }
        var h: UInt64 = 0xcbf29ce484222325
        var total = 0
        while let chunk = try? fh.read(upToCount: 1 << 20), !chunk.isEmpty {
            total += chunk.count
            chunk.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                for b in raw { h = (h ^ UInt64(b)) &* 0x100000001b3 }   // over the raw bytes: no per-byte iterator
            }
        }
        return "fnv1a64:" + String(h, radix: 16) + ":\(total)"
    }
}

extension GraphRecall.Estimate {
    /// The manifest keys of a recall estimate (`graph_recall`, `graph_recall_ci95`, `graph_recall_rows`), the same for
    /// every command that builds an approximate graph.
    public var manifestParameters: [String: String] {
        ["graph_recall": String(format: "%.4f", recall), "graph_recall_ci95": String(format: "%.4f-%.4f", lower, upper),
         "graph_recall_rows": "\(rows)"]
    }
}
