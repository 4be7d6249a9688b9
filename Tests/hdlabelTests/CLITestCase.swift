import Foundation
import XCTest

/// Base class of the tests that run the built `hdlabel` binary as a user would: a fresh temporary directory per test
/// (`dir`) and `run(args)` returning exit code, stdout and stderr.
class CLITestCase: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var dir = ""

    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hdlabel-cli-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func binary() throws -> String {
        for cfg in ["debug", "release"] {
            let p = Self.root.appendingPathComponent(".build/\(cfg)/hdlabel").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw XCTSkip("hdlabel binary not built; run `swift build` first (Scripts/test.sh does)")
    }

    /// Runs the binary; pipes are drained before waiting so large outputs cannot block the child.
    @discardableResult
    func run(_ args: [String], environment: [String: String] = [:]) throws -> (code: Int32, stdout: String, stderr: String) {
        let p = Process(); p.executableURL = URL(fileURLWithPath: try binary()); p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let o = Pipe(), e = Pipe(); p.standardOutput = o; p.standardError = e
        try p.run()
        let out = o.fileHandleForReading.readDataToEndOfFile(), err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}
