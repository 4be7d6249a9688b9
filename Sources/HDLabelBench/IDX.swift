import HDLabelCore
import CZlib
import Foundation

/// Reader for the IDX format used by MNIST-style data sets (optionally gzip-compressed).
///
/// Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions `nd`, then `nd`
/// big-endian UInt32 sizes and the data in row-major order. Image files have 3 dimensions (16-byte
/// header), label files 1 dimension (8-byte header). Only unsigned-byte data is supported.
public enum IDX {
    /// A decoded IDX array: its dimensions and raw bytes (`bytes.count == dims.reduce(1, *)`).
    public struct Array: Sendable, Equatable {
        public var dims: [Int]
        public var bytes: [UInt8]
        public init(dims: [Int], bytes: [UInt8]) { self.dims = dims; self.bytes = bytes }
    }

    /// Reads an IDX file of unsigned bytes; `.gz` content (detected by its magic, not its name) is inflated.
    public static func read(path: String) throws -> Array {
        let raw = try readFile(path: path)
        let bytes = isGzip(raw) ? try gunzip(raw, path: path) : raw
        return try parse(bytes, path: path)
    }

    /// Reads an image file: `count × rows × cols` bytes.
    public static func readImages(path: String) throws -> (count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        let a = try read(path: path)
        guard a.dims.count == 3 else {
            throw HDLError.format(path: path, reason: "expected a 3-D IDX image file, found \(a.dims.count) dimension(s) \(a.dims)")
        }
        return (a.dims[0], a.dims[1], a.dims[2], a.bytes)
    }

    /// Reads a label file: one byte per item.
    public static func readLabels(path: String) throws -> [UInt8] {
        let a = try read(path: path)
        guard a.dims.count == 1 else {
            throw HDLError.format(path: path, reason: "expected a 1-D IDX label file, found \(a.dims.count) dimension(s) \(a.dims)")
        }
        return a.bytes
    }

    /// Decodes IDX bytes (already decompressed). Extra trailing bytes are an error: they mean a wrong file.
    public static func parse(_ b: [UInt8], path: String) throws -> Array {
        guard b.count >= 4 else { throw HDLError.format(path: path, reason: "truncated IDX header (\(b.count) bytes, need at least 4)") }
        guard b[0] == 0, b[1] == 0 else {
            throw HDLError.format(path: path, reason: String(format: "not an IDX file (magic bytes %02x %02x, expected 00 00)", b[0], b[1]))
        }
        guard b[2] == 0x08 else {
            throw HDLError.format(path: path, reason: String(format: "unsupported IDX type code 0x%02x (only 0x08 unsigned byte)", b[2]))
        }
        let nd = Int(b[3])
        guard nd >= 1 && nd <= 4 else { throw HDLError.format(path: path, reason: "unsupported IDX dimension count \(nd)") }
        let headerSize = 4 + 4 * nd
        guard b.count >= headerSize else {
            throw HDLError.format(path: path, reason: "truncated IDX header (\(b.count) bytes, need \(headerSize))")
        }
        var dims: [Int] = []
        for d in 0 ..< nd {
            let o = 4 + 4 * d
            dims.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        let count = dims.reduce(1, *)
        let have = b.count - headerSize
        if have < count {
            throw HDLError.format(path: path, reason: "truncated IDX data: header \(dims) needs \(count) bytes, file has \(have)")
        }
        if have > count {
            throw HDLError.format(path: path, reason: "IDX data longer than header \(dims) says (\(have) bytes, expected \(count))")
        }
        return Array(dims: dims, bytes: Swift.Array(b[headerSize...]))
    }

    /// Encodes an unsigned-byte IDX array (used by tests and small tools).
    public static func encode(_ a: Array) -> [UInt8] {
        var out: [UInt8] = [0, 0, 0x08, UInt8(a.dims.count)]
        for d in a.dims { out += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        return out + a.bytes
    }

    static func isGzip(_ b: [UInt8]) -> Bool { b.count >= 2 && b[0] == 0x1f && b[1] == 0x8b }

    static func readFile(path: String) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw HDLError.io(path: path, reason: "no such file") }
        if isDir.boolValue { throw HDLError.io(path: path, reason: "is a directory") }
        guard let d = FileManager.default.contents(atPath: path) else { throw HDLError.io(path: path, reason: "not readable") }
        return [UInt8](d)
    }

    /// Inflates a complete gzip stream (one or more members). Reports truncation and corruption
    /// (bad header, bad deflate data, CRC or length mismatch) as `HDLError.format`.
    public static func gunzip(_ input: [UInt8], path: String) throws -> [UInt8] {
        if input.isEmpty { throw HDLError.format(path: path, reason: "empty gzip file") }
        var out = [UInt8]()
        out.reserveCapacity(input.count * 4)
        var strm = z_stream()
        var rc = inflateInit2_(&strm, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw HDLError.format(path: path, reason: "zlib inflateInit failed (\(rc))") }
        defer { inflateEnd(&strm) }
        let chunk = 1 << 20
        var buf = [UInt8](repeating: 0, count: chunk)
        try input.withUnsafeBufferPointer { inp in
            strm.next_in = UnsafeMutablePointer(mutating: inp.baseAddress!)
            strm.avail_in = uInt(inp.count)
            while true {
                rc = buf.withUnsafeMutableBufferPointer { ob -> Int32 in
                    strm.next_out = ob.baseAddress!
                    strm.avail_out = uInt(chunk)
                    return inflate(&strm, Z_NO_FLUSH)
                }
                let produced = chunk - Int(strm.avail_out)
                if produced > 0 { out.append(contentsOf: buf[0 ..< produced]) }
                switch rc {
                case Z_STREAM_END:
                    // Another gzip member may follow (concatenated .gz files are valid gzip).
                    if strm.avail_in == 0 { return }
                    if strm.avail_in >= 2, strm.next_in[0] == 0x1f, strm.next_in[1] == 0x8b {
                        inflateReset(&strm); continue
                    }
                    return  // trailing garbage after a complete member is ignored, as gzip does
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if strm.avail_in == 0 {
                        throw HDLError.format(path: path, reason: "truncated gzip data (stream ends after \(inp.count) compressed bytes, \(out.count) inflated)")
                    }
                    continue
                default:
                    let msg = strm.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                    throw HDLError.format(path: path, reason: "corrupt gzip data: \(msg)")
                }
            }
        }
        return out
    }

    /// Gzip-compresses bytes (used by tests to build fixture files).
    public static func gzip(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var strm = z_stream()
        let rc = deflateInit2_(&strm, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "deflateInit2 failed")
        defer { deflateEnd(&strm) }
        var out = [UInt8]()
        let chunk = 1 << 16
        var buf = [UInt8](repeating: 0, count: chunk)
        var inputCopy = input
        inputCopy.withUnsafeMutableBufferPointer { inp in
            strm.next_in = inp.baseAddress
            strm.avail_in = uInt(inp.count)
            while true {
                let r = buf.withUnsafeMutableBufferPointer { ob -> Int32 in
                    strm.next_out = ob.baseAddress!
                    strm.avail_out = uInt(chunk)
                    return deflate(&strm, Z_FINISH)
                }
                out.append(contentsOf: buf[0 ..< chunk - Int(strm.avail_out)])
                if r == Z_STREAM_END { break }
                precondition(r == Z_OK || r == Z_BUF_ERROR, "deflate failed (\(r))")
            }
        }
        return out
    }
}
