// A reader of the small JSON files every run reads (repo.json, materialize.json): Foundation's
// decoders cost a run about 1 ms on their first use in a process, more than the whole read.

enum SmallJSON {
    indirect enum Value: Equatable {
        case object([String: Value])
        case array([Value])
        case string(String)
        /// The number as written.
        case number(String)
        case bool(Bool)
        case null

        subscript(_ key: String) -> Value? {
            if case .object(let o) = self { return o[key] }
            return nil
        }
        var string: String? {
            if case .string(let s) = self { return s }
            return nil
        }
        var int: Int? {
            if case .number(let n) = self { return Int(n) }
            return nil
        }
        var strings: [String]? {
            guard case .array(let a) = self else { return nil }
            var out: [String] = []
            for v in a {
                guard let s = v.string else { return nil }
                out.append(s)
            }
            return out
        }
    }

    /// The value `bytes` hold, or nil when they are not one JSON value.
    static func parse(_ bytes: [UInt8]) -> Value? {
        var p = Parser(bytes: bytes)
        guard let v = p.value() else { return nil }
        p.skipSpace()
        return p.i == bytes.count ? v : nil
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0
        var depth = 0

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        mutating func value() -> Value? {
            skipSpace()
            guard i < bytes.count, depth < 64 else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                depth += 1
                defer { depth -= 1 }
                var o: [String: Value] = [:]
                skipSpace()
                if i < bytes.count && bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                while true {
                    skipSpace()
                    guard let k = string() else { return nil }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    guard let v = value() else { return nil }
                    o[k] = v
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                    return nil
                }
            case UInt8(ascii: "["):
                i += 1
                depth += 1
                defer { depth -= 1 }
                var a: [Value] = []
                skipSpace()
                if i < bytes.count && bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    guard let v = value() else { return nil }
                    a.append(v)
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    return nil
                }
            case UInt8(ascii: "\""):
                return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default:
                let start = i
                while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
                let text = String(decoding: bytes[start..<i], as: UTF8.self)
                return Double(text) == nil ? nil : .number(text)
            }
        }

        mutating func literal(_ word: String, _ v: Value) -> Value? {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { return nil }
            i += w.count
            return v
        }

        /// A string at `i` (its opening quote), escapes decoded.
        mutating func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out = ""
            var start = i
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    out += String(decoding: bytes[start..<i], as: UTF8.self)
                    i += 1
                    return out
                }
                if c < 0x20 { return nil }
                if c == UInt8(ascii: "\\") {
                    out += String(decoding: bytes[start..<i], as: UTF8.self)
                    var units: [UInt16] = []
                    while i < bytes.count && bytes[i] == UInt8(ascii: "\\") {
                        guard JSONEscape.decode(bytes, at: &i, into: &units) else { return nil }
                    }
                    out += String(decoding: units, as: UTF16.self)
                    start = i
                    continue
                }
                i += 1
            }
            return nil
        }
    }
}
