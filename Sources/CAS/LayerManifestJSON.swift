// layer.json written by hand: byte for byte what JSONEncoder writes with sorted keys and unescaped
// slashes (docs/store-format.md), without its per-value boxing, which cost more than the unpack's own
// work for a layer of 20,000 small files. Read back with JSONDecoder, like any other layer.json.

enum LayerManifestJSON {
    /// The JSON of `m`: keys in UTF-8 order, no whitespace, nil optionals left out, strings escaped as
    /// JSONEncoder escapes them.
    static func encode(_ m: LayerManifest) -> [UInt8] {
        var w = JSONByteWriter(capacity: 256 + m.entries.count * 200 + m.skipped.count * 120)
        w.raw("{\"blobs\":")
        w.array(m.blobs) { w, d in w.digest(d) }
        w.raw(",\"compression\":")
        w.string(m.compression)
        w.raw(",\"diffID\":")
        w.digest(m.diffID)
        w.raw(",\"entries\":")
        w.array(m.entries) { w, e in w.entry(e) }
        w.raw(",\"format\":")
        w.int(Int64(m.format))
        w.raw(",\"opaqueDirs\":")
        w.array(m.opaqueDirs) { w, s in w.string(s) }
        w.raw(",\"skipped\":")
        w.array(m.skipped) { w, s in
            w.raw("{\"path\":")
            w.string(s.path)
            w.raw(",\"reason\":")
            w.string(s.reason)
            w.byte(0x7D)
        }
        w.raw(",\"whiteouts\":")
        w.array(m.whiteouts) { w, s in w.string(s) }
        w.byte(0x7D)
        return w.bytes
    }
}

/// Appends JSON tokens to a byte buffer (also Runtime's hand-written files, such as runc's config).
public struct JSONByteWriter {
    public private(set) var bytes: [UInt8]
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    public init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    /// Literal JSON text (keys and punctuation written in this file).
    public mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func array<T>(_ items: [T], _ element: (inout JSONByteWriter, T) -> Void) {
        bytes.append(0x5B)
        for (i, item) in items.enumerated() {
            if i > 0 { bytes.append(0x2C) }
            element(&self, item)
        }
        bytes.append(0x5D)
    }

    mutating func digest(_ d: Digest) {
        raw("\"sha256:")
        var hex = d.hex
        hex.withUTF8 { bytes.append(contentsOf: $0) }
        bytes.append(0x22)
    }

    public mutating func uint(_ v: UInt64) {
        if v < 10 {
            bytes.append(0x30 + UInt8(v))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: room for UInt64.max's 20 digits
        withUnsafeMutableBytes(of: &digits) { buf in
            var v = v
            var i = buf.count
            while v > 0 {
                i -= 1
                buf[i] = 0x30 + UInt8(v % 10)
                v /= 10
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i...]))
        }
    }

    public mutating func int(_ v: Int64) {
        if v < 0 {
            bytes.append(0x2D)
            uint(v.magnitude)
        } else {
            uint(UInt64(v))
        }
    }

    /// A JSON string as JSONEncoder writes it: `"` and `\` escaped, \b \t \n \f \r for those controls,
    /// \u00xx (lowercase hex) for the other controls below 0x20, everything else (also "/" and non-ASCII)
    /// as its UTF-8 bytes.
    public mutating func string(_ s: String) {
        var s = s
        bytes.append(0x22)
        s.withUTF8 { utf8 in
            var start = 0
            for (i, c) in utf8.enumerated() where c < 0x20 || c == 0x22 || c == 0x5C {
                if i > start { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i])) }
                start = i + 1
                bytes.append(0x5C)
                switch c {
                case 0x22, 0x5C: bytes.append(c)
                case 0x08: bytes.append(0x62)   // b
                case 0x09: bytes.append(0x74)   // t
                case 0x0A: bytes.append(0x6E)   // n
                case 0x0C: bytes.append(0x66)   // f
                case 0x0D: bytes.append(0x72)   // r
                default:
                    bytes.append(contentsOf: [0x75, 0x30, 0x30, JSONByteWriter.hex[Int(c >> 4)], JSONByteWriter.hex[Int(c & 0xF)]])
                }
            }
            if utf8.count > start { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...])) }
        }
        bytes.append(0x22)
    }

    /// One LayerEntry, keys in UTF-8 order: devMajor, devMinor, digest, gid, kind, mode, mtime, path,
    /// size, target, uid.
    mutating func entry(_ e: LayerEntry) {
        bytes.append(0x7B)
        if let v = e.devMajor {
            raw("\"devMajor\":")
            uint(UInt64(v))
            bytes.append(0x2C)
        }
        if let v = e.devMinor {
            raw("\"devMinor\":")
            uint(UInt64(v))
            bytes.append(0x2C)
        }
        if let d = e.digest {
            raw("\"digest\":")
            digest(d)
            bytes.append(0x2C)
        }
        raw("\"gid\":")
        uint(UInt64(e.gid))
        raw(",\"kind\":\"")
        var kind = e.kind.rawValue
        kind.withUTF8 { bytes.append(contentsOf: $0) }   // one ASCII letter, nothing to escape
        raw("\",\"mode\":")
        uint(UInt64(e.mode))
        raw(",\"mtime\":")
        int(e.mtime)
        raw(",\"path\":")
        string(e.path)
        if let v = e.size {
            raw(",\"size\":")
            uint(v)
        }
        if let t = e.target {
            raw(",\"target\":")
            string(t)
        }
        raw(",\"uid\":")
        uint(UInt64(e.uid))
        bytes.append(0x7D)
    }
}
