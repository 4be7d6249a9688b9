import Foundation

/// Every error hdlabel reports to a user. The description is one line that says what is wrong and where.
public enum HDLError: Error, CustomStringConvertible, Equatable, Sendable {
    case io(path: String, reason: String)
    case format(path: String, reason: String)
    case invalidInput(String)
    case invalidParameter(name: String, value: String, allowed: String)
    case cluster(String)

    public var description: String {
        switch self {
        case let .io(path, reason): return "cannot read or write '\(path)': \(reason)"
        case let .format(path, reason): return "bad file '\(path)': \(reason)"
        case let .invalidInput(msg): return "invalid input: \(msg)"
        case let .invalidParameter(name, value, allowed): return "invalid \(name) '\(value)': expected \(allowed)"
        case let .cluster(msg): return "cluster error: \(msg)"
        }
    }
}
