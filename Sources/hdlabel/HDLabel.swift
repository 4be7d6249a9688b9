import HDLabelIO
import ArgumentParser
import Foundation
import HDLabelCluster
import HDLabelCore
import Logging

@main
struct HDLabel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hdlabel",
        abstract: "Label a whole dataset from a few seed labels and embeddings (Hierarchical Dynamic Labeling).",
        version: RunManifest.version,
        subcommands: [LabelCommand.self, ClusterLabelCommand.self, EvaluateCommand.self, PrepareCommand.self, ItemsCommand.self, IssuesCommand.self,
                      ReviewCommand.self, BenchCommand.self, ReportCommand.self, GraphCommand.self]
    )

    /// Runs the command; a bad command line (an unknown value, a value out of range) is reported as one line on stderr
    /// — what is wrong and, from the option's help, what is allowed — before any work starts, with exit code 64.
    static func main() {
        ProcessMemory.keepFreedMemory()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success || message.isEmpty { exit(withError: error) }
            let lines = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let error = lines.first { $0.hasPrefix("Error:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) } ?? lines[0]
            let help = lines.first { $0.hasPrefix("Help:") }.map { " (" + $0.dropFirst(5).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") + ")" } ?? ""
            FileHandle.standardError.write(Data("hdlabel: error: \(error)\(help)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}

/// Options shared by commands that label.
struct LabelingOptions: ParsableArguments {
    @Option(name: .long, help: "Labeling method: hdl (default) or a baseline: knn, spreading, propagation.")
    var method: LabelMethod = .hdl

    @Option(name: .customLong("k"), help: "Neighbourhood size: 'auto' (chosen from label clusterability) or an integer >= 1.")
    var k: KSetting = .auto

    @Option(name: .customLong("k-max"), help: "Largest k that --k auto may choose (graph width).")
    var kMax: Int = LabelingConfig().kMax

    @Option(name: .long, help: "Random seed (recorded in the manifest).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Propagation weight alpha in (0,1).")
    var alpha: Double = LabelingConfig().alpha

    @Flag(name: .long, inversion: .prefixedNo, help: "Divide class votes by class share (long-tail normalisation).")
    var balance: Bool = LabelingConfig().balance

    @Flag(name: .long, inversion: .prefixedNo, help: "Give leftovers a fallback label (otherwise they stay unlabeled, -1).")
    var fallback: Bool = LabelingConfig().fallback

    @Option(name: .customLong("k-min"), help: "HDL --k auto: the least k the clusterability choice may return: an integer (0 = no floor) or 'auto' (10 when the largest class has fewer than 3 seeds; with more, 10 in the layers when the evidence is the graph and the bound picks less; else none).")
    var kMin: KSetting = LabelingConfig().kMin

    @Option(name: .customLong("balance-classes"), help: "HDL, where it refines: pull the refinement posterior's class totals to the seeds' class shares (Sinkhorn): auto (default: with the graph evidence, when the layers' labels are within \(HDL.balanceMaxShift) of those shares, total variation), on, off.")
    var balanceClasses: AutoSwitch = LabelingConfig().balanceClasses

    @Option(name: .customLong("refine-sources"), help: "HDL, where it refines with the graph evidence: the accepted labels are sources of the refinement posterior besides the clamped seeds: auto (default: when it is not balanced and the layers' labels are more than \(HDL.sourceMinShift) and at most \(HDL.sourceMaxShift) from the seeds' class shares, total variation), on, off (the seeds' posterior alone).")
    var refineSources: AutoSwitch = LabelingConfig().refineSources

    @Option(name: .customLong("source-weight"), help: "HDL: weight of one accepted label as a refinement source, per seed per class, relative to a clamped seed (--refine-sources), in (0, 1].")
    var sourceWeight: Double = LabelingConfig().sourceWeight

    @Option(name: .customLong("metric-pass"), help: "HDL: after the first labeling, rebuild the kNN graph in the metric of its classes' within-class scatter and label again from the seeds over it (graph evidence): auto (default: after a first labeling by the graph evidence), on (after any evidence), off (one labeling; the graph is built once).")
    var metricPass: AutoSwitch = LabelingConfig().metricPass

    @Option(name: .customLong("metric-shrinkage"), help: "HDL --metric-pass: shrinkage of the labels' within-class covariance towards a multiple of the identity, in [0, 1] (1 = cosine again).")
    var metricShrinkage: Double = LabelingConfig().metricShrinkage
    @Option(name: .customLong("metric-class-balance"), help: "HDL --metric-pass: class weighting of the labels' within-class covariance, in [0, 1] (0 = rows pooled, so a long tail's head classes set the metric; 1 = every class weighted equally).")
    var metricClassBalance: Double = LabelingConfig().metricClassBalance

    @Option(name: .customLong("propagation-blend"), help: "HDL: weight of the one-shot propagation posterior (seeds as sources, k = 10) blended into every non-seed label at the end, 0 (off) ... 1.")
    var propagationBlend: Double = LabelingConfig().propagationBlend

    @Option(name: .customLong("tau-start"), help: "HDL: starting acceptance threshold (class share of a point's propagated score).")
    var tauStart: Double = LabelingConfig().tauStart

    @Option(name: .customLong("tau-min"), help: "HDL: floor of the dynamic threshold relaxation.")
    var tauMin: Double = LabelingConfig().tauMin

    @Option(name: .customLong("layer-fraction"), help: "HDL, layers with per-class quotas: most a layer may add of each class's points still unlabeled, as a fraction.")
    var layerFraction: Double = LabelingConfig().layerFraction
    @Option(name: .customLong("global-layer-fraction"), help: "HDL, layers without per-class quotas (--class-quota): most a layer may add, as a fraction of all points still unlabeled.")
    var globalLayerFraction: Double = LabelingConfig().globalLayerFraction

    @Option(name: .customLong("class-quota"), help: "HDL: each layer accepts the same fraction (--layer-fraction) of every class's remaining points (on), or --global-layer-fraction of all remaining points by confidence (off); auto (default): on with the graph evidence, off with the geometry.")
    var classQuota: AutoSwitch = LabelingConfig().classQuota

    @Option(name: .long, help: "HDL evidence: auto (chosen by seed cross-validation), graph, geometry or both.")
    var evidence: EvidenceMode = LabelingConfig().evidence

    @Option(name: .customLong("evidence-margin"), help: "HDL --evidence auto: geometry replaces the graph only when it wins the seed cross-validation by this paired z (McNemar; 0 = any win).")
    var evidenceMargin: Double = LabelingConfig().evidenceMargin

    @Option(name: .customLong("class-prior"), help: "HDL class prior: anchors (class shares of the growing labeled pool), uniform, or auto (uniform unless the seeds are imbalanced).")
    var classPrior: ClassPrior = LabelingConfig().classPrior

    @Option(name: .customLong("prior-flattening"), help: "HDL anchors prior (long tails): flatten the anchors' class shares towards uniform, 0 (none) ... 1 (uniform).")
    var priorFlattening: Double = LabelingConfig().priorFlattening

    @Option(name: .customLong("refine"), help: "HDL: after the layers, relabel non-seed points by the posterior of all labels (seeds clamped): auto (when the seeds are balanced), on, off.")
    var refine: AutoSwitch = LabelingConfig().refine

    @Option(name: .customLong("shrinkage-floor"), help: "HDL geometry evidence: least covariance shrinkage towards the identity as the pool grows (0 ... 1).")
    var shrinkageFloor: Double = LabelingConfig().shrinkageFloor

    @Flag(name: .customLong("clamp"), inversion: .prefixedNo, help: "HDL: clamp anchors in the graph propagation (harmonic extension).")
    var clamp: Bool = LabelingConfig().clampAnchors

    @Option(name: .long, help: "Edge weight exponent: weight = similarity^gamma.")
    var gamma: Double = LabelingConfig().gamma

    @Option(name: .long, help: "Conjugate-gradient iterations per propagation.")
    var iterations: Int = LabelingConfig().iterations

    @Option(name: .customLong("cg-tolerance"), help: "HDL: stop each conjugate-gradient solve at this relative residual per class (--iterations stays the cap; 0 = always --iterations).")
    var cgTolerance: Double = LabelingConfig().cgTolerance

    @Flag(name: .customLong("warm-start"), inversion: .prefixedNo, help: "HDL: start each layer's solve from the previous layer's solution (faster; changes accuracy by a few tenths of a point).")
    var warmStart: Bool = LabelingConfig().warmStart

    @Option(name: .customLong("pilot-iterations"), help: "HDL: conjugate-gradient iterations cap of the pilot's cross-validation solves (0 = --iterations).")
    var pilotIterations: Int = LabelingConfig().pilotIterations

    @Option(name: .long, help: "Threads for the labeling kernels (0 = every core); labels are identical for any value.")
    var threads: Int = LabelingConfig().threads

    @Option(name: .long, help: "HDL: map from raw to calibrated confidence, fitted on the pilot's held-out seeds: auto (default: temperature or platt by cross-validated log-loss on those seeds; none with --confidence acceptance), temperature, platt, histogram, isotonic, none (raw).")
    var calibration: CalibrationMethod = LabelingConfig().calibration

    @Option(name: .customLong("calibration-shift"), help: "HDL: before the calibration map, move each row's log-odds to the pilot fold posteriors' log-odds of the same quantile: quantile (default) or none (the map reads the final log-odds as they are). Labels never change.")
    var calibrationShift: CalibrationShift = LabelingConfig().calibrationShift

    @Option(name: .long, help: "HDL without the refinement (long-tailed seeds): confidence source: final (default: the label's share in one more posterior of all labels, seeds clamped; labels unchanged) or acceptance (the share when the row's layer accepted it).")
    var confidence: ConfidenceSource = LabelingConfig().confidence

    @Option(name: .customLong("min-confidence"), help: "Abstain (label -1, source abstained) on non-seed rows whose confidence is below this, 0 ... 1 (0 = keep every label).")
    var minConfidence: Double = LabelingConfig().minConfidence

    /// The labeling configuration these options give; validated by `LabelingConfig.validate()` (the one validation).
    func config() -> LabelingConfig {
        var c = LabelingConfig()
        c.method = method; c.k = k; c.kMax = kMax; c.seed = seed; c.alpha = alpha; c.balance = balance; c.fallback = fallback
        c.tauStart = tauStart; c.tauMin = tauMin; c.layerFraction = layerFraction; c.globalLayerFraction = globalLayerFraction; c.gamma = gamma; c.iterations = iterations
        c.classQuota = classQuota; c.evidence = evidence; c.evidenceMargin = evidenceMargin; c.clampAnchors = clamp
        c.classPrior = classPrior; c.priorFlattening = priorFlattening; c.refine = refine; c.shrinkageFloor = shrinkageFloor
        c.cgTolerance = cgTolerance; c.warmStart = warmStart; c.pilotIterations = pilotIterations; c.threads = threads
        c.calibration = calibration; c.calibrationShift = calibrationShift; c.minConfidence = minConfidence; c.kMin = kMin; c.propagationBlend = propagationBlend
        c.balanceClasses = balanceClasses; c.confidence = confidence; c.refineSources = refineSources; c.sourceWeight = sourceWeight
        c.metricPass = metricPass; c.metricShrinkage = metricShrinkage; c.metricClassBalance = metricClassBalance
        return c
    }

    func validate() throws { try Check.config { try config().validate() } }
}

extension LabelMethod: ExpressibleByArgument {}
extension EvidenceMode: ExpressibleByArgument {}
extension ClassPrior: ExpressibleByArgument {}
extension AutoSwitch: ExpressibleByArgument {}
extension CalibrationMethod: ExpressibleByArgument {}
extension ConfidenceSource: ExpressibleByArgument {}
extension CalibrationShift: ExpressibleByArgument {}

/// MPI commands: OpenBLAS threads per rank = `override`, or the node's cores / ranks on this node (from OpenMPI's
/// OMPI_COMM_WORLD_LOCAL_SIZE), at least 1, so that ranks × threads <= cores.
func setBLASThreadsPerRank(_ override: Int?) {
    let localRanks = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
    BLASThreads.set(override ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, localRanks)))
}

/// MPI commands: initialises MPI, runs `body` on this rank and finalises. An error (agreed by the ranks) is printed
/// once, by rank 0, and every rank exits non-zero.
func runOnRanks(_ body: (Communicator) throws -> Void) throws {
    let comm = try Communicator.initialize()
    defer { Communicator.finalize() }
    do { try body(comm) } catch {
        if comm.isRoot { FileHandle.standardError.write(Data("hdlabel: error: \(Communicator.describe(error))\n".utf8)) }
        throw ExitCode.failure
    }
}

func makeLogger(_ label: String, quiet: Bool) -> Logger {
    var l = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    l.logLevel = quiet ? .warning : .info
    return l
}

/// Turns any error into one line on stderr and a non-zero exit.
func runReportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as HDLError {
        FileHandle.standardError.write(Data("hdlabel: error: \(e.description)\n".utf8))
        throw ExitCode(1)
    }
}

struct LabelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Label every row of EMBEDDINGS from the seed labels in LABELS (single process).",
        discussion: """
        EMBEDDINGS: .npy float32/float64 (n, d), or raw little-endian float32 with --raw-shape NxD.
        LABELS: .npy integers (-1 = unlabeled) or CSV 'id,label' (id = 0-based row, empty label = unlabeled).
        OUT: .csv (id,label,confidence,layer,source) or .npy (label ids); a manifest OUT.manifest.json is written beside it.
        """
    )

    @Argument(help: "Embeddings file (.npy or raw float32).") var embeddings: String
    @Argument(help: "Seed labels (.npy or .csv).") var labels: String
    @Option(name: .shortAndLong, help: "Output labels file (.csv or .npy).") var output: String
    @Flag(name: .shortAndLong, help: "Only warnings and errors on stderr.") var quiet = false
    @OptionGroup var input: EmbeddingsInput
    @OptionGroup var graph: GraphOptionGroup
    @OptionGroup var opts: LabelingOptions

    func validate() throws {
        if !(output.hasSuffix(".csv") || output.hasSuffix(".npy")) { throw OptionError("-o", output, "a file ending in .csv or .npy") }
    }

    func run() throws {
        try runReportingErrors {
            let log = makeLogger("hdlabel.label", quiet: quiet)
            var timer = PhaseTimer<String>()
            let config = opts.config()
            let x = try timer.time("read") { try input.read(embeddings) }
            let seeds = try timer.time("read") { try LabelsIO.read(path: labels, n: x.rows, classes: try input.classList()) }
            log.info("read \(x.rows) x \(x.cols) embeddings, \(seeds.seeds.filter { $0 >= 0 }.count) seeds in \(seeds.numClasses) classes")
            var lastPct = -1
            let prebuilt = try timer.time("read") { try graph.prebuilt(rows: x.rows) }
            let (g, result) = try Labeling.label(embeddings: x, seeds: seeds.seeds, numClasses: seeds.numClasses, config: config,
                                                 tile: graph.tile, graph: graph.graph, approx: graph.approx, prebuilt: prebuilt,
                                                 timing: &timer, progress: { done, total in
                let pct = done * 100 / total
                if pct / 10 != lastPct / 10 || done == total { lastPct = pct; log.info("kNN graph: \(pct)% (\(done)/\(total) tile pairs)") }
            }, log: { log.info("\($0)") })
            let graphParameters = graph.manifestParameters(graph: g, normalized: { x.l2Normalized() }) { log.info("\($0)") }
            // Labels and manifest as one unit: neither is new unless both are written. The write itself is timed
            // after the manifest is made, so the manifest's timings end with labeling.
            var m = RunManifest(
                command: "label", method: config.method.rawValue,
                parameters: config.manifestParameters.merging(graphParameters) { $1 },
                inputs: ["embeddings": embeddings, "embeddings_hash": (try? EmbeddingFiles.open(embeddings).fileHash) ?? RunManifest.fileHash(embeddings),
                         "labels": labels, "labels_hash": RunManifest.fileHash(labels)],
                n: x.rows, dimensions: x.cols, classes: seeds.classNames, chosenK: result.chosenK, layers: result.layers,
                timingsSeconds: timer.seconds, ranks: 1)
            m.record(labeling: result, minConfidence: config.minConfidence)
            let files = [(LabelsIO.encode(result, classNames: seeds.classNames, for: output), output), (try m.json(), RunManifest.path(for: output))]
            try timer.time("write") { try AtomicFile.write(files) }
            let abst = result.labels.filter { $0 < 0 }.count
            log.info("wrote \(output): \(x.rows) labels (\(abst) abstained), k=\(result.chosenK), \(result.layers.count) layers, graph \(String(format: "%.2f", timer.seconds["graph"] ?? 0)) s")
            log.info("confidence calibration: \(result.calibration.description)")
            if let e = result.estimatedAccuracy {
                let line = "estimated accuracy of the non-seed labels: \(String(format: "%.3f", e))"
                    + (result.pilotEstimate.map { " (pilot estimate \($0.description))" } ?? " (no pilot estimate: too few seeds per class)")
                log.info("\(line)")
            }
            if config.minConfidence > 0 {
                let kept = Calibration.kept(result)
                let line = "--min-confidence \(config.minConfidence): kept \(kept.kept) of \(kept.rows) non-seed rows, coverage "
                    + String(format: "%.4f", kept.coverage) + ", expected accuracy of the kept rows " + String(format: "%.4f", kept.expectedAccuracy)
                log.info("\(line)")
            }
        }
    }
}

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score predicted labels against held-out ground truth on the rows that were unlabeled seeds."
    )
    @Argument(help: "Predicted labels (.npy ids, or the .csv that 'label' wrote).") var predicted: String
    @Argument(help: "Ground-truth labels (.npy ints).") var truth: String
    @Argument(help: "The seed labels used (.npy; rows with a seed are excluded from scoring).") var seeds: String
    @Option(name: .long, help: "Class names in id order (comma-separated, or a file with one name per line) when the CSV holds names; default: the names in the CSV's manifest.")
    var classes: String?

    func run() throws {
        try runReportingErrors {
            let t = try NPY.readInts(path: truth)
            let s = try NPY.readInts(path: seeds)
            let p = predicted.hasSuffix(".npy") ? try NPY.readInts(path: predicted)
                : try LabelsIO.readPredictedIds(path: predicted, n: t.count, classes: try classes.map { try LabelsIO.parseClassList($0) })
            guard p.count == t.count, s.count == t.count else { throw HDLError.invalidInput("predicted \(p.count), truth \(t.count) and seeds \(s.count) lengths differ") }
            var correct = 0, total = 0, covered = 0
            for i in 0 ..< t.count where s[i] < 0 {
                total += 1
                if p[i] >= 0 { covered += 1 }
                if p[i] >= 0 && p[i] == t[i] { correct += 1 }
            }
            // accuracy: abstentions (-1) count as wrong; kept accuracy: on the rows that kept a label.
            print(String(format: "accuracy %.4f  coverage %.4f  kept accuracy %.4f  (%d unlabeled rows, %d kept, %d abstained)",
                         Double(correct) / Double(max(total, 1)), Double(covered) / Double(max(total, 1)),
                         covered > 0 ? Double(correct) / Double(covered) : .nan, total, covered, total - covered))
        }
    }
}
