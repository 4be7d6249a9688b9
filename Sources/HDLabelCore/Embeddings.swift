import Foundation

/// A dense row-major float32 matrix of embeddings: `rows` samples × `cols` dimensions.
/// `data.count == rows * cols`; row `i` occupies `data[i*cols ..< (i+1)*cols]`.
public struct Embeddings: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var data: [Float]

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "data.count must equal rows*cols")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// Row `i` as a fresh array (for tests and small tools, not hot paths).
    public func row(_ i: Int) -> [Float] { Array(data[i * cols ..< (i + 1) * cols]) }

    /// Checks that every value is finite and no row is all zeros; `firstRow` is the global index of row 0
    /// (used in messages so a shard reports global row numbers).
    public func validate(firstRow: Int = 0) throws {
        if rows == 0 || cols == 0 { throw HDLError.invalidInput("embeddings are empty (\(rows) x \(cols))") }
        try data.withUnsafeBufferPointer { buf in
            for i in 0 ..< rows {
                var norm: Float = 0
                let base = i * cols
                for j in 0 ..< cols {
                    let v = buf[base + j]
                    if !v.isFinite {
                        throw HDLError.invalidInput("row \(firstRow + i) column \(j) is \(v) (NaN/inf not allowed)")
                    }
                    norm += v * v
                }
                if norm == 0 { throw HDLError.invalidInput("row \(firstRow + i) is all zeros (cannot be L2-normalised)") }
            }
        }
    }

    /// Returns a copy with every row scaled to unit L2 norm (norms accumulated in Double).
    /// Call `validate()` first: zero rows are left unchanged here.
    public func l2Normalized() -> Embeddings {
        var out = data
        out.withUnsafeMutableBufferPointer { buf in
            for i in 0 ..< rows {
                let base = i * cols
                var s: Double = 0
                for j in 0 ..< cols { let v = Double(buf[base + j]); s += v * v }
                if s > 0 {
                    let inv = Float(1.0 / s.squareRoot())
                    for j in 0 ..< cols { buf[base + j] *= inv }
                }
            }
        }
        return Embeddings(rows: rows, cols: cols, data: out)
    }

    /// Rows `range` as a new matrix.
    public func slice(rows range: Range<Int>) -> Embeddings {
        Embeddings(rows: range.count, cols: cols, data: Array(data[range.lowerBound * cols ..< range.upperBound * cols]))
    }

    /// Rows at `indices`, in that order.
    public func gather(_ indices: [Int]) -> Embeddings {
        var out = [Float](); out.reserveCapacity(indices.count * cols)
        for i in indices { out.append(contentsOf: data[i * cols ..< (i + 1) * cols]) }
        return Embeddings(rows: indices.count, cols: cols, data: out)
    }
}
