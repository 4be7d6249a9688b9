import Foundation

/// Which evidence HDL combines for a point's class posterior in each layer.
public enum EvidenceMode: String, Sendable, CaseIterable, Codable {
    /// Chosen per dataset by cross-validation on the seeds (the pilot estimate).
    case auto
    /// Graph propagation only (kNN structure).
    case graph
    /// Class geometry only (shared-covariance Gaussians around the anchors' class means).
    case geometry
    /// Product of both.
    case both
}

/// Hierarchical Dynamic Labeling (Ma et al., arXiv 2404.17173), as reconstructed and extended in `docs/method.md`.
///
/// Labels come only from the embeddings (their kNN graph and their class geometry), never from a classifier's logits:
/// 1. **Evidence.** A point's class posterior combines (a) propagation of the anchors' labels over the kNN graph
///    (similarity^γ weights, symmetric normalisation; anchors clamped, harmonic extension solved by conjugate
///    gradient) and (b) the class geometry of the anchors (Gaussian class means with a shared, shrunk covariance).
///    Which of the two suits the data is chosen by cross-validation on the seeds (`EvidenceMode.auto`; the geometry
///    needs a paired margin over the graph, `evidenceMargin`);
///    the same cross-validation gives the pilot estimate of accuracy before labeling.
/// 2. **Layers.** Each layer accepts the unlabeled points whose posterior reaches the threshold τ (most reliable
///    first): at most `layerFraction` of each class's remaining winners with per-class quotas (`classQuota`: the
///    graph evidence), else at most `globalLayerFraction` of all remaining points by log-odds (the geometry). Accepted
///    points become anchors for the next layer.
/// 3. **Dynamic.** When a layer would add fewer than `minLayerFraction·n` points, τ relaxes by `tauStep` down to
///    `tauMin`; k is re-estimated from label clusterability as the labeled pool grows.
/// 4. **Leftovers** get the final posterior's label (`source = fallback`) or stay -1 (`fallback = false`).
/// 5. **Refinement** (`refine`): one more posterior from all labels (seeds clamped) relabels the non-seed points.
/// Seeds are never overwritten. Deterministic: no randomness, ties broken by index.
public enum HDL {
    /// Neighbours of the provisional graph posterior that `--k auto` scores clusterability from (the first 10 of
    /// the graph's k; the same width as the kNN-vote baseline).
    public static let provisionalK = 10
    /// The provisional labeling's error estimate ê is clamped to this range before it enters the majority bound
    /// (ê = 0 or ≥ 0.5 would make every k equally good or none); 0.01 when nothing is left to label.
    public static let errorClamp: ClosedRange<Double> = 1e-3 ... 0.49
    public static let errorWhenDone = 0.01
    /// Folds of the seed cross-validation behind the evidence choice and the pilot estimate.
    public static let pilotFolds = 5
    /// `--k-min auto` floors k at `provisionalK` when the largest class has fewer seeds than this. With more seeds it
    /// floors k at `provisionalK` in the layers when the evidence is the graph and the bound's first choice (from the
    /// seeds alone) is below it; the pilot (evidence choice, estimate, calibration samples) runs at the bound's k.
    /// Measured in docs/method.md ("The graph floor").
    public static let kFloorBelowSeeds = 3
    /// Sinkhorn steps of `LabelingConfig.balanceClasses`.
    public static let balanceIterations = 10
    /// `--balance-classes auto` balances the graph evidence's refinement posterior only when the layers' labels are at
    /// most this far from the seeds' class shares (`labelShift`, total variation): a pool whose labeling departs
    /// further is long-tailed beyond what the graph's bias explains (Fashion-MNIST ρ = 10 and 100 with one seed per
    /// class: 0.26–0.54, balanced pools 0.04–0.25; chosen on seeds 0–2, docs/method.md "Class balancing").
    public static let balanceMaxShift = 0.25
    /// `--refine-sources auto` makes the accepted labels sources of the graph evidence's refinement posterior when it
    /// is not balanced and the layers' labels are more than `sourceMinShift` and at most `sourceMaxShift` from the
    /// seeds' class shares (`labelShift`). Long tails under 1–2 seeds per class (Fashion-MNIST ρ = 10 and 100:
    /// 0.26–0.54) gain from 0.3 up; between 0.25 and 0.3 the development runs lost (a balanced pool at 0.252 among
    /// them). A labeling beyond 0.5 has collapsed onto a few classes (WordNet with 1–2 seeds per class: 0.58–0.76),
    /// where its sources spread the error (−6 to −17 points). docs/method.md, "Sources in the refinement"; chosen on
    /// seeds 0–2.
    public static let sourceMinShift = 0.3
    public static let sourceMaxShift = 0.5
    /// Seeds count as balanced (uniform prior at first, refinement on under `auto`) when the largest class has at
    /// most this many times the seeds of the smallest.
    public static let balancedSeedRatio = 2
    /// Neighbours of the one-shot propagation that `propagationBlend` blends with (the propagation baseline's k).
    public static let blendK = 10

    /// Labels every point. `embeddings` (n × d, L2-normalised) enables the geometry evidence; without it HDL uses
    /// the graph alone.
    public static func label(graph: KNNGraph, embeddings: Embeddings?, seeds: [Int32], numClasses c: Int, config: LabelingConfig,
                             log: ((String) -> Void)? = nil) throws -> LabelingResult {
        try label(rows: graph, comm: LocalRows(n: graph.n), embeddings: embeddings, seeds: seeds, numClasses: c, config: config, log: log)
    }

    /// The same with the rows split over processes (the cluster's worker-side labeling; `LocalRows` on one process).
    /// `graph` holds this process's rows `comm.rows` (global neighbour ids); `seeds` covers all n rows. Evidence is
    /// computed for the local rows only; per layer the rows' argmax class and share (n ints + n floats) are
    /// allgathered so every process takes the same layer decisions, and the result (all n rows) is the same on every
    /// process and identical to the single-process run. `embeddings` holds the same rows as `graph` (the geometry
    /// evidence reduces its class statistics over processes). **Collective** over `comm`.
    public static func label(rows graph: KNNGraph, comm: RowCollectives, embeddings: Embeddings?, seeds: [Int32], numClasses c: Int,
                             config: LabelingConfig, log: ((String) -> Void)? = nil) throws -> LabelingResult {
        precondition(embeddings == nil || embeddings!.rows == graph.n)
        return try label(rows: graph, comm: comm, geometry: embeddings.map { RowGeometry(x: $0, comm: comm) }, seeds: seeds,
                         numClasses: c, config: config, log: log)
    }

    /// The same with the geometry evidence from `geometry` (nil: the graph alone), e.g. computed by the ranks that
    /// hold the embeddings while this process holds the graph. **Collective** over `comm` (and as `geometry` says).
    public static func label(rows graph: KNNGraph, comm: RowCollectives, geometry: GeometrySource?, seeds: [Int32], numClasses c: Int,
                             config: LabelingConfig, log: ((String) -> Void)? = nil) throws -> LabelingResult {
        let n = comm.n
        precondition(graph.n == comm.rows.count && seeds.count == n)
        var ev = Evidence(graph: graph, comm: comm, geometry: geometry, numClasses: c, config: config)
        let balanced = Evidence.seedsBalanced(seeds, numClasses: c)
        ev.priorExponent = Evidence.usesUniformPrior(config.classPrior, seedsBalanced: balanced) ? 1 : Float(config.priorFlattening)
        log?("HDL: class prior: " + (ev.priorExponent == 1 ? "uniform" : ev.priorExponent == 0 ? "anchor class shares"
            : "anchor class shares flattened by \(config.priorFlattening)")
            + (ev.priorExponent < 1 && balanced ? " (balanced seeds: uniform at first, then the labeled pool's)" : ""))
        var labels = seeds
        var conf = seeds.map { $0 >= 0 ? Float(1) : 0 }
        // Log-odds of each row's confidence, from the posterior row it was read from (calibration reads these).
        var odds = seeds.map { $0 >= 0 ? Float(Calibration.logOddsLimit) : Float(-Calibration.logOddsLimit) }
        var layer = seeds.map { $0 >= 0 ? Int32(0) : -1 }
        var source = seeds.map { $0 >= 0 ? LabelSource.seed : .unlabeled }
        var remaining = (0 ..< n).filter { seeds[$0] < 0 }
        let minAdd = max(1, Int(config.minLayerFraction * Double(n)))

        // k: fixed, or chosen from clusterability of the provisional labeling.
        // Argmax class and share of every row (local rows computed here, the rest allgathered).
        func argShare(_ post: [Float]) throws -> (labels: [Int32], share: [Float]) {
            let (a, s, _) = Scores.argmaxShare(post, n: graph.n, c: c, threads: config.threads)
            return (try comm.allgather(a), try comm.allgather(s))
        }
        /// The same with each share's log-odds (for the confidences a row keeps).
        func argShareOdds(_ post: [Float]) throws -> (labels: [Int32], share: [Float], logOdds: [Float]) {
            let (a, s, z) = Scores.argmaxShare(post, n: graph.n, c: c, threads: config.threads)
            return (try comm.allgather(a), try comm.allgather(s), try comm.allgather(z))
        }
        func chooseK(_ post: [Float]?) throws -> Int {
            if case let .fixed(v) = config.k { return min(v, graph.k) }
            let p = try post ?? ev.posterior(anchors: labels, k: min(HDL.provisionalK, graph.k), mode: .graph)
            let (prov, share) = try argShare(p)
            var provisional = labels
            var errSum = 0.0
            for i in remaining { provisional[i] = prov[i]; errSum += Double(1 - share[i]) }
            let e = remaining.isEmpty ? HDL.errorWhenDone
                : min(HDL.errorClamp.upperBound, max(HDL.errorClamp.lowerBound, errSum / Double(remaining.count)))
            let hist = try comm.sum(KSelection.firstDisagreement(graph: graph, firstRow: comm.rows.lowerBound, labels: provisional))
            let chosen = KSelection.choose(deltaHat: KSelection.deltaHat(histogram: hist, k: graph.k), kMax: graph.k, errorRate: e,
                                           candidates: KSelection.candidates(kMax: graph.k)).k
            return max(chosen, min(kFloor, graph.k))
        }

        // The floor from the options and the seeds; the graph floor below may raise `kFloor` after the pilot.
        let seedFloor: Int
        switch config.kMin {
        case let .fixed(v): seedFloor = v
        case .auto: seedFloor = (classCounts(seeds, numClasses: c).max() ?? 0) < HDL.kFloorBelowSeeds ? HDL.provisionalK : 0
        }
        var kFloor = seedFloor
        if kFloor > 0, case .auto = config.k { log?("HDL: adaptive k floored at \(min(kFloor, graph.k)) (--k-min \(config.kMin))") }
        var k = try chooseK(nil)
        // `--k-min auto` with 3+ seeds in the largest class: the graph's layers run at k ≥ provisionalK where the bound
        // picked less from the seeds (the evidence choice and the pilot estimate stay at the bound's k).
        let boundK = k
        func graphFloored(_ m: EvidenceMode) -> Bool {
            guard case .auto = config.k, case .auto = config.kMin else { return false }
            return m == .graph && seedFloor == 0 && boundK < HDL.provisionalK && boundK < graph.k
        }
        /// The k the layers of evidence `m` start at (the pilot's calibration samples are read at it).
        func layerK(_ m: EvidenceMode) -> Int { graphFloored(m) ? min(HDL.provisionalK, graph.k) : boundK }
        // Evidence mode and pilot estimate.
        let refine = config.refine == .on || (config.refine == .auto && balanced)
        // Confidences from a posterior of all labels (the refinement's, or without it one more such posterior).
        let finalConfidence = refine || config.confidence == .final
        let pilot = try ev.pilot(seeds: seeds, k: k, refined: finalConfidence && config.calibration != .none, layerK: layerK)
        let mode: EvidenceMode = config.evidence == .auto ? pilot.best : config.evidence
        if graphFloored(mode) {
            k = layerK(mode)
            kFloor = HDL.provisionalK
            log?("HDL: adaptive k floored at \(k) in the graph layers (the bound chose \(boundK) from the seeds; --k-min auto)")
        }
        let chosenK0 = k
        // Per-class quotas: with the graph (alone or in the product), not with the geometry alone under `auto`.
        let quota = config.classQuota == .on || (config.classQuota == .auto && mode != .geometry)
        if config.classQuota == .auto && !quota {
            log?("HDL: layers without per-class quotas (the geometry evidence; --class-quota auto): the most confident rows of any class first")
        }
        let pilotText = pilot.accuracy.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \(String(format: "%.3f", $0.value))" }.joined(separator: ", ")
        log?("HDL: evidence by seed cross-validation (every held-out seed): \(pilotText); geometry vs graph paired z "
            + String(format: "%.2f", pilot.z) + " (margin \(config.evidenceMargin)); using \(mode.rawValue)")
        let pilotEstimate = AccuracyEstimates.pilot(pilot.estimate[mode])
        if let e = pilotEstimate { log?("HDL: pilot estimate of accuracy (before labeling): \(e.description)") }
        else {
            log?("HDL: pilot estimate of accuracy: cannot be estimated — \(pilot.estimate[mode]?.samples ?? 0) held-out seeds kept a seed of their "
                + "class in their fold (at least \(AccuracyEstimates.minSamples) are needed, i.e. 2 or more seeds per class)")
        }
        func tallyText(since t0: Evidence.SolveTally) -> String {
            let t = ev.tally
            return "\(t.solves - t0.solves) graph solves (\(t.iterations - t0.iterations) CG iterations, \(t.capped - t0.capped) at the cap), \(t.reused - t0.reused) reused"
        }
        log?("HDL: pilot work: " + tallyText(since: Evidence.SolveTally()))
        let afterPilot = ev.tally

        var tau = config.tauStart
        var records: [LayerRecord] = []
        var t = 0
        var post = try ev.posterior(anchors: labels, k: k, mode: mode)
        while !remaining.isEmpty && t < config.maxLayers {
            let (arg, share, z) = try argShareOdds(post)
            var cand = remaining.filter { arg[$0] >= 0 && Double(share[$0]) >= tau }
            if cand.count < minAdd {
                if tau - config.tauStep >= config.tauMin - 1e-9 {
                    tau -= config.tauStep
                    log?("HDL: layer \(t + 1) would add \(cand.count) < \(minAdd) points; relaxing threshold to \(String(format: "%.2f", tau))")
                    continue
                }
                break
            }
            cand = select(cand, arg: arg, share: share, logOdds: z, remaining: remaining, numClasses: c, config: config,
                          quota: quota, minAdd: minAdd)
            t += 1
            for i in cand { labels[i] = arg[i]; conf[i] = share[i]; odds[i] = z[i]; layer[i] = Int32(t); source[i] = .propagated }
            var accepted = [Bool](repeating: false, count: n)
            for i in cand { accepted[i] = true }
            remaining.removeAll { accepted[$0] }
            records.append(LayerRecord(layer: t, k: k, threshold: tau, added: cand.count))
            log?("HDL: layer \(t): k=\(k) threshold=\(String(format: "%.2f", tau)) added \(cand.count), \(remaining.count) left")
            if case .auto = config.k { k = try chooseK(mode == .geometry ? nil : post) }
            post = try ev.posterior(anchors: labels, k: k, mode: mode)
        }
        if !remaining.isEmpty {
            if config.fallback {
                let (arg, share, z) = try argShareOdds(post)
                var unreachable = 0
                for i in remaining {
                    if arg[i] < 0 { unreachable += 1; continue }
                    labels[i] = arg[i]; conf[i] = share[i]; odds[i] = z[i]; layer[i] = Int32(t + 1); source[i] = .fallback
                }
                log?("HDL: \(remaining.count - unreachable) leftovers labeled by the final posterior (fallback)")
                if unreachable > 0 { log?("HDL: warning: \(unreachable) points are in graph components with no labeled point and stay unlabeled (-1); a larger --k-max connects more of the graph") }
            } else {
                log?("HDL: \(remaining.count) leftovers stay unlabeled (-1)")
            }
        }
        // The refinement's posterior (local rows), when the blend below reads it.
        var finalPosterior: [Float]?
        // Whether the refinement posterior was balanced to the seeds' class shares (nil: not considered), whether the
        // accepted labels were its sources (nil: no refinement with the graph), and the shift both rules read.
        var balancedClasses: Bool?, labelShift: Double?, refinementSources: Bool?
        if finalConfidence && t > 0 {
            // One more posterior from every label, seeds clamped: with the graph evidence the harmonic extension of
            // the seeds, plus the accepted labels as weighted sources where `refineSources` says; with the geometry
            // the class geometry of all labels. With the refinement (dynamic labels) a propagated or fallback label
            // changes when it names another class; without it the labels stay the layers' and each takes its label's
            // share in it as confidence (`--confidence final`).
            var balance = false, sources: [Float]? = nil
            if refine {
                // The layers' labels' distance from the seeds' class shares decides both (integer counts: the same on
                // every process). Balancing (Sinkhorn, the non-seed rows' class totals pulled to the seeds' shares),
                // `auto`: with the graph evidence (whose class totals follow the graph's structure; the geometry's
                // prior already follows the labeled pool) when the labels are within `balanceMaxShift` of those shares.
                // Sources, `auto`: with the graph evidence, not balanced, and the shift above `sourceMinShift` (the
                // pool's shares clearly differ from the seeds') and within `sourceMaxShift` (further, the layers'
                // labeling has collapsed onto a few classes and would spread its error).
                let shift = HDL.labelShift(labels: labels, seeds: seeds, numClasses: c)
                labelShift = shift
                if config.balanceClasses != .off {
                    balance = config.balanceClasses == .on || (mode == .graph && shift <= HDL.balanceMaxShift)
                    balancedClasses = balance
                    let why = config.balanceClasses == .on ? "--balance-classes on"
                        : mode != .graph ? "auto: not with the \(mode.rawValue) evidence"
                        : "auto: " + (balance ? "at most" : "more than") + " \(HDL.balanceMaxShift)"
                    log?("HDL: class balancing: the layers' labels are " + String(format: "%.3f", shift)
                        + " from the seeds' class shares (total variation); " + (balance ? "balancing" : "not balancing")
                        + " the refinement posterior to them (\(why))")
                }
                // (Unclamped anchors, `--no-clamp`, are all sources already: nothing to add.)
                if mode != .geometry && config.clampAnchors {
                    let use = config.refineSources == .on
                        || (config.refineSources == .auto && !balance && shift > HDL.sourceMinShift && shift <= HDL.sourceMaxShift)
                    refinementSources = use
                    let why = config.refineSources != .auto ? "--refine-sources \(config.refineSources.rawValue)"
                        : balance ? "auto: not when balancing"
                        : "auto: the shift " + String(format: "%.3f", shift) + (use ? " is in" : " is outside")
                            + " (\(HDL.sourceMinShift), \(HDL.sourceMaxShift)]"
                    if use {
                        sources = HDL.sourceWeights(labels: labels, confidence: conf, seeds: seeds, numClasses: c, weight: config.sourceWeight)
                        log?("HDL: refinement: the \(sources!.filter { $0 > 0 }.count) accepted labels are sources of its posterior "
                            + "(weight \(config.sourceWeight) × confidence per seed per class; \(why))")
                    } else {
                        log?("HDL: refinement: its posterior is the seeds' alone (\(why))")
                    }
                }
            }
            var rp = try ev.posterior(anchors: labels, k: k, mode: mode, clampTo: seeds, sources: sources)
            if refine {
                if balance {
                    let cnt = classCounts(seeds, numClasses: c), tot = Double(cnt.reduce(0, +))
                    try Scores.balanceColumns(&rp, n: graph.n, c: c, target: cnt.map { Double($0) / tot }, rowActive: comm.rows.map { seeds[$0] < 0 },
                                              iterations: HDL.balanceIterations, power: 1, threads: config.threads, comm: comm)
                }
                if config.propagationBlend > 0 { finalPosterior = rp }
                let (arg, share, z) = try argShareOdds(rp)
                var changed = 0
                for i in 0 ..< n where (source[i] == .propagated || source[i] == .fallback) && arg[i] >= 0 {
                    if arg[i] != labels[i] { changed += 1; labels[i] = arg[i] }
                    conf[i] = share[i]; odds[i] = z[i]
                }
                log?("HDL: refinement: \(changed) labels changed by its posterior")
            } else {
                let own = comm.rows
                var cf = Array(conf[own]), cz = Array(odds[own])
                Scores.labelShare(rp, n: graph.n, c: c, labels: Array(labels[own]), share: &cf, logOdds: &cz, threads: config.threads)
                let newConf = try comm.allgather(cf), newOdds = try comm.allgather(cz)
                for i in 0 ..< n where source[i] == .propagated || source[i] == .fallback { conf[i] = newConf[i]; odds[i] = newOdds[i] }
                log?("HDL: confidences from the posterior of all labels (seeds clamped; labels unchanged)")
            }
        }
        if config.propagationBlend > 0 {
            // Guard: blend every non-seed row's label with the one-shot propagation of the seeds (local rows, then
            // allgathered like every other per-row decision).
            let w = Float(config.propagationBlend)
            let p = try ev.oneShotPropagation(seeds: seeds, k: min(HDL.blendK, graph.k))
            let own = comm.rows
            var lab = Array(labels[own]), cf = Array(conf[own]), cz = Array(odds[own])
            var v = [Float](repeating: 0, count: c)   // one row's blended posterior, reused across rows
            for (r, i) in own.enumerated() where source[i] == .propagated || source[i] == .fallback || (source[i] == .unlabeled && config.fallback) {
                var tot: Float = 0
                for j in 0 ..< c { tot += max(p[r * c + j], 0) }
                guard tot > 0 else { continue }
                let h = labels[i] >= 0 ? conf[i] : 0, rest = labels[i] >= 0 ? (1 - conf[i]) / Float(max(c - 1, 1)) : 1 / Float(c)
                // HDL's side: the refinement posterior's row where it names the row's label, else the confidence on
                // the label and the rest spread evenly.
                var q: [Float]? = nil
                if let fp = finalPosterior {
                    var best = 0, tq: Float = 0
                    for j in 0 ..< c { tq += max(fp[r * c + j], 0); if fp[r * c + j] > fp[r * c + best] { best = j } }
                    if tq > 0 && Int32(best) == labels[i] { q = (0 ..< c).map { max(fp[r * c + $0], 0) / tq } }
                }
                var best = -1, bv = -Float.infinity
                for j in 0 ..< c {
                    let hj = q?[j] ?? (j == Int(labels[i]) ? h : rest)
                    v[j] = (1 - w) * hj + w * max(p[r * c + j], 0) / tot
                    if v[j] > bv { bv = v[j]; best = j }
                }
                var others = 0.0
                for j in 0 ..< c where j != best { others += Double(v[j]) }
                lab[r] = Int32(best); cf[r] = bv
                cz[r] = Float(Calibration.logOdds(top: Double(bv), rest: others))
            }
            let newLabels = try comm.allgather(lab), newConf = try comm.allgather(cf), newOdds = try comm.allgather(cz)
            var changed = 0
            for i in 0 ..< n where newLabels[i] != labels[i] || newConf[i] != conf[i] {
                if newLabels[i] != labels[i] { changed += 1 }
                if source[i] == .unlabeled { source[i] = .fallback; layer[i] = Int32(t + 1) }
                labels[i] = newLabels[i]; conf[i] = newConf[i]; odds[i] = newOdds[i]
            }
            log?("HDL: propagation blend (w = \(config.propagationBlend)): \(changed) labels changed by the one-shot propagation posterior")
        }
        log?("HDL: work after the pilot: " + tallyText(since: afterPilot))
        // Calibration: a non-decreasing map fitted on the pilot's held-out seeds of the mode used, applied to every
        // non-seed row's confidence (labels unchanged; seeds keep confidence 1).
        let calibrated: EvidenceMode = pilot.samples[mode] != nil ? mode : .graph   // whose samples (and pooled log-odds)
        let samples = pilot.samples[calibrated] ?? CalibrationSamples()
        var map = config.calibration == .auto && !finalConfidence
            ? CalibrationMap.none("auto: with --confidence acceptance the confidences are layer acceptance shares, which the pilot's posteriors do not calibrate")
            : Calibration.fit(config.calibration, samples)
        // The final posterior (every anchor, the layers, the refinement) spreads its log-odds differently from the
        // fold posteriors the map was fitted on: they are first moved to the fold posteriors' log-odds of the same
        // quantile (`Calibration.QuantileShift`; labels and the rows' order by confidence unchanged).
        if map.method != .none && config.calibrationShift == .quantile,
           let pool = pilot.poolLogOdds[calibrated], !pool.isEmpty {
            let step = Calibration.poolStride(n)
            map.shift = Calibration.QuantileShift(final: Swift.stride(from: 0, to: n, by: step).compactMap { i in
                source[i] == .propagated || source[i] == .fallback ? odds[i] : nil }, pilot: pool)
        }
        log?("HDL: calibration: " + map.description)
        if let e = map.samplingError(pilot: pilotEstimate) {
            log?("HDL: calibration: from \(map.samples) held-out seeds the confidences' level is uncertain by about "
                + String(format: "%.1f", 100 * e)
                + " points (the seeds' sampling alone, Calibration.samplingError): more seeds per class narrow it")
        }
        let raw = conf
        for i in 0 ..< n where source[i] == .propagated || source[i] == .fallback { conf[i] = map(conf[i], logOdds: odds[i]) }
        let estimate = AccuracyEstimates.combine(pilot: pilotEstimate, confidence: conf, source: source)
        if let e = estimate.estimated {
            log?("HDL: estimated accuracy " + String(format: "%.3f", e) + " (the pilot's held-out seeds and the mean calibrated confidence "
                + String(format: "%.3f", estimate.meanConfidence) + " of the non-seed rows; docs/method.md measures its error)")
        } else {
            log?("HDL: accuracy cannot be estimated from these seeds (too few per class for a pilot); the confidences are uncalibrated top shares")
        }
        return LabelingResult(labels: labels, confidence: conf, layer: layer, source: source, layers: records, chosenK: chosenK0,
                              evidence: mode.rawValue, pilotEstimate: pilotEstimate, estimatedAccuracy: estimate.estimated,
                              calibration: map, calibrationSamples: samples, rawConfidence: raw, rawLogOdds: odds,
                              balancedClasses: balancedClasses, labelShift: labelShift, refinementSources: refinementSources)
    }

    /// The refinement's source weight of every row (all n): `weight · confidence / (seeds per class)` for each labeled
    /// non-seed row (seeds per class = seeds / C), 0 for seeds and unlabeled rows. A seed is clamped at value 1; with
    /// one seed per class and the default weight 0.001 a thousand accepted labels at confidence 1 inject one seed's
    /// unit between them, and more seeds per class weaken the sources in proportion. O(n).
    public static func sourceWeights(labels: [Int32], confidence: [Float], seeds: [Int32], numClasses c: Int, weight: Double) -> [Float] {
        let m = seeds.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        let scale = Float(weight * Double(c) / Double(max(m, 1)))
        return (0 ..< labels.count).map { i in seeds[i] >= 0 || labels[i] < 0 ? 0 : scale * confidence[i] }
    }

    /// How far the non-seed rows' labels (`labels` ≥ 0 where `seeds` < 0) are from the seeds' class shares: the total
    /// variation ½ Σ_j |label share_j − seed share_j|, in [0, 1] (0 when there are no such labels). Integer counts, so
    /// the same on every process and rank count. O(n + c).
    public static func labelShift(labels: [Int32], seeds: [Int32], numClasses c: Int) -> Double {
        precondition(labels.count == seeds.count)
        let seedCount = classCounts(seeds, numClasses: c)
        var count = [Int](repeating: 0, count: c)
        for i in 0 ..< labels.count where seeds[i] < 0 && labels[i] >= 0 && Int(labels[i]) < c { count[Int(labels[i])] += 1 }
        let tl = count.reduce(0, +), ts = seedCount.reduce(0, +)
        guard tl > 0, ts > 0 else { return 0 }
        var tv = 0.0
        for j in 0 ..< c { tv += abs(Double(count[j]) / Double(tl) - Double(seedCount[j]) / Double(ts)) }
        return tv / 2
    }

    /// Reliable first: at most `layerFraction` of each class's remaining winners by share with `quota`, else at most
    /// `globalLayerFraction` of all remaining points over all classes by log-odds (the geometry's shares round to 1 in
    /// Float long before its log-odds reach `Calibration.logOddsLimit`), ties by global id. Every process runs it on
    /// the same allgathered n-long vectors. Returns global ids in ascending order. O(n log n).
    static func select(_ cand: [Int], arg: [Int32], share: [Float], logOdds: [Float], remaining: [Int], numClasses c: Int,
                       config: LabelingConfig, quota: Bool, minAdd: Int) -> [Int] {
        var cand = cand
        let byShare: (Int, Int) -> Bool = { share[$0] > share[$1] || (share[$0] == share[$1] && $0 < $1) }
        let byOdds: (Int, Int) -> Bool = { logOdds[$0] > logOdds[$1] || (logOdds[$0] == logOdds[$1] && $0 < $1) }
        if quota {
            var byClass = [[Int]](repeating: [], count: c)
            var wins = [Int](repeating: 0, count: c)
            for i in remaining where arg[i] >= 0 { wins[Int(arg[i])] += 1 }
            for i in cand { byClass[Int(arg[i])].append(i) }
            cand = []
            for j in 0 ..< c {
                let q = max(1, Int((config.layerFraction * Double(wins[j])).rounded(.up)))
                cand.append(contentsOf: byClass[j].sorted(by: byShare).prefix(q))
            }
        } else if config.globalLayerFraction < 1 {
            let cap = max(minAdd, Int(config.globalLayerFraction * Double(remaining.count)))
            cand.sort(by: byOdds)
            if cand.count > cap { cand.removeLast(cand.count - cap) }
        }
        return cand.sorted()
    }
}

/// The two kinds of evidence over the same points, with the graph affinity cached per k. Posteriors cover the rows
/// `comm.rows` that `graph` holds.
struct Evidence {
    let graph: KNNGraph
    let comm: RowCollectives
    /// Source of the geometry posteriors (nil: no geometry evidence).
    let geometry: GeometrySource?
    let numClasses: Int
    let config: LabelingConfig
    var cache: [Int: NormalizedAffinity] = [:]
    /// Graph solutions with unit anchor values per k: the first one (the seeds' clamp) and the latest, each with the
    /// labels it clamped (all n rows), for exact reuse and (`warmStart`) warm starts.
    var solved: [Int: [Solved]] = [:]
    struct Solved { var key: [Int32]; var f: [Float] }
    /// The k of the latest graph solve (warm start for a k without a solution yet).
    var lastK: Int?
    /// Work done by the graph solves, for the log: solves run, solves reused, CG iterations, solves at the cap.
    var tally = SolveTally()
    struct SolveTally { var solves = 0; var reused = 0; var iterations = 0; var capped = 0 }
    /// Class prior: the anchors of class j inject mass count_j^(−β) — β = 1 uniform (class-mass-normalised anchors),
    /// β = 0 the anchors' class shares, in between flattened shares.
    var priorExponent: Float = 1

    /// Per-class mass of one anchor, count_j^(−β) (1 for classes without anchors).
    func anchorWeights(_ anchors: [Int32]) -> [Float] {
        classCounts(anchors, numClasses: numClasses).map { count in
            guard count > 0 else { return 1 }
            let v = Float(count)
            return priorExponent == 1 ? 1 / v : priorExponent == 0 ? 1 : powf(v, -priorExponent)
        }
    }

    /// Uniform unless the prior is `anchors`, or `auto` and the seeds are not balanced.
    static func usesUniformPrior(_ p: ClassPrior, seedsBalanced: Bool) -> Bool {
        switch p {
        case .uniform: return true
        case .anchors: return false
        case .auto: return seedsBalanced
        }
    }

    /// True when the seeds' class counts differ by at most 2×.
    static func seedsBalanced(_ seeds: [Int32], numClasses c: Int) -> Bool {
        let cnt = classCounts(seeds, numClasses: c)
        return (cnt.max() ?? 0) <= HDL.balancedSeedRatio * max(1, cnt.min() ?? 0)
    }

    init(graph: KNNGraph, comm: RowCollectives, geometry: GeometrySource?, numClasses: Int, config: LabelingConfig) {
        self.graph = graph; self.comm = comm; self.geometry = geometry; self.numClasses = numClasses; self.config = config
    }

    /// `rows × C` posterior rows (sum 1, or all 0 where no evidence reaches a point); `anchors` covers all n rows.
    /// - clampTo: the graph propagation clamps these rows (all n; default: every anchor). Anchors that are not
    ///   clamped do not enter a clamped solve (harmonic extension of the clamped rows), unless `sources` is given.
    /// - sources: per row (all n) the weight with which a non-clamped anchor's label is injected as a source into
    ///   the clamped solve (`NormalizedAffinity.solveCounting(freeSources:)`); the refinement's sources. Such a solve
    ///   is neither reused nor kept.
    /// - pilot: a cross-validation solve (`pilotIterations` cap, no reuse, no warm start, not kept).
    mutating func posterior(anchors: [Int32], k: Int, mode: EvidenceMode, clampTo: [Int32]? = nil, sources: [Float]? = nil,
                            pilot: Bool = false) throws -> [Float] {
        let n = graph.n, c = numClasses
        let useGraph = mode != .geometry || geometry == nil
        precondition(mode != .auto, "the evidence is chosen before any posterior")
        let useGeo = (mode == .geometry || mode == .both) && geometry != nil
        var logp = [Float](repeating: 0, count: n * c)
        var any = [Bool](repeating: !useGraph, count: n)
        if useGraph {
            let g = try graphPosterior(anchors: anchors, k: k, clampTo: clampTo ?? anchors, sources: sources, pilot: pilot)
            g.withUnsafeBufferPointer { gb in logp.withUnsafeMutableBufferPointer { lb in any.withUnsafeMutableBufferPointer { ab in
                let gp = gb.baseAddress!, lp = lb.baseAddress!, ap = ab.baseAddress!
                Parallel.forBlocks(rows: n, threads: config.threads) { lo, hi in
                    for i in lo ..< hi {
                        var tot: Float = 0
                        for j in 0 ..< c { tot += max(gp[i * c + j], 0) }
                        if tot > 0 { ap[i] = true }
                        for j in 0 ..< c { lp[i * c + j] = tot > 0 ? logf(max(gp[i * c + j], 0) / tot + 1e-6) : 0 }
                    }
                }
            } } }
        }
        if useGeo, let geometry {
            let cnt = classCounts(anchors, numClasses: c)
            let m = cnt.reduce(0, +)
            let p = try geometry.posteriors(anchors: anchors, numClasses: c,
                                            shrinkage: ClassGeometry.shrinkage(anchors: m, numClasses: c, floor: config.shrinkageFloor))
            var logPrior = [Float](repeating: 0, count: c)
            if priorExponent < 1 {
                for j in 0 ..< c { logPrior[j] = (1 - priorExponent) * logf(max(Float(cnt[j]), 0.5) / Float(max(m, 1))) }
            }
            p.withUnsafeBufferPointer { pb in logp.withUnsafeMutableBufferPointer { lb in
                let pp = pb.baseAddress!, lp = lb.baseAddress!
                Parallel.forBlocks(rows: n, threads: config.threads) { lo, hi in
                    for i in lo ..< hi { for j in 0 ..< c { lp[i * c + j] += logf(pp[i * c + j] + 1e-30) + logPrior[j] } }
                }
            } }
        }
        let active = any
        Scores.softmaxRows(&logp, n: n, c: c, threads: config.threads, rowActive: { active[$0] })
        return logp
    }

    /// Propagation of the anchors' labels over the graph truncated to k. Clamped (harmonic) by default;
    /// `clampAnchors = false` uses anchors as class-mass-normalised sources instead (Iscen et al.).
    ///
    /// The solve uses unit anchor values and each class column is scaled by its anchor weight afterwards (the solution
    /// is linear in each column's values, and CG's iterates scale with them). A solve whose clamped labels equal an
    /// earlier solve's at the same k reuses that solution (the same bits a new solve would give: solves are
    /// deterministic); with `warmStart` any other starts from the latest solution at this k (else at the latest k).
    /// Pilot solves do neither and are not kept.
    mutating func graphPosterior(anchors: [Int32], k: Int, clampTo: [Int32], sources: [Float]? = nil, pilot: Bool = false) throws -> [Float] {
        let g = Float(config.gamma)
        if cache[k] == nil { cache[k] = try NormalizedAffinity(rows: graph.truncated(to: k), comm: comm, weight: { powf(max($0, 0), g) }) }
        let own = comm.rows, c = numClasses
        let w = anchorWeights(anchors)
        // What the solve reads: the labels of the clamped rows (clamped), or of every anchor (sources); all n rows, so
        // every process takes the same reuse decision. A solve with weighted sources is neither reused nor kept.
        let key: [Int32] = config.clampAnchors ? zip(anchors, clampTo).map { $1 >= 0 ? $0 : -1 } : anchors
        let weighted = sources != nil && config.clampAnchors
        let keep = !pilot && !weighted, warm = config.warmStart && !pilot && !weighted
        var unit: [Float]
        if keep, let hit = solved[k]?.first(where: { $0.key == key }) {
            unit = hit.f
            tally.reused += 1
        } else {
            var y = [Float](repeating: 0, count: own.count * c)
            for (r, i) in own.enumerated() where anchors[i] >= 0 {
                y[r * c + Int(anchors[i])] = weighted && clampTo[i] < 0 ? sources![i] : 1
            }
            let initial = warm ? (solved[k]?.last ?? lastK.flatMap { solved[$0]?.last })?.f : nil
            let cap = pilot && config.pilotIterations > 0 ? config.pilotIterations : config.iterations
            let (f0, st) = try cache[k]!.solveCounting(y, columns: c, alpha: Float(config.alpha), iterations: cap,
                                                       tolerance: config.cgTolerance, initial: initial,
                                                       clamped: config.clampAnchors ? clampTo[own].map { $0 >= 0 } : nil, freeSources: weighted,
                                                       threads: config.threads, comm: comm)
            unit = f0
            tally.solves += 1; tally.iterations += st.iterations; if !st.converged { tally.capped += 1 }
            if keep {
                var list = solved[k] ?? []
                if list.count < 2 { list.append(Solved(key: key, f: f0)) } else { list[1] = Solved(key: key, f: f0) }
                solved[k] = list
                lastK = k
            }
        }
        var f = unit
        if w.contains(where: { $0 != 1 }) {
            f.withUnsafeMutableBufferPointer { fb in
                let fp = fb.baseAddress!
                Parallel.forBlocks(rows: own.count, threads: config.threads) { lo, hi in
                    for i in lo ..< hi { for j in 0 ..< c { fp[i * c + j] *= w[j] } }
                }
            }
        }
        if config.balance {
            let cnt = classCounts(anchors, numClasses: numClasses).map(Float.init)
            let tot = cnt.reduce(0, +)
            for i in 0 ..< graph.n { for j in 0 ..< numClasses where cnt[j] > 0 { f[i * numClasses + j] /= cnt[j] / tot } }
        }
        return f
    }

    /// One-shot propagation of the seeds over the graph truncated to k (local rows × C): the seeds are sources, not
    /// clamped, each class's seeds weighted by `anchorWeights` (with balanced seeds the uniform class mass of the
    /// propagation baseline); `iterations` fixed conjugate-gradient iterations like the baseline. Not kept.
    mutating func oneShotPropagation(seeds: [Int32], k: Int) throws -> [Float] {
        let g = Float(config.gamma)
        if cache[k] == nil { cache[k] = try NormalizedAffinity(rows: graph.truncated(to: k), comm: comm, weight: { powf(max($0, 0), g) }) }
        let own = comm.rows, c = numClasses
        let w = anchorWeights(seeds)
        var y = [Float](repeating: 0, count: own.count * c)
        for (r, i) in own.enumerated() where seeds[i] >= 0 { y[r * c + Int(seeds[i])] = w[Int(seeds[i])] }
        return try cache[k]!.solve(y, columns: c, alpha: Float(config.alpha), iterations: config.iterations, threads: config.threads, comm: comm)
    }

    /// Cross-validated accuracy per mode, the chosen mode, the paired z of geometry over graph, and per mode the
    /// held-out seeds' raw confidences and outcomes (the calibration map's data).
    struct Pilot {
        var accuracy: [EvidenceMode: Double]; var best: EvidenceMode; var z: Double
        var samples: [EvidenceMode: CalibrationSamples] = [:]
        /// Per mode: the held-out seeds whose class kept an anchor in their fold, and how many the fold's argmax got right.
        var estimate: [EvidenceMode: AccuracyEstimate] = [:]
        /// Per mode: the log-odds of the fold posteriors the calibration samples were read from, over the non-seed rows
        /// they reached (every `Calibration.poolStride(n)`-th row by global id, all folds pooled; what
        /// `Calibration.QuantileShift` maps the final log-odds onto).
        var poolLogOdds: [EvidenceMode: [Float]] = [:]
    }

    /// Stratified 5-fold cross-validation over the seeds: hide a fold, compute each mode's one-shot posterior from
    /// the other seeds, score it on the hidden seeds. Uses seeds only (never ground truth of unlabeled points).
    /// Every held-out seed whose class kept an anchor in its fold and that some evidence reached is also a calibration
    /// sample (its posterior's top share, and whether the argmax is its label); the shares are allgathered like the
    /// labels, so every process holds the same samples.
    /// - refined: the calibration samples come from a refinement-like posterior of the fold (its anchors clamped, at
    ///   the layers' k, each class column weighted by the fold's one-shot argmax labels' class counts as the
    ///   refinement weights by its labels'; the argmax labels are not sources, as the seeds-only refinement has
    ///   none), the kind of posterior the final confidences are read from when HDL refines; one more posterior per
    ///   fold, for the mode the labeling uses only (a second pass after the choice, from each fold's kept local
    ///   argmax: n/P Int32 per fold and mode on every process).
    /// The log-odds of the fold posteriors the samples come from are kept too, for every `Calibration.poolStride(n)`-th
    /// non-seed row they reached (`Pilot.poolLogOdds`: the scale `Calibration.QuantileShift` maps the final log-odds to).
    /// - layerK: the k the labeling's layers start at for each mode (the refined calibration samples are read at it;
    ///   the one-shot pass, the evidence choice and the estimate use `k`).
    mutating func pilot(seeds: [Int32], k: Int, refined: Bool = false, layerK: ((EvidenceMode) -> Int)? = nil) throws -> Pilot {
        // `both` is not a candidate: the geometry posterior is far more peaked than the graph's, so the product
        // follows the geometry (measured in docs/method.md); it stays available as an explicit choice.
        var modes: [EvidenceMode] = geometry == nil ? [.graph] : [.graph, .geometry]
        if geometry != nil && config.evidence == .both { modes.append(.both) }
        let folds = HDL.pilotFolds
        var byClass = [[Int]](repeating: [], count: numClasses)
        for (i, s) in seeds.enumerated() where s >= 0 { byClass[Int(s)].append(i) }
        var fold = [Int](repeating: -1, count: seeds.count)
        for l in byClass { for (j, i) in l.enumerated() { fold[i] = j % folds } }
        var correct = [EvidenceMode: Int](), total = 0
        // Paired outcomes of graph vs geometry on the same held-out seeds (for the McNemar margin).
        var geoOnly = 0, graphOnly = 0
        var cal = [EvidenceMode: [(row: Int, score: Float, z: Float, ok: Bool)]](), excluded = [EvidenceMode: Int]()
        var pool = [EvidenceMode: [Float]]()
        let poolStride = Calibration.poolStride(graph.n)
        // The estimate of final accuracy: held-out seeds whose class kept an anchor in their fold (a class with one
        // seed cannot be held out and still be predicted; the final run has every class's seeds).
        var scored = Dictionary(uniqueKeysWithValues: modes.map { ($0, AccuracyEstimate(samples: 0, correct: 0)) })
        // A fold's anchors (its hidden seeds removed), the hidden seeds, and which classes kept an anchor.
        func foldAnchors(_ f: Int) -> (anchors: [Int32], hidden: [Int], anchored: [Bool]) {
            var anchors = seeds
            var hidden: [Int] = []
            for i in 0 ..< seeds.count where fold[i] == f { anchors[i] = -1; hidden.append(i) }
            return (anchors, hidden, classCounts(anchors, numClasses: numClasses).map { $0 > 0 })
        }
        // The calibration samples of one fold and mode from a posterior's (all rows') argmax, share and log-odds.
        func collect(_ m: EvidenceMode, hidden: [Int], anchored: [Bool], arg: [Int32], share: [Float], z: [Float]) {
            for i in hidden {
                if anchored[Int(seeds[i])] && arg[i] >= 0 { cal[m, default: []].append((i, share[i], z[i], arg[i] == seeds[i])) }
                else { excluded[m, default: 0] += 1 }
            }
            for i in Swift.stride(from: 0, to: seeds.count, by: poolStride) where seeds[i] < 0 && arg[i] >= 0 { pool[m, default: []].append(z[i]) }
        }
        // Pass 1: every mode's one-shot posterior per fold (accuracy, the paired outcomes, the estimate; without
        // `refined` also the calibration samples). With `refined`, each fold's local argmax is kept for pass 2.
        var localArgs = [EvidenceMode: [Int: [Int32]]]()
        for f in 0 ..< folds {
            let (anchors, hidden, anchored) = foldAnchors(f)
            if hidden.isEmpty { continue }
            total += hidden.count
            var right = [EvidenceMode: [Bool]]()
            for m in modes {
                let p = try posterior(anchors: anchors, k: k, mode: m, pilot: true)
                let local = Scores.argmaxShare(p, n: graph.n, c: numClasses, threads: config.threads)
                let arg = try comm.allgather(local.labels)
                right[m] = hidden.map { arg[$0] == seeds[$0] }
                correct[m, default: 0] += right[m]!.filter { $0 }.count
                for i in hidden where anchored[Int(seeds[i])] { scored[m]!.samples += 1; if arg[i] == seeds[i] { scored[m]!.correct += 1 } }
                if refined { localArgs[m, default: [:]][f] = local.labels } else {
                    collect(m, hidden: hidden, anchored: anchored, arg: arg, share: try comm.allgather(local.share), z: try comm.allgather(local.logOdds))
                }
            }
            if let g = right[.graph], let e = right[.geometry] {
                for (a, b) in zip(g, e) { if b && !a { geoOnly += 1 } else if a && !b { graphOnly += 1 } }
            }
        }
        var acc = [EvidenceMode: Double]()
        for m in modes { acc[m] = total > 0 ? Double(correct[m] ?? 0) / Double(total) : 0 }
        // The graph unless the geometry wins by the paired margin (z = (b − c)/√(b + c) > evidenceMargin; with
        // margin 0, any win).
        let z = geoOnly + graphOnly > 0 ? Double(geoOnly - graphOnly) / Double(geoOnly + graphOnly).squareRoot() : 0
        let best: EvidenceMode = modes.contains(.geometry) && geoOnly > graphOnly && z > config.evidenceMargin ? .geometry : .graph
        // Pass 2 (`refined`): the refinement-like posterior of each fold (its anchors clamped; the fold's one-shot
        // argmax labels set the class weights, and the geometry's class members) for the mode the labeling will use
        // only — the other mode's would never be read.
        if refined {
            let used = config.evidence == .auto ? best : config.evidence
            for f in 0 ..< folds {
                let (anchors, hidden, anchored) = foldAnchors(f)
                guard !hidden.isEmpty, let la = localArgs[used]?[f] else { continue }
                let arg = try comm.allgather(la)
                var provisional = anchors
                for i in 0 ..< seeds.count where anchors[i] < 0 && arg[i] >= 0 { provisional[i] = arg[i] }
                let q = Scores.argmaxShare(try posterior(anchors: provisional, k: layerK?(used) ?? k, mode: used, clampTo: anchors, pilot: true), n: graph.n, c: numClasses,
                                           threads: config.threads)
                collect(used, hidden: hidden, anchored: anchored, arg: try comm.allgather(q.labels), share: try comm.allgather(q.share),
                        z: try comm.allgather(q.logOdds))
            }
        }
        var samples = [EvidenceMode: CalibrationSamples]()
        for m in modes {
            let l = (cal[m] ?? []).sorted { $0.row < $1.row }
            samples[m] = CalibrationSamples(scores: l.map(\.score), correct: l.map(\.ok), excluded: excluded[m] ?? 0, classes: numClasses,
                                            logOdds: l.map(\.z))
        }
        return Pilot(accuracy: acc, best: best, z: z, samples: samples, estimate: scored, poolLogOdds: pool)
    }
}
