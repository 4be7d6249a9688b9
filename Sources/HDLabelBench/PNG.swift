import HDLabelCore
import CZlib
import Foundation

/// A minimal PNG writer for 8-bit grayscale images (what a reviewer sees of an MNIST-style row), and readers of what
/// it writes (to check what was written or served).
public enum PNG {
    /// PNG bytes of a `width × height` grayscale image (`pixels` row-major, one byte each), each pixel repeated
    /// `scale × scale` times (nearest neighbour). Chunks IHDR, IDAT (zlib level 9, filter 0 on every line), IEND.
    /// Cost O(width · height · scale²).
    public static func encodeGray(width: Int, height: Int, pixels: [UInt8], scale: Int = 1) throws -> [UInt8] {
        guard width > 0, height > 0, pixels.count == width * height else {
            throw HDLError.invalidInput("PNG: \(pixels.count) pixels for a \(width) × \(height) image")
        }
        guard scale >= 1 && scale <= 64 else { throw HDLError.invalidParameter(name: "scale", value: "\(scale)", allowed: "1...64") }
        let w = width * scale, h = height * scale
        var raw = [UInt8](); raw.reserveCapacity((w + 1) * h)
        for y in 0 ..< h {
            raw.append(0)  // filter type None
            let row = (y / scale) * width
            for x in 0 ..< w { raw.append(pixels[row + x / scale]) }
        }
        var destLen = compressBound(uLong(raw.count))
        var z = [UInt8](repeating: 0, count: Int(destLen))
        let rc = compress2(&z, &destLen, raw, uLong(raw.count), 9)
        guard rc == Z_OK else { throw HDLError.invalidInput("PNG: zlib compress2 failed (\(rc))") }
        z.removeSubrange(Int(destLen)...)
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func chunk(_ type: String, _ body: [UInt8]) {
            let t = Array(type.utf8)
            out += be32(body.count) + t + body
            let crc = (t + body).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
            out += be32(Int(crc))
        }
        chunk("IHDR", be32(w) + be32(h) + [8, 0, 0, 0, 0])  // bit depth 8, colour type 0 (gray), deflate, filter 0, no interlace
        chunk("IDAT", z)
        chunk("IEND", [])
        return out
    }

    /// Decodes what `encodeGray` writes (8-bit grayscale, no interlace, every line filter 0; IDAT chunks joined).
    /// Anything else is an error: this is a check of our own files, not a general PNG reader.
    public static func decodeGray(_ b: [UInt8]) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        guard let (w, h) = size(of: b), b.count >= 33, b[24] == 8, b[25] == 0, b[28] == 0 else {
            throw HDLError.format(path: "PNG", reason: "not an 8-bit grayscale, non-interlaced PNG")
        }
        var o = 8, z = [UInt8]()
        while o + 12 <= b.count {
            let len = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
            guard o + 12 + len <= b.count else { throw HDLError.format(path: "PNG", reason: "truncated chunk at byte \(o)") }
            let type = String(decoding: b[o + 4 ..< o + 8], as: UTF8.self)
            let crc = Array(b[o + 4 ..< o + 8 + len]).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
            let stored = UInt(b[o + 8 + len]) << 24 | UInt(b[o + 9 + len]) << 16 | UInt(b[o + 10 + len]) << 8 | UInt(b[o + 11 + len])
            guard UInt(crc) == stored else { throw HDLError.format(path: "PNG", reason: "CRC mismatch in chunk \(type)") }
            if type == "IDAT" { z += b[o + 8 ..< o + 8 + len] }
            o += 12 + len
            if type == "IEND" { break }
        }
        var rawLen = uLong((w + 1) * h)
        var raw = [UInt8](repeating: 0, count: Int(rawLen))
        guard uncompress(&raw, &rawLen, z, uLong(z.count)) == Z_OK, Int(rawLen) == (w + 1) * h else {
            throw HDLError.format(path: "PNG", reason: "image data does not inflate to \(w) x \(h) pixels")
        }
        var px = [UInt8](); px.reserveCapacity(w * h)
        for y in 0 ..< h {
            guard raw[y * (w + 1)] == 0 else { throw HDLError.format(path: "PNG", reason: "line \(y) uses filter \(raw[y * (w + 1)]); only 0 is read") }
            px += raw[y * (w + 1) + 1 ..< (y + 1) * (w + 1)]
        }
        return (w, h, px)
    }

    /// Width and height from a PNG's IHDR, or nil when the bytes are not a PNG.
    public static func size(of b: [UInt8]) -> (width: Int, height: Int)? {
        guard b.count >= 24, Array(b[0 ..< 8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], Array(b[12 ..< 16]) == Array("IHDR".utf8) else { return nil }
        func be32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        return (be32(16), be32(20))
    }
}

extension FashionMNIST {
    /// The raw 28 × 28 images of train followed by test (70,000 × 784 bytes, 0 = background), as IDX stores them.
    public static func rawImages(directory: String? = nil) throws -> (count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        let dir = directory ?? self.directory
        if let reason = unavailableReason(directory: dir) { throw HDLError.io(path: dir, reason: reason) }
        let tr = try IDX.readImages(path: files(split: .train, directory: dir).images)
        let te = try IDX.readImages(path: files(split: .test, directory: dir).images)
        guard tr.rows == te.rows, tr.cols == te.cols else {
            throw HDLError.format(path: dir, reason: "train images are \(tr.rows) × \(tr.cols), test images \(te.rows) × \(te.cols)")
        }
        return (tr.count + te.count, tr.rows, tr.cols, tr.pixels + te.pixels)
    }
}
