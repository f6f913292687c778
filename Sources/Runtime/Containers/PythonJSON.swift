// Re-writes JSON the way Python's json.dump(obj) does by default (udocker 1.3 writes container.json
// so): key order kept, ", " and ": " separators, ASCII-only strings with \uXXXX escapes.

enum PythonJSON {
    /// `bytes` (a JSON text) in Python's default json.dump form; nil when `bytes` is not valid JSON.
    static func dump(_ bytes: [UInt8]) -> [UInt8]? {
        var p = Parser(bytes: bytes)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + bytes.count / 8)
        guard p.value(into: &out, depth: 0) else { return nil }
        p.skipSpace()
        return p.i == bytes.count ? out : nil
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func literal(_ word: String, into out: inout [UInt8]) -> Bool {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { return false }
            out += w
            i += w.count
            return true
        }

        mutating func value(into out: inout [UInt8], depth: Int) -> Bool {
            guard depth < 512 else { return false }
            skipSpace()
            guard i < bytes.count else { return false }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                out.append(UInt8(ascii: "{"))
                skipSpace()
                if i < bytes.count && bytes[i] == UInt8(ascii: "}") { i += 1; out.append(UInt8(ascii: "}")); return true }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\""), string(into: &out) else { return false }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    out += [UInt8(ascii: ":"), 0x20]
                    guard value(into: &out, depth: depth + 1) else { return false }
                    skipSpace()
                    guard i < bytes.count else { return false }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; out += [UInt8(ascii: ","), 0x20]; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; out.append(UInt8(ascii: "}")); return true }
                    return false
                }
            case UInt8(ascii: "["):
                i += 1
                out.append(UInt8(ascii: "["))
                skipSpace()
                if i < bytes.count && bytes[i] == UInt8(ascii: "]") { i += 1; out.append(UInt8(ascii: "]")); return true }
                while true {
                    guard value(into: &out, depth: depth + 1) else { return false }
                    skipSpace()
                    guard i < bytes.count else { return false }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; out += [UInt8(ascii: ","), 0x20]; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; out.append(UInt8(ascii: "]")); return true }
                    return false
                }
            case UInt8(ascii: "\""):
                return string(into: &out)
            case UInt8(ascii: "t"): return literal("true", into: &out)
            case UInt8(ascii: "f"): return literal("false", into: &out)
            case UInt8(ascii: "n"): return literal("null", into: &out)
            default:
                let start = i
                while i < bytes.count, let c = Optional(bytes[i]),
                      (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
                        || c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                    i += 1
                }
                guard i > start else { return false }
                out += bytes[start..<i]
                return true
            }
        }

        /// A string token, decoded and re-escaped as Python does (ensure_ascii).
        mutating func string(into out: inout [UInt8]) -> Bool {
            i += 1
            var units = [UInt16]()
            var raw = [UInt8]()
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    flush(&raw, into: &units)
                    escape(units, into: &out)
                    return true
                }
                if c == UInt8(ascii: "\\") {
                    flush(&raw, into: &units)
                    guard JSONEscape.decode(bytes, at: &i, into: &units) else { return false }
                    continue
                }
                if c < 0x20 { return false }
                raw.append(c)
                i += 1
            }
            return false
        }

        private func flush(_ raw: inout [UInt8], into units: inout [UInt16]) {
            if raw.isEmpty { return }
            units += String(decoding: raw, as: UTF8.self).utf16
            raw.removeAll(keepingCapacity: true)
        }

        private func escape(_ units: [UInt16], into out: inout [UInt8]) {
            out.append(UInt8(ascii: "\""))
            for u in units {
                switch u {
                case 0x22: out += Array("\\\"".utf8)
                case 0x5C: out += Array("\\\\".utf8)
                case 0x0A: out += Array("\\n".utf8)
                case 0x0D: out += Array("\\r".utf8)
                case 0x09: out += Array("\\t".utf8)
                case 0x08: out += Array("\\b".utf8)
                case 0x0C: out += Array("\\f".utf8)
                case 0x20..<0x7F: out.append(UInt8(u))
                default:
                    let hex = Array(String(u, radix: 16).utf8)
                    out += Array("\\u".utf8) + Array(repeating: UInt8(ascii: "0"), count: 4 - hex.count) + hex
                }
            }
            out.append(UInt8(ascii: "\""))
        }
    }
}
