import Foundation
import HDLabelCore

/// HDL's geometry evidence in the root-labeled job without gathering the embeddings: root holds the whole graph and
/// runs the hierarchy; every rank keeps its L2-normalised rows, and each geometry posterior root asks for is computed
/// where the rows are — class statistics as the exact distributed sums of `--distributed-labeling`
/// (`ClassGeometry.posteriors` over `RankRows`), scores of each rank's rows there — and gathered to root.
///
/// Per request: an `MPI_Ibcast` of the command (workers sleep in it between requests), a `Bcast` of the shrinkage,
/// a `Scatterv` of the anchors (each rank its rows, n · 4 bytes from root in all), the statistics' reductions
/// (C · 8 + (C · d + d²) · 32 bytes per rank) and a `Gatherv` of the rows' posteriors (n · C · 4 bytes to root).
/// Root memory: the gathered `n × C` posteriors, never the `n × d` rows. The posteriors are the same bits as
/// `ClassGeometry.posteriors` on one process (same exact sums, same per-block `sgemm`), so labels do not change.
public struct ServedGeometry: GeometrySource {
    let comm: Communicator
    let rows: RankRows
    let x: Embeddings

    /// `x`: this rank's rows (`table.rows(of: rank)`), L2-normalised.
    public init(comm: Communicator, table: ShardTable, x: Embeddings) throws {
        self.comm = comm; rows = try RankRows(comm: comm, table: table); self.x = x
    }

    /// Root only: asks every rank for the posteriors of its rows and returns all `n × C` of them. A failure inside a
    /// request (the others are in its collectives) stops the job (`Communicator.collective`).
    public func posteriors(anchors: [Int32], numClasses: Int, shrinkage: Double) throws -> [Float] {
        precondition(comm.isRoot)
        return try comm.collective("labeling") {
            _ = try comm.sleepingBcast(1)
            return try answer(anchors: anchors, numClasses: numClasses, shrinkage: shrinkage)
        }
    }

    /// **Collective** (every rank; `anchors` on root only): one request's work on this rank.
    func answer(anchors: [Int32], numClasses c: Int, shrinkage: Double) throws -> [Float] {
        let s = try comm.bcast([shrinkage])[0]
        let mine = try comm.scatterv(anchors, counts: rows.table.counts)
        let p = try ClassGeometry.posteriors(rows: x, comm: rows, localAnchors: mine, numClasses: c, shrinkage: s)
        return try comm.gatherv(p, rowWidth: c)
    }

    /// Every rank but root: answers root's requests until root calls `stop`. **Collective** with root's requests.
    public func serve(numClasses: Int) throws {
        precondition(!comm.isRoot)
        try comm.collective("labeling") {
            while try comm.sleepingBcast(0) != 0 { _ = try answer(anchors: [], numClasses: numClasses, shrinkage: 0) }
        }
    }

    /// Root only, once, after the hierarchy (also when it failed between requests): releases the serving ranks.
    public func stop() throws {
        precondition(comm.isRoot)
        _ = try comm.collective("labeling") { try comm.sleepingBcast(0) }
    }
}
