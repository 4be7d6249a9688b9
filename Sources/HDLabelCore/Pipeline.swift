import Foundation

/// Entry points shared by the single-process CLI and the cluster's root rank: one implementation, two callers.
public enum Labeling {
    /// Runs `config.method` on a prebuilt graph. `graph.k` must be at least `config.graphK(n:)`.
    /// - seeds: length n, class id or -1. Seeds are never overwritten.
    /// - embeddings: the L2-normalised rows (n × d) the graph was built from; HDL's geometry evidence needs them
    ///   (without them HDL uses the graph alone). Baselines ignore them.
    public static func run(graph: KNNGraph, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                           embeddings: Embeddings? = nil, log: ((String) -> Void)? = nil) throws -> LabelingResult {
        try run(rows: graph, comm: LocalRows(n: graph.n), seeds: seeds, numClasses: numClasses, config: config, embeddings: embeddings, log: log)
    }

    /// The same with the rows split over processes: `graph` (and `embeddings`, when given) hold the rows `comm.rows`;
    /// `seeds` covers all n rows. Returns all n rows on every process, identical to the single-process run. With
    /// `config.minConfidence` > 0 the rows below it are abstained (`Calibration.abstaining`) after the method ran.
    /// **Collective** over `comm` (the cluster's `--distributed-labeling`).
    public static func run(rows graph: KNNGraph, comm: RowCollectives, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                           embeddings: Embeddings? = nil, log: ((String) -> Void)? = nil) throws -> LabelingResult {
        try config.validate(n: comm.n)
        try validateSeeds(seeds, numClasses: numClasses, n: comm.n)
        if graph.n != comm.rows.count { throw HDLError.invalidInput("graph has \(graph.n) rows, expected \(comm.rows.count)") }
        let r = try runMethod(rows: graph, comm: comm, seeds: seeds, numClasses: numClasses, config: config, embeddings: embeddings, log: log)
        guard config.minConfidence > 0 else { return r }
        let out = Calibration.abstaining(r, below: config.minConfidence)
        let kept = Calibration.kept(out)
        log?("abstained below confidence \(config.minConfidence): kept \(kept.kept) of \(kept.rows) non-seed rows (coverage "
            + String(format: "%.4f", kept.coverage) + "), expected accuracy of the kept rows " + String(format: "%.4f", kept.expectedAccuracy))
        return out
    }

    /// The method alone (no abstention), over validated inputs.
    static func runMethod(rows graph: KNNGraph, comm: RowCollectives, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                          embeddings: Embeddings?, log: ((String) -> Void)?) throws -> LabelingResult {
        let k10 = fixedOr(config, 10, graph)
        switch config.method {
        case .knn: return try Baselines.knnVote(rows: graph, comm: comm, seeds: seeds, numClasses: numClasses, k: k10)
        case .spreading: return try Baselines.labelSpreading(rows: graph.truncated(to: k10), comm: comm, seeds: seeds, numClasses: numClasses, alpha: config.alpha, iterations: config.iterations)
        case .propagation: return try Baselines.iscenPropagation(rows: graph.truncated(to: k10), comm: comm, seeds: seeds, numClasses: numClasses, alpha: config.alpha, gamma: config.gamma, iterations: config.iterations)
        case .hdl:
            if let e = embeddings, e.rows != graph.n { throw HDLError.invalidInput("embeddings have \(e.rows) rows, graph has \(graph.n)") }
            return try HDL.label(rows: graph, comm: comm, embeddings: embeddings, seeds: seeds, numClasses: numClasses, config: config, log: log)
        }
    }

    /// `run` on one process holding the whole graph, with HDL's geometry evidence from `geometry` (nil: none) instead
    /// of embeddings held here: the cluster's root-labeled mode, where the ranks holding the embeddings compute it.
    public static func run(graph: KNNGraph, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                           geometry: GeometrySource?, log: ((String) -> Void)? = nil) throws -> LabelingResult {
        guard config.method == .hdl else { return try run(graph: graph, seeds: seeds, numClasses: numClasses, config: config, log: log) }
        let comm = LocalRows(n: graph.n)
        try config.validate(n: comm.n)
        try validateSeeds(seeds, numClasses: numClasses, n: comm.n)
        return try HDL.label(rows: graph, comm: comm, geometry: geometry, seeds: seeds, numClasses: numClasses, config: config, log: log)
    }

    static func fixedOr(_ c: LabelingConfig, _ dflt: Int, _ g: KNNGraph) -> Int {
        if case let .fixed(v) = c.k { return min(v, g.k) }
        return min(dflt, g.k)
    }

    /// The single-process pipeline — the one `hdlabel label`, the benchmarks and the tests call: validate, L2-normalise,
    /// build the graph (`graph.k` = `config.graphK(n:)`), label. Phases `normalise`, `graph` and `label` are timed by
    /// `timing`; `progress(doneRows, totalRows)` reports the graph build.
    ///
    /// - graph: which builder (`exact`, `approx`, or `auto` by n); `approx` supplies the approximate builder's options
    ///   (its k is replaced by `config.graphK(n:)`).
    /// - prebuilt: a graph built earlier from the same rows (`hdlabel graph`, `--knn-graph`); it must hold at least
    ///   `config.graphK(n:)` neighbours per row and is truncated to that width.
    public static func label(embeddings: Embeddings, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                             tile: Int = GraphOptions.defaultTile, graph method: GraphMethod = .exact,
                             approx: ApproxGraphOptions? = nil, prebuilt: KNNGraph? = nil, timing: inout some PhaseTiming,
                             progress: ((Int, Int) -> Void)? = nil,
                             log: ((String) -> Void)? = nil) throws -> (graph: KNNGraph, result: LabelingResult) {
        try embeddings.validate()
        try config.validate(n: embeddings.rows)
        try validateSeeds(seeds, numClasses: numClasses, n: embeddings.rows)
        let x = timing.time("normalise") { embeddings.l2Normalized() }
        let gk = config.graphK(n: x.rows)
        let g = try timing.time("graph") {
            try KNNGraphBuilder.graph(of: x, k: gk, method: method, tile: tile, approx: approx, prebuilt: prebuilt, progress: progress)
        }
        guard config.runsMetricPass else {
            let r = try timing.time("label") { try run(graph: g, seeds: seeds, numClasses: numClasses, config: config, embeddings: x, log: log) }
            return (g, r)
        }
        let r1 = try timing.time("label") {
            try run(graph: g, seeds: seeds, numClasses: numClasses, config: MetricPass.firstPass(config), embeddings: x, log: log)
        }
        let r = try timing.time("metric pass") {
            try metricPass(after: r1, x: x, seeds: seeds, numClasses: numClasses, config: config, log: log) { z in
                try KNNGraphBuilder.graph(of: z, k: gk, method: method, tile: tile, approx: approx, prebuilt: nil, progress: progress)
            }
        }
        return (g, r)
    }

    /// HDL's metric pass on one process holding all n rows (`MetricPass`): the rows `x` (L2-normalised) mapped into
    /// the metric of `first`'s within-class scatter, the graph rebuilt there by `build` (the same builder and width as
    /// the first graph), and `config`'s labeling run again over it with the graph evidence (`MetricPass.secondPass`;
    /// `config.minConfidence` applies to this result only). Returns `first` unchanged when the pass is off; with `auto`
    /// also when it cannot run (`metricPassNote` says why). The pipeline, the benchmarks and the tests' cluster
    /// references call this; the cluster job runs the same steps over its ranks.
    public static func metricPass(after first: LabelingResult, x: Embeddings, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                                  log: ((String) -> Void)? = nil, build: (Embeddings) throws -> KNNGraph) throws -> LabelingResult {
        guard config.runsMetricPass else { return first }
        if config.metricPass == .auto, let reason = MetricPass.autoSkipReason(after: first, numClasses: numClasses) {
            log?("HDL: metric pass skipped: \(reason)")
            var r = first
            r.metricPassNote = reason
            return r
        }
        let mapped = try MetricPass.whitenedOrReason(rows: x, comm: LocalRows(n: x.rows), localLabels: first.labels, numClasses: numClasses,
                                                     shrinkage: config.metricShrinkage, classBalance: config.metricClassBalance)
        guard let z = mapped.rows else {
            let reason = try MetricPass.unavailable(mapped.reason ?? "", config: config)
            log?("HDL: metric pass skipped: \(reason) (auto); the first labeling stands")
            var r = first
            r.metricPassNote = reason
            return r
        }
        log?("HDL: metric pass: rows mapped into the first labeling's within-class metric (shrinkage \(config.metricShrinkage), class balance \(config.metricClassBalance)); "
            + "graph rebuilt there, labeling again from the seeds with the graph evidence")
        let g2 = try build(z)
        var r = try run(graph: g2, seeds: seeds, numClasses: numClasses, config: MetricPass.secondPass(config), log: log)
        r.metricPass = true
        let filled = MetricPass.fillUnreached(labels: &r.labels, confidence: &r.confidence, layer: &r.layer, source: &r.source,
                                              first: (first.labels, first.confidence, first.layer, first.source), minConfidence: config.minConfidence)
        log?("HDL: metric pass: \(zip(first.labels, r.labels).filter { $0 != $1 }.count) labels changed by the second labeling"
            + (filled > 0 ? "; \(filled) rows it could not reach (no seed in their component of the rebuilt graph) keep the first labeling's" : ""))
        return r
    }

    /// The same without timing.
    public static func label(embeddings: Embeddings, seeds: [Int32], numClasses: Int, config: LabelingConfig,
                             tile: Int = GraphOptions.defaultTile, progress: ((Int, Int) -> Void)? = nil,
                             log: ((String) -> Void)? = nil) throws -> (graph: KNNGraph, result: LabelingResult) {
        var none = NoTiming()
        return try label(embeddings: embeddings, seeds: seeds, numClasses: numClasses, config: config, tile: tile, graph: .exact,
                         timing: &none, progress: progress, log: log)
    }
}

/// Times named phases for a caller (the CLI's `PhaseTimer`); core code marks its phases and never reads a clock.
public protocol PhaseTiming {
    mutating func time<T>(_ phase: String, _ body: () throws -> T) rethrows -> T
}

/// Phases not timed.
public struct NoTiming: PhaseTiming {
    public init() {}
    public mutating func time<T>(_ phase: String, _ body: () throws -> T) rethrows -> T { try body() }
}
