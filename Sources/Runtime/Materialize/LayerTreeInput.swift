// What materialisation needs from a layer.json (paths, kinds, modes, mtimes, sizes, link targets,
// whiteouts, opaque directories), read by a small specialised JSON scanner: Foundation's JSONDecoder
// takes longer to decode a 20,000-entry layer.json than creating the container's links takes.
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// One entry of a layer, reduced to what a container tree needs.
struct TreeEntry {
    var path: String
    var kind: LayerEntry.Kind
    var mode: UInt32
    var mtime: Int64
    var size: UInt64
    var target: String?
}

/// A layer's entries, whiteouts and opaque directories.
struct LayerTreeInput {
    var entries: [TreeEntry] = []
    var whiteouts: [String] = []
    var opaqueDirs: [String] = []

    init(_ m: LayerManifest) {
        entries = m.entries.map {
            TreeEntry(path: $0.path, kind: $0.kind, mode: $0.mode, mtime: $0.mtime, size: $0.size ?? 0, target: $0.target)
        }
        whiteouts = m.whiteouts
        opaqueDirs = m.opaqueDirs
    }

    private init() {}

    /// Reads layer.json at `path`; nil when it cannot be read or is not in the expected form (the
    /// caller then decodes it with the store's own decoder, which reports what is wrong).
    static func read(_ path: String) -> LayerTreeInput? {
        guard let bytes = try? FileIO.readFile(path) else { return nil }
        return bytes.withUnsafeBufferPointer { buf in
            var s = Scanner(b: buf)
            return s.manifest()
        }
    }

    private struct Scanner {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        init(b: UnsafeBufferPointer<UInt8>) { self.b = b }

        mutating func manifest() -> LayerTreeInput? {
            var out = LayerTreeInput()
            guard object({ s, key in
                switch key {
                case "entries":
                    return s.array { s in
                        guard let e = s.entry() else { return false }
                        out.entries.append(e)
                        return true
                    }
                case "whiteouts":
                    return s.array { s in
                        guard let t = s.string() else { return false }
                        out.whiteouts.append(t)
                        return true
                    }
                case "opaqueDirs":
                    return s.array { s in
                        guard let t = s.string() else { return false }
                        out.opaqueDirs.append(t)
                        return true
                    }
                default:
                    return s.skipValue(depth: 0)
                }
            }) else { return nil }
            return out
        }

        mutating func entry() -> TreeEntry? {
            var path: String?
            var kind: LayerEntry.Kind?
            var mode: Int64 = 0, mtime: Int64 = 0, size: Int64 = 0
            var target: String?
            guard object({ s, key in
                switch key {
                case "path": path = s.string(); return path != nil
                case "kind":
                    guard let k = s.string() else { return false }
                    kind = LayerEntry.Kind(rawValue: k)
                    return kind != nil
                case "mode": return s.integer(&mode)
                case "mtime": return s.integer(&mtime)
                case "size": return s.integer(&size)
                case "target": target = s.string(); return target != nil
                default: return s.skipValue(depth: 0)
                }
            }), let path, let kind, mode >= 0, size >= 0 else { return nil }
            return TreeEntry(path: path, kind: kind, mode: UInt32(truncatingIfNeeded: mode), mtime: mtime,
                             size: UInt64(size), target: target)
        }

        mutating func space() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func expect(_ c: UInt8) -> Bool {
            space()
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }

        /// Calls `member` for each key with the scanner at the value; false when malformed.
        mutating func object(_ member: (inout Scanner, String) -> Bool) -> Bool {
            guard expect(UInt8(ascii: "{")) else { return false }
            space()
            if i < b.count && b[i] == UInt8(ascii: "}") { i += 1; return true }
            while true {
                space()
                guard let key = string(), expect(UInt8(ascii: ":")) else { return false }
                space()
                guard member(&self, key) else { return false }
                space()
                guard i < b.count else { return false }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return true }
                return false
            }
        }

        mutating func array(_ element: (inout Scanner) -> Bool) -> Bool {
            guard expect(UInt8(ascii: "[")) else { return false }
            space()
            if i < b.count && b[i] == UInt8(ascii: "]") { i += 1; return true }
            while true {
                space()
                guard element(&self) else { return false }
                space()
                guard i < b.count else { return false }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return true }
                return false
            }
        }

        mutating func integer(_ v: inout Int64) -> Bool {
            space()
            var neg = false
            if i < b.count && b[i] == UInt8(ascii: "-") { neg = true; i += 1 }
            let start = i
            var n: Int64 = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(b[i] - 0x30))
                if o1 || o2 { return false }
                n = a
                i += 1
            }
            guard i > start else { return false }
            if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") { return false }
            v = neg ? -n : n
            return true
        }

        /// A JSON string; the fast path takes the bytes as they are when there is no escape.
        mutating func string() -> String? {
            space()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            let start = i
            while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\") {
                if b[i] < 0x20 { return nil }
                i += 1
            }
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            var units = Array(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self).utf16)
            var raw = [UInt8]()
            func flush() {
                if raw.isEmpty { return }
                units += String(decoding: raw, as: UTF8.self).utf16
                raw.removeAll(keepingCapacity: true)
            }
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    flush()
                    return String(decoding: units, as: UTF16.self)
                }
                if c < 0x20 { return nil }
                if c != UInt8(ascii: "\\") { raw.append(c); i += 1; continue }
                flush()
                guard JSONEscape.decode(b, at: &i, into: &units) else { return nil }
            }
            return nil
        }

        mutating func skipValue(depth: Int) -> Bool {
            guard depth < 64 else { return false }
            space()
            guard i < b.count else { return false }
            switch b[i] {
            case UInt8(ascii: "{"): return object { s, _ in s.skipValue(depth: depth + 1) }
            case UInt8(ascii: "["): return array { s in s.skipValue(depth: depth + 1) }
            case UInt8(ascii: "\""): return string() != nil
            default:
                let start = i
                while i < b.count, b[i] != UInt8(ascii: ","), b[i] != UInt8(ascii: "}"), b[i] != UInt8(ascii: "]"),
                      b[i] != 0x20, b[i] != 0x0A, b[i] != 0x0D, b[i] != 0x09 { i += 1 }
                return i > start
            }
        }
    }
}
