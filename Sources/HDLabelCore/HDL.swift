import Foundation

/// Hierarchical Dynamic Labeling (Ma et al., arXiv 2404.17173), as reconstructed in `docs/method.md`.
///
/// Labels come only from the embedding graph, never from a classifier's logits:
/// 1. **Layers.** Each layer propagates the current anchors' labels over the whole kNN graph (similarity^γ
///    weights, symmetric normalisation, class-mass-normalised anchors, conjugate gradient) and accepts the
///    unlabeled points tied most strongly and unambiguously to one class: class share ≥ τ, at most
///    `layerFraction` of the remaining points, most reliable first. Accepted points become anchors.
/// 2. **Dynamic.** When a layer would add fewer than `minLayerFraction·n` points, τ relaxes by `tauStep`
///    down to `tauMin`; k is re-estimated from label clusterability as the labeled pool grows.
/// 3. **Leftovers** get the final propagation's label (`source = fallback`) or stay -1 (`fallback = false`).
/// Seeds are never overwritten. Deterministic: no randomness, ties broken by index.
public enum HDL {
    public static func label(graph: KNNGraph, seeds: [Int32], numClasses c: Int, config: LabelingConfig,
                             log: ((String) -> Void)? = nil) throws -> LabelingResult {
        let n = graph.n
        var engine = PropagationEngine(graph: graph, numClasses: c, alpha: Float(config.alpha), gamma: Float(config.gamma), iterations: config.iterations)
        var labels = seeds
        var conf = seeds.map { $0 >= 0 ? Float(1) : 0 }
        var layer = seeds.map { $0 >= 0 ? Int32(0) : -1 }
        var source = seeds.map { $0 >= 0 ? LabelSource.seed : .unlabeled }
        var remaining = (0 ..< n).filter { seeds[$0] < 0 }
        let minAdd = max(1, Int(config.minLayerFraction * Double(n)))

        // k for this layer: fixed, or chosen from clusterability of the provisional labeling.
        func chooseK(_ f: [Float]?) -> Int {
            if case let .fixed(v) = config.k { return min(v, graph.k) }
            let kInit = min(10, graph.k)
            let scores = f ?? engine.propagate(k: kInit, anchors: labels)
            let (prov, share) = Scores.argmaxShare(scores, n: n, c: c)
            var provisional = labels
            var errSum = 0.0
            for i in remaining { provisional[i] = prov[i]; errSum += Double(1 - share[i]) }
            let e = remaining.isEmpty ? 0.01 : min(0.49, max(1e-3, errSum / Double(remaining.count)))
            return KSelection.choose(graph: graph, labels: provisional, errorRate: e, candidates: KSelection.candidates(kMax: graph.k)).k
        }

        var k = chooseK(nil)
        let chosenK0 = k
        var tau = config.tauStart
        var records: [LayerRecord] = []
        var t = 0
        while !remaining.isEmpty && t < config.maxLayers {
            let f = engine.propagate(k: k, anchors: labels, balance: config.balance)
            let (arg, share) = Scores.argmaxShare(f, n: n, c: c)
            let cap = max(minAdd, Int(config.layerFraction * Double(remaining.count)))
            var cand = remaining.filter { arg[$0] >= 0 && Double(share[$0]) >= tau }
            if cand.count < minAdd {
                if tau - config.tauStep >= config.tauMin - 1e-9 {
                    tau -= config.tauStep
                    log?("HDL: layer \(t + 1) would add \(cand.count) < \(minAdd) points; relaxing threshold to \(String(format: "%.2f", tau))")
                    continue
                }
                break
            }
            if config.classQuota {
                // Reliable first *per class*: each class may add the same fraction of the remaining points it
                // currently wins, so easy classes cannot flood the anchor pool.
                var byClass = [[Int]](repeating: [], count: c)
                var wins = [Int](repeating: 0, count: c)
                for i in remaining where arg[i] >= 0 { wins[Int(arg[i])] += 1 }
                for i in cand { byClass[Int(arg[i])].append(i) }
                cand = []
                for j in 0 ..< c {
                    var l = byClass[j]
                    l.sort { share[$0] > share[$1] || (share[$0] == share[$1] && $0 < $1) }
                    let q = max(1, Int((config.layerFraction * Double(wins[j])).rounded(.up)))
                    cand.append(contentsOf: l.prefix(q))
                }
            } else {
                cand.sort { share[$0] > share[$1] || (share[$0] == share[$1] && $0 < $1) }
                if cand.count > cap { cand.removeLast(cand.count - cap) }
            }
            t += 1
            for i in cand { labels[i] = arg[i]; conf[i] = share[i]; layer[i] = Int32(t); source[i] = .propagated }
            let accepted = Set(cand)
            remaining.removeAll { accepted.contains($0) }
            records.append(LayerRecord(layer: t, k: k, threshold: tau, added: cand.count))
            log?("HDL: layer \(t): k=\(k) threshold=\(String(format: "%.2f", tau)) added \(cand.count), \(remaining.count) left")
            if case .auto = config.k { k = chooseK(nil) }
        }
        if !remaining.isEmpty {
            if config.fallback {
                let f = engine.propagate(k: k, anchors: labels, balance: config.balance)
                let (arg, share) = Scores.argmaxShare(f, n: n, c: c)
                var unreachable = 0
                for i in remaining {
                    if arg[i] < 0 { unreachable += 1; continue }
                    labels[i] = arg[i]; conf[i] = share[i]; layer[i] = Int32(t + 1); source[i] = .fallback
                }
                log?("HDL: \(remaining.count - unreachable) leftovers labeled by the final propagation (fallback)")
                if unreachable > 0 { log?("HDL: warning: \(unreachable) points are in graph components with no labeled point and stay unlabeled (-1); a larger --k-max connects more of the graph") }
            } else {
                log?("HDL: \(remaining.count) leftovers stay unlabeled (-1)")
            }
        }
        return LabelingResult(labels: labels, confidence: conf, layer: layer, source: source, layers: records, chosenK: chosenK0)
    }
}

/// Propagation over the graph truncated to a given k, with the normalised affinity cached per k.
struct PropagationEngine {
    let graph: KNNGraph
    let numClasses: Int
    let alpha: Float
    let gamma: Float
    let iterations: Int
    var cache: [Int: NormalizedAffinity] = [:]

    init(graph: KNNGraph, numClasses: Int, alpha: Float, gamma: Float, iterations: Int) {
        self.graph = graph; self.numClasses = numClasses; self.alpha = alpha; self.gamma = gamma; self.iterations = iterations
    }

    /// `n × C` class scores from the anchors (labels ≥ 0), class-mass normalised.
    /// With `balance`, scores are divided by each class's anchor share (long-tail normalisation).
    mutating func propagate(k: Int, anchors: [Int32], balance: Bool = false) -> [Float] {
        let g = gamma
        if cache[k] == nil { cache[k] = NormalizedAffinity(graph: graph.truncated(to: k), weight: { powf(max($0, 0), g) }) }
        let y = Baselines.seedMatrix(anchors, numClasses: numClasses, classMassNormalized: true)
        var f = cache[k]!.solve(y, columns: numClasses, alpha: alpha, iterations: iterations)
        if balance {
            var cnt = [Float](repeating: 0, count: numClasses)
            for a in anchors where a >= 0 { cnt[Int(a)] += 1 }
            let tot = cnt.reduce(0, +)
            for i in 0 ..< graph.n { for j in 0 ..< numClasses where cnt[j] > 0 { f[i * numClasses + j] /= cnt[j] / tot } }
        }
        return f
    }
}
