import Foundation
import HDLabelCore

/// The labels CSV: header `id,label,confidence,layer,source`, one line per sample with its global id.
/// Confidence is printed with Swift's shortest round-trip float form; `label` is -1 where no label was given.
public enum LabelsCSV {
    /// CSV text for samples `firstId ..< firstId + labels.count` (all arrays the same length).
    public static func encode(firstId: Int, labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource]) -> Data {
        var out = "id,label,confidence,layer,source\n"
        out.reserveCapacity(32 * (labels.count + 1))
        for i in labels.indices {
            out += "\(firstId + i),\(labels[i]),\(confidence[i]),\(layer[i]),\(source[i])\n"
        }
        return Data(out.utf8)
    }
}
