import HDLabelCore
import Foundation

/// Writes files atomically: data goes to a temporary file in the same directory, is flushed, then renamed
/// over the destination. An interrupted run never leaves a half-written result at `path`.
///
/// The two halves are available on their own (`stage`, then `commit` or `discard`) for writers that must first
/// learn whether other processes succeeded too (the cluster renames only after every rank staged its files).
public enum AtomicFile {
    /// A file written and flushed under a temporary name beside `path`, not yet visible at `path`.
    public struct Staged: Sendable {
        public let temporary: String
        public let path: String
    }

    public static func write(_ data: Data, to path: String) throws {
        try write([(data, path)])
    }

    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
    }

    /// Writes several files as one unit (labels and their manifest, say): every file is staged and flushed first; only
    /// when all are staged are they renamed into place, in order. A failure while staging removes every temporary
    /// file and leaves every destination as it was (new files absent, existing ones untouched).
    public static func write(_ files: [(data: Data, path: String)]) throws {
        var staged: [Staged] = []
        do {
            for f in files { staged.append(try stage(f.data, for: f.path)) }
        } catch {
            staged.forEach(discard)
            throw error
        }
        try commit(staged)
    }

    /// Writes and flushes `data` to a temporary file in `path`'s directory (created if missing).
    public static func stage(_ data: Data, for path: String) throws -> Staged {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw HDLError.io(path: path, reason: "cannot create directory '\(dir)': \(error.localizedDescription)")
            }
        }
        let tmp = dir + "/." + url.lastPathComponent + ".tmp.\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw HDLError.io(path: path, reason: "cannot create temporary file '\(tmp)'")
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        return Staged(temporary: tmp, path: path)
    }

    /// Renames one staged file over its destination.
    public static func commit(_ s: Staged) throws { try commit([s]) }

    /// Stages `head` (a file header, say) in a temporary file extended with zeros to `length` bytes, for writers that
    /// fill the rest in pieces (`write(_:at:into:)`, one piece per rank) before the commit.
    public static func stage(_ head: Data, for path: String, length: Int) throws -> Staged {
        let s = try stage(head, for: path)
        if truncate(s.temporary, off_t(length)) != 0 {
            let reason = String(cString: strerror(errno))
            discard(s)
            throw HDLError.io(path: path, reason: "cannot extend to \(length) bytes: \(reason)")
        }
        return s
    }

    /// Writes `bytes` at byte `offset` of the staged temporary file `temporary` (which must exist) and flushes it.
    public static func write(_ bytes: UnsafeRawBufferPointer, at offset: Int, into temporary: String) throws {
        let fd = open(temporary, O_WRONLY)
        guard fd >= 0 else { throw HDLError.io(path: temporary, reason: "cannot open the staged file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let w = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if w < 0 {
                if errno == EINTR { continue }
                throw HDLError.io(path: temporary, reason: "write failed at byte \(offset + done): \(String(cString: strerror(errno)))")
            }
            done += w
        }
        if fsync(fd) != 0 { throw HDLError.io(path: temporary, reason: "fsync failed: \(String(cString: strerror(errno)))") }
    }

    /// Renames staged files over their destinations, in order. A destination that cannot be replaced (a directory)
    /// fails the whole unit before anything is renamed; every temporary file is removed on failure.
    public static func commit(_ staged: [Staged]) throws {
        for s in staged {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: s.path, isDirectory: &isDir), isDir.boolValue {
                staged.forEach(discard)
                throw HDLError.io(path: s.path, reason: "is a directory; nothing was written")
            }
        }
        for (i, s) in staged.enumerated() where rename(s.temporary, s.path) != 0 {
            let reason = String(cString: strerror(errno))
            staged[i...].forEach(discard)
            throw HDLError.io(path: s.path, reason: "rename failed: \(reason)")
        }
    }

    /// Removes a staged file (the destination is left as it was).
    public static func discard(_ s: Staged) { unlink(s.temporary) }
}
