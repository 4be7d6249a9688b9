import HDLabelCore
import Foundation

/// Writes files atomically: data goes to a temporary file in the same directory, is flushed, then renamed
/// over the destination. An interrupted run never leaves a half-written result at `path`.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
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
        if rename(tmp, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw HDLError.io(path: path, reason: "rename failed: \(reason)")
        }
    }

    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
    }
}
