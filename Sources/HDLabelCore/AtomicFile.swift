import Foundation

/// Writes files atomically: data goes to a temporary file in the same directory, is flushed, then renamed
/// over the destination. An interrupted run never leaves a half-written result at `path`.
///
/// The two halves are available on their own (`stage`, then `commit` or `discard`) for writers that must first
/// learn whether other processes succeeded too (the cluster renames only after every rank staged its file).
public enum AtomicFile {
    /// A file written and flushed under a temporary name beside `path`, not yet visible at `path`.
    public struct Staged: Sendable {
        public let temporary: String
        public let path: String
    }

    public static func write(_ data: Data, to path: String) throws {
        try commit(stage(data, for: path))
    }

    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
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

    /// Renames a staged file over its destination.
    public static func commit(_ s: Staged) throws {
        if rename(s.temporary, s.path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(s.temporary)
            throw HDLError.io(path: s.path, reason: "rename failed: \(reason)")
        }
    }

    /// Removes a staged file (the destination is left as it was).
    public static func discard(_ s: Staged) { unlink(s.temporary) }
}
