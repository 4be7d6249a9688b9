import HDLabelIO
import HDLabelCore
import Foundation

/// Everything one report page shows, already computed (see `Report`). Built by `hdlabel report`.
public struct ReportData: Sendable {
    /// One label file of the run directory.
    public struct MethodResult: Sendable {
        /// The file's stem (hdl.csv -> hdl).
        public var name: String
        public var file: String
        /// Method recorded in the file's manifest ("" when there is none).
        public var method: String
        /// Nil without ground truth.
        public var metrics: QualityMetrics?
        public var coverage: Double
        public init(name: String, file: String, method: String, metrics: QualityMetrics?, coverage: Double) {
            self.name = name; self.file = file; self.method = method; self.metrics = metrics; self.coverage = coverage
        }
    }

    public var runDir: String
    public var primary: String
    public var methods: [MethodResult]
    public var classNames: [String]
    public var hasTruth: Bool
    public var seedSource: String
    public var layers: [Report.LayerStat]
    public var calibration: [Report.CalibrationBin]
    public var classes: [Report.ClassStat]
    public var confusion: [[Int]]
    public var timings: [Report.TimingSet]
    public var budgetCurves: [String: [Report.BudgetPoint]]
    public var budgetSavings: [Report.BudgetSaving]
    public var budgetSource: String?
    public var budgetDataset: String?
    public var budgetBalance: String?
    public var headline: Report.Headline
    public var created: String
    /// What the main run's manifest says of its calibration (`ReportData.calibrationNote(manifest:)`; nil: nothing).
    public var calibrationNote: String? = nil
    /// What it says of class balancing (`ReportData.balanceNote(manifest:)`; nil: nothing).
    public var balanceNote: String? = nil

    public init(runDir: String, primary: String, methods: [MethodResult], classNames: [String], hasTruth: Bool, seedSource: String,
                layers: [Report.LayerStat], calibration: [Report.CalibrationBin], classes: [Report.ClassStat], confusion: [[Int]],
                timings: [Report.TimingSet], budgetCurves: [String: [Report.BudgetPoint]], budgetSavings: [Report.BudgetSaving],
                budgetSource: String?, budgetDataset: String?, budgetBalance: String?, headline: Report.Headline, created: String) {
        self.runDir = runDir; self.primary = primary; self.methods = methods; self.classNames = classNames; self.hasTruth = hasTruth
        self.seedSource = seedSource; self.layers = layers; self.calibration = calibration; self.classes = classes
        self.confusion = confusion; self.timings = timings; self.budgetCurves = budgetCurves; self.budgetSavings = budgetSavings
        self.budgetSource = budgetSource; self.budgetDataset = budgetDataset; self.budgetBalance = budgetBalance
        self.headline = headline; self.created = created
    }
}

extension ReportData {
    /// One sentence from a label file's manifest (its JSON object): the map, the held-out seeds it was fitted on and the
    /// error their sampling alone leaves in the confidences' level (`calibrationSamplingError`), or why there is no map.
    /// Nil when the manifest says nothing of calibration (a baseline, or an older manifest).
    public static func calibrationNote(manifest m: [String: Any]?) -> String? {
        guard let m, let method = m["calibration"] as? String else { return nil }
        if method == "none" {
            let why = (m["calibrationReason"] as? String).map { ": \($0)" } ?? ""
            return "The confidences are uncalibrated top shares (no calibration map\(why))."
        }
        let samples = (m["calibrationSamples"] as? NSNumber)?.intValue ?? 0
        var s = "The confidences were calibrated by \(method) on \(samples) held-out seeds"
        if let e = (m["calibrationSamplingError"] as? NSNumber)?.doubleValue, e.isFinite {
            s += String(format: "; the seeds' sampling alone leaves their level uncertain by about %.1f points, so an expected calibration error below that is not something these seeds can promise", 100 * e)
        }
        return s + "."
    }

    /// Sentences from a label file's manifest: whether HDL's refinement posterior was balanced to the seeds' class
    /// shares, how far the layers' labels were from those shares (`balancedClasses`, `labelShift`), and whether the
    /// accepted labels were its sources (`refinementSources`). Nil when the manifest does not say (a baseline, no
    /// refinement, `--balance-classes off`, or an older manifest).
    public static func balanceNote(manifest m: [String: Any]?) -> String? {
        guard let m, let balanced = (m["balancedClasses"] as? Bool) ?? (m["balancedClasses"] as? NSNumber)?.boolValue else { return nil }
        let shift = (m["labelShift"] as? NSNumber)?.doubleValue
        let sources = (m["refinementSources"] as? Bool) ?? (m["refinementSources"] as? NSNumber)?.boolValue ?? false
        let distance = shift.map { String(format: " The layers' labels were %.3f (total variation) from the seeds' class shares.", $0) } ?? ""
        return (balanced ? "The refinement pulled the class totals to the seeds' class shares (--balance-classes)."
            : "The class totals were not pulled to the seeds' class shares (--balance-classes auto balances only the graph evidence, and only within \(HDL.balanceMaxShift)).")
            + distance + (sources ? " The accepted labels were sources of the refinement posterior (--refine-sources), so its class mass follows them." : "")
    }
}

/// One self-contained HTML page: inline CSS and inline SVG, no script, no external resource.
/// Section ids: summary, methods, budget, layers, calibration, classes, confusion, timings.
public enum ReportHTML {
    public static let sectionIds = ["summary", "methods", "budget", "layers", "calibration", "classes", "confusion", "timings"]

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    public static func escape(_ s: String) -> String {
        var o = ""
        for ch in s {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(ch)
            }
        }
        return o
    }

    static func f(_ v: Double, _ digits: Int = 1) -> String { v.isFinite ? String(format: "%.\(digits)f", v) : "–" }
    static func pct(_ v: Double?, _ digits: Int = 1) -> String { guard let v, v.isFinite else { return "–" }; return f(v * 100, digits) + "%" }
    static func int(_ v: Int) -> String {
        let s = String(abs(v)); var o = ""
        for (i, ch) in s.enumerated() { if i > 0 && (s.count - i) % 3 == 0 { o += "," }; o.append(ch) }
        return (v < 0 ? "-" : "") + o
    }
    static func signedPts(_ v: Double) -> String { (v >= 0 ? "+" : "−") + f(abs(v) * 100, 1) + " pts" }

    static let css = """
    body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;background:#f6f7f9;margin:0}
    main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
    h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:0 0 10px;border-bottom:1px solid #ddd;padding-bottom:6px}
    section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:16px 20px;margin:18px 0}
    .meta{color:#666;font-size:13px}.note{color:#555;font-size:13px;margin:8px 0 0}
    .cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
    .card{flex:1 1 200px;border:1px solid #e1e4e8;border-radius:6px;padding:12px 14px;background:#fbfcfd}
    .card .v{font-size:26px;font-weight:600;color:#1f4e8c}.card .k{font-size:13px;color:#555;margin-top:4px}
    table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border-bottom:1px solid #eee;padding:4px 10px;text-align:right}
    th:first-child,td:first-child{text-align:left}th{background:#f3f4f6}tr.primary td{font-weight:600}
    ul.assume{font-size:13px;color:#444;margin:6px 0 0;padding-left:20px}
    svg{display:block;margin:6px 0}svg text{font-family:inherit;font-size:11px;fill:#333}
    .charts{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
    """

    public static func render(_ d: ReportData) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>hdlabel report: \(escape(d.runDir))</title>\n"
        h += "<style>\n\(css)\n</style>\n</head>\n<body>\n<main>\n"
        h += "<h1>Labeling report</h1>\n<p class=\"meta\">Run directory <code>\(escape(d.runDir))</code> · main run <b>\(escape(d.primary))</b>"
        h += " · \(d.headline.rows) rows, \(d.classNames.count) classes · \(d.hasTruth ? "scored against ground truth" : "no ground truth given")"
        h += " · \(escape(d.created)) · hdlabel \(RunManifest.version)</p>\n"
        h += summary(d) + methods(d) + budget(d) + layers(d) + calibration(d) + classes(d) + confusion(d) + timings(d)
        h += "</main>\n</body>\n</html>\n"
        return h
    }

    // MARK: sections

    static func section(_ id: String, _ title: String, _ body: String) -> String {
        "<section id=\"\(id)\">\n<h2>\(escape(title))</h2>\n\(body)</section>\n"
    }

    static func summary(_ d: ReportData) -> String {
        let hl = d.headline
        let coveredAccuracy = d.methods.first { $0.name == d.primary }?.metrics?.coveredAccuracy
        var cards: [(String, String)] = []
        if let g = hl.accuracyGain, let b = hl.bestBaseline {
            cards.append((signedPts(g), "accuracy of \(escape(hl.method)) (\(pct(hl.accuracy))) over the best baseline in this run, \(escape(b)) (\(pct(hl.bestBaselineAccuracy)))"))
        } else if let a = hl.accuracy {
            cards.append((pct(a), "accuracy of \(escape(hl.method)) on the unlabeled rows (no baseline in this run to compare with)"))
        }
        cards.append(("\(int(hl.seedLabels)) → \(int(hl.producedLabels))", "seed labels given → labels produced for unlabeled rows"))
        cards.append((f(hl.annotationHoursSaved, 1) + " h", "annotation time not spent at \(f(hl.secondsPerLabel, 0)) s per label"))
        let saving = closestSaving(d)
        if let s = saving {
            if let saved = s.labelsSaved, let b = s.baseline {
                cards.append((int(Int(saved.rounded())), "seed labels saved: \(escape(b)) needs ≈\(int(Int(s.baselineLabels!.rounded()))) seeds to match \(escape(hl.method))'s \(pct(s.accuracy)) at \(int(Int(s.labeled))) seeds (budget table)"))
            } else {
                cards.append(("> " + int(Int((s.largestBudget - s.labeled).rounded())), "seed labels saved: no baseline reaches \(escape(hl.method))'s \(pct(s.accuracy)) at \(int(Int(s.labeled))) seeds within the table's largest budget (\(int(Int(s.largestBudget))))"))
            }
        }
        var b = "<div class=\"cards\">\n"
        for (v, k) in cards { b += "<div class=\"card\"><div class=\"v\">\(v)</div><div class=\"k\">\(k)</div></div>\n" }
        b += "</div>\n<ul class=\"assume\">\n"
        b += "<li>Labels produced = rows that had no seed label and received a label from <b>\(escape(hl.method))</b> (\(int(hl.producedLabels)) of \(int(hl.rows - hl.seedLabels))); abstentions are not counted.</li>\n"
        b += "<li>Hours saved = labels produced × \(f(hl.secondsPerLabel, 0)) s ÷ 3600 (set with <code>--seconds-per-label</code>): the time a person would have spent labeling those rows by hand. It assumes every produced label is used as is; \(coveredAccuracy.map { "on this data about " + pct(1 - $0) + " of them are wrong (measured on the ground truth)" } ?? "their error rate is unknown without ground truth") and reviewing them costs extra.</li>\n"
        if hl.accuracyGain != nil {
            b += "<li>Accuracy is measured on the rows without a seed (\(escape(d.seedSource))); an abstention counts as wrong. Gain is in percentage points over the best other label file in the run directory.</li>\n"
        }
        if let s = saving {
            b += "<li>Seed labels saved come from the budget table <code>\(escape(d.budgetSource ?? ""))</code> (\(escape(d.budgetDataset ?? "")), \(escape(d.budgetBalance ?? "")) seeds, mean over its seeds), not from this run: at the table's budget closest to this run's \(int(hl.seedLabels)) seeds (\(int(Int(s.labeled)))), the baseline needing the fewest seeds to reach the same accuracy, by linear interpolation between budgets. It holds for data like the table's.</li>\n"
        }
        b += "</ul>\n"
        return section("summary", "Headline", b)
    }

    static func closestSaving(_ d: ReportData) -> Report.BudgetSaving? {
        d.budgetSavings.min { abs($0.labeled - Double(d.headline.seedLabels)) < abs($1.labeled - Double(d.headline.seedLabels)) }
    }

    static func methods(_ d: ReportData) -> String {
        var b = "<table>\n<tr><th>label file</th><th>method</th><th>accuracy</th><th>macro-F1</th><th>balanced acc.</th><th>coverage</th><th>acc. on covered</th></tr>\n"
        for m in d.methods {
            let q = m.metrics
            b += "<tr\(m.name == d.primary ? " class=\"primary\"" : "")><td>\(escape(m.file))</td><td>\(escape(m.method.isEmpty ? "–" : m.method))</td><td>\(pct(q?.accuracy))</td>"
            b += "<td>\(pct(q?.macroF1))</td><td>\(pct(q?.balancedAccuracy))</td><td>\(pct(m.coverage))</td><td>\(pct(q?.coveredAccuracy))</td></tr>\n"
        }
        b += "</table>\n"
        if d.hasTruth {
            let items = d.methods.map { ($0.name, $0.metrics?.accuracy ?? .nan) }
            b += hbarChart(title: "Accuracy on unlabeled rows", items: items.map { ($0.0, $0.1, pct($0.1)) }, maxValue: 1, width: 560,
                           highlight: d.primary)
        } else {
            b += "<p class=\"note\">Accuracy and macro-F1 need <code>--truth</code>.</p>\n"
        }
        b += "<p class=\"note\">Scored on the rows without a seed (\(escape(d.seedSource))). Coverage = share of those rows that received a label.</p>\n"
        return section("methods", "Label files in the run", b)
    }

    static func budget(_ d: ReportData) -> String {
        guard !d.budgetCurves.isEmpty else {
            return section("budget", "Accuracy vs seed budget", "<p class=\"note\">Give a quality records CSV with <code>--budget-table</code> (written by <code>hdlabel bench quality</code>, e.g. benchmarks/results/quality/records-fashion.csv) for accuracy against the number of seed labels.</p>\n")
        }
        let names = d.budgetCurves.keys.sorted { ($0 == "hdl" ? 0 : 1, $0) < ($1 == "hdl" ? 0 : 1, $1) }
        var b = lineChart(series: names.map { n in (n, d.budgetCurves[n]!.map { ($0.labeled, $0.accuracy) }) }, width: 760, height: 360,
                          xLabel: "seed labels (log scale)", yLabel: "accuracy")
        if !d.budgetSavings.isEmpty {
            b += "<table>\n<tr><th>seed labels</th><th>hdl accuracy</th><th>fewest-seeds baseline</th><th>seeds it needs</th><th>seed labels saved</th></tr>\n"
            for s in d.budgetSavings {
                b += "<tr><td>\(int(Int(s.labeled)))</td><td>\(pct(s.accuracy))</td><td>\(escape(s.baseline ?? "none reaches it"))</td>"
                b += "<td>\(s.baselineLabels.map { "≈" + int(Int($0.rounded())) } ?? "> \(int(Int(s.largestBudget)))")</td>"
                b += "<td>\(s.labelsSaved.map { int(Int($0.rounded())) } ?? "> \(int(Int((s.largestBudget - s.labeled).rounded())))")</td></tr>\n"
            }
            b += "</table>\n"
        }
        b += "<p class=\"note\">From <code>\(escape(d.budgetSource ?? ""))</code>: dataset \(escape(d.budgetDataset ?? "")), \(escape(d.budgetBalance ?? "")) seeds; each point is the mean over the table's seeds. Seeds needed by a baseline are interpolated linearly between the table's budgets.</p>\n"
        return section("budget", "Accuracy vs seed budget", b)
    }

    static func layers(_ d: ReportData) -> String {
        guard !d.layers.isEmpty else { return section("layers", "Coverage and accuracy per layer", "<p class=\"note\">No unlabeled rows.</p>\n") }
        let cats = d.layers.map { $0.layer < 0 ? "none" : "\($0.layer)" }
        var series: [(String, [Double])] = [("coverage (share of unlabeled rows)", d.layers.map(\.coverage)),
                                            ("cumulative coverage", d.layers.map { $0.layer < 0 ? .nan : $0.cumulativeCoverage })]
        if d.hasTruth { series.append(("accuracy of the layer", d.layers.map { $0.layer < 0 ? .nan : ($0.accuracy ?? .nan) })) }
        var b = "<div class=\"charts\">\n" + groupedBarChart(categories: cats, series: series, width: max(480, min(720, 120 + cats.count * 18 * series.count)), height: 300,
                                xLabel: "layer of \(d.primary) (none = left unlabeled)")
        b += "<table>\n<tr><th>layer</th><th>rows</th><th>coverage</th><th>cumulative</th><th>accuracy</th></tr>\n"
        for l in d.layers {
            b += "<tr><td>\(l.layer < 0 ? "none (unlabeled or abstained)" : "\(l.layer)")</td><td>\(int(l.count))</td><td>\(pct(l.coverage))</td><td>\(pct(l.layer < 0 ? nil : l.cumulativeCoverage))</td><td>\(pct(l.layer < 0 ? nil : l.accuracy))</td></tr>\n"
        }
        b += "</table>\n</div>\n<p class=\"note\">Layer 1 holds the most reliable propagated labels; later layers were accepted under a relaxed threshold. Baselines label everything in one layer.</p>\n"
        return section("layers", "Coverage and accuracy per layer", b)
    }

    static func calibration(_ d: ReportData) -> String {
        let note = d.calibrationNote.map { "<p class=\"note\">\(escape($0))</p>\n" } ?? ""
        guard d.hasTruth, !d.calibration.isEmpty else {
            return section("calibration", "Confidence calibration", "<p class=\"note\">The reliability diagram needs <code>--truth</code>.</p>\n" + note)
        }
        var b = reliabilityDiagram(d.calibration)
        b += "<p class=\"note\">Labeled unlabeled-rows of \(escape(d.primary)) cut into ten equal groups by confidence. A point on the diagonal means the confidence matches the accuracy; below it, the run is overconfident. Expected calibration error: \(pct(Report.expectedCalibrationError(d.calibration), 1)).</p>\n" + note
        return section("calibration", "Confidence calibration (reliability by decile)", b)
    }

    static func classes(_ d: ReportData) -> String {
        let rows = d.classes
        let name: (Int) -> String = { $0 < d.classNames.count ? d.classNames[$0] : "\($0)" }
        let counts = rows.map { (name($0.classId), Double(d.hasTruth ? $0.truthCount : $0.predictedCount), int(d.hasTruth ? $0.truthCount : $0.predictedCount)) }
        let maxCount = counts.map(\.1).max() ?? 1
        var b = "<div class=\"charts\">\n"
        b += hbarChart(title: d.hasTruth ? "Rows per class (truth, unlabeled rows)" : "Rows per class (labels produced)", items: counts, maxValue: max(maxCount, 1), width: 380)
        if d.hasTruth {
            b += hbarChart(title: "Recall per class", items: rows.map { (name($0.classId), $0.recall ?? .nan, pct($0.recall)) }, maxValue: 1, width: 340)
        }
        b += "<table>\n<tr><th>class</th><th>seeds</th><th>truth rows</th><th>labeled as</th><th>recall</th></tr>\n"
        for r in rows {
            b += "<tr><td>\(escape(name(r.classId)))</td><td>\(int(r.seedCount))</td><td>\(d.hasTruth ? int(r.truthCount) : "–")</td><td>\(int(r.predictedCount))</td><td>\(pct(r.recall))</td></tr>\n"
        }
        b += "</table>\n</div>\n<p class=\"note\">Sorted by count, largest first: the tail classes are at the bottom. Counts are over the rows without a seed.</p>\n"
        b += d.balanceNote.map { "<p class=\"note\">\(escape($0))</p>\n" } ?? ""
        return section("classes", "Classes: counts and recall (long tail)", b)
    }

    static func confusion(_ d: ReportData) -> String {
        guard d.hasTruth, !d.confusion.isEmpty else {
            return section("confusion", "Confusion matrix", "<p class=\"note\">The confusion matrix needs <code>--truth</code>.</p>\n")
        }
        var b = heatmap(d.confusion, classNames: d.classNames)
        b += "<p class=\"note\">Rows: true class; columns: label given by \(escape(d.primary)); last column: left unlabeled. Colour = share of the row; numbers = rows.</p>\n"
        return section("confusion", "Confusion matrix", b)
    }

    static func timings(_ d: ReportData) -> String {
        guard !d.timings.isEmpty else {
            return section("timings", "Timings", "<p class=\"note\">No timings in the run directory (write them with <code>hdlabel cluster … --timings DIR/timings.json</code>).</p>\n")
        }
        var b = "<div class=\"charts\">\n"
        for t in d.timings {
            let title = "\(t.name): \(t.ranks) rank\(t.ranks == 1 ? "" : "s")" + (t.totalSeconds.map { ", total " + f($0, 2) + " s" } ?? "")
            let mx = t.phases.map(\.1).max() ?? 1
            b += hbarChart(title: title, items: t.phases.map { ($0.0, $0.1, f($0.1, 3) + " s") }, maxValue: max(mx, 1e-9), width: 520)
        }
        b += "</div>\n<p class=\"note\">Seconds per phase; for a cluster run, the maximum over ranks (the phase's wall time).</p>\n"
        return section("timings", "Timings per phase", b)
    }

    // MARK: SVG charts

    static func svgOpen(_ w: Int, _ h: Int, _ label: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\" aria-label=\"\(escape(label))\">\n<title>\(escape(label))</title>\n"
    }

    static func n(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Horizontal bars, one per item (label, value, text shown at the bar's end).
    static func hbarChart(title: String, items: [(String, Double, String)], maxValue: Double, width: Int, highlight: String? = nil) -> String {
        let rowH = 22, top = 26, left = 150, right = 70
        let h = top + items.count * rowH + 8
        var s = svgOpen(width, h, title)
        s += "<text x=\"0\" y=\"14\" style=\"font-size:13px;font-weight:600\">\(escape(title))</text>\n"
        let span = Double(width - left - right)
        for (i, it) in items.enumerated() {
            let y = top + i * rowH
            let v = it.1.isFinite ? max(0, it.1) : 0
            let w = maxValue > 0 ? span * min(v / maxValue, 1) : 0
            let color = highlight == nil ? palette[0] : (it.0 == highlight ? palette[1] : palette[0])
            s += "<text x=\"\(left - 6)\" y=\"\(y + 15)\" text-anchor=\"end\">\(escape(it.0))</text>\n"
            s += "<rect x=\"\(left)\" y=\"\(y + 3)\" width=\"\(n(w))\" height=\"\(rowH - 6)\" fill=\"\(color)\"/>\n"
            s += "<text x=\"\(n(Double(left) + w + 4))\" y=\"\(y + 15)\">\(escape(it.2))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func legend(_ names: [String], x: Int, y: Int) -> String {
        var s = "", cx = x
        for (i, name) in names.enumerated() {
            s += "<rect x=\"\(cx)\" y=\"\(y - 9)\" width=\"12\" height=\"10\" fill=\"\(palette[i % palette.count])\"/>"
            s += "<text x=\"\(cx + 16)\" y=\"\(y)\">\(escape(name))</text>\n"
            cx += 28 + name.count * 6
        }
        return s
    }

    /// Vertical grouped bars on a 0…1 axis.
    static func groupedBarChart(categories: [String], series: [(String, [Double])], width: Int, height: Int, xLabel: String) -> String {
        let left = 50, right = 10, top = 28, bottom = 40
        let pw = Double(width - left - right), ph = Double(height - top - bottom)
        var s = svgOpen(width, height, "bar chart: " + series.map(\.0).joined(separator: ", "))
        s += legend(series.map(\.0), x: left, y: 14)
        for t in stride(from: 0.0, through: 1.0001, by: 0.25) {
            let y = Double(top) + ph * (1 - t)
            s += "<line x1=\"\(left)\" y1=\"\(n(y))\" x2=\"\(width - right)\" y2=\"\(n(y))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(n(y + 4))\" text-anchor=\"end\">\(Int(t * 100))%</text>\n"
        }
        let groupW = pw / Double(max(categories.count, 1))
        let barW = groupW * 0.8 / Double(max(series.count, 1))
        for (ci, c) in categories.enumerated() {
            let gx = Double(left) + groupW * Double(ci) + groupW * 0.1
            for (si, se) in series.enumerated() {
                let v = se.1[ci]
                guard v.isFinite else { continue }
                let bh = ph * min(max(v, 0), 1)
                s += "<rect x=\"\(n(gx + barW * Double(si)))\" y=\"\(n(Double(top) + ph - bh))\" width=\"\(n(max(barW - 1, 1)))\" height=\"\(n(bh))\" fill=\"\(palette[si % palette.count])\"><title>\(escape(se.0)) \(escape(c)): \(f(v * 100, 1))%</title></rect>\n"
            }
            s += "<text x=\"\(n(gx + groupW * 0.4))\" y=\"\(height - bottom + 14)\" text-anchor=\"middle\">\(escape(c))</text>\n"
        }
        s += "<line x1=\"\(left)\" y1=\"\(top + Int(ph))\" x2=\"\(width - right)\" y2=\"\(top + Int(ph))\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(left + Int(pw / 2))\" y=\"\(height - 6)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        return s + "</svg>\n"
    }

    /// Lines of (x, y) per series; x on a log scale, y on an axis fitted to the data.
    static func lineChart(series: [(String, [(Double, Double)])], width: Int, height: Int, xLabel: String, yLabel: String) -> String {
        let left = 56, right = 150, top = 16, bottom = 40
        let pw = Double(width - left - right), ph = Double(height - top - bottom)
        let xs = series.flatMap { $0.1.map(\.0) }.filter { $0 > 0 }, ys = series.flatMap { $0.1.map(\.1) }
        let x0 = log10(xs.min() ?? 1), x1 = max(log10(xs.max() ?? 10), x0 + 1e-6)
        var y0 = ((ys.min() ?? 0) * 10).rounded(.down) / 10, y1 = ((ys.max() ?? 1) * 10).rounded(.up) / 10
        if y1 <= y0 { y0 = max(0, y0 - 0.1); y1 = y0 + 0.2 }
        let pad = (x1 - x0) * 0.05
        func px(_ x: Double) -> Double { Double(left) + pw * (log10(max(x, 1e-9)) - (x0 - pad)) / (x1 - x0 + 2 * pad) }
        func py(_ y: Double) -> Double { Double(top) + ph * (1 - (y - y0) / (y1 - y0)) }
        var s = svgOpen(width, height, "line chart: \(yLabel) vs \(xLabel)")
        var t = y0
        while t <= y1 + 1e-9 {
            s += "<line x1=\"\(left)\" y1=\"\(n(py(t)))\" x2=\"\(left + Int(pw))\" y2=\"\(n(py(t)))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(n(py(t) + 4))\" text-anchor=\"end\">\(Int((t * 100).rounded()))%</text>\n"
            t += (y1 - y0) > 0.5 ? 0.1 : 0.05
        }
        for x in Set(xs).sorted() {
            s += "<line x1=\"\(n(px(x)))\" y1=\"\(top)\" x2=\"\(n(px(x)))\" y2=\"\(top + Int(ph))\" stroke=\"#f0f0f0\"/>"
            s += "<text x=\"\(n(px(x)))\" y=\"\(top + Int(ph) + 14)\" text-anchor=\"middle\">\(Int(x.rounded()))</text>\n"
        }
        for (i, se) in series.enumerated() {
            let c = palette[i % palette.count], sw = se.0 == "hdl" ? 3 : 1.5
            let pts = se.1.map { "\(n(px($0.0))),\(n(py($0.1)))" }.joined(separator: " ")
            s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"\(sw)\"/>\n"
            for p in se.1 { s += "<circle cx=\"\(n(px(p.0)))\" cy=\"\(n(py(p.1)))\" r=\"3\" fill=\"\(c)\"><title>\(escape(se.0)) \(Int(p.0.rounded())) seeds: \(f(p.1 * 100, 1))%</title></circle>\n" }
            let ly = top + 12 + i * 18
            s += "<line x1=\"\(left + Int(pw) + 14)\" y1=\"\(ly - 4)\" x2=\"\(left + Int(pw) + 34)\" y2=\"\(ly - 4)\" stroke=\"\(c)\" stroke-width=\"\(sw)\"/>"
            s += "<text x=\"\(left + Int(pw) + 40)\" y=\"\(ly)\">\(escape(se.0))</text>\n"
        }
        s += "<text x=\"\(left + Int(pw / 2))\" y=\"\(height - 6)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text x=\"12\" y=\"\(top + Int(ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(top + Int(ph / 2)))\">\(escape(yLabel))</text>\n"
        return s + "</svg>\n"
    }

    static func reliabilityDiagram(_ bins: [Report.CalibrationBin]) -> String {
        let size = 340, left = 50, top = 12, bottom = 40, right = 12
        let p = Double(size - left - right)
        let width = size, height = top + Int(p) + bottom
        let cmax = max(1.0, bins.map(\.maxConfidence).max() ?? 1)
        func px(_ v: Double) -> Double { Double(left) + p * v / cmax }
        func py(_ v: Double) -> Double { Double(top) + p * (1 - v) }
        var s = svgOpen(width, height, "reliability diagram: accuracy vs mean confidence per decile")
        for t in stride(from: 0.0, through: 1.0001, by: 0.25) {
            s += "<line x1=\"\(left)\" y1=\"\(n(py(t)))\" x2=\"\(n(px(cmax)))\" y2=\"\(n(py(t)))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(n(py(t) + 4))\" text-anchor=\"end\">\(Int(t * 100))%</text>"
            s += "<text x=\"\(n(px(t * cmax)))\" y=\"\(top + Int(p) + 14)\" text-anchor=\"middle\">\(f(t * cmax, 2))</text>\n"
        }
        s += "<line x1=\"\(n(px(0)))\" y1=\"\(n(py(0)))\" x2=\"\(n(px(1)))\" y2=\"\(n(py(1)))\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n"
        for bin in bins {
            let w = max(px(bin.maxConfidence) - px(bin.minConfidence), 2)
            s += "<rect x=\"\(n(px(bin.minConfidence)))\" y=\"\(n(py(bin.accuracy)))\" width=\"\(n(w))\" height=\"\(n(p * bin.accuracy))\" fill=\"\(palette[0])\" fill-opacity=\"0.25\"/>\n"
        }
        let pts = bins.map { "\(n(px($0.meanConfidence))),\(n(py($0.accuracy)))" }.joined(separator: " ")
        s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(palette[1])\" stroke-width=\"2\"/>\n"
        for bin in bins {
            s += "<circle cx=\"\(n(px(bin.meanConfidence)))\" cy=\"\(n(py(bin.accuracy)))\" r=\"4\" fill=\"\(palette[1])\"><title>decile \(bin.bin + 1): confidence \(f(bin.meanConfidence, 3)), accuracy \(f(bin.accuracy * 100, 1))%, \(bin.count) rows</title></circle>\n"
        }
        s += "<text x=\"\(left + Int(p / 2))\" y=\"\(height - 6)\" text-anchor=\"middle\">mean confidence of the decile</text>\n"
        s += "<text x=\"12\" y=\"\(top + Int(p / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(top + Int(p / 2)))\">accuracy</text>\n"
        var table = "<table>\n<tr><th>decile</th><th>confidence range</th><th>mean conf.</th><th>accuracy</th><th>rows</th></tr>\n"
        for b in bins { table += "<tr><td>\(b.bin + 1)</td><td>\(f(b.minConfidence, 3))–\(f(b.maxConfidence, 3))</td><td>\(f(b.meanConfidence, 3))</td><td>\(pct(b.accuracy))</td><td>\(int(b.count))</td></tr>\n" }
        table += "</table>\n"
        return "<div class=\"charts\">\n" + s + "</svg>\n" + table + "</div>\n"
    }

    static func heatmap(_ m: [[Int]], classNames: [String]) -> String {
        let c = m.count
        let cell = c <= 12 ? 44 : max(8, 520 / max(c, 1))
        let showNumbers = cell >= 30
        let left = 130, top = 110
        let width = left + (c + 1) * cell + 10, height = top + c * cell + 10
        let name: (Int) -> String = { $0 < classNames.count ? classNames[$0] : "\($0)" }
        var s = svgOpen(width, height, "confusion matrix heat map")
        for j in 0 ... c {
            let x = left + j * cell + cell / 2
            s += "<text x=\"\(x)\" y=\"\(top - 6)\" transform=\"rotate(-45 \(x) \(top - 6))\">\(escape(j == c ? "(none)" : name(j)))</text>\n"
        }
        for i in 0 ..< c {
            let rowTotal = max(m[i].reduce(0, +), 1)
            s += "<text x=\"\(left - 6)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"end\">\(escape(name(i)))</text>\n"
            for j in 0 ... c {
                let share = Double(m[i][j]) / Double(rowTotal)
                let color = i == j ? heat(share, diag: true) : heat(share, diag: false)
                s += "<rect x=\"\(left + j * cell)\" y=\"\(top + i * cell)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(color)\" stroke=\"#fff\"><title>true \(escape(name(i))) → \(escape(j == c ? "(none)" : name(j))): \(m[i][j]) (\(f(share * 100, 1))%)</title></rect>\n"
                if showNumbers && m[i][j] > 0 {
                    s += "<text x=\"\(left + j * cell + cell / 2)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"middle\" style=\"fill:\(share > 0.5 ? "#fff" : "#222")\">\(m[i][j])</text>\n"
                }
            }
        }
        return s + "</svg>\n"
    }

    /// White → blue (diagonal) or white → red (errors), by share of the row.
    static func heat(_ share: Double, diag: Bool) -> String {
        let t = min(max(share, 0), 1)
        let target: (Double, Double, Double) = diag ? (31, 78, 140) : (200, 40, 40)
        let tt = diag ? t : min(1, t * 2.5)
        let r = 255 + (target.0 - 255) * tt, g = 255 + (target.1 - 255) * tt, b = 255 + (target.2 - 255) * tt
        return String(format: "#%02x%02x%02x", Int(r), Int(g), Int(b))
    }
}
