import HDLabelCore
import Foundation

/// The NumPy `.npy` format (versions 1–3, little-endian, C order): how users bring embeddings and labels
/// from PyTorch/NumPy pipelines.
public enum NPY {
    /// Element types hdlabel reads. Embeddings accept float32/float64; labels accept the integer types.
    public enum DType: String, Sendable {
        case float32 = "<f4", float64 = "<f8", int32 = "<i4", int64 = "<i8", int16 = "<i2", uint8 = "|u1", int8 = "|i1"
        public var size: Int {
            switch self {
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            case .int16: return 2
            case .uint8, .int8: return 1
            }
        }
        var isFloat: Bool { self == .float32 || self == .float64 }
    }

    /// A parsed header: dtype, shape and the byte offset where data starts.
    public struct Header: Sendable, Equatable {
        public var dtype: DType
        public var shape: [Int]
        public var dataOffset: Int
        public var count: Int { shape.reduce(1, *) }
        /// Rows and columns when read as a matrix (a 1-D array is `n x 1`).
        public var matrixShape: (rows: Int, cols: Int) {
            shape.count == 1 ? (shape[0], 1) : (shape[0], shape.dropFirst().reduce(1, *))
        }
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Parses the header at the start of `bytes` (which must hold at least the whole header).
    public static func parseHeader(_ bytes: [UInt8], path: String) throws -> Header {
        guard bytes.count >= 10, Array(bytes[0 ..< 6]) == magic else {
            throw HDLError.format(path: path, reason: "not a .npy file (missing \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLen: Int, start: Int
        switch major {
        case 1: headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw HDLError.format(path: path, reason: "truncated header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; start = 12
        default: throw HDLError.format(path: path, reason: "unsupported .npy version \(major)")
        }
        guard bytes.count >= start + headerLen else { throw HDLError.format(path: path, reason: "truncated header") }
        guard let text = String(bytes: bytes[start ..< start + headerLen], encoding: .utf8) else {
            throw HDLError.format(path: path, reason: "header is not text")
        }
        func value(of key: String) -> Substring? {
            guard let r = text.range(of: "'\(key)':") else { return nil }
            return text[r.upperBound...].drop(while: { $0 == " " })
        }
        guard let d = value(of: "descr"), d.first == "'", let close = d.dropFirst().firstIndex(of: "'") else {
            throw HDLError.format(path: path, reason: "header has no 'descr'")
        }
        var descr = String(d[d.index(after: d.startIndex) ..< close])
        if descr == "=f4" || descr == "f4" { descr = "<f4" }
        guard let dtype = DType(rawValue: descr) else {
            throw HDLError.format(path: path, reason: "unsupported dtype '\(descr)' (need float32/float64 little-endian, or an integer type for labels)")
        }
        guard let f = value(of: "fortran_order") else { throw HDLError.format(path: path, reason: "header has no 'fortran_order'") }
        if f.hasPrefix("True") { throw HDLError.format(path: path, reason: "Fortran-order arrays are not supported; save with np.ascontiguousarray") }
        guard let s = value(of: "shape"), s.first == "(", let sc = s.firstIndex(of: ")") else {
            throw HDLError.format(path: path, reason: "header has no 'shape'")
        }
        let dims = s[s.index(after: s.startIndex) ..< sc].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for dim in dims {
            guard let v = Int(dim), v >= 0 else { throw HDLError.format(path: path, reason: "bad shape entry '\(dim)'") }
            shape.append(v)
        }
        if shape.isEmpty { throw HDLError.format(path: path, reason: "scalar arrays are not supported") }
        return Header(dtype: dtype, shape: shape, dataOffset: start + headerLen)
    }

    /// Reads and checks the header of the file at `path`, including that the file holds all the data it declares.
    public static func readHeader(path: String) throws -> Header {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        defer { try? fh.close() }
        let first = [UInt8]((try? fh.read(upToCount: 65536)) ?? Data())
        if first.isEmpty { throw HDLError.format(path: path, reason: "file is empty") }
        let h = try parseHeader(first, path: path)
        let size = (try? fh.seekToEnd()).map(Int.init) ?? 0
        let need = h.dataOffset + h.count * h.dtype.size
        if size < need { throw HDLError.format(path: path, reason: "truncated: header declares \(need) bytes, file has \(size)") }
        return h
    }

    /// Reads raw bytes `[offset, offset+count)` of a file.
    static func readBytes(path: String, offset: Int, count: Int) throws -> Data {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        defer { try? fh.close() }
        try fh.seek(toOffset: UInt64(offset))
        let d = try fh.read(upToCount: count) ?? Data()
        if d.count != count { throw HDLError.format(path: path, reason: "truncated: wanted \(count) bytes at offset \(offset), got \(d.count)") }
        return d
    }

    /// Converts raw little-endian values of `dtype` to Float.
    static func toFloat(_ d: Data, dtype: DType, path: String) throws -> [Float] {
        switch dtype {
        case .float32:
            return d.withUnsafeBytes { raw in (0 ..< d.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        case .float64:
            return d.withUnsafeBytes { raw in (0 ..< d.count / 8).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) } }
        default:
            throw HDLError.format(path: path, reason: "embeddings must be float32 or float64, found \(dtype.rawValue)")
        }
    }

    /// Reads rows `range` of a 2-D float32/float64 array (offset read: only those rows are loaded).
    /// Pass `nil` to read all rows.
    public static func readEmbeddings(path: String, rows range: Range<Int>? = nil) throws -> Embeddings {
        let h = try readHeader(path: path)
        guard h.dtype.isFloat else { throw HDLError.format(path: path, reason: "embeddings must be float32 or float64, found \(h.dtype.rawValue)") }
        guard h.shape.count == 2 else { throw HDLError.format(path: path, reason: "embeddings must be 2-D (n, d), found shape \(h.shape)") }
        let (n, d) = (h.shape[0], h.shape[1])
        let r = range ?? 0 ..< n
        guard r.lowerBound >= 0, r.upperBound <= n else { throw HDLError.invalidInput("row range \(r) outside 0..<\(n) of '\(path)'") }
        let bytes = try readBytes(path: path, offset: h.dataOffset + r.lowerBound * d * h.dtype.size, count: r.count * d * h.dtype.size)
        return Embeddings(rows: r.count, cols: d, data: try toFloat(bytes, dtype: h.dtype, path: path))
    }

    /// Reads a 1-D (or n×1) integer array as Int values.
    public static func readInts(path: String) throws -> [Int] {
        let h = try readHeader(path: path)
        guard h.shape.count == 1 || (h.shape.count == 2 && h.shape[1] == 1) else {
            throw HDLError.format(path: path, reason: "labels must be 1-D, found shape \(h.shape)")
        }
        let d = try readBytes(path: path, offset: h.dataOffset, count: h.count * h.dtype.size)
        return try d.withUnsafeBytes { raw -> [Int] in
            switch h.dtype {
            case .int64: return (0 ..< h.count).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
            case .int32: return (0 ..< h.count).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
            case .int16: return (0 ..< h.count).map { Int(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) }
            case .int8: return (0 ..< h.count).map { Int(Int8(bitPattern: raw[$0])) }
            case .uint8: return (0 ..< h.count).map { Int(raw[$0]) }
            case .float32, .float64:
                throw HDLError.format(path: path, reason: "labels must be an integer array (-1 = unlabeled), found \(h.dtype.rawValue)")
            }
        }
    }

    /// Encodes a header for `dtype` and `shape` (version 1, padded to 64 bytes).
    public static func encodeHeader(dtype: DType, shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = Data(magic)
        out.append(contentsOf: [1, 0, UInt8(dict.utf8.count & 0xff), UInt8(dict.utf8.count >> 8)])
        out.append(Data(dict.utf8))
        return out
    }

    /// Encodes a float32 matrix as `.npy` bytes.
    public static func encode(_ m: Embeddings) -> Data {
        var out = encodeHeader(dtype: .float32, shape: [m.rows, m.cols])
        m.data.withUnsafeBufferPointer { out.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: m.data.count * 4)) }
        return out
    }

    /// Encodes integers as an int64 `.npy` (1-D).
    public static func encode(ints: [Int]) -> Data {
        var out = encodeHeader(dtype: .int64, shape: [ints.count])
        let v = ints.map { Int64($0).littleEndian }
        v.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Encodes float32 values as a 1-D `.npy`.
    public static func encode(floats: [Float]) -> Data {
        var out = encodeHeader(dtype: .float32, shape: [floats.count])
        floats.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Writes a matrix atomically.
    public static func write(_ m: Embeddings, to path: String) throws { try AtomicFile.write(encode(m), to: path) }
    /// Writes integer labels atomically (int64).
    public static func write(ints: [Int], to path: String) throws { try AtomicFile.write(encode(ints: ints), to: path) }
}

/// Raw little-endian float32 matrices whose dimensions are given by the user (`rows`×`cols`).
public enum RawF32 {
    public static func read(path: String, rows: Int, cols: Int, rowRange: Range<Int>? = nil) throws -> Embeddings {
        guard rows > 0, cols > 0 else { throw HDLError.invalidParameter(name: "raw shape", value: "\(rows)x\(cols)", allowed: "positive rows and cols") }
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = (attrs?[.size] as? NSNumber)?.intValue else { throw HDLError.io(path: path, reason: "no such file or not readable") }
        if size != rows * cols * 4 {
            throw HDLError.format(path: path, reason: "size \(size) bytes does not match \(rows)x\(cols) float32 (\(rows * cols * 4) bytes)")
        }
        let r = rowRange ?? 0 ..< rows
        let d = try NPY.readBytes(path: path, offset: r.lowerBound * cols * 4, count: r.count * cols * 4)
        return Embeddings(rows: r.count, cols: cols, data: try NPY.toFloat(d, dtype: .float32, path: path))
    }
}
