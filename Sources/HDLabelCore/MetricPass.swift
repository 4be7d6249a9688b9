import Foundation

/// HDL's metric pass (`LabelingConfig.metricPass`): after a first labeling, the rows are mapped into the metric of
/// that labeling's within-class scatter — the Mahalanobis metric of its classes, shrunk towards the cosine one — the
/// kNN graph is rebuilt there by the same builder, and HDL labels again from the seeds over the new graph with the
/// graph evidence. Cosine neighbours in the raw embedding mix classes whose spread lies along a few directions (on
/// Fashion-MNIST: shirt, T-shirt, pullover and coat); dividing those directions out makes the neighbourhoods follow
/// the classes the first labeling found. Where a first labeling is needed: the seeds alone (1–4 per class) cannot
/// estimate a d × d scatter. Measured in docs/method.md ("The metric pass").
///
/// Data flow: first labeling (all n rows) → `whitened` (collective: exact class statistics over the ranks, the
/// Cholesky factor on every rank, each rank maps its own rows) → graph builder → second labeling. Every step is a pure
/// function of exact sums, so the whitened rows, their graph and the labels are identical for any split of the rows
/// over ranks and threads whose shards start on a 32-row block (`Reduction.block`).
public enum MetricPass {
    /// Default shrinkage λ of the within-class covariance towards tr(Σ)/d · I (`LabelingConfig.metricShrinkage`).
    public static let defaultShrinkage = 0.3
    /// Default class weighting β of the within-class scatter (`LabelingConfig.metricClassBalance`): 1, every class's
    /// covariance counts equally, so a head-heavy first labeling does not make the metric the head classes' own
    /// (measured on long tails in docs/method.md, "The metric pass").
    public static let defaultClassBalance = 1.0

    /// The rows `comm.rows` held in `x` (L2-normalised, rows × d) mapped to `L⁻¹ x` and L2-normalised again, where
    /// L Lᵀ = Σ = (1 − λ) S/(m − C) + (λ tr(S)/(m − C)/d + 10⁻⁶) I and S is the within-class scatter of the labeled rows
    /// (`localLabels`, class id or -1, one per held row) about their class means, each class weighted by
    /// (m / (P · n_c))^`classBalance` (`ClassGeometry.statistics`; 0 pools the rows, 1 weights the classes equally). Cosine
    /// similarity of two mapped rows is then xᵀ Σ⁻¹ y / (‖x‖_Σ⁻¹ ‖y‖_Σ⁻¹). The factor is computed in Double on every
    /// process from the same exact sums, and each row is mapped by forward substitution in a fixed order (products
    /// exact in Double, rounded once to Float), so a row's bits do not depend on the BLAS kernel, the CPU or the
    /// split (the reason `CanonicalSimilarity` exists). O(d³) once plus O(rows · d²). **Collective** over `comm`.
    /// - Throws: when fewer than two classes or fewer than C + 2 rows are labeled, or the scatter is not positive
    ///   definite after the ridge (degenerate rows).
    public static func whitened(rows x: Embeddings, comm: RowCollectives, localLabels: [Int32], numClasses c: Int,
                                shrinkage: Double, classBalance: Double = defaultClassBalance) throws -> Embeddings {
        precondition(localLabels.count == x.rows)
        let d = x.cols
        let st = try ClassGeometry.statistics(rows: x, comm: comm, localAnchors: localLabels, numClasses: c, classBalance: classBalance)
        let classes = st.counts.filter { $0 > 0 }.count
        guard classes >= 2, st.anchors >= c + 2 else {
            throw NotApplicable(reason: "it needs labels in at least 2 classes and \(c + 2) labeled rows (has \(classes) classes, \(st.anchors) rows)")
        }
        let l = try cholesky(scatter: st.scatter, d: d, labeled: st.anchors, numClasses: c, shrinkage: shrinkage)
        var out = [Float](repeating: 0, count: x.rows * d)
        let lanes = Parallel.resolve(0)
        x.data.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
            let xp = xb.baseAddress!, op = ob.baseAddress!
            Parallel.forBlocks(rows: x.rows, threads: lanes) { lo, hi in
                var z = [Double](repeating: 0, count: d)
                for i in lo ..< hi {
                    for a in 0 ..< d {
                        var s = Double(xp[i * d + a])
                        for b in 0 ..< a { s -= l[a * d + b] * z[b] }
                        z[a] = s / l[a * d + a]
                    }
                    var norm = 0.0
                    for a in 0 ..< d { norm += z[a] * z[a] }
                    let inv = norm > 0 ? 1 / norm.squareRoot() : 0
                    for a in 0 ..< d { op[i * d + a] = Float(z[a] * inv) }
                }
            }
        } }
        return Embeddings(rows: x.rows, cols: d, data: out)
    }

    /// Lower Cholesky factor (d × d row-major, Double) of the shrunk within-class covariance built from the exact
    /// scatter sums (column-major upper triangle in `ClassGeometry.scale` units). Pure; O(d³).
    static func cholesky(scatter: [Int128], d: Int, labeled m: Int, numClasses c: Int, shrinkage: Double) throws -> [Double] {
        let (lam, denom, ridge) = ClassGeometry.shrinkageTerms(scatter: scatter, d: d, anchors: m, numClasses: c, shrinkage: shrinkage)
        var a = [Double](repeating: 0, count: d * d)
        for col in 0 ..< d {
            for r in 0 ... col {
                let v = (1 - lam) * (Double(scatter[col * d + r]) / ClassGeometry.scale) / denom
                a[r * d + col] = v; a[col * d + r] = v
            }
            a[col * d + col] += ridge
        }
        var l = [Double](repeating: 0, count: d * d)
        for i in 0 ..< d {
            for j in 0 ... i {
                var s = a[i * d + j]
                for t in 0 ..< j { s -= l[i * d + t] * l[j * d + t] }
                if i == j {
                    guard s > 0, s.isFinite else {
                        throw NotApplicable(reason: "the labels' within-class covariance is not positive definite (degenerate rows)")
                    }
                    l[i * d + i] = s.squareRoot()
                } else {
                    l[i * d + j] = s / l[j * d + j]
                }
            }
        }
        return l
    }

    /// `whitened`, with the reason instead of the mapped rows where the pass cannot run (`NotApplicable`: the same
    /// answer on every process, from the same global sums); other errors throw. **Collective** over `comm`.
    public static func whitenedOrReason(rows x: Embeddings, comm: RowCollectives, localLabels: [Int32], numClasses c: Int,
                                        shrinkage: Double, classBalance: Double) throws -> (rows: Embeddings?, reason: String?) {
        do {
            return (try whitened(rows: x, comm: comm, localLabels: localLabels, numClasses: c, shrinkage: shrinkage, classBalance: classBalance), nil)
        } catch let e as NotApplicable {
            return (nil, e.reason)
        }
    }

    /// Why the pass cannot run on this labeling (too few labeled rows or classes, a degenerate scatter). With
    /// `metricPass = auto` the first labeling is kept (and the reason logged); with `on` it is an error.
    public struct NotApplicable: Error, CustomStringConvertible {
        public let reason: String
        public init(reason: String) { self.reason = reason }
        public var description: String { "the metric pass cannot run: \(reason) (--metric-pass off skips it)" }
    }

    /// Why `auto` does not run the pass after `first` (nil: it runs): only after a labeling by the graph evidence, and
    /// only when that labeling is confident enough to describe its classes — its mean confidence over the non-seed
    /// rows at least `minFirstConfidence` of the way from chance (1/C) to 1. After the geometry evidence (WordNet at
    /// 4–40 labels per class) the second labeling's graph evidence lost 10–14 points; after a first labeling near
    /// chance (WordNet with 1–2 seeds per class: 0.12–0.28 of the way) the metric of its scatter lost 2.5–5.9 points,
    /// where Fashion-MNIST's first labelings (0.37 of the way and more) gained (docs/method.md, "The metric pass").
    /// Pure; the same on every process (from the broadcast result). O(n).
    public static func autoSkipReason(after first: LabelingResult, numClasses c: Int) -> String? {
        if first.evidence != EvidenceMode.graph.rawValue {
            return "the first labeling used the \(first.evidence.isEmpty ? "no" : first.evidence) evidence (auto runs the pass after the graph evidence)"
        }
        guard let lift = confidenceLift(first, numClasses: c), lift < minFirstConfidence else { return nil }
        return "the first labeling's mean confidence is " + String(format: "%.2f", lift) + " of the way from chance to 1 (auto runs the pass from "
            + String(format: "%.2f", minFirstConfidence) + "): too close to chance for its classes' scatter to be a metric"
    }

    /// `autoSkipReason`'s bound on the first labeling's confidence lift: the midpoint of the grid's seeds 0–2, WordNet
    /// with 1–2 seeds per class at 0.12–0.28 (the pass lost) and Fashion-MNIST at 0.37 and above (5,000 and 20,000 rows).
    public static let minFirstConfidence = 0.33

    /// (c̄ − 1/C)/(1 − 1/C) for the mean confidence c̄ of `result`'s propagated and fallback rows
    /// (`AccuracyEstimates.combine`'s mean, summed in row order: the same bits on every process); nil without such
    /// rows. Pure; O(n).
    public static func confidenceLift(_ result: LabelingResult, numClasses c: Int) -> Double? {
        let mean = AccuracyEstimates.combine(pilot: nil, confidence: result.confidence, source: result.source).meanConfidence
        guard !mean.isNaN, c > 1 else { return nil }
        let chance = 1 / Double(c)
        return (mean - chance) / (1 - chance)
    }

    /// Rows the second labeling could not reach (source `unlabeled`: their component of the rebuilt graph holds no
    /// seed) keep the first labeling's label, confidence and layer with source `fallback`, or `abstained` (label -1)
    /// where that confidence is below `minConfidence` > 0. Arrays are one row range, the same rows in both labelings;
    /// returns how many rows were filled. Pure, O(rows).
    @discardableResult
    public static func fillUnreached(labels: inout [Int32], confidence: inout [Float], layer: inout [Int32], source: inout [LabelSource],
                                     first: (labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource]),
                                     minConfidence: Double) -> Int {
        var filled = 0
        for i in source.indices where source[i] == .unlabeled && first.labels[i] >= 0 {
            let low = minConfidence > 0 && Double(first.confidence[i]) < minConfidence
            labels[i] = low ? -1 : first.labels[i]; confidence[i] = first.confidence[i]; layer[i] = first.layer[i]
            source[i] = low ? .abstained : .fallback
            filled += 1
        }
        return filled
    }

    /// The configuration of the first labeling: `config` without its abstention when the pass runs (abstained rows
    /// would leave the metric's statistics; `minConfidence` applies to the final labels only), else `config` itself.
    public static func firstPass(_ config: LabelingConfig) -> LabelingConfig {
        var c = config
        if config.runsMetricPass { c.minConfidence = 0 }
        return c
    }

    /// Where the rows could not be mapped (`reason`, from `whitenedOrReason`): with `metricPass = on` one clear error,
    /// with `auto` the reason to keep the first labeling with.
    public static func unavailable(_ reason: String, config: LabelingConfig) throws -> String {
        if config.metricPass == .on { throw HDLError.invalidInput(NotApplicable(reason: reason).description) }
        return reason
    }

    /// The configuration of the second labeling: the graph evidence (the metric was fitted to the first labeling's
    /// classes, so the geometry of the mapped rows would score them twice), no further pass.
    public static func secondPass(_ config: LabelingConfig) -> LabelingConfig {
        var c = config
        c.evidence = .graph
        c.metricPass = .off
        return c
    }
}
