// Says which field of a JSON document is wrong, in words, instead of Swift's DecodingError text
// (which names coding keys and debug descriptions a user cannot act on).
import Foundation

enum DecodingProblem {
    /// "field 'layers[0].size': expected a number" for a DecodingError, else the error as text.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        switch e {
        case .typeMismatch(let type, let c):
            return "\(field(c.codingPath)): expected \(kind(type))"
        case .valueNotFound(let type, let c):
            return "\(field(c.codingPath)): expected \(kind(type)), found null"
        case .keyNotFound(let key, let c):
            return "\(field(c.codingPath + [key])): missing"
        case .dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not valid JSON" : "\(field(c.codingPath)): \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// `a.b[2].c` for a coding path ("the document" for the top level).
    static func field(_ path: [any CodingKey]) -> String {
        if path.isEmpty { return "the document" }
        var out = ""
        for k in path {
            if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
        }
        return "field '\(out)'"
    }

    private static func kind(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is UInt64.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}
