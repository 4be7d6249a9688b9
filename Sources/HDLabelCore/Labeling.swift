import Foundation

/// Where a sample's output label came from.
public enum LabelSource: UInt8, Sendable, CustomStringConvertible {
    /// `abstained`: the method labeled the row but its calibrated confidence was below `LabelingConfig.minConfidence`
    /// (label -1, confidence and layer kept).
    case seed = 0, propagated = 1, fallback = 2, unlabeled = 3, abstained = 4
    public var description: String { ["seed", "propagated", "fallback", "unlabeled", "abstained"][Int(rawValue)] }
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
    /// HDL: the evidence used (graph, geometry or both); empty for baselines.
    public var evidence: String
    /// HDL: the pilot estimate of accuracy, before labeling — the evidence used, scored on the held-out seeds whose class
    /// kept an anchor in their fold; nil for baselines and when fewer than `AccuracyEstimates.minSamples` could be scored.
    public var pilotEstimate: AccuracyEstimate?
    /// `pilotEstimate`'s accuracy.
    public var pilotAccuracy: Double? { pilotEstimate?.accuracy }
    /// HDL: the estimated accuracy after labeling (`AccuracyEstimates.combine`); nil for baselines.
    public var estimatedAccuracy: Double?
    /// The map applied to `confidence` (the identity with its reason when none was fitted, e.g. for baselines).
    public var calibration: CalibrationMap
    /// HDL: the pilot's held-out seeds the map was fitted on (raw confidence, correct) — for benchmarks and reports.
    public var calibrationSamples: CalibrationSamples
    /// The confidence of every row before the calibration map (equal to `confidence` when the map is the identity).
    public var rawConfidence: [Float]
    /// The log-odds of `rawConfidence` from each row's posterior (what the logistic maps read; `CalibrationMap`);
    /// empty when not carried (baselines): then the logit of `rawConfidence`.
    public var rawLogOdds: [Float]
    /// HDL: whether the refinement posterior was balanced to the seeds' class shares (`LabelingConfig.balanceClasses`),
    /// and the layers' labels' distance from those shares that `auto` read (`HDL.labelShift`); nil where no
    /// refinement ran (the shift is kept whenever HDL refines; `balancedClasses` is nil with balancing off).
    public var balancedClasses: Bool?
    public var labelShift: Double?
    /// HDL: whether the accepted labels were sources of the refinement posterior (`LabelingConfig.refineSources`);
    /// nil where no refinement with the graph evidence and clamped anchors ran.
    public var refinementSources: Bool?
    /// HDL: whether these labels come from the metric pass's second labeling (`LabelingConfig.metricPass`); nil where
    /// it did not run (off, not HDL, or skipped), with `metricPassNote` saying why when it was skipped.
    public var metricPass: Bool?
    public var metricPassNote: String?

    public init(labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource], layers: [LayerRecord], chosenK: Int,
                evidence: String = "", pilotEstimate: AccuracyEstimate? = nil, estimatedAccuracy: Double? = nil,
                calibration: CalibrationMap = .none("the method has no seed cross-validation to fit on"),
                calibrationSamples: CalibrationSamples = CalibrationSamples(), rawConfidence: [Float]? = nil, rawLogOdds: [Float]? = nil,
                balancedClasses: Bool? = nil, labelShift: Double? = nil, refinementSources: Bool? = nil) {
        self.labels = labels; self.confidence = confidence; self.layer = layer; self.source = source
        self.layers = layers; self.chosenK = chosenK; self.evidence = evidence; self.pilotEstimate = pilotEstimate
        self.estimatedAccuracy = estimatedAccuracy
        self.calibration = calibration; self.calibrationSamples = calibrationSamples; self.rawConfidence = rawConfidence ?? confidence
        self.rawLogOdds = rawLogOdds ?? []
        self.balancedClasses = balancedClasses; self.labelShift = labelShift; self.refinementSources = refinementSources
    }
}

/// The labeling methods hdlabel offers. `hdl` is the method; the others are baselines behind the same interface.
public enum LabelMethod: String, Sendable, CaseIterable, Codable {
    case hdl, knn, spreading, propagation
}

/// Class prior used by HDL's evidence.
public enum ClassPrior: String, Sendable, CaseIterable, Codable { case auto, uniform, anchors }

/// Where HDL reads a non-seed row's confidence from when it does not refine (with the refinement both are the
/// refinement posterior's share): `final`, the share of the row's label in one more posterior of all labels (with the
/// graph evidence the seeds' clamped posterior at the layers' last k; labels unchanged), or `acceptance`, the share
/// the row had when its layer accepted it (the previous behaviour; shares of different layers are not comparable, so
/// it ranks rows worse).
public enum ConfidenceSource: String, Sendable, CaseIterable, Codable { case final, acceptance }

/// HDL: what happens to the final log-odds before the calibration map (`LabelingConfig.calibrationShift`):
/// `quantile` moves them to the pilot fold posteriors' log-odds of the same quantile, `none` leaves them.
public enum CalibrationShift: String, Sendable, CaseIterable, Codable { case quantile, none }

/// A step HDL takes always (`on`), never (`off`) or where its measured rule says (`auto`): the refinement pass
/// (`LabelingConfig.refine`: when the seeds are balanced) and the class balancing of its posterior
/// (`LabelingConfig.balanceClasses`: with the graph evidence, when the layers' labels are near the seeds' shares), and
/// the accepted labels as its sources (`LabelingConfig.refineSources`: where it is not balanced and the labels have
/// not collapsed).
public enum AutoSwitch: String, Sendable, CaseIterable, Codable { case auto, on, off }

/// A neighbourhood count that is either `auto` (the method decides) or a number the user fixed: the neighbourhood
/// size `LabelingConfig.k` (auto = chosen from label clusterability) and its floor `LabelingConfig.kMin`. Parsing
/// accepts `auto` or an integer ≥ 0; `LabelingConfig.validate` applies each option's own range (k ≥ 1, floor ≥ 0).
public enum KSetting: Sendable, Equatable, CustomStringConvertible {
    case auto
    case fixed(Int)
    public init?(_ text: String) {
        if text == "auto" { self = .auto } else if let v = Int(text), v >= 0 { self = .fixed(v) } else { return nil }
    }
    public var description: String { if case let .fixed(v) = self { return "\(v)" } else { return "auto" } }
}

/// Parameters shared by every method (each method reads the ones it uses). Defaults are the measured best;
/// `docs/method.md` records the ablations behind them.
public struct LabelingConfig: Sendable, Equatable {
    public var method: LabelMethod = .hdl
    /// Neighbourhood size used for voting / graph edges.
    public var k: KSetting = .auto
    /// Largest k that `auto` may choose; the graph is built with this many neighbours.
    public var kMax: Int = 30
    /// HDL, `k = auto`: the least k the clusterability choice may return (capped at the graph's k). `.fixed(0)` = no
    /// floor; `.auto` = `HDL.provisionalK` (10, the propagation baseline's k) when the largest class has fewer than
    /// `HDL.kFloorBelowSeeds` (3) seeds, else none. With 1–2 seeds per class the provisional labeling is diffuse and the
    /// bound prefers the purest, smallest neighbourhoods (k = 3), which trails one-shot propagation at k = 10; at 4 per
    /// class a floor cost WordNet 7.5 points (docs/method.md, "Never trailing one-shot propagation").
    public var kMin: KSetting = .auto
    /// Seed for any random choice (none of the default methods uses randomness; kept for provenance).
    public var seed: UInt64 = 0
    /// Label spreading / propagation: weight of the graph term (Zhou et al. α).
    public var alpha: Double = 0.99
    /// Propagation iterations (conjugate-gradient or power iterations); with `cgTolerance` > 0 the cap on HDL's solves.
    public var iterations: Int = 30
    /// HDL: each conjugate-gradient solve stops once every class column's relative residual ‖r‖/‖b‖ is at most this
    /// (`iterations` stays the cap); 0 = always run `iterations`. The test uses the fixed-block sums of the solver, so
    /// it stops at the same iteration for any split over processes and threads. Baselines always run `iterations`.
    public var cgTolerance: Double = LabelingConfig.defaultCGTolerance
    /// HDL: start each layer's graph solve from the last solution at the same k instead of from the right-hand side.
    /// Off by default: it converges further than the capped solve from the right-hand side and so moves accuracy by
    /// up to ±0.4 points on single splits (docs/method.md, "Speed"). The pilot's cross-validation solves always start
    /// from their right-hand side (no held-out label reaches them). Identical solves are reused either way.
    public var warmStart: Bool = false
    /// HDL pilot (seed cross-validation): conjugate-gradient iterations cap per fold; 0 = `iterations`. A cap below
    /// what the solves need can flip the evidence choice (measured in docs/method.md, "Speed"), so it is off by default.
    public var pilotIterations: Int = 0
    /// Workers for the labeling kernels inside one process (sparse products, solver updates, posteriors); 0 = every
    /// core. Results are bit-identical for any value, so it is not a manifest parameter.
    public var threads: Int = 0
    /// Iscen et al. edge weight exponent (similarity^gamma).
    public var gamma: Double = 3
    /// HDL: acceptance schedule — starting threshold, floor and step of the "dynamic" relaxation.
    public var tauStart: Double = 0.5
    public var tauMin: Double = 0.1
    public var tauStep: Double = 0.1
    /// HDL: maximum number of layers.
    public var maxLayers: Int = 30
    /// HDL: a layer adds at most this fraction of the still-unlabeled points (reliable first).
    public var layerFraction: Double = 0.5
    /// HDL: minimum points a layer must add before the threshold relaxes, as a fraction of n.
    public var minLayerFraction: Double = 0.001
    /// HDL, layers without per-class quotas (`classQuota`): a layer adds at most this fraction of all points still
    /// unlabeled, most confident first by log-odds. 0.7: chosen on WordNet's seeds 0–2 among 0.3, 0.5, 0.7, 0.85 and 1
    /// (docs/method.md, "Layers without class quotas under the geometry").
    public var globalLayerFraction: Double = 0.7
    /// HDL: per-class quotas — each layer adds at most `layerFraction` of the remaining points each class wins (`on`),
    /// or at most `globalLayerFraction` of all remaining points, most confident first by log-odds (`off`). `auto` (default):
    /// quotas with the graph evidence, which floods the easy classes without them; none with the geometry evidence,
    /// whose class means and prior already keep every class, so a confident row of any class goes before an unsure one
    /// (docs/method.md, "Layers without class quotas under the geometry").
    public var classQuota: AutoSwitch = .auto
    /// HDL: which evidence to combine (auto = chosen by seed cross-validation).
    public var evidence: EvidenceMode = .auto
    /// HDL, `evidence = auto`: the geometry evidence replaces the graph only when it wins the seed cross-validation
    /// by this paired margin, (b − c) / √(b + c) over the held-out seeds geometry gets right and the graph wrong (b)
    /// and the reverse (c) — a McNemar z. 0 = the plain higher accuracy (ties: graph). See docs/method.md.
    public var evidenceMargin: Double = 1
    /// HDL: class prior of the evidence — the anchors' class shares (default: uniform while the anchors are balanced
    /// seeds, then following the class counts of the growing labeled pool, and the seeds' shares on long tails),
    /// uniform (every class injects equal mass), or auto: uniform unless the seeds' class counts differ by more than 2×.
    public var classPrior: ClassPrior = .anchors
    /// HDL, `anchors` prior: how far the anchors' class shares are flattened towards uniform. Each class's anchors
    /// inject mass count^(−β): β = 0 keeps the anchors' shares, β = 1 is the uniform prior.
    public var priorFlattening: Double = 0
    /// HDL: after the last layer, relabel the propagated and fallback points by one more posterior computed from all
    /// labels (seeds clamped) — accepted labels are not final ("dynamic"). `auto`: when the seeds are balanced (class
    /// counts within 2×); measured: it gains there and costs accuracy on long-tailed seeds.
    public var refine: AutoSwitch = .auto
    /// HDL geometry evidence: the least shrinkage of the shared covariance towards a multiple of the identity (it
    /// starts at 0.9 while anchors are few and falls to this as the pool grows; 1 = nearest class mean).
    public var shrinkageFloor: Double = 0.1
    /// HDL: clamp anchors in the graph propagation (harmonic extension) instead of using them as sources.
    public var clampAnchors: Bool = true
    /// HDL: divide class votes by class share among anchors (long-tail normalisation).
    public var balance: Bool = false
    /// What unlabeled leftovers get after the last layer: a fallback vote label, or -1.
    public var fallback: Bool = true
    /// HDL: weight w of the one-shot propagation posterior in a final blend. After the layers (and the refinement),
    /// every non-seed row's label becomes the argmax of (1 − w)·h + w·p, where h is the row's refinement posterior
    /// (when HDL refined and that posterior names the row's label) or puts the row's confidence on its label and
    /// spreads the rest evenly, and p is the row's share of the one-shot propagation of the seeds over the
    /// graph at k = 10 (sources, not clamped; each class's seeds weighted as HDL's first-layer prior). 0 = off.
    public var propagationBlend: Double = 0
    /// HDL: before the refinement relabels, pull the non-seed rows' class totals of its posterior to the seeds' class
    /// shares (10 Sinkhorn steps; exact column sums over every process). It acts only where HDL refines (balanced
    /// seeds). `auto` (default): with the graph evidence, when the layers' labels are within `HDL.balanceMaxShift` of
    /// the seeds' class shares (`HDL.labelShift`). The graph posterior's class totals follow the graph's structure, and
    /// balancing them gains 0.1–2 points on balanced Fashion-MNIST pools; on pools far from the seeds' shares (one seed
    /// per class over a ρ = 10 or 100 tail) it would cost 3–10 points, and with the geometry evidence (whose prior
    /// already follows the labeled pool) 1–8 on WordNet (docs/method.md, "Class balancing").
    public var balanceClasses: AutoSwitch = .auto
    /// HDL, where it refines with the graph evidence: the accepted (propagated and fallback) labels enter the
    /// refinement posterior as sources, each with weight `sourceWeight` × its confidence per seed per class
    /// (`HDL.sourceWeights`), besides the clamped seeds; off, that posterior is the seeds' harmonic extension alone.
    /// `auto` (default): when the posterior is not balanced (`balanceClasses`) and the layers' labels are more than
    /// `HDL.sourceMinShift` and at most `HDL.sourceMaxShift` from the seeds' class shares. Measured: +2.1 points on
    /// average over the long-tailed runs it touches under 1–2 seeds per class, where the pool's class shares are the
    /// layers' and not the seeds'; mixed on balanced pools (there the balancing decides); −6 to −17 on collapsed
    /// labelings (docs/method.md, "Sources in the refinement").
    public var refineSources: AutoSwitch = .auto
    /// HDL: the weight of one accepted label as a source of the refinement posterior, per seed per class, relative
    /// to a clamped seed's value 1 (`refineSources`).
    public var sourceWeight: Double = 0.001
    /// HDL: after the first labeling, rebuild the kNN graph in the metric of its classes' within-class scatter and
    /// label again from the seeds over that graph with the graph evidence (`MetricPass`). `auto` (default): after a
    /// first labeling by the graph evidence (`MetricPass.autoSkipReason`), where it has labels in 2 or more classes and
    /// C + 2 labeled rows; `on`: after any evidence, failing where it cannot run; `off`: one labeling. It runs where the rows are (the pipeline, the cluster job), not in
    /// `Labeling.run` over a prebuilt graph. Measured in docs/method.md ("The metric pass").
    public var metricPass: AutoSwitch = .auto
    /// HDL metric pass: shrinkage λ of the labels' within-class covariance towards a multiple of the identity
    /// (1 = the cosine metric again).
    public var metricShrinkage: Double = MetricPass.defaultShrinkage
    /// HDL metric pass: class weighting β of the within-class scatter, each class's covariance weighted by
    /// (m / (P · n_c))^β — 0 pools the labeled rows (the head classes of a long tail set the metric), 1 weights every
    /// class equally (`ClassGeometry.statistics`).
    public var metricClassBalance: Double = MetricPass.defaultClassBalance
    /// HDL: the map from raw to calibrated confidence, fitted on the pilot's held-out seeds (docs/method.md,
    /// "Calibration"); `none` keeps the raw confidence.
    public var calibration: CalibrationMethod = .auto
    /// HDL: whether the final log-odds are quantile-matched to the pilot's fold posteriors before the map
    /// (`Calibration.QuantileShift`; docs/method.md, "Calibration"). Labels never change; `none` applies the map to the
    /// final log-odds as they are.
    public var calibrationShift: CalibrationShift = .quantile
    /// HDL without the refinement: the confidence column's source (`ConfidenceSource`; docs/method.md, "Confidences
    /// without the refinement").
    public var confidence: ConfidenceSource = .final
    /// Rows (never seeds) whose final confidence is below this get label -1 and source `abstained`; 0 = keep all.
    public var minConfidence: Double = 0

    public init() {}

    /// Every parameter as text, for run manifests (keys in snake_case).
    public var manifestParameters: [String: String] {
        ["method": method.rawValue, "k": k.description, "k_max": "\(kMax)", "k_min": kMin.description, "seed": "\(seed)", "alpha": "\(alpha)",
         "iterations": "\(iterations)", "cg_tolerance": "\(cgTolerance)", "warm_start": "\(warmStart)",
         "pilot_iterations": "\(pilotIterations)", "gamma": "\(gamma)", "tau_start": "\(tauStart)", "tau_min": "\(tauMin)",
         "tau_step": "\(tauStep)", "max_layers": "\(maxLayers)", "layer_fraction": "\(layerFraction)", "global_layer_fraction": "\(globalLayerFraction)",
         "class_quota": classQuota.rawValue, "evidence": evidence.rawValue, "evidence_margin": "\(evidenceMargin)",
         "class_prior": classPrior.rawValue, "prior_flattening": "\(priorFlattening)", "refine": refine.rawValue, "shrinkage_floor": "\(shrinkageFloor)",
         "clamp_anchors": "\(clampAnchors)", "balance": "\(balance)", "fallback": "\(fallback)",
         "propagation_blend": "\(propagationBlend)", "balance_classes": balanceClasses.rawValue, "refine_sources": refineSources.rawValue, "source_weight": "\(sourceWeight)", "metric_pass": metricPass.rawValue, "metric_shrinkage": "\(metricShrinkage)", "metric_class_balance": "\(metricClassBalance)", "calibration": calibration.rawValue, "calibration_shift": calibrationShift.rawValue, "confidence": confidence.rawValue, "min_confidence": "\(minConfidence)"]
    }

    /// Whether the method reads the embeddings themselves (not only the graph): HDL's geometry evidence, or its
    /// metric pass.
    public var usesEmbeddings: Bool { method == .hdl && (evidence != .graph || runsMetricPass) }
    /// Whether HDL's metric pass runs after the first labeling (`metricPass` not off, method HDL).
    public var runsMetricPass: Bool { method == .hdl && metricPass != .off }

    /// Checks every parameter's range (NaN and ±inf are never allowed) without knowing n; errors name the parameter
    /// as its command-line option, the value and what is allowed. The one validation the CLI, the cluster and the
    /// benchmarks share.
    public func validate() throws {
        func bad(_ name: String, _ value: Any, _ allowed: String) -> HDLError {
            .invalidParameter(name: name, value: "\(value)", allowed: allowed)
        }
        func real(_ name: String, _ v: Double, _ allowed: String, _ ok: (Double) -> Bool) throws {
            if !v.isFinite || !ok(v) { throw bad(name, v, allowed) }
        }
        if case let .fixed(v) = k, v < 1 { throw bad("k", v, "'auto' or an integer >= 1") }
        if !(1 ... Self.maxK).contains(kMax) { throw bad("k-max", kMax, "an integer in 1...\(Self.maxK)") }
        if case let .fixed(v) = kMin, !(0 ... Self.maxK).contains(v) { throw bad("k-min", v, "'auto' or an integer in 0...\(Self.maxK) (0 = no floor)") }
        try real("alpha", alpha, "0 < alpha < 1") { $0 > 0 && $0 < 1 }
        if !(1 ... 10_000).contains(iterations) { throw bad("iterations", iterations, "an integer in 1...10000") }
        try real("cg-tolerance", cgTolerance, "a number in [0, 1)") { $0 >= 0 && $0 < 1 }
        if !(0 ... 10_000).contains(pilotIterations) { throw bad("pilot-iterations", pilotIterations, "an integer in 0...10000 (0 = --iterations)") }
        if !(0 ... 1024).contains(threads) { throw bad("threads", threads, "an integer in 0...1024 (0 = every core)") }
        try real("gamma", gamma, "a number in (0, 100]") { $0 > 0 && $0 <= 100 }
        try real("tau-start", tauStart, "0 < tau-start <= 1") { $0 > 0 && $0 <= 1 }
        try real("tau-min", tauMin, "0 < tau-min <= tau-start (\(tauStart))") { $0 > 0 && $0 <= tauStart }
        try real("tau-step", tauStep, "0 < tau-step <= 1") { $0 > 0 && $0 <= 1 }
        if maxLayers < 1 { throw bad("max-layers", maxLayers, "an integer >= 1") }
        try real("layer-fraction", layerFraction, "0 < f <= 1") { $0 > 0 && $0 <= 1 }
        try real("global-layer-fraction", globalLayerFraction, "0 < f <= 1") { $0 > 0 && $0 <= 1 }
        try real("min-layer-fraction", minLayerFraction, "0 <= f < 1") { $0 >= 0 && $0 < 1 }
        try real("evidence-margin", evidenceMargin, "a finite number >= 0") { $0 >= 0 }
        try real("prior-flattening", priorFlattening, "a number in [0, 1]") { $0 >= 0 && $0 <= 1 }
        try real("shrinkage-floor", shrinkageFloor, "a number in [0, 1]") { $0 >= 0 && $0 <= 1 }
        try real("propagation-blend", propagationBlend, "a number in [0, 1] (0 = off)") { $0 >= 0 && $0 <= 1 }
        try real("source-weight", sourceWeight, "a number in (0, 1]") { $0 > 0 && $0 <= 1 }
        try real("metric-shrinkage", metricShrinkage, "a number in [0, 1]") { $0 >= 0 && $0 <= 1 }
        try real("metric-class-balance", metricClassBalance, "a number in [0, 1] (0 = rows pooled, 1 = classes weighted equally)") { $0 >= 0 && $0 <= 1 }
        try real("min-confidence", minConfidence, "a number in [0, 1] (0 = keep every label)") { $0 >= 0 && $0 <= 1 }
    }

    /// `validate()` plus what depends on the number of points: a fixed k must be below n.
    public func validate(n: Int) throws {
        try validate()
        if case let .fixed(v) = k, v >= n {
            throw HDLError.invalidParameter(name: "k", value: "\(v)", allowed: "k < number of points (\(n))")
        }
    }

    /// Default relative-residual tolerance of HDL's conjugate-gradient solves (`cgTolerance`; measured in
    /// docs/method.md, "Speed").
    public static let defaultCGTolerance = 1e-3

    /// Largest neighbourhood size any method accepts (graph width; the graph holds n·k ids and similarities).
    public static let maxK = 1024

    /// How many neighbours per point the graph must hold for this configuration on `n` points.
    public func graphK(n: Int) -> Int {
        switch k {
        case let .fixed(v): return min(max(v, 1), n - 1)
        case .auto: return min(kMax, n - 1)
        }
    }
}

/// Number of labels of each class (labels < 0, i.e. unlabeled, are not counted); length `numClasses`.
func classCounts(_ labels: [Int32], numClasses c: Int) -> [Int] {
    var cnt = [Int](repeating: 0, count: c)
    for l in labels where l >= 0 { cnt[Int(l)] += 1 }
    return cnt
}

/// Checks seed labels: `seeds[i]` is a class id in `0..<numClasses` or -1 (unlabeled).
/// Throws for unknown labels, fewer than two classes, or a listed class with no seed.
public func validateSeeds(_ seeds: [Int32], numClasses: Int, n: Int) throws {
    if seeds.count != n { throw HDLError.invalidInput("label count \(seeds.count) does not match row count \(n)") }
    if numClasses < 2 { throw HDLError.invalidInput("need at least two classes, found \(numClasses)") }
    var count = [Int](repeating: 0, count: numClasses)
    for (i, s) in seeds.enumerated() {
        if s == -1 { continue }
        if s < -1 || Int(s) >= numClasses { throw HDLError.invalidInput("label \(s) of row \(i) is not a known class (0..<\(numClasses) or -1)") }
        count[Int(s)] += 1
    }
    if let missing = count.firstIndex(of: 0) { throw HDLError.invalidInput("class \(missing) has no seed label") }
}
