import HDLabelIO
import Foundation
import HDLabelCore

/// Writes a graph whose rows are spread over the ranks as one `KNNGraphFile` (`PREFIX.neighbors.npy`,
/// `PREFIX.similarities.npy`, `PREFIX.manifest.json`), without gathering it: root stages both arrays at full size
/// (header, then zeros), every rank writes its own rows at their offsets (`pwrite`, `rows.count · k · 4` bytes
/// each) and flushes, and only when every rank has succeeded does root rename the three files into place (the
/// manifest last). Any failure leaves no output and existing files unchanged.
public enum DistributedGraphFile {
    /// **Collective.** `local`: this rank's rows `rows` of an n-row graph (global neighbour ids); every rank passes
    /// the same `prefix`, n and k; `manifest` is used on root only.
    public static func write(local g: KNNGraph, rows: Range<Int>, n: Int, prefix: String, manifest: KNNGraphFile.Manifest?,
                             comm: Communicator) throws {
        let k = g.k
        let paths = [KNNGraphFile.neighborsPath(prefix), KNNGraphFile.similaritiesPath(prefix)]
        // 1. Root stages both arrays at their full length; the temporary names and header sizes travel to every rank.
        var staged: [AtomicFile.Staged] = []
        var stageError: Error?
        var heads: [Int] = [0, 0]
        if comm.isRoot {
            do {
                for (t, path) in paths.enumerated() {
                    let head = NPY.encodeHeader(dtype: t == 0 ? .int32 : .float32, shape: [n, k])
                    heads[t] = head.count
                    staged.append(try AtomicFile.stage(head, for: path, length: head.count + n * k * 4))
                }
            } catch { stageError = error }
        }
        do { try comm.agree(stageError, phase: "staging the graph files") } catch { staged.forEach(AtomicFile.discard); throw error }
        let names = try JSONDecoder().decode([String].self, from: comm.bcast(try JSONEncoder().encode(staged.map(\.temporary))))
        heads = try comm.bcast(heads)
        // 2. Every rank writes its rows.
        var writeError: Error?
        if g.n != rows.count { writeError = HDLError.cluster("graph holds \(g.n) rows for rows \(rows)") }
        else if !rows.isEmpty {
            do {
                try g.neighbors.withUnsafeBytes { try AtomicFile.write($0, at: heads[0] + rows.lowerBound * k * 4, into: names[0]) }
                try g.similarities.withUnsafeBytes { try AtomicFile.write($0, at: heads[1] + rows.lowerBound * k * 4, into: names[1]) }
            } catch { writeError = error }
        }
        do { try comm.agree(writeError, phase: "writing the graph files") } catch { staged.forEach(AtomicFile.discard); throw error }
        // 3. Root adds the manifest and renames all three.
        var commitError: Error?
        if comm.isRoot {
            do {
                if let manifest { staged.append(try AtomicFile.stage(try manifest.json(), for: KNNGraphFile.manifestPath(prefix))) }
                try AtomicFile.commit(staged)
            } catch { staged.forEach(AtomicFile.discard); commitError = error }
        }
        try comm.agree(commitError, phase: "writing the graph files")
    }
}
