import HDLabelCore
import Foundation

/// Seed labels as read from a user's file: one class id per row (-1 = unlabeled) and the class names.
public struct SeedLabels: Sendable, Equatable {
    /// Length n; class id in `0..<classNames.count`, or -1.
    public var seeds: [Int32]
    /// Name of each class id (for integer labels: "0", "1", ...).
    public var classNames: [String]
    public var numClasses: Int { classNames.count }
    public init(seeds: [Int32], classNames: [String]) { self.seeds = seeds; self.classNames = classNames }
}

/// Reading seed labels and writing label outputs.
///
/// Input formats: `.npy` integer array (-1 = unlabeled), or CSV `id,label` where `id` is the 0-based row index,
/// an empty label (or a row that is absent) means unlabeled, and labels may be integers or class names.
public enum LabelsIO {
    /// Reads seeds for `n` rows. `classes` (optional) lists every class name in id order; then every listed
    /// class must have a seed and every label must be listed.
    public static func read(path: String, n: Int, classes: [String]? = nil) throws -> SeedLabels {
        let raw: [String?]
        if path.hasSuffix(".npy") {
            let ints = try NPY.readInts(path: path)
            if ints.count != n { throw HDLError.invalidInput("label count \(ints.count) in '\(path)' does not match row count \(n)") }
            if let bad = ints.firstIndex(where: { $0 < -1 }) {
                throw HDLError.invalidInput("label \(ints[bad]) of row \(bad) in '\(path)' is negative (only -1 marks unlabeled)")
            }
            if let classes {
                // A .npy holds class ids: with a class list they index it (names may look like anything).
                if let bad = ints.firstIndex(where: { $0 >= classes.count }) {
                    throw HDLError.invalidInput("label \(ints[bad]) of row \(bad) in '\(path)' is not a class id of the \(classes.count) listed classes")
                }
                raw = ints.map { $0 == -1 ? nil : classes[$0] }
            } else {
                raw = ints.map { $0 == -1 ? nil : String($0) }
            }
        } else {
            raw = try readCSV(path: path, n: n)
        }
        return try map(raw, classes: classes, path: path)
    }

    static func readCSV(path: String, n: Int) throws -> [String?] {
        guard let data = FileManager.default.contents(atPath: path) else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        guard let text = String(data: data, encoding: .utf8) else { throw HDLError.format(path: path, reason: "not UTF-8 text") }
        var out = [String?](repeating: nil, count: n)
        var seen = [Bool](repeating: false, count: n)
        var lineNo = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let l = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if l.isEmpty { continue }
            let f = splitCSVLine(l)
            if lineNo == 1 && f[0].lowercased() == "id" { continue }
            guard f.count >= 2 else { throw HDLError.format(path: path, reason: "line \(lineNo): expected 'id,label'") }
            guard let id = Int(f[0]) else { throw HDLError.format(path: path, reason: "line \(lineNo): id '\(f[0])' is not a row index") }
            guard id >= 0 && id < n else { throw HDLError.invalidInput("line \(lineNo) of '\(path)': id \(id) outside 0..<\(n) rows") }
            if seen[id] { throw HDLError.invalidInput("line \(lineNo) of '\(path)': id \(id) appears twice") }
            seen[id] = true
            let lab = f[1]
            out[id] = (lab.isEmpty || lab == "-1") ? nil : lab
        }
        if lineNo == 0 || text.isEmpty { throw HDLError.format(path: path, reason: "file is empty") }
        return out
    }

    /// Maps raw label strings to ids. Integers map to themselves (names "0".."C-1") unless `classes` is given;
    /// otherwise names are sorted.
    public static func map(_ raw: [String?], classes: [String]?, path: String) throws -> SeedLabels {
        let present = Set(raw.compactMap { $0 })
        var names: [String]
        if let classes {
            names = classes
            if Set(names).count != names.count { throw HDLError.invalidInput("class list has duplicates") }
            for p in present where !names.contains(p) {
                throw HDLError.invalidInput("label '\(p)' in '\(path)' is not one of the listed classes")
            }
        } else if present.allSatisfy({ Int($0) != nil }) {
            let maxId = present.compactMap { Int($0) }.max() ?? -1
            names = (0 ... max(maxId, 0)).map(String.init)
        } else {
            names = present.sorted()
        }
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, Int32($0)) })
        let seeds = raw.map { $0.map { index[$0]! } ?? -1 }
        return SeedLabels(seeds: seeds, classNames: names)
    }

    /// CSV text `id,label,confidence,layer,source` for samples `firstId ..< firstId + labels.count`
    /// (all arrays the same length). Labels are written as class names; an abstention (-1) as an empty field.
    public static func encodeCSV(firstId: Int = 0, labels: [Int32], confidence: [Float], layer: [Int32], source: [LabelSource],
                                 classNames: [String]) -> Data {
        var s = "id,label,confidence,layer,source\n"
        s.reserveCapacity(labels.count * 24)
        let names = classNames.map(csvField)
        for i in 0 ..< labels.count {
            let l = labels[i]
            let name = l >= 0 && Int(l) < names.count ? names[Int(l)] : ""
            s += "\(firstId + i),\(name),\(String(format: "%.4f", confidence[i])),\(layer[i]),\(source[i])\n"
        }
        return Data(s.utf8)
    }

    /// Writes a result as CSV (see `encodeCSV`), atomically.
    public static func writeCSV(_ r: LabelingResult, classNames: [String], to path: String, firstId: Int = 0) throws {
        try AtomicFile.write(encode(r, classNames: classNames, for: path, firstId: firstId), to: path)
    }

    /// The bytes of a labels output for `path`: `.npy` label ids (int64, -1 = abstained), otherwise the CSV.
    public static func encode(_ r: LabelingResult, classNames: [String], for path: String, firstId: Int = 0) -> Data {
        if path.hasSuffix(".npy") { return NPY.encode(ints: r.labels.map(Int.init)) }
        return encodeCSV(firstId: firstId, labels: r.labels, confidence: r.confidence, layer: r.layer, source: r.source, classNames: classNames)
    }

    /// Predicted class ids (-1 = abstained) from a labels CSV written by `label`/`cluster`, for scoring against integer
    /// truth. Class names map to ids by `classes` (id order), else by the names in the CSV's manifest
    /// (`OUT.manifest.json`), else labels must be integers. A CSV holding names with neither is an error, never a
    /// silent zero accuracy.
    public static func readPredictedIds(path: String, n: Int, classes: [String]?) throws -> [Int] {
        var names = classes
        if names == nil, let data = FileManager.default.contents(atPath: RunManifest.path(for: path)),
           let m = try? JSONDecoder().decode(RunManifest.self, from: data), !m.classes.isEmpty {
            names = m.classes
        }
        let r = try read(path: path, n: n, classes: names)
        if names != nil { return r.seeds.map { Int($0) } }
        return try r.seeds.map { id in
            if id < 0 { return -1 }
            guard let v = Int(r.classNames[Int(id)]) else {
                throw HDLError.invalidInput("'\(path)' holds class names (e.g. '\(r.classNames[Int(id)])') and has no manifest beside it; give --classes in id order")
            }
            return v
        }
    }

    /// The one parser of a `--classes` value: a file with one class name per line (or a names CSV with the header
    /// `id,name` and ids 0..<C) when `text` names an existing file, otherwise a comma-separated list. Names are trimmed; empty names and repeated names are errors.
    public static func parseClassList(_ text: String) throws -> [String] {
        var names: [String]
        if FileManager.default.fileExists(atPath: text) {
            guard let body = try? String(contentsOfFile: text, encoding: .utf8) else { throw HDLError.io(path: text, reason: "cannot read the class list") }
            let lines = body.split(separator: "\n", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            if let first = lines.first, splitCSVLine(first).map({ $0.lowercased() }) == ["id", "name"] {
                // A names CSV `id,name`: every id 0..<C once.
                var byId: [Int: String] = [:]
                for (no, line) in lines.enumerated().dropFirst() {
                    let f = splitCSVLine(line)
                    guard f.count == 2, let id = Int(f[0]), id >= 0 else {
                        throw HDLError.format(path: text, reason: "line \(no + 1): expected 'id,name' with a class id >= 0")
                    }
                    guard byId[id] == nil else { throw HDLError.format(path: text, reason: "line \(no + 1): class id \(id) appears twice") }
                    byId[id] = f[1]
                }
                guard !byId.isEmpty, byId.keys.max()! == byId.count - 1 else {
                    throw HDLError.format(path: text, reason: "class ids must be 0..<C, each once (found \(byId.count) ids up to \(byId.keys.max() ?? -1))")
                }
                names = (0 ..< byId.count).map { byId[$0]! }
            } else {
                names = lines
            }
        } else {
            names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        if names.isEmpty || names.contains("") { throw HDLError.invalidParameter(name: "classes", value: text, allowed: "comma-separated non-empty names, or a file with one name per line") }
        if Set(names).count != names.count { throw HDLError.invalidParameter(name: "classes", value: text, allowed: "each class name once") }
        return names
    }

    /// Splits one CSV line into fields (double-quoted fields may contain commas and "" escapes).
    public static func splitCSVLine(_ line: String) -> [String] {
        var fields: [String] = [], cur = "", quoted = false
        var it = Array(line), i = 0
        while i < it.count {
            let ch = it[i]
            if quoted {
                if ch == "\"" { if i + 1 < it.count && it[i + 1] == "\"" { cur.append("\""); i += 1 } else { quoted = false } } else { cur.append(ch) }
            } else if ch == "\"" { quoted = true } else if ch == "," { fields.append(cur.trimmingCharacters(in: .whitespaces)); cur = "" } else { cur.append(ch) }
            i += 1
        }
        fields.append(cur.trimmingCharacters(in: .whitespaces))
        it.removeAll()
        return fields
    }

    public static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
