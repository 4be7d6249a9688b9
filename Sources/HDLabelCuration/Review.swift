import HDLabelIO
import HDLabelCore
import Foundation

/// A labeling run as written by `hdlabel label` / `cluster`: `id,label,confidence,layer,source` for every row.
public struct RunLabels: Sendable, Equatable {
    /// Class id per row (-1 = abstained).
    public var labels: [Int32]
    public var confidence: [Float]
    public var layer: [Int32]
    public var isSeed: [Bool]
    public var classNames: [String]
    public var n: Int { labels.count }

    public init(labels: [Int32], confidence: [Float], layer: [Int32], isSeed: [Bool], classNames: [String]) {
        self.labels = labels; self.confidence = confidence; self.layer = layer; self.isSeed = isSeed; self.classNames = classNames
    }

    /// A run from an in-memory result (benchmarks, tests).
    public init(_ r: LabelingResult, classNames: [String]) {
        self.init(labels: r.labels, confidence: r.confidence, layer: r.layer, isSeed: r.source.map { $0 == .seed }, classNames: classNames)
    }

    /// Reads a run CSV. Every row id in 0..<n must appear once; labels are class names (integers map to themselves).
    public static func read(path: String) throws -> RunLabels {
        guard let data = FileManager.default.contents(atPath: path) else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        guard let text = String(data: data, encoding: .utf8) else { throw HDLError.format(path: path, reason: "not UTF-8 text") }
        var rows: [(id: Int, label: String?, conf: Float, layer: Int32, seed: Bool)] = []
        var lineNo = 0
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let l = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if l.isEmpty { continue }
            let f = LabelsIO.splitCSVLine(l)
            if lineNo == 1 {
                guard f.count >= 5, f[0] == "id", f[1] == "label", f[2] == "confidence", f[4] == "source" else {
                    throw HDLError.format(path: path, reason: "expected the header 'id,label,confidence,layer,source' of a labeling run")
                }
                continue
            }
            guard f.count >= 5, let id = Int(f[0]), let conf = Float(f[2]), let layer = Int32(f[3]) else {
                throw HDLError.format(path: path, reason: "line \(lineNo): expected 'id,label,confidence,layer,source'")
            }
            rows.append((id, f[1].isEmpty ? nil : f[1], conf, layer, f[4] == "seed"))
        }
        let n = rows.count
        guard n > 0 else { throw HDLError.format(path: path, reason: "no rows") }
        var raw = [String?](repeating: nil, count: n), seen = [Bool](repeating: false, count: n)
        var conf = [Float](repeating: 0, count: n), layer = [Int32](repeating: -1, count: n), seed = [Bool](repeating: false, count: n)
        for r in rows {
            guard r.id >= 0 && r.id < n else { throw HDLError.invalidInput("'\(path)': id \(r.id) outside 0..<\(n) rows") }
            if seen[r.id] { throw HDLError.invalidInput("'\(path)': id \(r.id) appears twice") }
            seen[r.id] = true
            raw[r.id] = r.label; conf[r.id] = r.conf; layer[r.id] = r.layer; seed[r.id] = r.seed
        }
        let mapped = try LabelsIO.map(raw, classes: nil, path: path)
        return RunLabels(labels: mapped.seeds, confidence: conf, layer: layer, isSeed: seed, classNames: mapped.classNames)
    }
}

extension RunLabels {
    /// The run with its classes named by `classes` (id order): labels that are class ids 0..<C take the listed names,
    /// labels that are already listed names keep them (re-indexed to the list's order). Anything else is an error.
    public func named(_ classes: [String]) throws -> RunLabels {
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
        var map = [Int32](repeating: -1, count: classNames.count)
        let allIds = classNames.allSatisfy { Int($0).map { $0 >= 0 && $0 < classes.count } ?? false }
        for (c, name) in classNames.enumerated() {
            if allIds { map[c] = Int32(Int(name)!) } else if let i = index[name] { map[c] = i } else {
                throw HDLError.invalidInput("label '\(name)' of the run is neither one of the \(classes.count) listed classes nor a class id 0..<\(classes.count)")
            }
        }
        var r = self
        r.labels = labels.map { $0 >= 0 ? map[Int($0)] : -1 }
        r.classNames = classes
        return r
    }
}

/// How `Review.select` ranks the samples to review.
public enum ReviewRanking: String, Sendable, CaseIterable, Codable {
    /// Lowest labeling confidence first (abstentions count as confidence 0).
    case confidence
    /// The label least supported by the neighbourhood's labels (1 − weighted share of its own label among k neighbours).
    case disagreement
    /// Mean of the two above: uncertain for the method and for the neighbourhood.
    case uncertainty
    /// `uncertainty` × graph centrality (1 + log(1 + in-degree among non-seed points)): uncertain points whose label
    /// many others depend on.
    case central
    /// Uniformly random non-seed samples (the baseline).
    case random
}

/// One sample proposed for review.
public struct ReviewItem: Sendable, Equatable, Codable {
    public var id: Int
    /// The current label (class name; empty when the run abstained).
    public var label: String
    public var confidence: Float
    public var score: Double
    public var rank: Int
}

/// What an exported task shows besides the sample's label: the item (image URL or text), its context and, for
/// images, the nearest labeled sample's image URL.
public struct ReviewShown: Sendable, Equatable {
    public var item: String?
    public var context: ReviewContext?
    public var seedImage: String?
    public init(item: String? = nil, context: ReviewContext? = nil, seedImage: String? = nil) {
        self.item = item; self.context = context; self.seedImage = seedImage
    }
}

/// A reviewer's answer: the sample id and the class name they chose.
public struct Correction: Sendable, Equatable {
    public var id: Int
    public var label: String
    /// Where it was read (line or task), for messages.
    public var origin: String
    public init(id: Int, label: String, origin: String) { self.id = id; self.label = label; self.origin = origin }
}

/// What importing corrections into a seed file did.
public struct ReviewImport: Sendable, Equatable {
    public var seeds: SeedLabels
    /// New seeds added (id, class id).
    public var added: [(id: Int, label: Int32)]
    /// Corrections equal to an existing seed (nothing changed).
    public var confirmed: [Int]
    /// Corrections that disagree with an existing seed: (id, existing, proposed). Overwritten only with `force`.
    public var conflicts: [(id: Int, existing: String, proposed: String)]
    public var overwritten: [Int]
    /// Corrections not applied, with the reason (unknown id, unknown class, contradictory duplicates).
    public var rejected: [(origin: String, reason: String)]

    public static func == (a: ReviewImport, b: ReviewImport) -> Bool {
        a.seeds == b.seeds && a.added.map(\.id) == b.added.map(\.id) && a.confirmed == b.confirmed && a.overwritten == b.overwritten
            && a.conflicts.map(\.id) == b.conflicts.map(\.id) && a.rejected.map(\.origin) == b.rejected.map(\.origin)
    }
}

/// The human review loop: choose the samples whose review most improves the labels, export them (CSV or Label Studio
/// tasks), import the answers as new seeds.
public enum Review {
    /// Per-sample review priority (higher = review first); seeds get -infinity.
    public static func scores(run: RunLabels, graph: KNNGraph, ranking: ReviewRanking, k: Int = 10, seed: UInt64 = 0) -> [Double] {
        let n = run.n, c = run.classNames.count
        var out = [Double](repeating: 0, count: n)
        switch ranking {
        case .random:
            var rng = SplitMix64(seed: seed ^ 0x0EE_71E3)
            for i in 0 ..< n { out[i] = Double(rng.next() >> 11) / Double(1 << 53) }
        case .confidence, .disagreement, .uncertainty, .central:
            let unc = (0 ..< n).map { run.labels[$0] < 0 ? 1.0 : 1 - Double(run.confidence[$0]) }
            var dis = [Double](repeating: 1, count: n)
            if ranking != .confidence {
                let votes = LabelIssues.voteShares(graph: graph, labels: run.labels, voter: run.labels.map { $0 >= 0 }, numClasses: max(c, 1),
                                                   k: min(k, graph.k), gamma: 1)
                for i in 0 ..< n where run.labels[i] >= 0 { dis[i] = 1 - Double(votes[i * c + Int(run.labels[i])]) }
            }
            switch ranking {
            case .confidence: out = unc
            case .disagreement: out = dis
            default: out = (0 ..< n).map { 0.5 * (unc[$0] + dis[$0]) }
            }
            if ranking == .central {
                var indeg = [Int](repeating: 0, count: n)
                let kk = min(k, graph.k)
                for i in 0 ..< n where !run.isSeed[i] { for t in 0 ..< kk { indeg[Int(graph.neighbors[i * graph.k + t])] += 1 } }
                for i in 0 ..< n { out[i] *= 1 + log(1 + Double(indeg[i])) }
            }
        }
        for i in 0 ..< n where run.isSeed[i] { out[i] = -.infinity }
        return out
    }

    /// The `count` non-seed samples to review, best first. With `diverse`, a sample is skipped when it is among the
    /// first `spread` graph neighbours of a sample already chosen, so one batch does not spend several reviews on the
    /// same neighbourhood; skipped samples fill the batch only if it is short.
    public static func select(run: RunLabels, graph: KNNGraph, count: Int, ranking: ReviewRanking, k: Int = 10,
                              diverse: Bool = true, spread: Int = 5, seed: UInt64 = 0) -> [ReviewItem] {
        let s = scores(run: run, graph: graph, ranking: ranking, k: k, seed: seed)
        let order = (0 ..< run.n).filter { !run.isSeed[$0] }.sorted { s[$0] > s[$1] || (s[$0] == s[$1] && $0 < $1) }
        var chosen: [Int] = [], blocked = [Bool](repeating: false, count: run.n), skipped: [Int] = []
        let m = min(spread, graph.k)
        for i in order {
            if chosen.count == count { break }
            if diverse && blocked[i] { skipped.append(i); continue }
            chosen.append(i)
            if diverse { for t in 0 ..< m { blocked[Int(graph.neighbors[i * graph.k + t])] = true } }
        }
        for i in skipped where chosen.count < count { chosen.append(i) }
        return chosen.enumerated().map { pos, i in
            ReviewItem(id: i, label: run.labels[i] >= 0 ? run.classNames[Int(run.labels[i])] : "", confidence: run.confidence[i],
                       score: s[i], rank: pos + 1)
        }
    }

    /// CSV `id,label,confidence,score,rank,item,context,corrected` — reviewers fill `corrected` (empty = not
    /// reviewed). `item` is the image URL or text a reviewer looks at (empty without `--items`), `context` the
    /// nearest labeled samples and the neighbours' current labels. `shown` is nil or one entry per item.
    public static func encodeCSV(_ items: [ReviewItem], shown: [ReviewShown]? = nil) -> Data {
        var s = "id,label,confidence,score,rank,item,context,corrected\n"
        for (p, it) in items.enumerated() {
            let sh = shown?[p]
            s += "\(it.id),\(LabelsIO.csvField(it.label)),\(String(format: "%.4f", it.confidence)),\(String(format: "%.4f", it.score)),\(it.rank),"
                + "\(LabelsIO.csvField(sh?.item ?? "")),\(LabelsIO.csvField(sh?.context?.summary ?? "")),\n"
        }
        return Data(s.utf8)
    }

    /// Label Studio import JSON: a list of tasks `{"id", "data": {...}, "predictions": [{"model_version", "score",
    /// "result": [{"from_name", "to_name", "type": "choices", "value": {"choices": [label]}}]}]}`. The current label is
    /// a pre-annotation the reviewer accepts or changes. `data` holds `sample_id`, `current_label`, `confidence`,
    /// `rank`, `summary` (one line: sample, current label, confidence, rank), `context` (nearest labeled samples and
    /// the neighbours' labels), and the item: `image` (URL) or `text` for `kind`; without items (`kind` nil) `text` is
    /// the summary. For images, `seed_image` / `seed_caption` show the nearest labeled sample. `shown` is nil or one
    /// entry per item; `extraData` (per id) may add fields.
    public static func encodeLabelStudio(_ items: [ReviewItem], shown: [ReviewShown]? = nil, kind: ItemKind? = nil,
                                         fromName: String = "label", toName: String? = nil,
                                         extraData: [Int: [String: String]] = [:]) throws -> Data {
        let to = toName ?? (kind ?? .text).rawValue
        var tasks: [[String: Any]] = []
        for (p, it) in items.enumerated() {
            let sh = shown?[p]
            let current = it.label.isEmpty ? "none" : it.label
            let summary = "sample \(it.id) · current label: \(current) · confidence \(String(format: "%.2f", it.confidence)) · review rank \(it.rank)"
            var data: [String: Any] = ["sample_id": it.id, "current_label": it.label, "confidence": Double(it.confidence), "rank": it.rank,
                                       "summary": summary, "context": sh?.context?.summary ?? ""]
            switch kind {
            case .image?:
                data["image"] = sh?.item ?? ""
                data["seed_image"] = sh?.seedImage ?? ""
                data["seed_caption"] = sh?.context?.nearestSeeds.first.map {
                    "nearest labeled sample (\($0.id)): \($0.label), similarity \(String(format: "%.2f", $0.similarity))"
                } ?? "no labeled sample"
            case .text?:
                data["text"] = sh?.item ?? ""
            case nil:
                data["text"] = "sample \(it.id) (current label: \(current), confidence \(String(format: "%.2f", it.confidence)))"
            }
            for (k, v) in extraData[it.id] ?? [:] { data[k] = v }
            var task: [String: Any] = ["id": it.id, "data": data]
            if !it.label.isEmpty {
                task["predictions"] = [["model_version": "hdlabel", "score": Double(it.confidence),
                                        "result": [["from_name": fromName, "to_name": to, "type": "choices", "value": ["choices": [it.label]]]]]]
            }
            tasks.append(task)
        }
        return try JSONSerialization.data(withJSONObject: tasks, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// The Label Studio labeling configuration matching `encodeLabelStudio` for the same `kind`: the summary line,
    /// the item (`<Image>` or `<Text>`), the class choices (names as given), the context line and, for images, the
    /// nearest labeled sample's image.
    public static func labelStudioConfig(classNames: [String], kind: ItemKind? = nil, fromName: String = "label", toName: String? = nil) -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
                .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        let to = esc(toName ?? (kind ?? .text).rawValue)
        var v = "<View>\n  <Header value=\"$summary\" size=\"5\"/>\n"
        if kind == .image {
            v += "  <Image name=\"\(to)\" value=\"$image\" width=\"280px\" zoom=\"true\"/>\n"
        } else {
            v += "  <Text name=\"\(to)\" value=\"$text\"/>\n"
        }
        v += "  <Choices name=\"\(esc(fromName))\" toName=\"\(to)\" choice=\"single\" showInline=\"true\">\n"
            + classNames.map { "    <Choice value=\"\(esc($0))\"/>\n" }.joined() + "  </Choices>\n"
        v += "  <Header value=\"$context\" size=\"6\"/>\n"
        if kind == .image {
            v += "  <Header value=\"$seed_caption\" size=\"6\"/>\n  <Image name=\"nearest_labeled\" value=\"$seed_image\" width=\"140px\"/>\n"
        }
        return v + "</View>\n"
    }

    /// Reads corrections: CSV (`id,label` or the review CSV with a filled `corrected` column; empty answers are
    /// skipped) or a Label Studio JSON export (`[{"data": {"sample_id"}, "annotations": [{"result": [{"value":
    /// {"choices": [...]}}]}]}]`; the last non-cancelled annotation counts). Returns the corrections and the entries that
    /// could not be read (with reasons).
    public static func readCorrections(path: String) throws -> (corrections: [Correction], problems: [(origin: String, reason: String)]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        let trimmed = String(decoding: data.prefix(64), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if path.hasSuffix(".json") || trimmed.hasPrefix("[") || trimmed.hasPrefix("{") { return try readLabelStudio(data, path: path) }
        guard let text = String(data: data, encoding: .utf8) else { throw HDLError.format(path: path, reason: "not UTF-8 text") }
        var out: [Correction] = [], problems: [(String, String)] = []
        var idCol = 0, labelCol = 1, lineNo = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let l = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if l.isEmpty { continue }
            let f = LabelsIO.splitCSVLine(l)
            if lineNo == 1 && f[0].lowercased() == "id" {
                let lower = f.map { $0.lowercased() }
                idCol = 0
                labelCol = lower.firstIndex(of: "corrected") ?? lower.firstIndex(of: "label") ?? 1
                continue
            }
            let origin = "\(path):\(lineNo)"
            guard f.count > max(idCol, labelCol) || (f.count > idCol && labelCol >= f.count) else { continue }
            guard let id = Int(f[idCol]) else { problems.append((origin, "id '\(f[idCol])' is not a row index")); continue }
            let lab = labelCol < f.count ? f[labelCol] : ""
            if lab.isEmpty { continue }
            out.append(Correction(id: id, label: lab, origin: origin))
        }
        return (out, problems)
    }

    static func readLabelStudio(_ data: Data, path: String) throws -> (corrections: [Correction], problems: [(origin: String, reason: String)]) {
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: data) } catch { throw HDLError.format(path: path, reason: "not valid JSON: \(error.localizedDescription)") }
        guard let tasks = (obj as? [[String: Any]]) ?? (obj as? [String: Any]).map({ [$0] }) else {
            throw HDLError.format(path: path, reason: "expected a Label Studio export: a JSON list of tasks")
        }
        var out: [Correction] = [], problems: [(String, String)] = []
        func intValue(_ v: Any?) -> Int? {
            if let i = v as? Int { return i }
            if let d = v as? Double, d == d.rounded() { return Int(d) }
            if let s = v as? String { return Int(s) }
            return nil
        }
        for (t, task) in tasks.enumerated() {
            let data = task["data"] as? [String: Any] ?? [:]
            let origin = "\(path) task \(t + 1)"
            guard let id = intValue(data["sample_id"]) ?? intValue(data["id"]) ?? intValue(task["id"]) else {
                problems.append((origin, "no data.sample_id")); continue
            }
            let anns = (task["annotations"] as? [[String: Any]] ?? []).filter { ($0["was_cancelled"] as? Bool) != true }
            guard let ann = anns.last else { continue } // not reviewed
            let results = ann["result"] as? [[String: Any]] ?? []
            let choices = results.compactMap { ($0["value"] as? [String: Any])?["choices"] as? [String] }.first
            guard let choices, !choices.isEmpty else { problems.append((origin + " (sample \(id))", "annotation has no choice")); continue }
            if choices.count > 1 { problems.append((origin + " (sample \(id))", "annotation has \(choices.count) choices \(choices)")); continue }
            out.append(Correction(id: id, label: choices[0], origin: origin + " (sample \(id))"))
        }
        return (out, problems)
    }

    /// Adds corrections to `seeds` as new seed labels. Unknown ids (outside 0..<n), unknown classes and contradictory
    /// duplicates are rejected. A correction that disagrees with an existing seed is a conflict: listed, and applied
    /// only with `force`.
    public static func apply(_ corrections: [Correction], to seeds: SeedLabels, force: Bool) -> ReviewImport {
        var s = seeds
        let n = seeds.seeds.count
        let index = Dictionary(uniqueKeysWithValues: seeds.classNames.enumerated().map { ($1, Int32($0)) })
        var result = ReviewImport(seeds: seeds, added: [], confirmed: [], conflicts: [], overwritten: [], rejected: [])
        var byId: [Int: [Correction]] = [:]
        var order: [Int] = []
        for c in corrections {
            guard c.id >= 0 && c.id < n else { result.rejected.append((c.origin, "unknown id \(c.id) (rows are 0..<\(n))")); continue }
            guard index[c.label] != nil else {
                result.rejected.append((c.origin, "unknown class '\(c.label)' (known: \(seeds.classNames.joined(separator: ", ")))")); continue
            }
            if byId[c.id] == nil { order.append(c.id) }
            byId[c.id, default: []].append(c)
        }
        for id in order {
            let cs = byId[id]!
            if Set(cs.map(\.label)).count > 1 {
                for c in cs { result.rejected.append((c.origin, "sample \(id) has contradictory answers \(cs.map(\.label))")) }
                continue
            }
            let lab = index[cs[0].label]!
            let existing = s.seeds[id]
            if existing == lab { result.confirmed.append(id); continue }
            if existing >= 0 {
                result.conflicts.append((id, seeds.classNames[Int(existing)], cs[0].label))
                if force { s.seeds[id] = lab; result.overwritten.append(id) }
                continue
            }
            s.seeds[id] = lab
            result.added.append((id, lab))
        }
        result.seeds = s
        return result
    }

    /// Seed CSV `id,label` (class names) of the labeled rows only (absent rows are unlabeled for `LabelsIO.read`).
    public static func encodeSeedsCSV(_ s: SeedLabels) -> Data {
        var out = "id,label\n"
        for (i, l) in s.seeds.enumerated() where l >= 0 { out += "\(i),\(LabelsIO.csvField(s.classNames[Int(l)]))\n" }
        return Data(out.utf8)
    }
}
