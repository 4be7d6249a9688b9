import Foundation

/// Hierarchical Dynamic Labeling (placeholder until the full method lands).
public enum HDL {
    public static func label(graph: KNNGraph, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                             log: ((String) -> Void)? = nil) throws -> LabelingResult {
        Baselines.iscenPropagation(graph: graph.truncated(to: min(10, graph.k)), seeds: seeds, numClasses: numClasses, alpha: config.alpha, gamma: config.gamma, iterations: config.iterations)
    }
}
