// Prints JSON the way udocker 1.3 does (Python's json.dumps with sort_keys, indent=4,
// separators (',', ': ') and ASCII-only strings), for `inspect`, `manifest inspect` and --format=json.
import Foundation

/// A JSON value that keeps the difference between booleans, integers and other numbers.
indirect enum JSONValue: Decodable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

enum JSONPrint {
    /// `bytes` re-printed in udocker's style; nil when they are not JSON.
    static func udockerStyle(_ bytes: [UInt8]) -> String? {
        guard let v = parse(bytes) else { return nil }
        return document(v)
    }

    /// `bytes` as a JSON value; nil when they are not JSON.
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// `v` in udocker's style.
    static func document(_ v: JSONValue) -> String {
        var out = ""
        write(v, indent: 0, into: &out)
        return out
    }

    private static func write(_ v: JSONValue, indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent + 4)
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): quote(s, into: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, e) in a.enumerated() {
                out += pad
                write(e, indent: indent + 4, into: &out)
                out += i < a.count - 1 ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{\n"
            let keys = o.keys.sorted()
            for (i, k) in keys.enumerated() {
                out += pad
                quote(k, into: &out)
                out += ": "
                if let e = o[k] { write(e, indent: indent + 4, into: &out) }
                out += i < keys.count - 1 ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.utf16 {
            switch u {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(u)))
            default:
                let hex = String(u, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        out += "\""
    }
}
