import HDLabelCore
import Foundation

/// Writes files atomically: data goes to a temporary file in the same directory, is flushed, then renamed
/// over the destination. An interrupted run never leaves a half-written result at `path`.
public enum AtomicFile {
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
        var staged: [(tmp: String, path: String)] = []
        do {
            for f in files { staged.append((try stage(f.data, for: f.path), f.path)) }
        } catch {
            for s in staged { unlink(s.tmp) }
            throw error
        }
        // A destination that cannot be replaced (a directory) fails the whole unit before anything is renamed.
        for s in staged {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: s.path, isDirectory: &isDir), isDir.boolValue {
                for t in staged { unlink(t.tmp) }
                throw HDLError.io(path: s.path, reason: "is a directory; nothing was written")
            }
        }
        for (i, s) in staged.enumerated() where rename(s.tmp, s.path) != 0 {
            let reason = String(cString: strerror(errno))
            for rest in staged[i...] { unlink(rest.tmp) }
            throw HDLError.io(path: s.path, reason: "rename failed: \(reason)")
        }
    }

    /// Writes `data` to a flushed temporary file beside `path` (creating the directory) and returns its path.
    static func stage(_ data: Data, for path: String) throws -> String {
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
        return tmp
    }
}
