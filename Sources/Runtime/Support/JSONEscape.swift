// The one decoder of JSON string escapes ("\n", "\u00e9", …) shared by the hand-written JSON readers
// (layer.json on the create path, container.json written the way Python writes it).

enum JSONEscape {
    /// Decodes the escape whose backslash is at `bytes[i]`: appends its UTF-16 unit to `units` and
    /// moves `i` past it. False for a malformed or truncated escape.
    static func decode<C: RandomAccessCollection>(_ bytes: C, at i: inout Int, into units: inout [UInt16]) -> Bool
        where C.Element == UInt8, C.Index == Int {
        guard i + 1 < bytes.endIndex else { return false }
        let e = bytes[i + 1]
        i += 2
        switch e {
        case UInt8(ascii: "\""): units.append(0x22)
        case UInt8(ascii: "\\"): units.append(0x5C)
        case UInt8(ascii: "/"): units.append(0x2F)
        case UInt8(ascii: "b"): units.append(0x08)
        case UInt8(ascii: "f"): units.append(0x0C)
        case UInt8(ascii: "n"): units.append(0x0A)
        case UInt8(ascii: "r"): units.append(0x0D)
        case UInt8(ascii: "t"): units.append(0x09)
        case UInt8(ascii: "u"):
            guard i + 4 <= bytes.endIndex,
                  let v = UInt16(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else { return false }
            units.append(v)
            i += 4
        default: return false
        }
        return true
    }
}
